// JobStore contract checks and page tokens (see job_store_rules.h). UTF-8 validity is utf8proc's
// decoder, the one the tokenizer uses.
#include "store/job_store_rules.h"

#include <utf8proc.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace attattr::store {
namespace {

constexpr size_t kMaxIdLength = 256;
constexpr size_t kMaxKeyLength = 1024;     // request_id, kind, model, owner
constexpr int32_t kMaxCanonicalCode = 16;  // UNAUTHENTICATED

// Printable ASCII without control characters, so ids and kinds fit in page tokens and logs.
bool IsPrintable(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// Length of the valid UTF-8 character (not NUL) at `s[at]`, or 0 when the bytes there are not one.
size_t ValidCharAt(const std::string& s, size_t at) {
  utf8proc_int32_t code_point = 0;
  const utf8proc_ssize_t n =
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + at),
                       static_cast<utf8proc_ssize_t>(s.size() - at), &code_point);
  return n > 0 && code_point != 0 ? static_cast<size_t>(n) : 0;
}

bool IsText(const std::string& s) {
  for (size_t at = 0; at < s.size();) {
    const size_t n = ValidCharAt(s, at);
    if (n == 0) return false;
    at += n;
  }
  return true;
}

absl::Status ValidateKey(const char* field, const std::string& value) {
  if (value.size() > kMaxKeyLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": longer than ", kMaxKeyLength, " bytes"));
  }
  if (!IsText(value)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": not valid UTF-8 (or contains NUL)"));
  }
  return absl::OkStatus();
}

std::string FilterState(const ListFilter& f) {
  return f.state.has_value() ? JobStateName(*f.state) : "";
}
std::string FilterKind(const ListFilter& f) { return f.kind.has_value() ? "1" + *f.kind : "0"; }

}  // namespace

std::string Quote(const std::string& s) { return absl::StrCat("'", s, "'"); }

absl::Status WrongState(const std::string& id, JobState state, const std::string& wanted) {
  return absl::FailedPreconditionError(
      absl::StrCat("job ", Quote(id), " is ", std::string(JobStateName(state)), ", not ", wanted));
}

absl::Status LeaseLost(const std::string& id, int64_t token, int64_t current) {
  return absl::FailedPreconditionError(absl::StrCat("job ", Quote(id),
                                                    " is no longer held by this run (lease token ",
                                                    token, ", the job's is now ", current, ")"));
}

std::string TooManyAttemptsMessage(int32_t attempts, int32_t max_attempts) {
  return absl::StrCat("the server running this job stopped or lost it ", attempts,
                      " times (--max-job-attempts ", max_attempts, "); it is not run again");
}

absl::Status ValidateClaim(const ClaimRequest& request) {
  if (request.holder.empty()) return absl::InvalidArgumentError("holder: empty");
  if (request.lease_ms <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("lease_ms: must be > 0, got ", request.lease_ms));
  }
  if (request.max_running_per_owner < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_running_per_owner: must be >= 0, got ", request.max_running_per_owner));
  }
  return absl::OkStatus();
}

absl::Status ValidateId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("id: empty");
  if (id.size() > kMaxIdLength || !IsPrintable(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("id: must be 1..", kMaxIdLength, " printable ASCII characters, got ",
                     Quote(absl::CHexEscape(id.substr(0, kMaxIdLength)))));
  }
  return absl::OkStatus();
}

absl::Status ValidateNewRecord(const JobRecord& record) {
  if (!record.id.empty()) {
    absl::Status id = ValidateId(record.id);
    if (!id.ok()) return id;
  }
  if (record.kind.empty()) return absl::InvalidArgumentError("kind: empty");
  if (record.kind.size() > kMaxKeyLength || !IsPrintable(record.kind)) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind: must be at most ", kMaxKeyLength, " printable ASCII characters"));
  }
  for (const auto& [field, value] :
       {std::pair<const char*, const std::string*>{"request_id", &record.request_id},
        {"model", &record.model},
        {"owner", &record.owner}}) {
    absl::Status key = ValidateKey(field, *value);
    if (!key.ok()) return key;
  }
  if (record.create_time_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("create_time_ms: must be >= 0, got ", record.create_time_ms));
  }
  return absl::OkStatus();
}

