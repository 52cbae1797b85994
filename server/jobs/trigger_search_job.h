// TRIGGER_SEARCH jobs (DESIGN.md §1, Trigger search): the validation of a TriggerSearchSpec into a
// native job, and its run — mine patterns from the mining set, rank them and evaluate the top-k on
// the evaluation set (clean / attacked / random control accuracy per gold class), with progress
// per stage ("mining", "evaluating") and cancellation between engine batches. Thread-safe kind; a
// prepared job runs on one job runner.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/model.h"
#include "attattr/engine/trigger_search.h"
#include "attattr/v1/job.pb.h"
#include "jobs/job_run.h"
#include "model_registry.h"
#include "server_config.h"

namespace attattr::server {

struct TriggerSearchJob {
  const engine::Model* model = nullptr;  // owned by the ModelRegistry
  std::vector<engine::Encoding> mining_set;
  std::vector<engine::Encoding> evaluation_set;
  std::vector<int> evaluation_labels;
  engine::TriggerSearchOptions options;

  int64_t items() const { return 1; }  // one search
  // Per kept pattern its tokens and sources and three accuracies per class. The estimate errs high.
  int64_t result_bytes() const;
};

// CheckJobCommon, then, under "spec.trigger_search": top_k in [1, 100] (0 = 3), threshold >= 0
// and finite (0 = 0.02), attribution (rule, steps; target and layers must be unset),
// mining_set (LoadExamples, a dataset with limit 0 -> its first 500; labels not needed;
// CheckAttributionMemory), evaluation_set (LoadExamples, CheckExampleLabels: every label one of the
// model's classes), and sentence-pair mining data with single-sentence evaluation data refused
// (patterns from the second sentence could not be placed). InvalidArgument naming the field.
absl::StatusOr<TriggerSearchJob> PrepareTriggerSearchJob(const v1::JobSpec& spec,
                                                         const ModelRegistry& models,
                                                         const ServerConfig& config);

// Runs a prepared job under `run` (progress per stage, cancellation between engine batches) and
// renders its JobResult.
absl::StatusOr<v1::JobResult> RunTriggerSearchJob(TriggerSearchJob& job, JobRun& run);

}  // namespace attattr::server
