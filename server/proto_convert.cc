// Proto <-> engine conversion (see proto_convert.h).
#include "server/proto_convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "attattr/engine/attribution_tree.h"

namespace attattr::server {
namespace {

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

void FillTensor(const float* data, size_t count, std::vector<int32_t> shape, bool fp16,
                v1::Tensor* out) {
  for (int32_t d : shape) out->add_shape(d);
  if (fp16) {
    std::string bytes(count * 2, '\0');
    for (size_t i = 0; i < count; ++i) {
      const uint16_t h = FloatToHalf(data[i]);
      bytes[2 * i] = static_cast<char>(h & 0xff);
      bytes[2 * i + 1] = static_cast<char>(h >> 8);
    }
    out->set_f16(std::move(bytes));
  } else {
    auto* values = out->mutable_f32()->mutable_values();
    values->Reserve(static_cast<int>(count));
    for (size_t i = 0; i < count; ++i) values->Add(data[i]);
  }
}

}  // namespace

absl::StatusOr<engine::AttributionOptions> AttributionOptionsFromProto(
    const v1::AttributionOptions& p, const engine::Model& model, const ServerConfig& config,
    const std::string& field) {
  const engine::ModelInfo& info = model.info();
  engine::AttributionOptions o;
  o.memory_budget_bytes = config.memory_budget_bytes;
  switch (p.rule()) {
    case v1::LEFT_RIEMANN: o.rule = engine::QuadratureRule::kLeftRiemann; break;
    case v1::TRAPEZOID: o.rule = engine::QuadratureRule::kTrapezoid; break;
    case v1::GAUSS_LEGENDRE:
    case v1::QUADRATURE_RULE_UNSPECIFIED: o.rule = engine::QuadratureRule::kGaussLegendre; break;
    default: return Invalid(field + ".rule", absl::StrCat("unknown rule ", p.rule()));
  }
  if (p.steps() != 0) o.steps = p.steps();
  const int min_steps = o.rule == engine::QuadratureRule::kTrapezoid ? 2 : 1;
  if (o.steps < min_steps || o.steps > config.max_steps) {
    return Invalid(field + ".steps", absl::StrCat(o.steps, " is not in [", min_steps, ", ",
                                                  config.max_steps, "] (server limit --max-steps)"));
  }
  for (int i = 0; i < p.layers_size(); ++i) {
    const int l = p.layers(i);
    if (l < 0 || l >= info.num_layers) {
      return Invalid(absl::StrCat(field, ".layers[", i, "]"),
                     absl::StrCat(l, " is not a layer of this model (0..", info.num_layers - 1, ")"));
    }
    if (i > 0 && l <= p.layers(i - 1)) {
      return Invalid(absl::StrCat(field, ".layers[", i, "]"), "layers must be ascending and unique");
    }
    o.layers.push_back(l);
  }
  const auto& t = p.target();
  switch (t.kind()) {
    case v1::Target::KIND_UNSPECIFIED:
    case v1::Target::PREDICTED_CLASS_PROB:
      o.target.kind = engine::TargetKind::kPredictedClassProb;
      break;
    case v1::Target::CLASS_PROB: o.target.kind = engine::TargetKind::kClassProb; break;
    case v1::Target::CLASS_LOGIT: o.target.kind = engine::TargetKind::kClassLogit; break;
    case v1::Target::EMBEDDING_SIMILARITY:
      o.target.kind = engine::TargetKind::kEmbeddingSimilarity;
      break;
    default: return Invalid(field + ".target.kind", absl::StrCat("unknown kind ", t.kind()));
  }
  o.target.class_index = t.class_index();
  o.target.reference_text = t.reference_text();
  if (o.target.kind != engine::TargetKind::kEmbeddingSimilarity && !info.has_classifier) {
    return Invalid(field + ".target.kind",
                   "this model is encoder-only (no classes): use EMBEDDING_SIMILARITY");
  }
  if ((o.target.kind == engine::TargetKind::kClassProb ||
       o.target.kind == engine::TargetKind::kClassLogit) &&
      (t.class_index() < 0 || t.class_index() >= static_cast<int>(info.labels.size()))) {
    return Invalid(field + ".target.class_index",
                   absl::StrCat(t.class_index(), " is not a class of this model (0..",
                                info.labels.size() - 1, ")"));
  }
  if (o.target.kind == engine::TargetKind::kEmbeddingSimilarity && t.reference_text().empty()) {
    return Invalid(field + ".target.reference_text", "required for EMBEDDING_SIMILARITY");
  }
  if (auto s = engine::ValidateAttributionOptions(model, o); !s.ok()) {
    return Invalid(field, std::string(s.message()));
  }
  return o;
}

absl::StatusOr<ExplainCall> ExplainFromProto(const v1::ExplainRequest& request,
                                             const engine::Model& model,
                                             const ServerConfig& config) {
  ExplainCall call;
  call.model = &model;
  const auto& ex = request.example();
  if (ex.text().empty()) return Invalid("example.text", "empty");
  if (ex.has_text_pair() && ex.text_pair().empty()) return Invalid("example.text_pair", "empty");
  const int limit = std::min(config.max_explain_tokens, model.info().max_length);
  std::optional<std::string_view> pair;
  if (ex.has_text_pair()) pair = ex.text_pair();
  // Tokenize without truncation to tell the caller when the text is too long.
  auto full = model.tokenizer().Encode(ex.text(), pair, 1 << 20);
  if (!full.ok()) return Invalid("example.text", std::string(full.status().message()));
  if (static_cast<int>(full->size()) > limit) {
    return Invalid("example.text",
                   absl::StrCat(full->size(), " word pieces (with [CLS]/[SEP]) exceed the limit of ",
                                limit, " (the model's maximum length and --max-explain-tokens)"));
  }
  call.encoding = std::move(*full);
  auto options = AttributionOptionsFromProto(request.options(), model, config, "options");
  if (!options.ok()) return options.status();
  call.options = std::move(*options);
  auto result = ResultOptionsFromProto(request.result(), request.has_result(),
                                       std::numeric_limits<int>::max(), "result");
  if (!result.ok()) return result.status();
  call.result = std::move(*result);
  if (auto s = CheckTreeLayers(call.options, call.result, model.info(), "options.layers");
      !s.ok()) {
    return s;
  }
  return call;
}

absl::StatusOr<v1::ResultOptions> ResultOptionsFromProto(const v1::ResultOptions& result,
                                                         bool has_result, int max_top_k,
                                                         const std::string& field) {
  v1::ResultOptions out = result;
  if (!has_result) out.set_top_k(10);
  if (out.top_k() < 0) return Invalid(field + ".top_k", "must be >= 0");
  if (out.top_k() > max_top_k) {
    return Invalid(field + ".top_k",
                   absl::StrCat(out.top_k(), " is above the limit of ", max_top_k));
  }
  if (out.tree() && out.tree_tau() == 0) out.set_tree_tau(engine::kDefaultTreeTau);
  if (out.tree_tau() != 0) {  // a τ given without a tree is still checked
    if (auto s = engine::ValidateTreeTau(out.tree_tau(), field + ".tree_tau"); !s.ok()) return s;
  }
  return out;
}

absl::Status CheckTreeLayers(const engine::AttributionOptions& options,
                             const v1::ResultOptions& result, const engine::ModelInfo& info,
                             const std::string& layers_field) {
  if (!result.tree() || options.layers.empty() ||
      static_cast<int>(options.layers.size()) == info.num_layers) {
    return absl::OkStatus();
  }
  return Invalid(layers_field,
                 absl::StrCat("an attribution tree needs every layer attributed; leave ",
                              layers_field, " empty or list all ", info.num_layers, " layers"));
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
  }
  for (float p : r.prediction.probabilities) pred->add_probabilities(p);
  for (float l : r.prediction.logits) pred->add_logits(l);
  out->set_target_class(r.target_class);
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
      FillTensor(layer.attribution.data(), layer.attribution.size(), {h, n, n}, options.fp16(),
                 pl->mutable_attribution());
    }
    if (options.attention() && !layer.attention.empty()) {
      FillTensor(layer.attention.data(), layer.attention.size(), {h, n, n}, options.fp16(),
                 pl->mutable_attention());
    }
    if (options.head_summed()) {
      std::vector<float> sum(static_cast<size_t>(n) * n, 0.0f);
      for (int k = 0; k < h; ++k) {
        for (size_t c = 0; c < sum.size(); ++c) sum[c] += layer.attribution[k * sum.size() + c];
      }
      FillTensor(sum.data(), sum.size(), {n, n}, options.fp16(), pl->mutable_head_summed());
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
    // Cannot fail after CheckTreeLayers and ResultOptionsFromProto; a tree that cannot be built
    // is left unset rather than guessed.
    auto tree = engine::BuildAttributionTree(r, static_cast<int>(r.layers.size()), tau);
    if (tree.ok()) {
      auto* t = out->mutable_tree();
      t->set_tau(tree->tau);
      t->set_root(tree->root);
      t->set_top(tree->top);
      t->set_root_edge_score(tree->root_edge_score);
      for (const auto& n : tree->nodes) {
        auto* pn = t->add_nodes();
        pn->set_position(n.position);
        pn->set_token(n.token);
        pn->set_layer(n.layer);
      }
      for (const auto& e : tree->edges) {
        auto* pe = t->add_edges();
        pe->set_parent(e.parent);
        pe->set_child(e.child);
        pe->set_layer(e.layer);
        pe->set_score(e.score);
      }
    }
  }
}

}  // namespace attattr::server
