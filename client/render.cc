// JSON and terminal renderings of attribution results (see render.h).
#include "render.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "attattr/report/attribution_tree_render.h"

namespace attattr::client {

nlohmann::json AttributionToJson(const engine::ExampleAttribution& r, const RenderContext& ctx,
                                 const engine::AttributionTree* tree) {
  nlohmann::json j;
  j["model"] = ctx.model;
  j["tokens"] = r.encoding.tokens;
  if (!r.prediction.top_tokens.empty()) {  // a language model: the next token
    nlohmann::json top = nlohmann::json::array();
    for (const auto& t : r.prediction.top_tokens) {
      top.push_back({{"id", t.id}, {"token", t.token}, {"probability", t.probability}});
    }
    j["prediction"] = {{"label", r.prediction.top_tokens[0].token},
                       {"token_id", r.prediction.predicted},
                       {"probability", r.prediction.predicted_probability},
                       {"top_tokens", std::move(top)}};
  } else if (r.prediction.predicted >= 0) {
    const int p = r.prediction.predicted;
    j["prediction"] = {
        {"label", p < static_cast<int>(ctx.labels.size()) ? ctx.labels[p] : std::to_string(p)},
        {"problem_type", r.prediction.problem_type},
        {"logits", r.prediction.logits},
        {"probabilities", r.prediction.probabilities}};
  } else {
    j["prediction"] = nullptr;
  }
  j["target"] = ctx.target;
  j["rule"] = ctx.rule;
  j["steps"] = ctx.steps;
  j["precision"] = std::string(engine::PrecisionName(r.precision));
  const size_t n = r.encoding.size();
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& layer : r.layers) {
    nlohmann::json l = {{"layer", layer.layer},
                        {"completeness_gap", layer.completeness_gap},
                        {"target_at_full", layer.target_at_full},
                        {"target_at_zero", layer.target_at_zero}};
    // A job may have asked for no full matrices (top-k or head sums only): no "attribution" then.
    if (layer.attribution.size() != static_cast<size_t>(layer.num_heads) * n * n) {
      layers.push_back(std::move(l));
      continue;
    }
    nlohmann::json heads = nlohmann::json::array();
    for (int h = 0; h < layer.num_heads; ++h) {
      nlohmann::json rows = nlohmann::json::array();
      for (size_t i = 0; i < n; ++i) {
        const float* row = layer.attribution.data() + (h * n + i) * n;
        rows.push_back(std::vector<float>(row, row + n));
      }
      heads.push_back(std::move(rows));
    }
    l["attribution"] = std::move(heads);
    layers.push_back(std::move(l));
  }
  j["layers"] = std::move(layers);
  if (tree != nullptr) j["tree"] = nlohmann::json::parse(report::AttributionTreeToJson(*tree));
  return j;
}

std::string TreeToText(const engine::AttributionTree& tree) {
  char head[160];
  std::snprintf(head, sizeof head,
                "attribution tree (tau = %g; each line: token #position (layer joined, score))\n",
                tree.tau);
  return head + report::AttributionTreeToText(tree);
}

std::string AttributionToText(const engine::ExampleAttribution& r, const RenderContext& ctx,
                              int top_k, const engine::AttributionTree* tree) {
  std::ostringstream out;
  const auto& tokens = r.encoding.tokens;
  out << "model: " << ctx.model << "\n";
  out << "tokens (" << tokens.size() << "):";
  for (const auto& t : tokens) out << " " << t;
  out << "\n";
  if (!r.prediction.top_tokens.empty()) {  // a language model: the next token
    out << "next token:";
    for (const auto& t : r.prediction.top_tokens) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.4f", t.probability);
      out << " " << t.token << " #" << t.id << " (p=" << buf << ")";
    }
    out << "\n";
  } else if (r.prediction.problem_type == "regression") {  // the outputs are the values
    out << "prediction (regression):";
    for (float v : r.prediction.logits) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " %.5g", v);
      out << buf;
    }
    out << "\n";
  } else if (r.prediction.predicted >= 0) {
    const int p = r.prediction.predicted;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4f", r.prediction.predicted_probability);
    const bool multi_label = r.prediction.problem_type == "multi_label_classification";
    out << (multi_label ? "prediction (multi-label, highest): " : "prediction: ")
        << (p < static_cast<int>(ctx.labels.size()) ? ctx.labels[p] : std::to_string(p))
        << (multi_label ? " (sigmoid p=" : " (p=") << buf << ")\n";
  }
  out << "target: " << ctx.target << "   rule: " << ctx.rule << ", m = " << ctx.steps
      << "   precision: " << engine::PrecisionName(r.precision) << "\n";
  const size_t n = tokens.size();
  for (const auto& layer : r.layers) {
    char head[200];
    std::snprintf(
        head, sizeof head,
        "\nlayer %d  F(A) = %.5f  F(0) = %.5f  sum(Attr) = %.5f  completeness gap = %.2e\n",
        layer.layer, layer.target_at_full, layer.target_at_zero, layer.attribution_sum,
        layer.completeness_gap);
    out << head;
    std::vector<size_t> idx(layer.attribution.size());
    std::iota(idx.begin(), idx.end(), 0);
    const size_t k = std::min<size_t>(top_k, idx.size());
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](size_t a, size_t b) {
      return layer.attribution[a] > layer.attribution[b];
    });
    for (size_t t = 0; t < k; ++t) {
      const size_t h = idx[t] / (n * n), i = (idx[t] / n) % n, j = idx[t] % n;
      char line[256];
      std::snprintf(line, sizeof line, "  head %2zu  %-14s <- %-14s %+.5f\n", h, tokens[i].c_str(),
                    tokens[j].c_str(), layer.attribution[idx[t]]);
      out << line;
    }
  }
  if (tree != nullptr) out << "\n" << TreeToText(*tree);
  return out.str();
}

std::string JsonText(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace attattr::client
