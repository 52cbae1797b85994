// Trigger search (see trigger_search.h): mining through AttributeEncodings, ranking, and evaluation
// through Model::Predict in length-sorted batches. Uses only the engine's public calls.
#include "attattr/engine/trigger_search.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "attattr/engine/gold_label.h"

namespace attattr::engine {
namespace {

// The pattern of one attributed example (header comment of trigger_search.h).
absl::StatusOr<TriggerPattern> PatternOf(const ExampleAttribution& r, int source) {
  const int n = static_cast<int>(r.encoding.size());
  const size_t per_head = static_cast<size_t>(n) * static_cast<size_t>(n);
  int best_layer = -1, best_head = -1;
  float best = 0;
  for (const auto& layer : r.layers) {
    for (int h = 0; h < layer.num_heads; ++h) {
      const auto begin = layer.attribution.begin() + h * per_head;
      const float m = *std::max_element(begin, begin + per_head);
      if (best_layer < 0 || m > best) {
        best = m;
        best_layer = layer.layer;
        best_head = h;
      }
    }
  }
  TriggerPattern pattern;
  pattern.source = source;
  if (best_layer < 0 || n < 2) return pattern;
  const LayerAttribution* chosen = nullptr;
  for (const auto& layer : r.layers) {
    if (layer.layer == best_layer) chosen = &layer;
  }
  const auto begin = chosen->attribution.begin() + best_head * per_head;
  // Top two entries, ties to the earlier (i, j).
  size_t first = 0, second = 1;
  if (begin[1] > begin[0]) std::swap(first, second);
  for (size_t k = 2; k < per_head; ++k) {
    if (begin[k] > begin[first]) {
      second = first;
      first = k;
    } else if (begin[k] > begin[second]) {
      second = k;
    }
  }
  const double v1 = begin[first], v2 = begin[second];
  std::vector<std::pair<int, int>> connections = {
      {static_cast<int>(first / n), static_cast<int>(first % n)}};
  if (v2 >= 0.2 * v1) {
    connections.emplace_back(static_cast<int>(second / n), static_cast<int>(second % n));
  }
  ATTATTR_ASSIGN_OR_RETURN(auto made, MakeTriggerPattern(r.encoding, connections));
  made.source = source;
  made.layer = best_layer;
  made.head = best_head;
  made.score = v1 + v2;
  return made;
}

bool SameTokens(const TriggerPattern& a, const TriggerPattern& b) {
  if (a.tokens.size() != b.tokens.size()) return false;
  for (size_t k = 0; k < a.tokens.size(); ++k) {
    if (a.tokens[k].id != b.tokens[k].id || a.tokens[k].segment != b.tokens[k].segment)
      return false;
  }
  return true;
}

std::vector<ClassAccuracy> Accuracies(const ClassTally& tally, const ModelInfo& info) {
  std::vector<ClassAccuracy> out;
  for (const auto& [label, n] : tally.total) {
    ClassAccuracy c;
    c.label = label;
    c.name = label < static_cast<int>(info.labels.size()) ? info.labels[label] : "";
    c.examples = static_cast<int>(n);
    const auto it = tally.correct.find(label);
    c.accuracy = n > 0 ? static_cast<double>(it == tally.correct.end() ? 0 : it->second) /
                             static_cast<double>(n)
                       : 0;
    out.push_back(c);
  }
  return out;
}

void AddClassTally(ClassTally& into, const ClassTally& part) {
  for (const auto& [label, n] : part.correct) into.correct[label] += n;
  for (const auto& [label, n] : part.total) into.total[label] += n;
}

}  // namespace

std::optional<size_t> FirstUnplaceableExample(const std::vector<Example>& mining,
                                              const std::vector<Example>& evaluation) {
  bool mining_pairs = false;
  for (const auto& e : mining) mining_pairs = mining_pairs || e.text_pair.has_value();
  if (!mining_pairs) return std::nullopt;
  for (size_t i = 0; i < evaluation.size(); ++i) {
    if (!evaluation[i].text_pair) return i;
  }
  return std::nullopt;
}

std::string UnplaceableExampleMessage(size_t index, const std::string& mining_set) {
  return absl::StrCat("example ", index, " is a single sentence but ", mining_set,
                      " has sentence pairs: patterns mined from a second sentence cannot be "
                      "placed");
}

absl::Status ValidateTriggerSearchOptions(const Model& model, const TriggerSearchOptions& o) {
  ATTATTR_RETURN_IF_ERROR(RequireClassifier(model.info(), "trigger search"));
  if (o.top_k < 1 || o.top_k > kMaxTriggerTopK) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k: ", o.top_k, " is not in [1, ", kMaxTriggerTopK, "]"));
  }
  if (!std::isfinite(o.threshold) || o.threshold < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("threshold: ", o.threshold, " must be finite and >= 0"));
  }
  if (o.mining_batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("mining_batch: ", o.mining_batch, " < 1"));
  }
  if (o.eval_batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("eval_batch: ", o.eval_batch, " < 1"));
  }
  AttributionOptions a = o.attribution;
  a.target = AttributionTarget{};
  a.layers.clear();
  if (auto s = ValidateAttributionOptions(model, a); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("attribution.", s.message()));
  }
  return absl::OkStatus();
}

