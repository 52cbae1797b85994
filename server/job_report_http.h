// GET /jobs/{id}/report on the server's HTTP port (the one serving /metrics): the job's HTML report
// (report/include/attattr/report/html_report.h), read from the job store — the status page while
// the job is queued, running, failed or cancelled, the full report once it SUCCEEDED. 404 with a
// plain message for an unknown job or path. The handler runs on the HTTP server's own threads,
// never on gRPC threads; it is thread-safe as the store is. The metrics module stays unaware of
// jobs: Server registers this handler through MetricsHttpServer::AddHandler.
#pragma once

#include "metrics/metrics_http.h"
#include "store/job_store.h"

namespace attattr::server {

// The path prefix to register the handler under.
inline constexpr char kJobReportPrefix[] = "/jobs/";

// `store` is not owned and must outlive every request the handler serves.
metrics::MetricsHttpServer::Handler MakeJobReportHandler(store::JobStore& store);

}  // namespace attattr::server
