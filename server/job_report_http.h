// GET /jobs/{id}/report on the server's HTTP port (the one serving /metrics): the job's HTML report
// (report/include/attattr/report/html_report.h), read from the job store — the status page while
// the job is queued, running, failed or cancelled, the full report once it SUCCEEDED, streamed as
// it is drawn within the report's page budget. A result above
// JobReportLimits::max_drawn_result_bytes is not drawn (the page says how to fetch it), and at most
// max_concurrent_pages pages drawn from results are in memory at once (one more is 503), and with
// more than one allowed, one per authenticated caller (a caller's second is 503). 404 with a
// plain message for an unknown job or path. With an Authenticator the request needs the same
// credentials as gRPC (Authorization: Bearer, or a verified client certificate): 401 with
// WWW-Authenticate without them, and another principal's job is a 404 worded as a missing one
// (an administrator sees all); refusals get an audit log line. The handler runs on the HTTP
// server's own threads, never on gRPC threads; it is thread-safe as the store is. The metrics
// module stays unaware of jobs: Server registers this handler through
// MetricsHttpServer::AddHandler.
#pragma once

#include <cstdint>

#include "auth/authenticator.h"
#include "event_log.h"
#include "metrics/metrics_http.h"
#include "store/job_store.h"

namespace attattr::server {

// The path prefix to register the handler under.
inline constexpr char kJobReportPrefix[] = "/jobs/";

struct JobReportLimits {
  // A result is parsed whole in memory to draw it: larger ones are not drawn.
  int64_t max_drawn_result_bytes = int64_t{64} << 20;
  // Pages drawn from a result at the same time (each holds its result until it is sent).
  int max_concurrent_pages = 2;
  // The page's own budget (report::ReportOptions::max_page_bytes).
  int64_t max_page_bytes = int64_t{16} << 20;
};

// Who may see which report. Not owned; both must outlive every request the handler serves.
struct JobReportAccess {
  const Authenticator* auth = nullptr;  // null: every job's report to anyone who reaches the port
  const EventLog* log = nullptr;        // where refusals are logged; null: not logged
};

// `store` is not owned and must outlive every request the handler serves.
metrics::MetricsHttpServer::Handler MakeJobReportHandler(store::JobStore& store,
                                                         const JobReportAccess& access = {},
                                                         const JobReportLimits& limits = {});

}  // namespace attattr::server
