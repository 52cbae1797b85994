// Proto <-> engine conversion (see proto_convert.h).
#include "proto_convert.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "attattr/base/field_error.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/attribution_convert.h"
#include "attattr/engine/attribution_tree.h"

namespace attattr::server {
namespace {

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

}  // namespace

absl::StatusOr<engine::AttributionOptions> AttributionOptionsFromProto(
    const v1::AttributionOptions& p, const engine::Model& model, const ServerConfig& config,
    const std::string& field) {
  const engine::ModelInfo& info = model.info();
  engine::AttributionOptions o;
  o.memory_budget_bytes = config.memory_budget_bytes;
  const auto rule = convert::RuleFromProto(p.rule());
  if (!rule) return Invalid(field + ".rule", absl::StrCat("unknown rule ", p.rule()));
  o.rule = *rule;
  if (p.steps() != 0) o.steps = p.steps();
  const auto precision = convert::PrecisionFromProto(p.precision(), config.default_precision);
  if (!precision) {
    return Invalid(field + ".precision", absl::StrCat("unknown precision ", p.precision()));
  }
  o.precision = *precision;
  const int min_steps = o.rule == engine::QuadratureRule::kTrapezoid ? 2 : 1;
  if (o.steps < min_steps || o.steps > config.max_steps) {
    return Invalid(field + ".steps",
                   absl::StrCat(o.steps, " is not in [", min_steps, ", ", config.max_steps,
                                "] (server limit --max-steps)"));
  }
  for (int i = 0; i < p.layers_size(); ++i) {
    const int l = p.layers(i);
    if (l < 0 || l >= info.num_layers) {
      return Invalid(
          absl::StrCat(field, ".layers[", i, "]"),
          absl::StrCat(l, " is not a layer of this model (0..", info.num_layers - 1, ")"));
    }
    if (i > 0 && l <= p.layers(i - 1)) {
      return Invalid(absl::StrCat(field, ".layers[", i, "]"),
                     "layers must be ascending and unique");
    }
    o.layers.push_back(l);
  }
  const auto& t = p.target();
  const auto kind = convert::TargetKindFromProto(t.kind());
  if (!kind) return Invalid(field + ".target.kind", absl::StrCat("unknown kind ", t.kind()));
  o.target.kind = *kind;
  o.target.class_index = t.class_index();
  o.target.reference_text = t.reference_text();
  o.target.next_token = t.next_token();
  o.target.continuation = t.continuation();
  if (o.target.kind != engine::TargetKind::kEmbeddingSimilarity && !info.has_classifier) {
    return Invalid(field + ".target.kind",
                   "this model is encoder-only (no classes): use EMBEDDING_SIMILARITY");
  }
  ATTATTR_RETURN_IF_ERROR(CheckTextBytes(t.next_token(), config, field + ".target.next_token"));
  ATTATTR_RETURN_IF_ERROR(CheckTextBytes(t.continuation(), config, field + ".target.continuation"));
  if ((o.target.kind == engine::TargetKind::kClassProb ||
       o.target.kind == engine::TargetKind::kClassLogit ||
       o.target.kind == engine::TargetKind::kClassLogProb) &&
      t.next_token().empty() && (t.class_index() < 0 || t.class_index() >= info.num_classes)) {
    return Invalid(
        field + ".target.class_index",
        absl::StrCat(t.class_index(), " is not a ", info.language_model ? "token id" : "class",
                     " of this model (0..", info.num_classes - 1, ")"));
  }
  ATTATTR_RETURN_IF_ERROR(
      CheckTextBytes(t.reference_text(), config, field + ".target.reference_text"));
  if (o.target.kind == engine::TargetKind::kEmbeddingSimilarity && t.reference_text().empty()) {
    return Invalid(field + ".target.reference_text", "required for EMBEDDING_SIMILARITY");
  }
  if (auto s = engine::ValidateAttributionOptions(model, o); !s.ok()) {
    // The engine names its own field (precision, layers[2], target.next_token); under `field`
    // that is the request's path to it.
    const auto error = GetFieldError(s);
    if (!error) return Invalid(field, std::string(s.message()));
    return Invalid(absl::StrCat(field, ".", FieldPath(error->field)), error->what);
  }
  return o;
}

absl::Status CheckTextBytes(absl::string_view text, const ServerConfig& config,
                            const std::string& field) {
  if (static_cast<int64_t>(text.size()) <= config.max_text_bytes) return absl::OkStatus();
  return Invalid(field, absl::StrCat(text.size(), " bytes, above the server's limit of ",
                                     config.max_text_bytes, " (--max-text-bytes)"));
}

absl::StatusOr<ExplainCall> ExplainFromProto(const v1::ExplainRequest& request,
                                             const engine::Model& model,
                                             const ServerConfig& config) {
  ExplainCall call;
  call.model = &model;
  const auto& ex = request.example();
  if (ex.text().empty()) return Invalid("example.text", "empty");
  if (ex.has_text_pair() && ex.text_pair().empty()) return Invalid("example.text_pair", "empty");
  ATTATTR_RETURN_IF_ERROR(CheckTextBytes(ex.text(), config, "example.text"));
  ATTATTR_RETURN_IF_ERROR(CheckTextBytes(ex.text_pair(), config, "example.text_pair"));
  const int limit = std::min(config.max_explain_tokens, model.info().max_length);
  std::optional<std::string_view> pair;
  if (ex.has_text_pair()) pair = ex.text_pair();
  // Tokenize without truncation to tell the caller when the text is too long.
  auto full = model.tokenizer().Encode(ex.text(), pair, 1 << 20);
  if (!full.ok()) return Invalid("example.text", std::string(full.status().message()));
  if (static_cast<int>(full->size()) > limit) {
    return Invalid(
        "example.text",
        absl::StrCat(full->size(), " word pieces (with [CLS]/[SEP]) exceed the limit of ", limit,
                     " (the model's maximum length and --max-explain-tokens)"));
  }
  if (auto s = engine::CheckSegmentsHaveTokens(*full, ex.has_text_pair()); !s.ok()) {
    const auto field = GetFieldError(s);
    return field ? Invalid("example." + field->field.name, field->what) : s;
  }
  // The ids and token types the embeddings can look up, as jobs check them (Model::Encode):
  // regression (job-spec review), Explain skipped them.
  if (auto s = model.CheckEncoding(*full, ex.has_text_pair()); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("example.", s.message()));
  }
  if (auto s = model.EndAtScoredToken(&*full, ex.has_text_pair()); !s.ok()) {
    const auto field = GetFieldError(s);
    return field ? Invalid("example." + field->field.name, field->what) : s;
  }
  call.encoding = std::move(*full);
  ATTATTR_ASSIGN_OR_RETURN(
      auto options, AttributionOptionsFromProto(request.options(), model, config, "options"));
  call.options = std::move(options);
  // A sequence target's continuation is appended to the text: both count against the limit.
  if (const int extra = engine::TargetExtraTokens(model, call.options.target);
      extra > 0 && static_cast<int>(call.encoding.size()) + extra > limit) {
    return Invalid("options.target.continuation",
                   absl::StrCat(call.encoding.size(), " tokens of text and ", extra,
                                " of continuation exceed the limit of ", limit,
                                " (the model's maximum length and --max-explain-tokens)"));
  }
  ATTATTR_ASSIGN_OR_RETURN(
      auto result,
      ResultOptionsFromProto(request.result(), request.has_result(), kMaxResultTopK, "result"));
  call.result = std::move(result);
  ATTATTR_RETURN_IF_ERROR(
      CheckTreeLayers(call.options, call.result, model.info(), "options.layers"));
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
    ATTATTR_RETURN_IF_ERROR(engine::ValidateTreeTau(out.tree_tau(), field + ".tree_tau"));
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

}  // namespace attattr::server
