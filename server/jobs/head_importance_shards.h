// HEAD_IMPORTANCE jobs split across replicas, in two stages (engine::SumStudyImportance and
// friends, head_importance_study.h):
//  0 "importance": the items are the importance set's examples, then the agreement set's; a shard
//    sums every ranking over its items; the merge ranks the heads (and their agreement) and hands
//    the rankings to
//  1 "pruning curves": the items are the evaluation set's examples; a shard tallies every curve
//    over its items; the merge finishes the study — curves, correlations and the pruned export,
//    written by the replica that merges — and renders the job's result.
// The merged study equals the one a single process computes up to float rounding (counts exactly).
// Stateless; the prepared job is borrowed for each call.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "jobs/head_importance_job.h"
#include "jobs/job_run.h"
#include "jobs/job_scheduler.h"
#include "store/shard_store.h"

namespace attattr::server {

// Stage 0 in shards of `per_shard` examples; no ranges (run whole) unless one of the stages has
// more than two shards' worth.
store::ShardStage PlanHeadImportanceShards(const HeadImportanceJob& job, int64_t per_shard);

// One shard's partial result (cancellation through `run`).
absl::StatusOr<std::string> RunHeadImportanceShard(const HeadImportanceJob& job,
                                                   const store::ShardRecord& shard, JobRun& run);

// Stage 0's merge gives stage 1 (in shards of `per_shard`); stage 1's the serialized JobResult.
absl::StatusOr<StageMerge> MergeHeadImportanceStage(const HeadImportanceJob& job, int32_t stage,
                                                    const std::string& input,
                                                    const std::vector<std::string>& results,
                                                    int64_t per_shard);

}  // namespace attattr::server
