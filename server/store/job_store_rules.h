// The JobStore contract's argument checks, error wordings and page tokens, shared by every
// implementation (SQLite, PostgreSQL) so both refuse the same inputs with the same messages and
// hand out interchangeable page tokens. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/job_store.h"

namespace attattr::store {

// The code a CANCELLED job records (absl::StatusCode::kCancelled).
inline constexpr int32_t kCancelledCode = 1;

// "'s'": how ids appear in store messages.
std::string Quote(const std::string& s);

// FailedPrecondition: "job 'ID' is STATE, not WANTED".
absl::Status WrongState(const std::string& id, JobState state, const std::string& wanted);

// FailedPrecondition for a fenced write whose lease token is no longer the job's: "job 'ID' is no
// longer held by this run (lease token T, the job's is now C)".
absl::Status LeaseLost(const std::string& id, int64_t token, int64_t current);
// What a job records when it ends FAILED because its runs kept dying: started `attempts` times,
// at most `max_attempts`.
std::string TooManyAttemptsMessage(int32_t attempts, int32_t max_attempts);
// ClaimRequest's checks: holder non-empty, lease_ms > 0, max_running_per_owner >= 0.
absl::Status ValidateClaim(const ClaimRequest& request);

// A caller-chosen job id: 1..256 printable ASCII characters (InvalidArgument naming `id`).
absl::Status ValidateId(const std::string& id);

// Create's checks of a new record: id (when set), kind (non-empty, printable ASCII, at most 1 KiB),
// request_id, model and owner (at most 1 KiB, valid UTF-8 without NUL, so every store can keep them
// as text), create_time_ms >= 0. InvalidArgument naming the field.
absl::Status ValidateNewRecord(const JobRecord& record);

// AdmissionLimits' checks: every limit >= 0 (InvalidArgument naming it).
absl::Status ValidateAdmissionLimits(const AdmissionLimits& limits);
// Whether Create must count the queue / sum the owner's bytes for `limits`.
inline bool CountsQueue(const AdmissionLimits& limits) {
  return limits.max_queued > 0 || limits.max_queued_per_owner > 0;
}
// The first limit that refuses a new job, given what the store holds before it (`counts`) and the
// owner's bytes with its spec (`owner_stored_bytes`).
Refusal Admit(const AdmissionLimits& limits, const QueueCounts& counts, int64_t owner_stored_bytes);

// Finish's checks: `state` terminal, `error_code` canonical and consistent with it. Returns the
// code to record (CANCELLED with 0 records kCancelledCode).
absl::StatusOr<int32_t> ValidateFinish(JobState state, int32_t error_code);

// done and total >= 0.
absl::Status ValidateProgress(const JobProgress& progress);

// Free text a store keeps as text (error messages, progress stages): returned unchanged when it is
// valid UTF-8 without NUL, else with every offending byte written as \xNN.
std::string TextForStore(const std::string& text);

// ListFilter.page_size applied: 0 -> kDefaultListPageSize, clamped to kMaxListPageSize; negative
// is InvalidArgument naming page_size.
absl::StatusOr<int32_t> PageSize(const ListFilter& filter);

// Where a page starts: after (create_time_ms, id) of the previous page's last record.
struct PageCursor {
  int64_t create_time_ms = std::numeric_limits<int64_t>::min();
  std::string id;
};
// The token for the page after `last`, listed with `filter` (web-safe base64 of the cursor and the
// filter's state and kind).
std::string EncodePageToken(const ListFilter& filter, const JobRecord& last);
// The cursor of filter.page_token (the first page's for an empty token); InvalidArgument naming
// page_token when it is malformed or was issued for another state/kind filter.
absl::StatusOr<PageCursor> DecodePageToken(const ListFilter& filter);

}  // namespace attattr::store
