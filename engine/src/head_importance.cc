// Head importance rankings and pruning curves (see head_importance.h). kAttribution, kRandom and
// the pruning curve use the engine's public calls (AttributeEncodings, Predict with a head mask);
// kAttention captures the clean attention probabilities; kTaylor backpropagates a per-example loss
// into a head gate (the head mask, which multiplies each head's probabilities and so its output).
#include "attattr/engine/head_importance.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "attattr/engine/gold_label.h"
#include "low_precision.h"
#include "model_impl.h"
#include "torch_boundary.h"

namespace attattr::engine {
namespace {

HeadTable Zeros(const ModelInfo& info) {
  return HeadTable(info.num_layers, std::vector<double>(info.num_heads, 0.0));
}

absl::Status CheckInputs(const Model& model, const std::vector<Encoding>& encodings,
                         const std::vector<int>& labels, bool need_labels) {
  const ModelInfo& info = model.info();
  ATTATTR_RETURN_IF_ERROR(RequireClassifier(info, "head importance"));
  if (encodings.empty()) return absl::InvalidArgumentError("examples: empty");
  if (labels.size() != encodings.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels: ", labels.size(), " labels for ", encodings.size(), " examples"));
  }
  if (!need_labels) return absl::OkStatus();
  return CheckGoldLabels(info, labels, "labels");
}

// Σ over examples of the largest entry of the head's attribution matrix, with the gold label's
// probability as target (examples grouped by label: the target class is an option).
absl::StatusOr<HeadTable> ByAttribution(const Model& model, const std::vector<Encoding>& encodings,
                                        const std::vector<int>& labels,
                                        const HeadImportanceOptions& options,
                                        const RunControl& control) {
  const ModelInfo& info = model.info();
  HeadTable sum = Zeros(info);
  std::map<int, std::vector<Encoding>> by_label;
  for (size_t i = 0; i < encodings.size(); ++i) by_label[labels[i]].push_back(encodings[i]);
  // Slices of at most 16 examples whose results, held until reduced to the table, fit the memory
  // budget; progress is reported after each, so long sets show movement.
  constexpr size_t kSlice = 16;
  int64_t done = 0;
  const int64_t total = static_cast<int64_t>(encodings.size());
  control.Report({"importance: attribution", 0, total});
  for (const auto& [label, group] : by_label) {
    AttributionOptions o = options.attribution;
    o.target = AttributionTarget{TargetKind::kClassProb, label, "", {}, "", ""};
    o.layers.clear();
    o.keep_attention = false;
    RunControl inner;
    inner.should_stop = control.should_stop;
    const auto slices = PlanBatches(
        group.size(),
        [&](size_t i) {
          return ResultBytes(info, static_cast<int64_t>(group[i].size()), info.num_layers, false);
        },
        o.memory_budget_bytes, kSlice);
    for (const std::vector<size_t>& members : slices) {
      ATTATTR_ASSIGN_OR_RETURN(auto results,
                               AttributeEncodings(model, Gather(group, members), o, inner));
      for (const auto& r : results) {
        for (const auto& layer : r.layers) {
          const size_t per_head = layer.attribution.size() / std::max(1, layer.num_heads);
          for (int h = 0; h < layer.num_heads; ++h) {
            const auto begin = layer.attribution.begin() + h * per_head;
            sum[layer.layer][h] += *std::max_element(begin, begin + per_head);
          }
        }
      }
      done += static_cast<int64_t>(members.size());
      control.Report({"importance: attribution", done, total});
    }
  }
  return sum;
}

// Σ over examples of each head's largest attention probability (real tokens only).
absl::StatusOr<HeadTable> ByAttention(const Model& model, const std::vector<Encoding>& encodings,
                                      const HeadImportanceOptions& options,
                                      const RunControl& control) {
  const auto& impl = model.impl();
  HeadTable sum = Zeros(impl.info);
  torch::NoGradGuard no_grad;
  ForwardOptions fo;
  fo.capture_attention = true;
  // Every layer's probabilities of a batch are kept: the batch is sized by the memory budget.
  const auto batches = PlanBatches(
      encodings.size(),
      [&](size_t i) {
        return ForwardBytes(impl.info, static_cast<int64_t>(encodings[i].size()), true);
      },
      options.attribution.memory_budget_bytes,
      static_cast<size_t>(std::max(1, options.batch_size)));
  int64_t done = 0;
  for (const std::vector<size_t>& order : batches) {
    if (control.ShouldStop()) return absl::CancelledError("head importance stopped");
    const LowPrecisionScope arithmetic(impl.info.weights, impl.device);
    const auto out = impl.encoder->Forward(MakeBatch(encodings, order, impl.device), fo);
    for (size_t b = 0; b < order.size(); ++b) {
      const int64_t n = static_cast<int64_t>(encodings[order[b]].input_ids.size());
      for (size_t l = 0; l < out.attentions.size(); ++l) {
        // [H, n, n] of this example, padding cut off; the largest entry per head.
        const auto a = out.attentions[l][b].narrow(1, 0, n).narrow(2, 0, n);
        const auto peak = std::get<0>(a.reshape({a.size(0), -1}).max(1)).to(torch::kCPU);
        for (int64_t h = 0; h < peak.size(0); ++h) sum[l][h] += peak[h].item<double>();
      }
    }
    done += static_cast<int64_t>(order.size());
    control.Report({"importance: attention", done, static_cast<int64_t>(encodings.size())});
  }
  return sum;
}

// Michel et al. 2019: Σ over examples of |∂ loss / ∂ gate_h| (FinishHeadImportance averages and
// L2-normalises within each layer).
absl::StatusOr<HeadTable> ByTaylor(const Model& model, const std::vector<Encoding>& encodings,
                                   const std::vector<int>& labels, const RunControl& control) {
  const auto& impl = model.impl();
  const ModelInfo& info = impl.info;
  HeadTable sum = Zeros(info);
  torch::AutoGradMode grad(true);
  for (size_t i = 0; i < encodings.size(); ++i) {
    if (control.ShouldStop()) return absl::CancelledError("head importance stopped");
    auto gate = torch::ones({info.num_layers, info.num_heads},
                            torch::TensorOptions().device(impl.device).requires_grad(true));
    ForwardOptions fo;
    fo.head_mask = gate;
    torch::Tensor logits;
    {
      const LowPrecisionScope arithmetic(impl.info.weights, impl.device);
      logits = impl.encoder->Forward(MakeBatch(encodings, {i}, impl.device), fo)
                   .logits.to(torch::kFloat32);
    }
    const auto target =
        torch::full({1}, labels[i], torch::TensorOptions().dtype(torch::kLong).device(impl.device));
    const auto loss = torch::nn::functional::cross_entropy(logits, target);
    const auto g = torch::autograd::grad({loss}, {gate})[0].abs().to(torch::kCPU);
    for (int l = 0; l < info.num_layers; ++l) {
      for (int h = 0; h < info.num_heads; ++h) sum[l][h] += g[l][h].item<double>();
    }
    if ((i + 1) % 16 == 0 || i + 1 == encodings.size()) {
      control.Report({"importance: taylor", static_cast<int64_t>(i + 1),
                      static_cast<int64_t>(encodings.size())});
    }
  }
  return sum;
}

HeadTable ByRandom(const ModelInfo& info, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  HeadTable t = Zeros(info);
  for (auto& row : t) {
    for (double& v : row) v = uniform(rng);
  }
  return t;
}

// Heads a pruned checkpoint no longer has score 0.
void ZeroAbsentHeads(const ModelInfo& info, HeadTable& t) {
  for (int l = 0; l < info.num_layers && l < static_cast<int>(info.heads_per_layer.size()); ++l) {
    for (int h = info.heads_per_layer[l]; h < info.num_heads; ++h) t[l][h] = 0;
  }
}

}  // namespace

const char* HeadRankingName(HeadRanking ranking) {
  switch (ranking) {
    case HeadRanking::kAttribution:
      return "attribution";
    case HeadRanking::kAttention:
      return "attention";
    case HeadRanking::kTaylor:
      return "taylor";
    case HeadRanking::kRandom:
      return "random";
  }
  return "?";
}

std::optional<HeadRanking> HeadRankingFromName(const std::string& name) {
  for (auto r : {HeadRanking::kAttribution, HeadRanking::kAttention, HeadRanking::kTaylor,
                 HeadRanking::kRandom}) {
    if (name == HeadRankingName(r)) return r;
  }
  return std::nullopt;
}

absl::StatusOr<HeadImportanceSums> SumHeadImportance(
    const Model& model, const std::vector<Encoding>& encodings, const std::vector<int>& labels,
    HeadRanking ranking, const HeadImportanceOptions& options, const RunControl& control) {
  const bool need_labels = ranking == HeadRanking::kAttribution || ranking == HeadRanking::kTaylor;
  ATTATTR_RETURN_IF_ERROR(CheckInputs(model, encodings, labels, need_labels));
  absl::StatusOr<HeadTable> table;
  try {
    switch (ranking) {
      case HeadRanking::kAttribution:
        table = ByAttribution(model, encodings, labels, options, control);
        break;
      case HeadRanking::kAttention:
        table = ByAttention(model, encodings, options, control);
        break;
      case HeadRanking::kTaylor:
        table = ByTaylor(model, encodings, labels, control);
        break;
      case HeadRanking::kRandom:
        table = Zeros(model.info());  // its scores do not depend on the examples
        break;
    }
  } catch (...) {
    return TorchExceptionToStatus("head importance");
  }
  if (!table.ok()) return table.status();
  return HeadImportanceSums{std::move(*table), static_cast<int64_t>(encodings.size())};
}

absl::Status AddHeadImportanceSums(HeadImportanceSums& into, const HeadImportanceSums& part) {
  if (into.examples == 0 && into.sums.empty()) {
    into = part;
    return absl::OkStatus();
  }
  if (part.sums.size() != into.sums.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sums: ", part.sums.size(), " layers, expected ", into.sums.size()));
  }
  for (size_t l = 0; l < into.sums.size(); ++l) {
    if (part.sums[l].size() != into.sums[l].size()) {
      return absl::InvalidArgumentError(absl::StrCat("sums: layer ", l, " has ",
                                                     part.sums[l].size(), " heads, expected ",
                                                     into.sums[l].size()));
    }
    for (size_t h = 0; h < into.sums[l].size(); ++h) into.sums[l][h] += part.sums[l][h];
  }
  into.examples += part.examples;
  return absl::OkStatus();
}

HeadTable FinishHeadImportance(const ModelInfo& info, HeadRanking ranking,
                               const HeadImportanceSums& sums,
                               const HeadImportanceOptions& options) {
  HeadTable table;
  if (ranking == HeadRanking::kRandom) {
    table = ByRandom(info, options.seed);
  } else {
    table = sums.sums;
    const double n = static_cast<double>(std::max<int64_t>(1, sums.examples));
    for (auto& row : table) {
      for (double& v : row) v /= n;
    }
  }
  if (ranking == HeadRanking::kTaylor) {
    for (auto& row : table) {
      double norm = 0;
      for (double v : row) norm += v * v;
      norm = std::sqrt(norm);
      if (norm > 0) {
        for (double& v : row) v /= norm;
      }
    }
  }
  ZeroAbsentHeads(info, table);
  return table;
}

absl::StatusOr<HeadTable> ComputeHeadImportance(const Model& model,
                                                const std::vector<Encoding>& encodings,
                                                const std::vector<int>& labels, HeadRanking ranking,
                                                const HeadImportanceOptions& options,
                                                const RunControl& control) {
  ATTATTR_ASSIGN_OR_RETURN(HeadImportanceSums sums,
                           SumHeadImportance(model, encodings, labels, ranking, options, control));
  return FinishHeadImportance(model.info(), ranking, sums, options);
}

std::vector<std::vector<float>> PruneLowest(const HeadTable& importance, double ratio_percent) {
  std::vector<std::pair<int, int>> heads;
  for (size_t l = 0; l < importance.size(); ++l) {
    for (size_t h = 0; h < importance[l].size(); ++h) heads.emplace_back(l, h);
  }
  std::stable_sort(heads.begin(), heads.end(), [&](const auto& a, const auto& b) {
    return importance[a.first][a.second] < importance[b.first][b.second];
  });
  const double p = std::clamp(ratio_percent, 0.0, 100.0);
  // The authors' int(prune_rate · L · H), truncating; the 1e-9 keeps an exact product (70 % of
  // 90 heads is 62.99999999999999 in binary) from losing a head.
  const size_t pruned =
      static_cast<size_t>(std::floor(p / 100.0 * static_cast<double>(heads.size()) + 1e-9));
  std::vector<std::vector<float>> mask;
  for (const auto& row : importance) mask.emplace_back(row.size(), 1.0f);
  for (size_t k = 0; k < pruned && k < heads.size(); ++k)
    mask[heads[k].first][heads[k].second] = 0.0f;
  return mask;
}

absl::StatusOr<std::vector<PruningTally>> TallyPruning(
    const Model& model, const HeadTable& importance, const std::vector<Encoding>& encodings,
    const std::vector<int>& labels, const std::vector<double>& ratios_percent,
    const ForwardBatching& batching, const RunControl& control) {
  ATTATTR_RETURN_IF_ERROR(CheckInputs(model, encodings, labels, true));
  const ModelInfo& info = model.info();
  if (static_cast<int>(importance.size()) != info.num_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("importance: ", importance.size(), " rows for ", info.num_layers, " layers"));
  }
  for (size_t i = 0; i < ratios_percent.size(); ++i) {
    if (!(ratios_percent[i] >= 0 && ratios_percent[i] <= 100)) {
      return absl::InvalidArgumentError(
          absl::StrCat("ratios[", i, "]: ", ratios_percent[i], " is not in [0, 100]"));
    }
  }
  // Evaluation order: by length, so each forward batch pads little.
  const std::vector<size_t> order = ShortestFirst(encodings);
  const auto batches = PlanBatches(
      order,
      [&](size_t i) {
        return ForwardBytes(info, static_cast<int64_t>(encodings[i].input_ids.size()), false);
      },
      batching.memory_budget_bytes, static_cast<size_t>(std::max(1, batching.max_examples)));
  std::vector<PruningTally> tallies;
  for (size_t r = 0; r < ratios_percent.size(); ++r) {
    const auto mask = PruneLowest(importance, ratios_percent[r]);
    PruningTally tally;
    tally.examples = static_cast<int64_t>(encodings.size());
    for (const std::vector<size_t>& members : batches) {
      if (control.ShouldStop()) return absl::CancelledError("pruning curve stopped");
      ATTATTR_ASSIGN_OR_RETURN(auto predictions,
                               model.Predict(Gather(encodings, members), &mask, batching));
      for (size_t k = 0; k < members.size(); ++k) {
        const int label = labels[members[k]];
        tally.correct += predictions[k].predicted == label ? 1 : 0;
        tally.gold_probability += predictions[k].probabilities[label];
      }
    }
    tallies.push_back(tally);
    control.Report({"pruning curve", static_cast<int64_t>(r + 1),
                    static_cast<int64_t>(ratios_percent.size())});
  }
  return tallies;
}

