// Attribution conversions (see attribution_convert.h).
#include "attattr/convert/attribution_convert.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/tensor_convert.h"
#include "attattr/engine/quadrature.h"

namespace attattr::convert {
namespace {

// A decoded [H, n, n] matrix of layer `layer`; `what` names it ("attribution", "attention").
absl::StatusOr<std::vector<float>> LayerMatrix(const v1::Tensor& tensor, int layer, int heads,
                                               size_t n, const char* what) {
  const size_t full = static_cast<size_t>(heads < 0 ? 0 : heads) * n * n;
  auto values = TensorValues(tensor);
  if (!values.ok() || values->size() != full) {
    return absl::InvalidArgumentError(
        absl::StrCat("layers[", layer, "].", what, ": expected ", heads, "x", n, "x", n, " values",
                     values.ok() ? "" : absl::StrCat(": ", values.status().message())));
  }
  return values;
}

}  // namespace

std::optional<engine::QuadratureRule> RuleFromProto(v1::QuadratureRule rule) {
  switch (rule) {
    case v1::LEFT_RIEMANN:
      return engine::QuadratureRule::kLeftRiemann;
    case v1::TRAPEZOID:
      return engine::QuadratureRule::kTrapezoid;
    case v1::GAUSS_LEGENDRE:
      return engine::QuadratureRule::kGaussLegendre;
    case v1::QUADRATURE_RULE_UNSPECIFIED:
      return engine::kDefaultQuadratureRule;
    default:
      return std::nullopt;
  }
}

v1::QuadratureRule RuleToProto(engine::QuadratureRule rule) {
  switch (rule) {
    case engine::QuadratureRule::kLeftRiemann:
      return v1::LEFT_RIEMANN;
    case engine::QuadratureRule::kTrapezoid:
      return v1::TRAPEZOID;
    case engine::QuadratureRule::kGaussLegendre:
      return v1::GAUSS_LEGENDRE;
  }
  return v1::QUADRATURE_RULE_UNSPECIFIED;
}

std::string RuleName(v1::QuadratureRule rule) {
  const auto engine_rule = RuleFromProto(rule);
  return engine_rule ? std::string(engine::QuadratureRuleName(*engine_rule)) : "unknown";
}

std::optional<engine::Precision> PrecisionFromProto(v1::Precision precision,
                                                    engine::Precision default_precision) {
  switch (precision) {
    case v1::PRECISION_UNSPECIFIED:
      return default_precision;
    case v1::FP32:
      return engine::Precision::kFp32;
    case v1::BF16:
      return engine::Precision::kBf16;
    default:
      return std::nullopt;
  }
}

v1::Precision PrecisionToProto(engine::Precision precision) {
  return precision == engine::Precision::kBf16 ? v1::BF16 : v1::FP32;
}

std::optional<engine::TargetKind> TargetKindFromProto(v1::Target::Kind kind) {
  switch (kind) {
    case v1::Target::KIND_UNSPECIFIED:
    case v1::Target::PREDICTED_CLASS_PROB:
      return engine::TargetKind::kPredictedClassProb;
    case v1::Target::CLASS_PROB:
      return engine::TargetKind::kClassProb;
    case v1::Target::CLASS_LOGIT:
      return engine::TargetKind::kClassLogit;
    case v1::Target::EMBEDDING_SIMILARITY:
      return engine::TargetKind::kEmbeddingSimilarity;
    case v1::Target::CLASS_LOG_PROB:
      return engine::TargetKind::kClassLogProb;
    case v1::Target::SEQUENCE_LOG_PROB:
      return engine::TargetKind::kSequenceLogProb;
    default:
      return std::nullopt;
  }
}

v1::Target::Kind TargetKindToProto(engine::TargetKind kind) {
  switch (kind) {
    case engine::TargetKind::kPredictedClassProb:
      return v1::Target::PREDICTED_CLASS_PROB;
    case engine::TargetKind::kClassProb:
      return v1::Target::CLASS_PROB;
    case engine::TargetKind::kClassLogit:
      return v1::Target::CLASS_LOGIT;
    case engine::TargetKind::kEmbeddingSimilarity:
      return v1::Target::EMBEDDING_SIMILARITY;
    case engine::TargetKind::kClassLogProb:
      return v1::Target::CLASS_LOG_PROB;
    case engine::TargetKind::kSequenceLogProb:
      return v1::Target::SEQUENCE_LOG_PROB;
  }
  return v1::Target::KIND_UNSPECIFIED;
}

void AttributionOptionsToProto(const engine::AttributionOptions& options,
                               v1::AttributionOptions* out) {
  out->set_rule(RuleToProto(options.rule));
  out->set_steps(options.steps);
  for (int l : options.layers) out->add_layers(l);
  out->mutable_target()->set_kind(TargetKindToProto(options.target.kind));
  out->mutable_target()->set_class_index(options.target.class_index);
  out->mutable_target()->set_reference_text(options.target.reference_text);
  out->mutable_target()->set_next_token(options.target.next_token);
  out->mutable_target()->set_continuation(options.target.continuation);
  out->set_precision(PrecisionToProto(options.precision));
}

void AttributionToProto(const engine::ExampleAttribution& r, const v1::ResultOptions& options,
                        const std::vector<std::string>& labels, v1::ExampleAttribution* out) {
  for (const auto& t : r.encoding.tokens) out->add_tokens(t);
  for (int32_t id : r.encoding.input_ids) out->add_input_ids(id);
  for (int32_t id : r.encoding.token_type_ids) out->add_token_type_ids(id);
  auto* pred = out->mutable_prediction();
  pred->set_predicted(r.prediction.predicted);
  if (r.prediction.predicted >= 0 && r.prediction.predicted < static_cast<int>(labels.size())) {
    pred->set_label(labels[r.prediction.predicted]);
  } else if (!r.prediction.top_tokens.empty()) {
    pred->set_label(r.prediction.top_tokens[0].token);
  }
  for (float p : r.prediction.probabilities) pred->add_probabilities(p);
  for (float l : r.prediction.logits) pred->add_logits(l);
  pred->set_problem_type(r.prediction.problem_type);
  for (const auto& t : r.prediction.top_tokens) {
    auto* top = pred->add_top_tokens();
    top->set_id(t.id);
    top->set_token(t.token);
    top->set_probability(t.probability);
    top->set_logit(t.logit);
  }
  pred->set_predicted_probability(r.prediction.predicted_probability);
  out->set_target_class(r.target_class);
  out->set_scored_position(r.scored_position);
  out->set_continuation_start(std::max(r.continuation_start, 0));  // 0: no continuation
  out->set_precision(PrecisionToProto(r.precision));
  const int n = static_cast<int>(r.encoding.size());
  for (const auto& layer : r.layers) {
    auto* pl = out->add_layers();
    pl->set_layer(layer.layer);
    pl->set_num_heads(layer.num_heads);
    pl->set_target_at_full(layer.target_at_full);
    pl->set_target_at_zero(layer.target_at_zero);
    pl->set_attribution_sum(layer.attribution_sum);
    pl->set_completeness_gap(layer.completeness_gap);
    const int h = layer.num_heads;
    if (options.full_matrices()) {
      TensorToProto(layer.attribution.data(), layer.attribution.size(), {h, n, n}, options.fp16(),
                    pl->mutable_attribution());
    }
    if (options.attention() && !layer.attention.empty()) {
      TensorToProto(layer.attention.data(), layer.attention.size(), {h, n, n}, options.fp16(),
                    pl->mutable_attention());
    }
    if (options.head_summed()) {
      std::vector<float> sum(static_cast<size_t>(n) * n, 0.0f);
      for (int k = 0; k < h; ++k) {
        for (size_t c = 0; c < sum.size(); ++c) sum[c] += layer.attribution[k * sum.size() + c];
      }
      TensorToProto(sum.data(), sum.size(), {n, n}, options.fp16(), pl->mutable_head_summed());
    }
    if (options.top_k() > 0) {
      std::vector<size_t> idx(layer.attribution.size());
      std::iota(idx.begin(), idx.end(), 0);
      const size_t k = std::min<size_t>(options.top_k(), idx.size());
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](size_t a, size_t b) {
        return layer.attribution[a] > layer.attribution[b];
      });
      for (size_t t = 0; t < k; ++t) {
        auto* c = pl->add_top_connections();
        c->set_layer(layer.layer);
        c->set_head(static_cast<int>(idx[t] / (n * n)));
        c->set_query(static_cast<int>((idx[t] / n) % n));
        c->set_key(static_cast<int>(idx[t] % n));
        c->set_score(layer.attribution[idx[t]]);
      }
    }
  }
  if (options.tree()) {
    const double tau = options.tree_tau() > 0 ? options.tree_tau() : engine::kDefaultTreeTau;
    // A tree that cannot be built (not every layer attributed) is left unset rather than guessed.
    auto tree = engine::BuildAttributionTree(r, static_cast<int>(r.layers.size()), tau);
    if (tree.ok()) TreeToProto(*tree, out->mutable_tree());
  }
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
  for (const auto& t : a.prediction().top_tokens()) {
    r.prediction.top_tokens.push_back({t.id(), t.token(), t.probability(), t.logit()});
  }
  r.prediction.predicted_probability = a.prediction().predicted_probability();
  r.prediction.problem_type = a.prediction().problem_type();
  r.target_class = a.target_class();
  r.scored_position = a.scored_position();
  r.continuation_start = a.continuation_start() > 0 ? a.continuation_start() : -1;
  r.precision = a.precision() == v1::BF16 ? engine::Precision::kBf16 : engine::Precision::kFp32;
  const size_t n = r.encoding.tokens.size();
  for (const auto& pl : a.layers()) {
    engine::LayerAttribution l;
    l.layer = pl.layer();
    l.num_heads = pl.num_heads();
    l.target_at_full = pl.target_at_full();
    l.target_at_zero = pl.target_at_zero();
    l.attribution_sum = pl.attribution_sum();
    l.completeness_gap = pl.completeness_gap();
    if (pl.has_attribution()) {
      ATTATTR_ASSIGN_OR_RETURN(
          auto values, LayerMatrix(pl.attribution(), l.layer, l.num_heads, n, "attribution"));
      l.attribution = std::move(values);
    }
    if (pl.has_attention()) {
      ATTATTR_ASSIGN_OR_RETURN(auto values,
                               LayerMatrix(pl.attention(), l.layer, l.num_heads, n, "attention"));
      l.attention = std::move(values);
    }
    r.layers.push_back(std::move(l));
  }
  return r;
}

