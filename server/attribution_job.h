// The executor of ATTRIBUTION jobs: re-validates the stored spec (models and the data root may have
// changed since submission), feeds the examples to the dynamic batcher a window at a time — so
// items of concurrent jobs and Explain calls share engine batches — reports progress after each
// completed window, honours cancellation and spec.timeout_ms between batches, and returns the
// serialized JobResult. Thread-safe: one instance serves every job runner.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "server/attribution_batcher.h"
#include "server/job_scheduler.h"
#include "server/model_registry.h"
#include "server/server_config.h"
#include "server/service_metrics.h"
#include "server/store/job_store.h"

namespace attattr::server {

class AttributionJobExecutor {
 public:
  // Borrows everything; the owner outlives the executor.
  AttributionJobExecutor(const ModelRegistry& models, const ServerConfig& config,
                         AttributionBatcher& batcher, ServiceMetrics& metrics)
      : models_(models), config_(config), batcher_(batcher), metrics_(metrics) {}

  absl::StatusOr<std::string> operator()(const store::JobRecord& job, JobContext& context) const;

 private:
  const ModelRegistry& models_;
  const ServerConfig& config_;
  AttributionBatcher& batcher_;
  ServiceMetrics& metrics_;
};

}  // namespace attattr::server
