// Adversarial trigger search (AttAttr's third use, DESIGN.md §1): mine one TriggerPattern per
// example of a mining set from its self-attention attribution, rank and filter them, insert the
// best into every example of an evaluation set (placement rule: trigger_insertion.h), and measure
// accuracy per gold class — clean, attacked, and a random-token control.
//
//  * Mining (the authors' rule): target = the predicted class's probability; over all layers and
//    heads, the head holding the example's largest attribution entry Attr[i][j] is chosen; its two
//    largest entries (i1, j1) ≥ (i2, j2) are the pattern's connections. score = v1 + v2 (the sum
//    of the two top attribution values). The tokens at i1, j1 — and at i2, j2 only when v2 ≥ 0.2·v1
//    — form the pattern, without [CLS]/[SEP], each position once, in source order. Ties go to the
//    earlier (layer, head, i, j). An example whose connections touch only [CLS]/[SEP] yields an
//    empty pattern, which RankAndFilter drops.
//  * Ranking: score descending (ties: earlier source), score < threshold dropped (authors: 0.02),
//    patterns with the same tokens in the same segments as a better one dropped (so top-K are K
//    distinct triggers; the authors list distinct ones), then the first K.
//  * Control: per pattern and evaluation example, the same number of tokens drawn uniformly (with
//    replacement) from the whole-word, non-special vocabulary (no "##" prefix, not "[...]"), put at
//    the same relative positions. Fresh draws per example estimate random insertion's expected
//    effect rather than one random trigger's luck; seeded by (seed, pattern rank, example index),
//    so reproducible, and the same however the evaluation set is split.
//  * Accuracy per gold class present in the evaluation set: predicted == gold; Model::Predict runs
//    in length-sorted batches.
// Thread-safety: as AttributeEncodings (calls may share one const Model).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/example.h"
#include "attattr/engine/model.h"
#include "attattr/engine/run_control.h"
#include "attattr/engine/trigger_insertion.h"