std::vector<int32_t> ControlVocabulary(const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    if (tokenizer.IdToToken(id).empty() || tokenizer.IsSpecial(id) || tokenizer.ContinuesWord(id)) {
      continue;
    }
    ids.push_back(id);
  }
  return ids;
}

absl::StatusOr<std::vector<TriggerPattern>> MineTriggerPatterns(const Model& model,
                                                                const std::vector<Encoding>& mining,
                                                                const TriggerSearchOptions& options,
                                                                const RunControl& control,
                                                                int64_t first_example) {
  ATTATTR_RETURN_IF_ERROR(ValidateTriggerSearchOptions(model, options));
  if (mining.empty()) return absl::InvalidArgumentError("mining_set: no examples");
  AttributionOptions a = options.attribution;
  a.target = AttributionTarget{};  // kPredictedClassProb
  a.layers.clear();
  a.keep_attention = false;
  RunControl inner;
  inner.should_stop = control.should_stop;
  std::vector<TriggerPattern> patterns;
  patterns.reserve(mining.size());
  const int64_t total = static_cast<int64_t>(mining.size());
  control.Report({"mining", 0, total});
  // Slices whose results, held until each is reduced to its pattern, fit the memory budget.
  const int layers = model.info().num_layers;
  const auto slices = PlanBatches(
      mining.size(),
      [&](size_t i) {
        return ResultBytes(model.info(), static_cast<int64_t>(mining[i].size()), layers, false);
      },
      a.memory_budget_bytes, static_cast<size_t>(options.mining_batch));
  for (const std::vector<size_t>& members : slices) {
    if (control.ShouldStop()) return absl::CancelledError("trigger search stopped");
    ATTATTR_ASSIGN_OR_RETURN(auto results,
                             AttributeEncodings(model, Gather(mining, members), a, inner));
    for (size_t k = 0; k < results.size(); ++k) {
      const int64_t source = first_example + static_cast<int64_t>(members[k]);
      auto p = PatternOf(results[k], static_cast<int>(source));
      if (!p.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("mining_set.examples[", source, "]: ", p.status().message()));
      }
      patterns.push_back(std::move(*p));
    }
    control.Report({"mining", static_cast<int64_t>(patterns.size()), total});
  }
  return patterns;
}

std::vector<TriggerPattern> RankAndFilter(std::vector<TriggerPattern> patterns,
                                          const TriggerSearchOptions& options) {
  std::stable_sort(
      patterns.begin(), patterns.end(),
      [](const TriggerPattern& a, const TriggerPattern& b) { return a.score > b.score; });
  std::vector<TriggerPattern> kept;
  for (auto& p : patterns) {
    if (static_cast<int>(kept.size()) >= options.top_k) break;
    if (p.tokens.empty() || p.score < options.threshold) continue;
    const bool seen = std::any_of(kept.begin(), kept.end(),
                                  [&](const TriggerPattern& k) { return SameTokens(k, p); });
    if (!seen) kept.push_back(std::move(p));
  }
  return kept;
}

absl::StatusOr<bool> CheckEvaluationSet(const Model& model, const std::vector<Encoding>& evaluation,
                                        const std::vector<int>& labels) {
  const ModelInfo& info = model.info();
  ATTATTR_RETURN_IF_ERROR(RequireClassifier(info, "trigger search"));
  if (evaluation.empty()) return absl::InvalidArgumentError("evaluation_set: no examples");
  if (labels.size() != evaluation.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels: ", labels.size(), " labels for ", evaluation.size(), " examples"));
  }
  ATTATTR_RETURN_IF_ERROR(CheckGoldLabels(info, labels, "labels"));
  bool all_pairs = true;
  for (size_t i = 0; i < evaluation.size(); ++i) {
    auto b = FindSegments(evaluation[i]);
    if (!b.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("evaluation_set.examples[", i, "]: ", b.status().message()));
    }
    all_pairs = all_pairs && b->pair;
  }
  return all_pairs;
}

