// ATTRIBUTION jobs: the validation of an AttributionSpec into a native job (examples loaded and
// tokenized, options converted, activation memory and result size admitted against the server's
// limits), and its run: the examples go to the dynamic batcher a window at a time — so items of
// concurrent jobs and Explain calls share engine batches — with progress after each completed
// window and cancellation and spec.timeout_ms honoured between batches. Thread-safe kind; a
// prepared job runs on one job runner.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/example.h"
#include "attattr/engine/model.h"
#include "attattr/v1/job.pb.h"
#include "attribution_batcher.h"
#include "jobs/job_run.h"
#include "model_registry.h"
#include "proto_convert.h"
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

  int64_t items() const { return static_cast<int64_t>(encodings.size()); }
  int64_t result_bytes() const { return result_bytes_estimate; }
};

// Serialized-size estimate of the JobResult for these encodings: per example and chosen layer,
// full_matrices H·n²·(2 or 4 bytes), head_summed n²·bytes, attention H·n²·bytes, top_k·24 bytes,
// plus 64 bytes per layer and 64 + 16·n bytes per example (tokens, ids, prediction).
int64_t EstimateAttributionResultBytes(const engine::ModelInfo& info,
                                       const std::vector<engine::Encoding>& encodings,
                                       const engine::AttributionOptions& options,
                                       const v1::ResultOptions& result);

// What a job's admission checks for its examples, for one Explain call (`call`, from
// ExplainFromProto): activations within --memory-budget-mib (InvalidArgument naming example.text)
// and the response within --max-result-mib (naming result).
absl::Status CheckExplainCost(const ExplainCall& call, const ServerConfig& config);

// CheckJobCommon, then, for an attribution spec: LoadExamples ("spec.attribution.examples"),
// AttributionOptionsFromProto ("spec.attribution.options"), result options (top_k in [0, 10000]),
// EncodeExamples, CheckAttributionMemory; a result estimate above config.max_result_bytes ->
// InvalidArgument naming --max-result-mib with both sizes.
absl::StatusOr<AttributionJob> PrepareAttributionJob(const v1::JobSpec& spec,
                                                     const ModelRegistry& models,
                                                     const ServerConfig& config);

// Runs a prepared job (the examples through `batcher`, a window at a time) and renders its
// JobResult. Borrows everything for the call. A shard of a job runs the job prepared whole with
// its encodings cut to the shard's items (SliceAttributionJob); the shards' results, joined in
// order (MergeAttributionResults), are the whole job's, byte for byte.
absl::StatusOr<v1::JobResult> RunAttributionJob(AttributionJob& job, JobRun& run,
                                                const ServerConfig& config,
                                                AttributionBatcher& batcher,
                                                ServiceMetrics& metrics);

// Keeps examples [begin, end) of a prepared job; InvalidArgument when the range is not within it.
absl::Status SliceAttributionJob(AttributionJob& job, int64_t begin, int64_t end);

// The serialized JobResults of consecutive shards joined into one (their examples in order).
absl::StatusOr<v1::JobResult> MergeAttributionResults(const std::vector<std::string>& shards);

}  // namespace attattr::server
