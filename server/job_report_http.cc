// The /jobs/{id}/report HTTP handler (see job_report_http.h).
#include "job_report_http.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "attattr/report/html_report.h"
#include "attattr/v1/job.pb.h"
#include "jobs/job_convert.h"

namespace attattr::server {
namespace {

using Response = metrics::MetricsHttpServer::Response;

constexpr absl::string_view kReportSuffix = "/report";

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

Response Serve(store::JobStore& store, const metrics::MetricsHttpServer::Request& request) {
  // "/jobs/<id>/report" -> "jobs/<id>".
  absl::string_view path = request.path;
  if (!absl::ConsumeSuffix(&path, kReportSuffix) || !absl::ConsumePrefix(&path, "/") ||
      !absl::StartsWith(path, "jobs/") || path.size() == 5 ||
      absl::StrContains(path.substr(5), '/')) {
    return Plain(
        404, absl::StrCat("not found: ", request.path, " (job reports are at /jobs/{id}/report)"));
  }
  const std::string name(path);
  auto record = store.Get(name);
  if (!record.ok()) {
    if (record.status().code() == absl::StatusCode::kNotFound) {
      return Plain(404, absl::StrCat("job ", name, " not found"));
    }
    return StoreError(record.status());
  }
  v1::Job job;
  JobToProto(*record, UnixNowMs(), &job);
  v1::JobResult result;
  bool has_result = false;
  if (record->state == store::JobState::kSucceeded && record->has_result) {
    std::string bytes;
    bytes.reserve(static_cast<size_t>(record->result_size_bytes));
    auto s = store.ReadResult(name, [&bytes](const std::string& chunk) {
      bytes += chunk;
      return absl::OkStatus();
    });
    if (!s.ok()) return StoreError(s);
    if (!result.ParseFromString(bytes)) {
      return Plain(500, absl::StrCat("the stored result of ", name, " does not parse"));
    }
    has_result = true;
  }
  auto html = report::RenderJobReport(job, has_result ? &result : nullptr);
  if (!html.ok()) {
    return Plain(500,
                 absl::StrCat("cannot render the report of ", name, ": ", html.status().message()));
  }
  Response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(*html);
  return r;
}

}  // namespace

metrics::MetricsHttpServer::Handler MakeJobReportHandler(store::JobStore& store) {
  return [&store](const metrics::MetricsHttpServer::Request& request) {
    return Serve(store, request);
  };
}

}  // namespace attattr::server
