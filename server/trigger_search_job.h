// TRIGGER_SEARCH jobs (DESIGN.md §1, Trigger search): SubmitJob's validation of a TriggerSearchSpec
// into a native job, and the executor that mines patterns from the mining set, ranks them and
// evaluates the top-k on the evaluation set (clean / attacked / random control accuracy per gold
// class), with progress per stage ("mining", "evaluating") and cancellation between engine
// batches. The executor re-validates the stored spec, as models and files may have changed.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/model.h"
#include "attattr/engine/trigger_search.h"
#include "attattr/v1/job.pb.h"
#include "server/job_scheduler.h"
#include "server/model_registry.h"
#include "server/server_config.h"
#include "server/store/job_store.h"

namespace attattr::server {

// Mining examples when a dataset mining_set has limit 0 (the authors' first 500).
inline constexpr int kDefaultMiningExamples = 500;

struct TriggerSearchJob {
  const engine::Model* model = nullptr;  // owned by the ModelRegistry
  std::vector<engine::Encoding> mining_set;
  std::vector<engine::Encoding> evaluation_set;
  std::vector<int> evaluation_labels;
  engine::TriggerSearchOptions options;
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

class TriggerSearchJobExecutor {
 public:
  // Borrows both; the owner outlives the executor.
  TriggerSearchJobExecutor(const ModelRegistry& models, const ServerConfig& config)
      : models_(models), config_(config) {}

  absl::StatusOr<std::string> operator()(const store::JobRecord& job, JobContext& context) const;

 private:
  const ModelRegistry& models_;
  const ServerConfig& config_;
};

}  // namespace attattr::server