namespace attattr::engine {

// Defaults and bounds of a trigger search, shared by the engine, the server and the CLI.
inline constexpr int kDefaultTriggerTopK = 3;
inline constexpr int kMaxTriggerTopK = 100;
inline constexpr double kDefaultTriggerThreshold = 0.02;  // the authors'
inline constexpr int kDefaultMiningExamples = 500;        // the authors' first 500

struct TriggerSearchOptions {
  // Quadrature, steps, memory budget and example batch of the mining attribution; its target is
  // replaced by the predicted class's probability and all layers are attributed.
  AttributionOptions attribution;
  // Patterns kept after ranking (K). Valid: [1, kMaxTriggerTopK]. Default: 3.
  int top_k = kDefaultTriggerTopK;
  // Patterns scoring below this are dropped. Default: 0.02 (the authors').
  double threshold = kDefaultTriggerThreshold;
  // Seed of the random-token control. Default: 0.
  uint64_t seed = 0;
  // Examples per mining call of AttributeEncodings at most (progress and cancellation
  // granularity), fewer where their results would exceed attribution.memory_budget_bytes.
  // Default: 16.
  int mining_batch = 16;
  // Examples per Model::Predict batch in evaluation at most, fewer where the activations would
  // exceed attribution.memory_budget_bytes. Default: 64.
  int eval_batch = 64;
};

// InvalidArgument naming the field (top_k, threshold, mining_batch, eval_batch, attribution.*).
absl::Status ValidateTriggerSearchOptions(const Model& model, const TriggerSearchOptions& options);

// Patterns mined from a sentence pair may hold second-sentence tokens, which only a pair can take.
// When any mining example is a pair: the index of the first single-sentence evaluation example;
// otherwise (or when every evaluation example is a pair) nullopt. Lets callers refuse such sets
// before mining, naming their own fields.
std::optional<size_t> FirstUnplaceableExample(const std::vector<Example>& mining,
                                              const std::vector<Example>& evaluation);
// The words for it, naming the mining set as the caller calls it: "example 3 is a single sentence
// but <mining_set> has sentence pairs: patterns mined from a second sentence cannot be placed".
std::string UnplaceableExampleMessage(size_t index, const std::string& mining_set);

// One pattern per mining encoding, in input order (empty tokens when only [CLS]/[SEP] were
// involved). Progress stage "mining"; CancelledError when `control` asks to stop. `mining` may be
// a part of a larger set that starts at example `first_example`: sources and messages count from
// there.
absl::StatusOr<std::vector<TriggerPattern>> MineTriggerPatterns(const Model& model,
                                                                const std::vector<Encoding>& mining,
                                                                const TriggerSearchOptions& options,
                                                                const RunControl& control = {},
                                                                int64_t first_example = 0);

// Ranking and filtering as in the header comment: at most options.top_k patterns.
std::vector<TriggerPattern> RankAndFilter(std::vector<TriggerPattern> patterns,
                                          const TriggerSearchOptions& options);

struct ClassAccuracy {
  int label = 0;        // class index
  std::string name;     // the model's label name
  double accuracy = 0;  // predicted == gold over this class's examples
  int examples = 0;
};

struct TriggerEvaluation {
  TriggerPattern pattern;
  std::vector<ClassAccuracy> clean;     // per gold class present, ascending label
  std::vector<ClassAccuracy> attacked;  // pattern inserted
  std::vector<ClassAccuracy> control;   // random tokens at the same positions
  int truncated = 0;  // evaluation examples that lost a trigger token to re-truncation
};

// Checks an evaluation set: a classifier model, examples present, one gold label each, every label
// a class of the model ("labels[i]: ..."), encodings shaped [CLS] A [SEP] (B [SEP]). Returns
// whether every example is a sentence pair (segment-B patterns need that).
absl::StatusOr<bool> CheckEvaluationSet(const Model& model, const std::vector<Encoding>& evaluation,
                                        const std::vector<int>& labels);

// Evaluates each pattern on `evaluation` (gold `labels`). InvalidArgument: labels/encodings sizes
// differ, "labels[i]: ... is not a class of this model", no examples, no classifier, a pattern with
// no tokens, or "patterns[p]: ..." with segment-B tokens while an evaluation example is a single
// sentence. Progress stage "evaluating" (done/total = forward batches); CancelledError on stop.
absl::StatusOr<std::vector<TriggerEvaluation>> EvaluateTriggerPatterns(
    const Model& model, const std::vector<Encoding>& evaluation, const std::vector<int>& labels,
    const std::vector<TriggerPattern>& patterns, const TriggerSearchOptions& options,
    const RunControl& control = {});

// An evaluation taken apart so that an evaluation set split into parts (shards run by several
// replicas) gives exactly the whole set's numbers: EvaluateTriggerPatterns is
// FinishTriggerEvaluation of TallyTriggerPatterns, and the counts of parts add up.
struct ClassTally {
  std::map<int, int64_t> correct;  // per gold label
  std::map<int, int64_t> total;
};
struct TriggerTallies {
  ClassTally clean;
  std::vector<ClassTally> attacked;  // per pattern
  std::vector<ClassTally> control;   // per pattern
  std::vector<int64_t> truncated;    // per pattern
};
// As EvaluateTriggerPatterns on a part of an evaluation set that starts at example
// `first_example` (the control's draws and the messages count from there).
absl::StatusOr<TriggerTallies> TallyTriggerPatterns(
    const Model& model, const std::vector<Encoding>& evaluation, const std::vector<int>& labels,
    const std::vector<TriggerPattern>& patterns, const TriggerSearchOptions& options,
    const RunControl& control = {}, int64_t first_example = 0);
// into += part; into may be empty (default). InvalidArgument when the pattern counts differ.
absl::Status AddTriggerTallies(TriggerTallies& into, const TriggerTallies& part);
// The evaluations from the tallies of the whole evaluation set.
std::vector<TriggerEvaluation> FinishTriggerEvaluation(const ModelInfo& info,
                                                       const std::vector<TriggerPattern>& patterns,
                                                       const TriggerTallies& tallies);

struct TriggerSearchReport {
  std::vector<TriggerEvaluation> patterns;  // the top-K, best first; empty: none passed
  int mined_examples = 0;
  int patterns_above_threshold = 0;  // non-empty, score >= threshold, before dedup and top-K
};

// A report holding only the counts over the mined patterns (mined_examples,
// patterns_above_threshold); RunTriggerSearch and a sharded search's merge fill the rest.
TriggerSearchReport CountMinedPatterns(const std::vector<TriggerPattern>& mined,
                                       const TriggerSearchOptions& options);

// The whole search: validate, check the evaluation set (before mining), mine, rank, evaluate.
// Progress stages "mining" then "evaluating".
absl::StatusOr<TriggerSearchReport> RunTriggerSearch(const Model& model,
                                                     const std::vector<Encoding>& mining,
                                                     const std::vector<Encoding>& evaluation,
                                                     const std::vector<int>& labels,
                                                     const TriggerSearchOptions& options,
                                                     const RunControl& control = {});

// Vocabulary ids the control draws from: tokens that start a word and are not special
// (Tokenizer::ContinuesWord, IsSpecial: not "##…" or "[…]" in a WordPiece vocabulary). Ascending.
std::vector<int32_t> ControlVocabulary(const Tokenizer& tokenizer);

}  // namespace attattr::engine
