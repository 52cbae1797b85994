// Head importance (AttAttr's first use, DESIGN.md §1): rank every attention head over a set of
// labelled examples, mask the lowest-ranked heads, and measure what the model still gets right.
// Rankings, each an [L][H] table (higher = more important):
//   kAttribution — I_h = mean over examples of max_{i,j} Attr_h, target = the gold label's
//                  probability (the authors' choice for this use);
//   kAttention   — mean over examples of the head's largest attention probability;
//   kTaylor      — |∂loss/∂g_h| for a gate g_h = 1 on each head's output (Michel et al. 2019),
//                  averaged over examples, then L2-normalised within each layer;
//   kRandom      — seeded uniform scores, the control.
// Heads a pruned checkpoint no longer has score 0. Thread-safety: as AttributeEncodings (many calls
// may share one const Model).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/example.h"
#include "attattr/engine/model.h"
#include "attattr/engine/run_control.h"

namespace attattr::engine {

enum class HeadRanking { kAttribution, kAttention, kTaylor, kRandom };

// "attribution", "attention", "taylor", "random".
const char* HeadRankingName(HeadRanking ranking);
std::optional<HeadRanking> HeadRankingFromName(const std::string& name);

using HeadTable = std::vector<std::vector<double>>;  // [L][H]

struct HeadImportanceOptions {
  // Quadrature, steps and memory budget of kAttribution (the budget also sizes kAttention's
  // batches and the attribution results held at once); the target is replaced by the gold
  // label's probability of each example.
  AttributionOptions attribution;
  uint64_t seed = 0;  // kRandom
  // Examples per forward pass of kAttention at most; fewer where every layer's probabilities of a
  // batch would exceed attribution.memory_budget_bytes.
  int batch_size = 32;
};

// InvalidArgument when `labels` does not match `encodings`, a label is outside the model's classes
// (kAttribution, kTaylor; the message names labels[i]), there are no examples, or the model has no
// classifier. CancelledError when `control` asks to stop.
absl::StatusOr<HeadTable> ComputeHeadImportance(const Model& model,
                                                const std::vector<Encoding>& encodings,
                                                const std::vector<int>& labels, HeadRanking ranking,
                                                const HeadImportanceOptions& options,
                                                const RunControl& control = {});

// A ranking taken apart so that an example set split into parts (shards run by several replicas)
// ranks as the whole set does, up to float rounding: ComputeHeadImportance is
// FinishHeadImportance of SumHeadImportance, and the sums of parts add up (AddHeadImportanceSums).
struct HeadImportanceSums {
  HeadTable sums;  // [L][H], Σ over the examples of each head's per-example score (0 for kRandom)
  int64_t examples = 0;
};
// As ComputeHeadImportance, without the mean, the normalisation or kRandom's scores.
absl::StatusOr<HeadImportanceSums> SumHeadImportance(
    const Model& model, const std::vector<Encoding>& encodings, const std::vector<int>& labels,
    HeadRanking ranking, const HeadImportanceOptions& options, const RunControl& control = {});
// into += part; into may be empty (default). InvalidArgument when the tables' shapes differ.
absl::Status AddHeadImportanceSums(HeadImportanceSums& into, const HeadImportanceSums& part);
// The ranking from its sums: the mean over sums.examples (kTaylor then L2-normalised within each
// layer; kRandom the seeded table), heads a pruned checkpoint no longer has at 0.
HeadTable FinishHeadImportance(const ModelInfo& info, HeadRanking ranking,
                               const HeadImportanceSums& sums,
                               const HeadImportanceOptions& options);

// The head mask (1 = keep, 0 = pruned) that removes the ⌊p/100 · L·H⌋ lowest-scoring heads of
// all layers together (truncated, as the authors' int(prune_rate · L · H)); ties go to the earlier
// (layer, head). p in [0, 100].
std::vector<std::vector<float>> PruneLowest(const HeadTable& importance, double ratio_percent);

struct PruningPoint {
  double ratio_percent = 0;
  int heads_pruned = 0;
  double accuracy = 0;               // predicted == gold, over the evaluation set
  double mean_gold_probability = 0;  // mean softmax probability of the gold label
};

// One point per ratio: mask the lowest-ranked heads (PruneLowest), no retraining, and evaluate
// `encodings` in forward batches `batching` sizes (sorted by length). InvalidArgument for a ratio
// outside [0, 100] (naming ratios[i]) or a label outside the model's classes.
absl::StatusOr<std::vector<PruningPoint>> PruningCurve(
    const Model& model, const HeadTable& importance, const std::vector<Encoding>& encodings,
    const std::vector<int>& labels, const std::vector<double>& ratios_percent,
    const ForwardBatching& batching = {}, const RunControl& control = {});

// A pruning curve taken apart as the rankings are: PruningCurve is FinishPruningCurve of
// TallyPruning, and the tallies of parts of the evaluation set add up (AddPruningTallies), exactly
// for the counts and up to float rounding for the probabilities.
struct PruningTally {
  int64_t correct = 0;          // predicted == gold
  double gold_probability = 0;  // Σ softmax probability of the gold label
  int64_t examples = 0;
};
// One tally per ratio, with PruningCurve's checks and progress.
absl::StatusOr<std::vector<PruningTally>> TallyPruning(
    const Model& model, const HeadTable& importance, const std::vector<Encoding>& encodings,
    const std::vector<int>& labels, const std::vector<double>& ratios_percent,
    const ForwardBatching& batching = {}, const RunControl& control = {});
// into += part, ratio by ratio; into may be empty. InvalidArgument when the lengths differ.
absl::Status AddPruningTallies(std::vector<PruningTally>& into,
                               const std::vector<PruningTally>& part);
// The curve's points from the tallies of the whole evaluation set.
std::vector<PruningPoint> FinishPruningCurve(const HeadTable& importance,
                                             const std::vector<double>& ratios_percent,
                                             const std::vector<PruningTally>& tallies);

}  // namespace attattr::engine
