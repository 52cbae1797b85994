// Service metric families (see service_metrics.h).
#include "service_metrics.h"

namespace attattr::server {

ServiceMetrics::ServiceMetrics(metrics::Registry& registry)
    : rpcs_(metrics::BuildCounter()
                .Name("attattr_rpc_requests_total")
                .Help("gRPC calls handled, by method and final status code")
                .Register(registry)),
      rpc_seconds_(metrics::BuildHistogram()
                       .Name("attattr_rpc_duration_seconds")
                       .Help("Time from receiving a gRPC call to finishing it, by method")
                       .Register(registry)),
      queue_depth_(metrics::BuildGauge()
                       .Name("attattr_queue_depth")
                       .Help("Work items waiting for a worker, by queue")
                       .Register(registry)),
      examples_(metrics::BuildCounter()
                    .Name("attattr_examples_processed_total")
                    .Help("Examples attributed, by source: kind=\"explain\" (Explain calls) or "
                          "the job kind of attattr_jobs_total (\"ATTRIBUTION\")")
                    .Register(registry)),
      steps_(metrics::BuildCounter()
                 .Name("attattr_integration_steps_total")
                 .Help("Integration points evaluated (steps x layers, per example)")
                 .Register(registry)),
      completeness_gap_(
          metrics::BuildHistogram()
              .Name("attattr_completeness_gap")
              .Help(
                  "Per-layer relative completeness gap |sum(Attr) - (F(A) - F(0))| / |F(A) - F(0)|")
              .Register(registry)
              .Add({}, metrics::ExponentialBuckets(1e-6, 10, 7))),
      job_queue_seconds_(metrics::BuildHistogram()
                             .Name("attattr_job_queue_duration_seconds")
                             .Help("Time jobs waited in the queue before a runner started them, "
                                   "by kind")
                             .Register(registry)),
      job_run_seconds_(metrics::BuildHistogram()
                           .Name("attattr_job_run_duration_seconds")
                           .Help("Time from a job's start to its end, by kind")
                           .Register(registry)),
      jobs_(metrics::BuildCounter()
                .Name("attattr_jobs_total")
                .Help("Jobs that reached a final state, by kind and state")
                .Register(registry)),
      jobs_running_(metrics::BuildGauge()
                        .Name("attattr_jobs_running")
                        .Help("Jobs running now")
                        .Register(registry)
                        .Add({})),
      batch_size_(metrics::BuildHistogram()
                      .Name("attattr_batch_size")
                      .Help("Examples per engine call of the dynamic batcher (Explain calls and "
                            "job items together)")
                      .Register(registry)
                      .Add({}, metrics::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256})),
      store_seconds_(metrics::BuildHistogram()
                         .Name("attattr_store_operation_seconds")
                         .Help("Time of job store calls, by operation")
                         .Register(registry)),
      store_errors_(metrics::BuildCounter()
                        .Name("attattr_store_errors_total")
                        .Help("Job store calls that failed in the store itself (unreachable, "
                              "timed out, full, corrupt), by operation")
                        .Register(registry)),
      store_up_(metrics::BuildGauge()
                    .Name("attattr_store_up")
                    .Help("1 while the job store answers its every-second check, else 0")
                    .Register(registry)
                    .Add({})),
      lease_takeovers_(metrics::BuildCounter()
                           .Name("attattr_job_lease_takeovers_total")
                           .Help("Jobs given back to the queue (or failed) by this replica "
                                 "because their replica's lease lapsed")
                           .Register(registry)
                           .Add({})),
      shards_(metrics::BuildGauge()
                  .Name("attattr_shards")
                  .Help("Shards of jobs split across replicas in the shared job store, by state")
                  .Register(registry)),
      quota_refusals_(metrics::BuildCounter()
                          .Name("attattr_quota_refusals_total")
                          .Help("Calls refused RESOURCE_EXHAUSTED by a per-principal quota (the "
                                "caller's own limit, not the server's capacity), by quota")
                          .Register(registry)),
      serving_(metrics::BuildGauge()
                   .Name("attattr_serving")
                   .Help("1 while grpc.health.v1 answers SERVING for the service (\"\" or "
                         "attattr.v1.Attattr), else 0: starting, draining, job store unreachable")
                   .Register(registry)) {
  for (const char* service : {"", "attattr.v1.Attattr"}) serving_.Add({{"service", service}});
  for (const char* quota : {"queued_jobs", "stored_bytes", "explain_rate", "explains", "streams"}) {
    quota_refusals_.Add({{"quota", quota}});
  }
}