absl::Status AddPruningTallies(std::vector<PruningTally>& into,
                               const std::vector<PruningTally>& part) {
  if (into.empty()) {
    into = part;
    return absl::OkStatus();
  }
  if (part.size() != into.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tallies: ", part.size(), " ratios, expected ", into.size()));
  }
  for (size_t r = 0; r < into.size(); ++r) {
    into[r].correct += part[r].correct;
    into[r].gold_probability += part[r].gold_probability;
    into[r].examples += part[r].examples;
  }
  return absl::OkStatus();
}

std::vector<PruningPoint> FinishPruningCurve(const HeadTable& importance,
                                             const std::vector<double>& ratios_percent,
                                             const std::vector<PruningTally>& tallies) {
  std::vector<PruningPoint> curve;
  for (size_t r = 0; r < ratios_percent.size() && r < tallies.size(); ++r) {
    PruningPoint point;
    point.ratio_percent = ratios_percent[r];
    for (const auto& row : PruneLowest(importance, ratios_percent[r])) {
      point.heads_pruned += static_cast<int>(std::count(row.begin(), row.end(), 0.0f));
    }
    const double n = static_cast<double>(std::max<int64_t>(1, tallies[r].examples));
    point.accuracy = static_cast<double>(tallies[r].correct) / n;
    point.mean_gold_probability = tallies[r].gold_probability / n;
    curve.push_back(point);
  }
  return curve;
}

absl::StatusOr<std::vector<PruningPoint>> PruningCurve(
    const Model& model, const HeadTable& importance, const std::vector<Encoding>& encodings,
    const std::vector<int>& labels, const std::vector<double>& ratios_percent,
    const ForwardBatching& batching, const RunControl& control) {
  ATTATTR_ASSIGN_OR_RETURN(auto tallies, TallyPruning(model, importance, encodings, labels,
                                                      ratios_percent, batching, control));
  return FinishPruningCurve(importance, ratios_percent, tallies);
}

}  // namespace attattr::engine