absl::Status ValidateAdmissionLimits(const AdmissionLimits& limits) {
  for (const auto& [name, value] :
       {std::pair<const char*, int64_t>{"max_queued", limits.max_queued},
        {"max_queued_per_owner", limits.max_queued_per_owner},
        {"max_stored_bytes_per_owner", limits.max_stored_bytes_per_owner}}) {
    if (value < 0) return absl::InvalidArgumentError(absl::StrCat(name, ": must be >= 0"));
  }
  return absl::OkStatus();
}

Refusal Admit(const AdmissionLimits& limits, const QueueCounts& counts,
              int64_t owner_stored_bytes) {
  if (limits.max_queued > 0 && counts.queued >= limits.max_queued) return Refusal::kQueueFull;
  if (limits.max_queued_per_owner > 0 && counts.owner_queued >= limits.max_queued_per_owner) {
    return Refusal::kOwnerQueueFull;
  }
  if (limits.max_stored_bytes_per_owner > 0 &&
      owner_stored_bytes > limits.max_stored_bytes_per_owner) {
    return Refusal::kOwnerStorageFull;
  }
  return Refusal::kNone;
}

absl::StatusOr<int32_t> ValidateFinish(JobState state, int32_t error_code) {
  if (!IsTerminal(state)) {
    return absl::InvalidArgumentError(
        absl::StrCat("state: ", std::string(JobStateName(state)), " is not a terminal state"));
  }
  if (error_code < 0 || error_code > kMaxCanonicalCode) {
    return absl::InvalidArgumentError(
        absl::StrCat("error_code: ", error_code, " is not a canonical status code"));
  }
  if (state == JobState::kSucceeded && error_code != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("error_code: must be 0 for SUCCEEDED, got ", error_code));
  }
  if (state == JobState::kFailed && error_code == 0) {
    return absl::InvalidArgumentError("error_code: FAILED needs a non-zero code");
  }
  if (state == JobState::kCancelled && error_code == 0) return kCancelledCode;
  return error_code;
}

absl::Status ValidateProgress(const JobProgress& progress) {
  if (progress.done < 0 || progress.total < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "progress: done (", progress.done, ") and total (", progress.total, ") must be >= 0"));
  }
  return absl::OkStatus();
}

std::string TextForStore(const std::string& text) {
  if (IsText(text)) return text;
  std::string out;
  out.reserve(text.size() + 16);
  for (size_t at = 0; at < text.size();) {
    const size_t n = ValidCharAt(text, at);
    if (n == 0) {
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned char>(text[at]));
      ++at;
    } else {
      out.append(text, at, n);
      at += n;
    }
  }
  return out;
}

absl::StatusOr<int32_t> PageSize(const ListFilter& filter) {
  if (filter.page_size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be >= 0, got ", filter.page_size));
  }
  return filter.page_size == 0 ? kDefaultListPageSize
                               : std::min(filter.page_size, kMaxListPageSize);
}

// Tokens: web-safe base64 of "v1\n<create_time_ms>\n<state>\n<kind flag><kind>\n<id>".
std::string EncodePageToken(const ListFilter& filter, const JobRecord& last) {
  return absl::WebSafeBase64Escape(absl::StrCat("v1\n", last.create_time_ms, "\n",
                                                FilterState(filter), "\n", FilterKind(filter), "\n",
                                                last.id));
}

absl::StatusOr<PageCursor> DecodePageToken(const ListFilter& filter) {
  PageCursor cursor;
  if (filter.page_token.empty()) return cursor;
  const auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("page_token: ", why));
  };
  std::string raw;
  if (!absl::WebSafeBase64Unescape(filter.page_token, &raw)) return bad("not a page token");
  std::vector<std::string> parts = absl::StrSplit(raw, absl::MaxSplits('\n', 4));
  if (parts.size() != 5 || parts[0] != "v1" ||
      !absl::SimpleAtoi(parts[1], &cursor.create_time_ms) || !ValidateId(parts[4]).ok()) {
    return bad("not a page token");
  }
  if (parts[2] != FilterState(filter) || parts[3] != FilterKind(filter)) {
    return bad("was issued for a different filter (state/kind)");
  }
  cursor.id = parts[4];
  return cursor;
}

}  // namespace attattr::store
