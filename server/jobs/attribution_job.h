// ATTRIBUTION jobs: the validation of an AttributionSpec into a native job (examples loaded and
// tokenized, options converted, activation memory and result size admitted against the server's
// limits), and its run: the examples go to the dynamic batcher a window at a time — so items of
// concurrent jobs and Explain calls share engine batches — with progress after each completed
// window and cancellation and spec.timeout_ms honoured between batches. Thread-safe kind; a
// prepared job runs on one job runner.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/example.h"
#include "attattr/engine/model.h"
#include "attattr/v1/job.pb.h"
#include "attribution_batcher.h"
#include "jobs/job_kind.h"
#include "model_registry.h"
#include "server_config.h"
#include "service_metrics.h"

namespace attattr::server {

// A validated ATTRIBUTION job.
struct AttributionJob {
  const engine::Model* model = nullptr;     // owned by the ModelRegistry
  std::vector<engine::Encoding> encodings;  // one per example, in order
  engine::AttributionOptions options;       // memory_budget_bytes from config
  v1::ResultOptions result;                 // defaults applied (unset message -> top_k 10)
  int64_t result_bytes_estimate = 0;        // serialized-size estimate of the whole JobResult
};

// Serialized-size estimate of the JobResult for these encodings: per example and chosen layer,
// full_matrices H·n²·(2 or 4 bytes), head_summed n²·bytes, attention H·n²·bytes, top_k·24 bytes,
// plus 64 bytes per layer and 64 + 16·n bytes per example (tokens, ids, prediction).
int64_t EstimateAttributionResultBytes(const engine::ModelInfo& info,
                                       const std::vector<engine::Encoding>& encodings,
                                       const engine::AttributionOptions& options,
                                       const v1::ResultOptions& result);

// CheckJobCommon, then, for an attribution spec: LoadExamples ("spec.attribution.examples"),
// AttributionOptionsFromProto ("spec.attribution.options"), result options (top_k in [0, 10000]),
// EncodeExamples, CheckAttributionMemory; a result estimate above config.max_result_bytes ->
// InvalidArgument naming --max-result-mib with both sizes.
absl::StatusOr<AttributionJob> PrepareAttributionJob(const v1::JobSpec& spec,
                                                     const ModelRegistry& models,
                                                     const ServerConfig& config);

class AttributionJobKind final : public JobKind {
 public:
  // Borrows everything; the owner outlives the kind and every job it prepares.
  AttributionJobKind(const ModelRegistry& models, const ServerConfig& config,
                     AttributionBatcher& batcher, ServiceMetrics& metrics)
      : models_(models), config_(config), batcher_(batcher), metrics_(metrics) {}

  v1::JobKind kind() const override { return v1::ATTRIBUTION; }
  absl::StatusOr<std::unique_ptr<PreparedJob>> Prepare(const v1::JobSpec& spec) const override;

 private:
  const ModelRegistry& models_;
  const ServerConfig& config_;
  AttributionBatcher& batcher_;
  ServiceMetrics& metrics_;
};

}  // namespace attattr::server
