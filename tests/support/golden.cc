// Golden-file loader (see golden.h).
#include "support/golden.h"

#include <fstream>
#include <stdexcept>

#include "nlohmann/json.hpp"

namespace attattr::testing {
namespace {

std::vector<double> Flatten3(const nlohmann::json& heads) {
  std::vector<double> out;
  for (const auto& h : heads)
    for (const auto& row : h)
      for (const auto& v : row) out.push_back(v.get<double>());
  return out;
}

}  // namespace

Golden LoadGolden(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open golden file " + path);
  nlohmann::json j = nlohmann::json::parse(in);
  Golden g;
  g.steps = j.at("steps").get<int>();
  g.rule = j.at("rule").get<std::string>();
  for (const auto& e : j.at("examples")) {
    GoldenExample x;
    x.text = e.at("text").get<std::string>();
    if (!e.at("text_pair").is_null()) x.text_pair = e.at("text_pair").get<std::string>();
    x.tokens = e.at("tokens").get<std::vector<std::string>>();
    x.input_ids = e.at("input_ids").get<std::vector<int>>();
    x.token_type_ids = e.at("token_type_ids").get<std::vector<int>>();
    x.logits = e.at("logits").get<std::vector<double>>();
    x.probabilities = e.at("probabilities").get<std::vector<double>>();
    x.predicted = e.at("predicted").get<int>();
    for (const auto& layer : e.at("attention")) x.attention.push_back(Flatten3(layer));
    for (const auto& layer : e.at("attribution")) x.attribution.push_back(Flatten3(layer));
    x.num_heads = static_cast<int>(e.at("attention").at(0).size());
    x.target_at_full = e.at("target_at_full").get<std::vector<double>>();
    x.target_at_zero = e.at("target_at_zero").get<std::vector<double>>();
    x.attribution_sum = e.at("attribution_sum").get<std::vector<double>>();
    const auto& t = e.at("tree_tau_0.4");
    x.tree_root = t.at("root").get<int>();
    x.tree_top = t.at("top").get<int>();
    x.tree_root_edge_score = t.at("root_edge_score").get<double>();
    for (const auto& n : t.at("nodes")) {
      x.tree_nodes.emplace_back(n.at("position").get<int>(), n.at("layer").get<int>());
    }
    for (const auto& ed : t.at("edges")) {
      x.tree_edges.push_back({ed.at("parent").get<int>(), ed.at("child").get<int>(),
                              ed.at("layer").get<int>(), ed.at("score").get<double>()});
    }
    g.examples.push_back(std::move(x));
  }
  return g;
}

}  // namespace attattr::testing