absl::StatusOr<TriggerTallies> TallyTriggerPatterns(
    const Model& model, const std::vector<Encoding>& evaluation, const std::vector<int>& labels,
    const std::vector<TriggerPattern>& patterns, const TriggerSearchOptions& options,
    const RunControl& control, int64_t first_example) {
  const ModelInfo& info = model.info();
  ATTATTR_ASSIGN_OR_RETURN(auto checked, CheckEvaluationSet(model, evaluation, labels));
  const bool all_pairs = checked;
  for (size_t p = 0; p < patterns.size(); ++p) {
    if (patterns[p].tokens.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("patterns[", p, "]: no tokens"));
    }
    if (patterns[p].NeedsSentencePair() && !all_pairs) {
      return absl::InvalidArgumentError(
          absl::StrCat("patterns[", p,
                       "]: was mined from sentence pairs and has segment-B tokens, but the "
                       "evaluation set has single-sentence examples"));
    }
  }
  const auto vocabulary = ControlVocabulary(model.tokenizer());
  if (vocabulary.empty()) return absl::InvalidArgumentError("model: vocabulary has no whole words");

  // Length-sorted order keeps padding small; the attacked variants keep the clean order.
  const std::vector<size_t> order = ShortestFirst(evaluation);
  // One plan for every pass: an attacked variant inserts at most `max_trigger` tokens, counted
  // into each example's length so its batches fit the budget too.
  size_t max_trigger = 0;
  for (const auto& p : patterns) max_trigger = std::max(max_trigger, p.tokens.size());
  const ForwardBatching batching{options.eval_batch, options.attribution.memory_budget_bytes};
  const auto batches = PlanBatches(
      order,
      [&](size_t i) {
        const auto n = std::min<int64_t>(evaluation[i].size() + max_trigger, info.max_length);
        return ForwardBytes(info, n, false);
      },
      batching.memory_budget_bytes, static_cast<size_t>(batching.max_examples));
  const int64_t total = static_cast<int64_t>(batches.size() * (1 + 2 * patterns.size()));
  int64_t done = 0;
  control.Report({"evaluating", 0, total});
  // Predicts `variant` (parallel to `evaluation`) and tallies per gold class.
  auto run = [&](const std::vector<Encoding>& variant) -> absl::StatusOr<ClassTally> {
    ClassTally tally;
    for (const std::vector<size_t>& members : batches) {
      if (control.ShouldStop()) return absl::CancelledError("trigger search stopped");
      ATTATTR_ASSIGN_OR_RETURN(auto predictions,
                               model.Predict(Gather(variant, members), nullptr, batching));
      for (size_t k = 0; k < members.size(); ++k) {
        const int label = labels[members[k]];
        ++tally.total[label];
        if (predictions[k].predicted == label) ++tally.correct[label];
      }
      control.Report({"evaluating", ++done, total});
    }
    return tally;
  };
  // A trigger placed into evaluation example i, its encoding ended where a decoder classifier
  // scores it (Model::EndAtScoredToken: trailing pad ids — a random control may draw one — are
  // skipped as transformers skips them); `inserted` counts the trigger tokens kept.
  const auto place =
      [&](size_t i, const std::vector<TriggerToken>& tokens) -> absl::StatusOr<InsertedTrigger> {
    ATTATTR_ASSIGN_OR_RETURN(InsertedTrigger t,
                             InsertTrigger(evaluation[i], tokens, info.max_length));
    const bool pair = std::any_of(evaluation[i].offsets.begin(), evaluation[i].offsets.end(),
                                  [](const Encoding::Span& s) { return s.segment == 1; });
    ATTATTR_RETURN_IF_ERROR(model.EndAtScoredToken(&t.encoding, pair));
    t.inserted = static_cast<int>(
        std::count(t.trigger_at.begin(), t.trigger_at.begin() + t.encoding.size(), true));
    return t;
  };
  TriggerTallies out;
  ATTATTR_ASSIGN_OR_RETURN(out.clean, run(evaluation));
  for (size_t p = 0; p < patterns.size(); ++p) {
    std::vector<Encoding> attacked, controlled;
    attacked.reserve(evaluation.size());
    controlled.reserve(evaluation.size());
    std::uniform_int_distribution<size_t> pick(0, vocabulary.size() - 1);
    const size_t k = patterns[p].tokens.size();
    int64_t truncated = 0;
    for (size_t i = 0; i < evaluation.size(); ++i) {
      const int64_t example = first_example + static_cast<int64_t>(i);
      auto a = place(i, patterns[p].tokens);
      if (!a.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "patterns[", p, "]: evaluation_set.examples[", example, "]: ", a.status().message()));
      }
      if (a->inserted < static_cast<int>(k)) ++truncated;
      attacked.push_back(std::move(a->encoding));
      // The control's draws for an example depend on (seed, pattern rank, example) only, so
      // any split of the evaluation set draws the same tokens.
      std::seed_seq seq{static_cast<uint32_t>(options.seed),
                        static_cast<uint32_t>(options.seed >> 32), static_cast<uint32_t>(p),
                        static_cast<uint32_t>(example), static_cast<uint32_t>(example >> 32)};
      std::mt19937_64 rng(seq);
      std::vector<TriggerToken> random = patterns[p].tokens;
      for (auto& t : random) {
        t.id = vocabulary[pick(rng)];
        t.token = model.tokenizer().IdToToken(t.id);
      }
      auto c = place(i, random);
      if (!c.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("patterns[", p,
                                                       "]: control for evaluation_set.examples[",
                                                       example, "]: ", c.status().message()));
      }
      controlled.push_back(std::move(c->encoding));
    }
    ATTATTR_ASSIGN_OR_RETURN(auto at, run(attacked));
    ATTATTR_ASSIGN_OR_RETURN(auto ct, run(controlled));
    out.attacked.push_back(std::move(at));
    out.control.push_back(std::move(ct));
    out.truncated.push_back(truncated);
  }
  return out;
}

