// Attribution flags, options and results between the CLI, the engine and the v1 protos (see
// attribution_request.h).
#include "attribution_request.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "attattr/engine/half_float.h"
#include "attattr/engine/quadrature.h"

namespace attattr::client {
namespace {

absl::StatusOr<int> ParseClass(const std::string& value, const std::vector<std::string>& labels,
                               const std::string& spec) {
  int k = 0;
  if (absl::SimpleAtoi(value, &k)) return k;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] == value) return static_cast<int>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--target: '", spec, "': '", value, "' is neither a class index nor a label"));
}

v1::Target::Kind TargetToProto(engine::TargetKind k) {
  switch (k) {
    case engine::TargetKind::kPredictedClassProb:
      return v1::Target::PREDICTED_CLASS_PROB;
    case engine::TargetKind::kClassProb:
      return v1::Target::CLASS_PROB;
    case engine::TargetKind::kClassLogit:
      return v1::Target::CLASS_LOGIT;
    case engine::TargetKind::kEmbeddingSimilarity:
      return v1::Target::EMBEDDING_SIMILARITY;
  }
  return v1::Target::KIND_UNSPECIFIED;
}

}  // namespace

absl::StatusOr<engine::AttributionTarget> ParseTarget(const std::string& spec,
                                                      const std::vector<std::string>& labels) {
  engine::AttributionTarget t;
  if (spec == "predicted") return t;
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string value = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "similarity" && colon != std::string::npos && !value.empty()) {
    t.kind = engine::TargetKind::kEmbeddingSimilarity;
    t.reference_text = value;
    return t;
  }
  if ((kind == "class" || kind == "logit") && !value.empty()) {
    auto k = ParseClass(value, labels, spec);
    if (!k.ok()) return k.status();
    t.kind = kind == "class" ? engine::TargetKind::kClassProb : engine::TargetKind::kClassLogit;
    t.class_index = *k;
    return t;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--target: '", spec, "' is not one of predicted, class:K, logit:K, similarity:TEXT"));
}

bool TargetNeedsLabels(const std::string& spec) {
  const auto colon = spec.find(':');
  if (colon == std::string::npos) return false;
  const std::string kind = spec.substr(0, colon);
  int k = 0;
  return (kind == "class" || kind == "logit") && colon + 1 < spec.size() &&
         !absl::SimpleAtoi(spec.substr(colon + 1), &k);
}

absl::StatusOr<std::vector<int>> ParseLayers(const std::string& spec) {
  std::vector<int> layers;
  if (spec.empty()) return layers;
  for (absl::string_view part : absl::StrSplit(spec, ',')) {
    int l = 0;
    if (!absl::SimpleAtoi(part, &l)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--layers: '", std::string(part), "' is not a layer index"));
    }
    layers.push_back(l);
  }
  return layers;
}

v1::QuadratureRule RuleToProto(engine::QuadratureRule r) {
  switch (r) {
    case engine::QuadratureRule::kLeftRiemann:
      return v1::LEFT_RIEMANN;
    case engine::QuadratureRule::kTrapezoid:
      return v1::TRAPEZOID;
    case engine::QuadratureRule::kGaussLegendre:
      return v1::GAUSS_LEGENDRE;
  }
  return v1::QUADRATURE_RULE_UNSPECIFIED;
}

void OptionsToProto(const engine::AttributionOptions& options, v1::AttributionOptions* o) {
  o->set_rule(RuleToProto(options.rule));
  o->set_steps(options.steps);
  for (int l : options.layers) o->add_layers(l);
  o->mutable_target()->set_kind(TargetToProto(options.target.kind));
  o->mutable_target()->set_class_index(options.target.class_index);
  o->mutable_target()->set_reference_text(options.target.reference_text);
}

std::string TargetSpec(const v1::Target& t) {
  switch (t.kind()) {
    case v1::Target::CLASS_PROB:
      return absl::StrCat("class:", t.class_index());
    case v1::Target::CLASS_LOGIT:
      return absl::StrCat("logit:", t.class_index());
    case v1::Target::EMBEDDING_SIMILARITY:
      return absl::StrCat("similarity:", t.reference_text());
    default:
      return "predicted";
  }
}

