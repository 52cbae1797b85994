// The /jobs/{id}/report HTTP handler (see job_report_http.h).
#include "job_report_http.h"

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "attattr/base/quote.h"
#include "attattr/report/html_report.h"
#include "attattr/v1/job.pb.h"
#include "jobs/job_convert.h"

namespace attattr::server {
namespace {

using Response = metrics::MetricsHttpServer::Response;

constexpr absl::string_view kReportSuffix = "/report";

// "12 MiB", "300 KiB" or "80 bytes".
std::string FormatSize(int64_t bytes) {
  if (bytes >= (int64_t{1} << 20)) return absl::StrCat(bytes >> 20, " MiB");
  if (bytes >= 1024) return absl::StrCat(bytes >> 10, " KiB");
  return absl::StrCat(bytes, " bytes");
}

Response Plain(int status, const std::string& message) {
  Response r;
  r.status = status;
  r.body = message + "\n";
  return r;
}

// A store error as an HTTP status: NotFound 404, busy 503, anything else 500.
Response StoreError(const absl::Status& s) {
  const int status = s.code() == absl::StatusCode::kNotFound      ? 404
                     : s.code() == absl::StatusCode::kUnavailable ? 503
                                                                  : 500;
  return Plain(status, std::string(s.message()));
}

// Shared by the handler's calls: how many report pages are being drawn now, in all and by each
// principal (one at a time each, when the server draws more than one: a caller who opens pages
// and never reads them holds its own slot until the write deadline, not everyone's).
struct ReportLoad {
  absl::Mutex mu;
  int rendering ABSL_GUARDED_BY(mu) = 0;
  std::map<std::string, int> by_principal ABSL_GUARDED_BY(mu);
};

Response Serve(store::JobStore& store, const JobReportAccess& access, const JobReportLimits& limits,
               const std::shared_ptr<ReportLoad>& load,
               const metrics::MetricsHttpServer::Request& request) {
  std::optional<Principal> caller;
  if (access.auth != nullptr) {
    auto who = access.auth->Authenticate(Credentials{request.authorization, request.peer_identity});
    if (!who.ok()) {
      if (access.log != nullptr) {
        access.log->Warn("call denied", {{"audit", "call.denied"},
                                         {"method", "GET /jobs/{id}/report"},
                                         {"peer", request.peer_ip},
                                         {"code", "401"},
                                         {"error", who.status().message()}});
      }
      Response r = Plain(401, std::string(who.status().message()));
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"attattr\"");
      return r;
    }
    caller = std::move(*who);
  }
  // "/jobs/<id>/report" -> "jobs/<id>". A name no job can have (longer than the store hands out)
  // is not looked up, and the path is never echoed whole.
  absl::string_view path = request.path;
  if (!absl::ConsumeSuffix(&path, kReportSuffix) || !absl::ConsumePrefix(&path, "/") ||
      !absl::StartsWith(path, "jobs/") || path.size() == 5 ||
      absl::StrContains(path.substr(5), '/') || !CheckJobName(std::string(path)).ok()) {
    return Plain(404, absl::StrCat("not found: ", QuoteInput(request.path),
                                   " (job reports are at /jobs/{id}/report)"));
  }
  const std::string name(path);
  // Whose job it is first, without its spec, so another principal's job costs what a missing one
  // does (no texts read for it: the answer's timing tells nothing either).
  auto record = store.Get(name, /*include_spec=*/false);
  if (!record.ok()) return StoreError(record.status());
  if (caller.has_value() && !caller->admin && record->owner != caller->name) {
    // Another principal's job reads exactly like a missing one.
    if (access.log != nullptr) {
      access.log->Warn("call denied", {{"audit", "call.denied"},
                                       {"principal", caller->name},
                                       {"method", "GET /jobs/{id}/report"},
                                       {"peer", request.peer_ip},
                                       {"code", "404"},
                                       {"job_id", name},
                                       {"owner", record->owner},
                                       {"error", "another principal's job"}});
    }
    return StoreError(store::JobNotFound(name));
  }
  record = store.Get(name);
  if (!record.ok()) return StoreError(record.status());
  auto job = std::make_shared<v1::Job>();
  JobToProto(*record, store.NowMs(), job.get());
  auto result = std::make_shared<v1::JobResult>();
  report::ReportOptions options;
  options.max_page_bytes = limits.max_page_bytes;
  bool has_result = false;
  std::shared_ptr<void> slot;  // a drawing slot, released when the page is sent
  if (record->state == store::JobState::kSucceeded && record->has_result) {
    if (record->result_size_bytes > limits.max_drawn_result_bytes) {
      options.result_note = absl::StrCat("The result (", FormatSize(record->result_size_bytes),
                                         ") is larger than a report page draws (",
                                         FormatSize(limits.max_drawn_result_bytes),
                                         "): `attattr get ", name, "` fetches it.");
    } else {
      // A result is held in memory while its page is drawn: at most max_concurrent_pages at once.
      // Without authentication every caller is the anonymous principal: callers are told apart
      // by their address instead.
      const std::string who = !caller.has_value()      ? ""
                              : access.auth->enabled() ? caller->name
                                                       : absl::StrCat("address ", request.peer_ip);
      {
        absl::MutexLock lock(&load->mu);
        if (load->rendering >= limits.max_concurrent_pages) {
          return Plain(503, "busy drawing other reports; retry in a few seconds");
        }
        if (caller.has_value() && limits.max_concurrent_pages > 1 && load->by_principal[who] > 0) {
          return Plain(503,
                       "your other report is still being drawn (one at a time per caller); "
                       "retry once it has arrived");
        }
        ++load->rendering;
        ++load->by_principal[who];
      }
      slot = std::shared_ptr<void>(nullptr, [load, who](void*) {
        absl::MutexLock lock(&load->mu);
        --load->rendering;
        if (--load->by_principal[who] == 0) load->by_principal.erase(who);
      });
      std::string bytes;
      bytes.reserve(static_cast<size_t>(record->result_size_bytes));
      auto s = store.ReadResult(name, [&bytes](const std::string& chunk) {
        bytes += chunk;
        return absl::OkStatus();
      });
      const bool parsed = s.ok() && result->ParseFromString(bytes);
      if (!s.ok()) return StoreError(s);
      if (!parsed)
        return Plain(500, absl::StrCat("the stored result of ", name, " does not parse"));
      has_result = true;
    }
  }
  // The page is drawn while it is sent: a failure part-way (an inconsistent result) can only end
  // the connection early.
  Response r;
  r.content_type = "text/html; charset=utf-8";
  r.stream = [job, result, has_result, options,
              slot](const metrics::MetricsHttpServer::BodyWriter& write) {
    const absl::Status s =
        report::WriteJobReport(*job, has_result ? result.get() : nullptr, options, write);
    return s.ok();
  };
  return r;
}

}  // namespace

metrics::MetricsHttpServer::Handler MakeJobReportHandler(store::JobStore& store,
                                                         const JobReportAccess& access,
                                                         const JobReportLimits& limits) {
  auto load = std::make_shared<ReportLoad>();
  return [&store, access, limits, load](const metrics::MetricsHttpServer::Request& request) {
    return Serve(store, access, limits, load, request);
  };
}

}  // namespace attattr::server
