// TRIGGER_SEARCH jobs in shards (see trigger_search_shards.h).
#include "jobs/trigger_search_shards.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/trigger_search_convert.h"
#include "jobs/shard_items.h"
#include "jobs/shard_parts.h"

namespace attattr::server {
namespace {

constexpr int32_t kMiningStage = 0;
constexpr int32_t kEvaluationStage = 1;

absl::StatusOr<std::string> Rendered(const engine::TriggerSearchReport& report) {
  v1::JobResult result;
  convert::TriggerSearchReportToProto(report, result.mutable_trigger_search());
  std::string bytes;
  if (!result.SerializeToString(&bytes))
    return absl::InternalError("the result does not serialize");
  return bytes;
}

}  // namespace

store::ShardStage PlanTriggerSearchShards(const TriggerSearchJob& job, int64_t per_shard) {
  store::ShardStage stage{kMiningStage, "mining (shards)", {}, ""};
  const auto mining = static_cast<int64_t>(job.mining_set.size());
  const auto evaluation = static_cast<int64_t>(job.evaluation_set.size());
  if (per_shard <= 0 || std::max(mining, evaluation) <= 2 * per_shard) return stage;
  stage.ranges = store::SplitItems(mining, per_shard);
  return stage;
}

absl::StatusOr<std::string> RunTriggerSearchShard(const TriggerSearchJob& job,
                                                  const store::ShardRecord& shard, JobRun& run) {
  const engine::RunControl control = run.Control();
  const int64_t b = shard.items.begin, e = shard.items.end;
  if (shard.stage == kMiningStage) {
    ATTATTR_RETURN_IF_ERROR(CheckShardItems(shard, static_cast<int64_t>(job.mining_set.size())));
    ATTATTR_ASSIGN_OR_RETURN(
        auto patterns, engine::MineTriggerPatterns(*job.model, SliceItems(job.mining_set, b, e),
                                                   job.options, control, b));
    return EncodeMinedPatterns(patterns);
  }
  if (shard.stage == kEvaluationStage) {
    ATTATTR_RETURN_IF_ERROR(
        CheckShardItems(shard, static_cast<int64_t>(job.evaluation_set.size())));
    ATTATTR_ASSIGN_OR_RETURN(RankedPatterns ranked, DecodeRankedPatterns(shard.input));
    ATTATTR_ASSIGN_OR_RETURN(
        engine::TriggerTallies tallies,
        engine::TallyTriggerPatterns(*job.model, SliceItems(job.evaluation_set, b, e),
                                     SliceItems(job.evaluation_labels, b, e), ranked.patterns,
                                     job.options, control, b));
    return EncodeTriggerTallies(tallies);
  }
  return absl::DataLossError(absl::StrCat("a trigger-search job has no stage ", shard.stage));
}

absl::StatusOr<StageMerge> MergeTriggerSearchStage(const TriggerSearchJob& job, int32_t stage,
                                                   const std::string& input,
                                                   const std::vector<std::string>& results,
                                                   int64_t per_shard) {
  StageMerge merged;
  if (stage == kMiningStage) {
    std::vector<engine::TriggerPattern> mined;
    for (const std::string& part : results) {
      ATTATTR_ASSIGN_OR_RETURN(auto patterns, DecodeMinedPatterns(part));
      for (auto& p : patterns) mined.push_back(std::move(p));
    }
    // The counts RunTriggerSearch reports, over every mined example.
    const engine::TriggerSearchReport counts = engine::CountMinedPatterns(mined, job.options);
    const auto best = engine::RankAndFilter(std::move(mined), job.options);
    if (best.empty()) {
      ATTATTR_ASSIGN_OR_RETURN(merged.result, Rendered(counts));
      return merged;
    }
    merged.next =
        store::ShardStage{kEvaluationStage, "evaluating (shards)",
                          store::SplitItems(static_cast<int64_t>(job.evaluation_set.size()),
                                            std::max<int64_t>(1, per_shard)),
                          EncodeRankedPatterns(best, counts)};
    return merged;
  }
  if (stage != kEvaluationStage) {
    return absl::DataLossError(absl::StrCat("a trigger-search job has no stage ", stage));
  }
  ATTATTR_ASSIGN_OR_RETURN(RankedPatterns ranked, DecodeRankedPatterns(input));
  engine::TriggerTallies tallies;
  for (const std::string& part : results) {
    ATTATTR_ASSIGN_OR_RETURN(engine::TriggerTallies one, DecodeTriggerTallies(part));
    ATTATTR_RETURN_IF_ERROR(engine::AddTriggerTallies(tallies, one));
  }
  engine::TriggerSearchReport report;
  report.mined_examples = ranked.mined_examples;
  report.patterns_above_threshold = ranked.patterns_above_threshold;
  report.patterns = engine::FinishTriggerEvaluation(job.model->info(), ranked.patterns, tallies);
  ATTATTR_ASSIGN_OR_RETURN(merged.result, Rendered(report));
  return merged;
}

}  // namespace attattr::server