void TreeToProto(const engine::AttributionTree& tree, v1::AttributionTree* out) {
  out->set_tau(tree.tau);
  out->set_root(tree.root);
  out->set_top(tree.top);
  out->set_root_edge_score(tree.root_edge_score);
  for (const auto& n : tree.nodes) {
    auto* pn = out->add_nodes();
    pn->set_position(n.position);
    pn->set_token(n.token);
    pn->set_layer(n.layer);
  }
  for (const auto& e : tree.edges) {
    auto* pe = out->add_edges();
    pe->set_parent(e.parent);
    pe->set_child(e.child);
    pe->set_layer(e.layer);
    pe->set_score(e.score);
  }
}

absl::StatusOr<engine::AttributionTree> TreeFromProto(const v1::ExampleAttribution& a) {
  const auto& p = a.tree();
  engine::AttributionTree t;
  t.tau = p.tau();
  t.root = p.root();
  if (p.root() >= 0 && p.root() < a.tokens_size()) t.root_token = a.tokens(p.root());
  t.top = p.top();
  t.root_edge_score = p.root_edge_score();
  for (const auto& n : p.nodes()) t.nodes.push_back({n.position(), n.token(), n.layer()});
  for (const auto& e : p.edges()) t.edges.push_back({e.parent(), e.child(), e.layer(), e.score()});
  if (absl::Status s = engine::CheckAttributionTree(t, a.tokens_size()); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("tree.", s.message()));
  }
  return t;
}