std::string RuleName(v1::QuadratureRule rule) {
  switch (rule) {
    case v1::LEFT_RIEMANN:
      return std::string(engine::QuadratureRuleName(engine::QuadratureRule::kLeftRiemann));
    case v1::TRAPEZOID:
      return std::string(engine::QuadratureRuleName(engine::QuadratureRule::kTrapezoid));
    default:
      return std::string(engine::QuadratureRuleName(engine::QuadratureRule::kGaussLegendre));
  }
}

absl::StatusOr<std::vector<float>> TensorValues(const v1::Tensor& t) {
  size_t expected = t.shape_size() > 0 ? 1 : 0;
  for (int32_t d : t.shape()) expected *= static_cast<size_t>(d < 0 ? 0 : d);
  std::vector<float> values;
  if (t.has_f32()) {
    values.assign(t.f32().values().begin(), t.f32().values().end());
  } else if (t.data_case() == v1::Tensor::kF16) {
    const std::string& raw = t.f16();
    if (raw.size() % 2 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("fp16 tensor of ", raw.size(), " bytes (not a multiple of 2)"));
    }
    values.resize(raw.size() / 2);
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t h = static_cast<uint16_t>(static_cast<unsigned char>(raw[2 * i]) |
                                               (static_cast<unsigned char>(raw[2 * i + 1]) << 8));
      values[i] = engine::HalfToFloat(h);
    }
  }
  if (values.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor holds ", values.size(), " values, its shape says ", expected));
  }
  return values;
}

engine::AttributionTree TreeFromProto(const v1::ExampleAttribution& a) {
  const auto& p = a.tree();
  engine::AttributionTree t;
  t.tau = p.tau();
  t.root = p.root();
  if (p.root() >= 0 && p.root() < a.tokens_size()) t.root_token = a.tokens(p.root());
  t.top = p.top();
  t.root_edge_score = p.root_edge_score();
  for (const auto& n : p.nodes()) t.nodes.push_back({n.position(), n.token(), n.layer()});
  for (const auto& e : p.edges()) t.edges.push_back({e.parent(), e.child(), e.layer(), e.score()});
  return t;
}

absl::StatusOr<engine::ExampleAttribution> AttributionFromProto(const v1::ExampleAttribution& a) {
  engine::ExampleAttribution r;
  r.encoding.tokens.assign(a.tokens().begin(), a.tokens().end());
  r.encoding.input_ids.assign(a.input_ids().begin(), a.input_ids().end());
  r.encoding.token_type_ids.assign(a.token_type_ids().begin(), a.token_type_ids().end());
  if (r.encoding.input_ids.size() != r.encoding.tokens.size()) {
    // Rendering sizes matrices by the encoding; keep it consistent with the tokens.
    r.encoding.input_ids.resize(r.encoding.tokens.size(), 0);
  }
  r.prediction.predicted = a.prediction().predicted();
  r.prediction.probabilities.assign(a.prediction().probabilities().begin(),
                                    a.prediction().probabilities().end());
  r.prediction.logits.assign(a.prediction().logits().begin(), a.prediction().logits().end());
  r.target_class = a.target_class();
  const size_t n = r.encoding.tokens.size();
  for (const auto& pl : a.layers()) {
    engine::LayerAttribution l;
    l.layer = pl.layer();
    l.num_heads = pl.num_heads();
    l.target_at_full = pl.target_at_full();
    l.target_at_zero = pl.target_at_zero();
    l.attribution_sum = pl.attribution_sum();
    l.completeness_gap = pl.completeness_gap();
    const size_t full = static_cast<size_t>(l.num_heads) * n * n;
    if (pl.has_attribution()) {
      auto values = TensorValues(pl.attribution());
      if (!values.ok() || values->size() != full) {
        return absl::InvalidArgumentError(absl::StrCat(
            "layers[", l.layer, "].attribution: expected ", l.num_heads, "x", n, "x", n, " values",
            values.ok() ? "" : absl::StrCat(": ", values.status().message())));
      }
      l.attribution = std::move(*values);
    }
    if (pl.has_attention()) {
      auto values = TensorValues(pl.attention());
      if (!values.ok() || values->size() != full) {
        return absl::InvalidArgumentError(absl::StrCat(
            "layers[", l.layer, "].attention: expected ", l.num_heads, "x", n, "x", n, " values",
            values.ok() ? "" : absl::StrCat(": ", values.status().message())));
      }
      l.attention = std::move(*values);
    }
    r.layers.push_back(std::move(l));
  }
  return r;
}

}  // namespace attattr::client
