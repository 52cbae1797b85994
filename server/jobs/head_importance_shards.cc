// HEAD_IMPORTANCE jobs in shards (see head_importance_shards.h).
#include "jobs/head_importance_shards.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "jobs/shard_items.h"
#include "jobs/shard_parts.h"

namespace attattr::server {
namespace {

constexpr int32_t kImportanceStage = 0;
constexpr int32_t kCurvesStage = 1;

int64_t ImportanceItems(const HeadImportanceJob& job) {
  return static_cast<int64_t>(job.importance_set.size() + job.agreement_set.size());
}

}  // namespace

store::ShardStage PlanHeadImportanceShards(const HeadImportanceJob& job, int64_t per_shard) {
  store::ShardStage stage{kImportanceStage, "importance (shards)", {}, ""};
  const int64_t importance = ImportanceItems(job);
  const auto evaluation = static_cast<int64_t>(job.evaluation_set.size());
  if (per_shard <= 0 || std::max(importance, evaluation) <= 2 * per_shard) return stage;
  stage.ranges = store::SplitItems(importance, per_shard);
  return stage;
}

absl::StatusOr<std::string> RunHeadImportanceShard(const HeadImportanceJob& job,
                                                   const store::ShardRecord& shard, JobRun& run) {
  const engine::RunControl control = run.Control();
  const int64_t b = shard.items.begin, e = shard.items.end;
  if (shard.stage == kImportanceStage) {
    ATTATTR_RETURN_IF_ERROR(CheckShardItems(shard, ImportanceItems(job)));
    const auto n = static_cast<int64_t>(job.importance_set.size());
    ATTATTR_ASSIGN_OR_RETURN(
        engine::StudyImportanceSums sums,
        engine::SumStudyImportance(
            *job.model, SliceItems(job.importance_set, b, e),
            SliceItems(job.importance_labels, b, e), SliceItems(job.agreement_set, b - n, e - n),
            SliceItems(job.agreement_labels, b - n, e - n), job.options, control));
    return EncodeStudyImportanceSums(sums);
  }
  if (shard.stage == kCurvesStage) {
    ATTATTR_RETURN_IF_ERROR(
        CheckShardItems(shard, static_cast<int64_t>(job.evaluation_set.size())));
    ATTATTR_ASSIGN_OR_RETURN(engine::StudyRankings rankings, DecodeStudyRankings(shard.input));
    ATTATTR_ASSIGN_OR_RETURN(
        engine::StudyPruningTallies tallies,
        engine::TallyStudyPruning(*job.model, rankings, SliceItems(job.evaluation_set, b, e),
                                  SliceItems(job.evaluation_labels, b, e), job.options, control));
    return EncodeStudyPruningTallies(tallies);
  }
  return absl::DataLossError(absl::StrCat("a head-importance job has no stage ", shard.stage));
}

absl::StatusOr<StageMerge> MergeHeadImportanceStage(const HeadImportanceJob& job, int32_t stage,
                                                    const std::string& input,
                                                    const std::vector<std::string>& results,
                                                    int64_t per_shard) {
  StageMerge merged;
  if (stage == kImportanceStage) {
    engine::StudyImportanceSums sums;
    for (const std::string& part : results) {
      ATTATTR_ASSIGN_OR_RETURN(engine::StudyImportanceSums one, DecodeStudyImportanceSums(part));
      ATTATTR_RETURN_IF_ERROR(engine::AddStudyImportanceSums(sums, one));
    }
    const engine::StudyRankings rankings =
        engine::RankStudyHeads(job.model->info(), job.options, sums);
    merged.next =
        store::ShardStage{kCurvesStage, "pruning curves (shards)",
                          store::SplitItems(static_cast<int64_t>(job.evaluation_set.size()),
                                            std::max<int64_t>(1, per_shard)),
                          EncodeStudyRankings(rankings)};
    return merged;
  }
  if (stage != kCurvesStage) {
    return absl::DataLossError(absl::StrCat("a head-importance job has no stage ", stage));
  }
  ATTATTR_ASSIGN_OR_RETURN(engine::StudyRankings rankings, DecodeStudyRankings(input));
  engine::StudyPruningTallies tallies;
  for (const std::string& part : results) {
    ATTATTR_ASSIGN_OR_RETURN(engine::StudyPruningTallies one, DecodeStudyPruningTallies(part));
    ATTATTR_RETURN_IF_ERROR(engine::AddStudyPruningTallies(tallies, one));
  }
  ATTATTR_ASSIGN_OR_RETURN(
      v1::JobResult result,
      HeadImportanceResult(
          job, engine::FinishHeadImportanceStudy(*job.model, job.options, rankings, tallies)));
  if (!result.SerializeToString(&merged.result)) {
    return absl::InternalError("the result does not serialize");
  }
  return merged;
}

}  // namespace attattr::server