void ModelToProto(const std::string& name, const engine::ModelInfo& info, v1::Model* out) {
  out->set_name(name);
  out->set_architecture(info.architecture);
  out->set_num_layers(info.num_layers);
  out->set_num_heads(info.num_heads);
  out->set_hidden_size(info.hidden_size);
  out->set_max_length(info.max_length);
  out->set_has_classifier(info.has_classifier);
  for (const auto& l : info.labels) out->add_labels(l);
  out->set_parameter_count(info.parameter_count);
  out->set_device(info.device);
  out->set_family(info.family);
  out->set_tokenizer(info.tokenizer);
  for (int h : info.heads_per_layer) out->add_heads_per_layer(h);
  out->set_decoder(info.decoder);
  out->set_num_key_value_heads(info.num_key_value_heads);
  out->set_language_model(info.language_model);
  out->set_num_classes(info.num_classes);
  out->set_problem_type(info.problem_type);
  out->set_weights(PrecisionToProto(info.weights));
  out->set_weight_bytes(info.weight_bytes);
}

engine::ModelInfo ModelInfoFromProto(const v1::Model& model) {
  engine::ModelInfo info;
  info.architecture = model.architecture();
  info.num_layers = model.num_layers();
  info.num_heads = model.num_heads();
  info.hidden_size = model.hidden_size();
  info.max_length = model.max_length();
  info.has_classifier = model.has_classifier();
  info.labels.assign(model.labels().begin(), model.labels().end());
  info.parameter_count = model.parameter_count();
  info.device = model.device();
  info.family = model.family();
  info.tokenizer = model.tokenizer();
  info.heads_per_layer.assign(model.heads_per_layer().begin(), model.heads_per_layer().end());
  info.decoder = model.decoder();
  info.num_key_value_heads = model.num_key_value_heads();
  info.language_model = model.language_model();
  info.num_classes = model.num_classes();
  info.problem_type = model.problem_type();
  info.weights = model.weights() == v1::BF16 ? engine::Precision::kBf16 : engine::Precision::kFp32;
  info.weight_bytes = model.weight_bytes();
  return info;
}

}  // namespace attattr::convert
