// The service's Prometheus metrics, registered once in the Server's Registry: RPCs by method and
// code with latency histograms (the gRPC server-side conventions), queue depths, job queue-wait
// and run-time histograms by kind (the meaning of Triton's nv_inference_queue_duration_us and
// compute duration, in seconds), jobs by kind and final state, dynamic-batch sizes, examples and
// integration steps processed, and the completeness-gap distribution users watch to see
// integration error drift. Metric names are fixed here so dashboards and alert rules can rely
// on them. Thread-safe (the metric types are).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "attattr/engine/attention_attribution.h"
#include "metrics/metrics.h"

namespace attattr::server {

class ServiceMetrics {
 public:
  // Registers every family in `registry` (which must outlive this object).
  explicit ServiceMetrics(metrics::Registry& registry);

  // Creates at 0 the series that count events, so that the first event after a start is an
  // increase to rate()/increase() rather than a series appearing at 1 (which they read as none):
  // attattr_jobs_total for each of `job_kinds` x SUCCEEDED/FAILED/CANCELLED, and
  // attattr_rpc_requests_total for each of `methods` x OK and the server-side codes the alert
  // rules count (kServerSideCodes), and attattr_examples_processed_total for "explain" and the
  // ATTRIBUTION kind. attattr_quota_refusals_total's quotas exist from the start.
  void DeclareSeries(const std::vector<std::string>& job_kinds,
                     const std::vector<std::string>& methods);
  // The codes deploy/prometheus/rules.yaml counts as the server's failures.
  static const std::vector<std::string>& ServerSideCodes();

  // One call refused by a per-principal quota (the caller's own limit, not the server's
  // capacity): attattr_quota_refusals_total{quota}, quota one of "queued_jobs", "stored_bytes",
  // "explain_rate", "streams". The alert on server-side errors leaves these out.
  void RecordQuotaRefusal(const std::string& quota);

  // One finished RPC: attattr_rpc_requests_total{method,code} and
  // attattr_rpc_duration_seconds{method}.
  void RecordRpc(const std::string& method, const std::string& code, double seconds);
  // One attributed example: examples, integration steps (m · layers) and each layer's gap. `kind`:
  // "explain", or the job kind as attattr_jobs_total names it ("ATTRIBUTION").
  void RecordAttribution(const std::string& kind, const engine::ExampleAttribution& result,
                         int steps);
  // attattr_queue_depth{queue}.
  metrics::Gauge& QueueDepth(const std::string& queue);
  // attattr_jobs_running.
  metrics::Gauge& JobsRunning() { return jobs_running_; }
  // A job left the queue after waiting `seconds`: attattr_job_queue_duration_seconds{kind}.
  void RecordJobStart(const std::string& kind, double seconds);
  // A job ended in `state` after running `seconds`: attattr_jobs_total{kind,state} and
  // attattr_job_run_duration_seconds{kind}.
  void RecordJobFinish(const std::string& kind, const std::string& state, double seconds);
  // One engine call of the dynamic batcher ran `items` examples: attattr_batch_size.
  void RecordBatch(int items);
  // One job store call: attattr_store_operation_seconds{operation}, and
  // attattr_store_errors_total{operation} when the store itself failed.
  void RecordStoreCall(const std::string& operation, double seconds, bool failed);
  // attattr_store_up: 1 while the job store answers its every-second check.
  metrics::Gauge& StoreUp() { return store_up_; }
  // attattr_job_lease_takeovers_total: jobs this replica gave back to the queue (or failed)
  // because their holder's lease lapsed.
  metrics::Counter& LeaseTakeovers() { return lease_takeovers_; }
  // attattr_serving{service}: 1 while grpc.health.v1 answers SERVING for `service` ("" or
  // "attattr.v1.Attattr"), else 0 (starting, draining, the job store unreachable) — what the
  // readiness probe sees, for alerts that cannot ask the probe.
  metrics::Gauge& Serving(const std::string& service) {
    return serving_.Add({{"service", service}});
  }
  // attattr_shards{state}: shards of split jobs in the shared store, by state.
  metrics::Gauge& Shards(const std::string& state) { return shards_.Add({{"state", state}}); }

 private:
  metrics::Family<metrics::Counter>& rpcs_;
  metrics::Family<metrics::Histogram>& rpc_seconds_;
  metrics::Family<metrics::Gauge>& queue_depth_;
  metrics::Family<metrics::Counter>& examples_;
  metrics::Family<metrics::Counter>& steps_;
  metrics::Histogram& completeness_gap_;
  metrics::Family<metrics::Histogram>& job_queue_seconds_;
  metrics::Family<metrics::Histogram>& job_run_seconds_;
  metrics::Family<metrics::Counter>& jobs_;
  metrics::Gauge& jobs_running_;
  metrics::Histogram& batch_size_;
  metrics::Family<metrics::Histogram>& store_seconds_;
  metrics::Family<metrics::Counter>& store_errors_;
  metrics::Gauge& store_up_;
  metrics::Counter& lease_takeovers_;
  metrics::Family<metrics::Gauge>& shards_;
  metrics::Family<metrics::Counter>& quota_refusals_;
  metrics::Family<metrics::Gauge>& serving_;
};

}  // namespace attattr::server