namespace {

// Up to a day: --max-job-seconds defaults to 86400, and a queue can hold jobs for hours.
metrics::BucketBoundaries JobSecondsBuckets() {
  return {0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 7200, 21600, 86400};
}

// Up to WaitJob's longest wait (600 s); streams (WatchJob, GetJobResult) may last longer.
metrics::BucketBoundaries RpcSecondsBuckets() {
  return {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 600};
}

}  // namespace

const std::vector<std::string>& ServiceMetrics::ServerSideCodes() {
  static const auto* codes = new std::vector<std::string>{
      "INTERNAL", "UNAVAILABLE", "UNKNOWN", "DATA_LOSS", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"};
  return *codes;
}

void ServiceMetrics::DeclareSeries(const std::vector<std::string>& job_kinds,
                                   const std::vector<std::string>& methods) {
  for (const std::string& kind : job_kinds) {
    for (const char* state : {"SUCCEEDED", "FAILED", "CANCELLED"}) {
      jobs_.Add({{"kind", kind}, {"state", state}});
    }
    if (kind == "ATTRIBUTION") examples_.Add({{"kind", kind}});
  }
  examples_.Add({{"kind", "explain"}});
  for (const std::string& method : methods) {
    rpcs_.Add({{"method", method}, {"code", "OK"}});
    for (const std::string& code : ServerSideCodes()) {
      rpcs_.Add({{"method", method}, {"code", code}});
    }
  }
}

void ServiceMetrics::RecordQuotaRefusal(const std::string& quota) {
  quota_refusals_.Add({{"quota", quota}}).Increment();
}

void ServiceMetrics::RecordJobStart(const std::string& kind, double seconds) {
  job_queue_seconds_.Add({{"kind", kind}}, JobSecondsBuckets()).Observe(seconds);
}

void ServiceMetrics::RecordJobFinish(const std::string& kind, const std::string& state,
                                     double seconds) {
  jobs_.Add({{"kind", kind}, {"state", state}}).Increment();
  job_run_seconds_.Add({{"kind", kind}}, JobSecondsBuckets()).Observe(seconds);
}

void ServiceMetrics::RecordBatch(int items) { batch_size_.Observe(items); }

void ServiceMetrics::RecordStoreCall(const std::string& operation, double seconds, bool failed) {
  store_seconds_
      .Add({{"operation", operation}}, metrics::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                                 0.025, 0.05, 0.1, 0.5, 1, 5})
      .Observe(seconds);
  if (failed) store_errors_.Add({{"operation", operation}}).Increment();
}

void ServiceMetrics::RecordRpc(const std::string& method, const std::string& code, double seconds) {
  rpcs_.Add({{"method", method}, {"code", code}}).Increment();
  rpc_seconds_.Add({{"method", method}}, RpcSecondsBuckets()).Observe(seconds);
}

void ServiceMetrics::RecordAttribution(const std::string& kind,
                                       const engine::ExampleAttribution& result, int steps) {
  examples_.Add({{"kind", kind}}).Increment();
  steps_.Add({}).Increment(static_cast<double>(steps) * result.layers.size());
  for (const auto& layer : result.layers) completeness_gap_.Observe(layer.completeness_gap);
}

metrics::Gauge& ServiceMetrics::QueueDepth(const std::string& queue) {
  return queue_depth_.Add({{"queue", queue}});
}

}  // namespace attattr::server
