// The engine's partial results of sharded studies and searches as bytes for the job store, and
// back (messages in shard_parts.proto): each Encode is the exact inverse of its Decode, so a
// merged result does not depend on which replica ran which shard. A Decode of bytes that are not
// such a part (another build's, a damaged row) is DataLoss naming what was expected. Stateless.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/head_importance_study.h"
#include "attattr/engine/trigger_search.h"

namespace attattr::server {

std::string EncodeStudyImportanceSums(const engine::StudyImportanceSums& sums);
absl::StatusOr<engine::StudyImportanceSums> DecodeStudyImportanceSums(const std::string& bytes);

std::string EncodeStudyRankings(const engine::StudyRankings& rankings);
absl::StatusOr<engine::StudyRankings> DecodeStudyRankings(const std::string& bytes);

std::string EncodeStudyPruningTallies(const engine::StudyPruningTallies& tallies);
absl::StatusOr<engine::StudyPruningTallies> DecodeStudyPruningTallies(const std::string& bytes);

std::string EncodeMinedPatterns(const std::vector<engine::TriggerPattern>& patterns);
absl::StatusOr<std::vector<engine::TriggerPattern>> DecodeMinedPatterns(const std::string& bytes);

// The input of a search's evaluation stage: the ranked patterns and the mining counts (patterns
// left empty in `report`).
std::string EncodeRankedPatterns(const std::vector<engine::TriggerPattern>& patterns,
                                 const engine::TriggerSearchReport& counts);
struct RankedPatterns {
  std::vector<engine::TriggerPattern> patterns;
  int mined_examples = 0;
  int patterns_above_threshold = 0;
};
absl::StatusOr<RankedPatterns> DecodeRankedPatterns(const std::string& bytes);

std::string EncodeTriggerTallies(const engine::TriggerTallies& tallies);
absl::StatusOr<engine::TriggerTallies> DecodeTriggerTallies(const std::string& bytes);

}  // namespace attattr::server