absl::Status AddTriggerTallies(TriggerTallies& into, const TriggerTallies& part) {
  if (into.clean.total.empty() && into.attacked.empty()) {
    into = part;
    return absl::OkStatus();
  }
  if (part.attacked.size() != into.attacked.size() || part.control.size() != into.control.size() ||
      part.truncated.size() != into.truncated.size()) {
    return absl::InvalidArgumentError(absl::StrCat("tallies: ", part.attacked.size(),
                                                   " patterns, expected ", into.attacked.size()));
  }
  AddClassTally(into.clean, part.clean);
  for (size_t p = 0; p < into.attacked.size(); ++p) {
    AddClassTally(into.attacked[p], part.attacked[p]);
    AddClassTally(into.control[p], part.control[p]);
    into.truncated[p] += part.truncated[p];
  }
  return absl::OkStatus();
}

std::vector<TriggerEvaluation> FinishTriggerEvaluation(const ModelInfo& info,
                                                       const std::vector<TriggerPattern>& patterns,
                                                       const TriggerTallies& tallies) {
  std::vector<TriggerEvaluation> out;
  const auto clean = Accuracies(tallies.clean, info);
  for (size_t p = 0; p < patterns.size() && p < tallies.attacked.size(); ++p) {
    TriggerEvaluation ev;
    ev.pattern = patterns[p];
    ev.clean = clean;
    ev.attacked = Accuracies(tallies.attacked[p], info);
    ev.control = Accuracies(tallies.control[p], info);
    ev.truncated = static_cast<int>(tallies.truncated[p]);
    out.push_back(std::move(ev));
  }
  return out;
}

absl::StatusOr<std::vector<TriggerEvaluation>> EvaluateTriggerPatterns(
    const Model& model, const std::vector<Encoding>& evaluation, const std::vector<int>& labels,
    const std::vector<TriggerPattern>& patterns, const TriggerSearchOptions& options,
    const RunControl& control) {
  ATTATTR_ASSIGN_OR_RETURN(
      TriggerTallies tallies,
      TallyTriggerPatterns(model, evaluation, labels, patterns, options, control));
  return FinishTriggerEvaluation(model.info(), patterns, tallies);
}

TriggerSearchReport CountMinedPatterns(const std::vector<TriggerPattern>& mined,
                                       const TriggerSearchOptions& options) {
  TriggerSearchReport report;
  report.mined_examples = static_cast<int>(mined.size());
  for (const auto& p : mined) {
    report.patterns_above_threshold += !p.tokens.empty() && p.score >= options.threshold ? 1 : 0;
  }
  return report;
}

absl::StatusOr<TriggerSearchReport> RunTriggerSearch(const Model& model,
                                                     const std::vector<Encoding>& mining,
                                                     const std::vector<Encoding>& evaluation,
                                                     const std::vector<int>& labels,
                                                     const TriggerSearchOptions& options,
                                                     const RunControl& control) {
  ATTATTR_RETURN_IF_ERROR(ValidateTriggerSearchOptions(model, options));
  // Evaluation inputs are checked before the expensive mining.
  ATTATTR_RETURN_IF_ERROR(CheckEvaluationSet(model, evaluation, labels).status());
  ATTATTR_ASSIGN_OR_RETURN(auto mined, MineTriggerPatterns(model, mining, options, control));
  TriggerSearchReport report = CountMinedPatterns(mined, options);
  const auto best = RankAndFilter(std::move(mined), options);
  ATTATTR_ASSIGN_OR_RETURN(
      auto evaluated, EvaluateTriggerPatterns(model, evaluation, labels, best, options, control));
  report.patterns = std::move(evaluated);
  return report;
}

}  // namespace attattr::engine
