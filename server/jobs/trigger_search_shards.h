// TRIGGER_SEARCH jobs split across replicas, in two stages (engine::MineTriggerPatterns and
// TallyTriggerPatterns, trigger_search.h):
//  0 "mining": the items are the mining set's examples; a shard mines a pattern per example; the
//    merge ranks and filters them all (engine::RankAndFilter) and hands the top-k to
//  1 "evaluating": the items are the evaluation set's examples; a shard tallies clean, attacked
//    and control predictions per gold class over its items (the control's draws depend on the
//    example, not on the shard); the merge renders the job's result.
// No pattern passing the threshold ends the job after stage 0, as a single process reports it.
// Patterns equal a single process's up to float rounding of their scores; accuracies exactly.
// Stateless; the prepared job is borrowed for each call.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "jobs/job_run.h"
#include "jobs/job_scheduler.h"
#include "jobs/trigger_search_job.h"
#include "store/shard_store.h"

namespace attattr::server {

// Stage 0 in shards of `per_shard` examples; no ranges (run whole) unless one of the stages has
// more than two shards' worth.
store::ShardStage PlanTriggerSearchShards(const TriggerSearchJob& job, int64_t per_shard);

// One shard's partial result (cancellation through `run`).
absl::StatusOr<std::string> RunTriggerSearchShard(const TriggerSearchJob& job,
                                                  const store::ShardRecord& shard, JobRun& run);

// Stage 0's merge gives stage 1 (in shards of `per_shard`) or, with no pattern left, the
// serialized JobResult; stage 1's the serialized JobResult.
absl::StatusOr<StageMerge> MergeTriggerSearchStage(const TriggerSearchJob& job, int32_t stage,
                                                   const std::string& input,
                                                   const std::vector<std::string>& results,
                                                   int64_t per_shard);

}  // namespace attattr::server
