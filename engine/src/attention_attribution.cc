// Self-attention attribution, fast path and the authors' reference scheme (see
// attention_attribution.h). Fast path per batch of examples: one clean no-grad pass caches every
// layer's input h_l and probabilities A^l, and gives F(A); one stacked no-grad pass gives every
// chosen layer's F(0) (TargetsAtZero); for each target layer l only V = h_l W_v is needed, the
// α-points are stacked in the batch dimension (chunked by the memory budget) and gradients are
// taken with respect to the scaled probabilities alone (weights never require grad). With
// Precision::kBf16 the α-points' forward passes run under bf16 autocast (low_precision.h).
#include "attattr/engine/attention_attribution.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "attattr/base/field_error.h"
#include "attattr/base/quote.h"
#include "attattr/base/status_macros.h"
#include "attattr/engine/completeness_gap.h"
#include "low_precision.h"
#include "model_impl.h"
#include "torch_boundary.h"

namespace attattr::engine {
namespace {

// Per-row choice of what F reads off the output.
struct TargetSpec {
  TargetKind kind = TargetKind::kPredictedClassProb;
  torch::Tensor classes;    // [B] int64, for classifier targets
  torch::Tensor reference;  // [d], for similarity
  // kSequenceLogProb: the positions whose output predicts each continuation token, and those
  // tokens' ids: both [B, k] int64.
  torch::Tensor positions, next_ids;
  // F reads the first token only (a [CLS] classifier, not the mean-pooled similarity): the last
  // layer runs for query row 0 alone. Exact: no other row of the last layer reaches F, so their
  // attributions are exactly zero either way.
  bool first_row_only = false;
};

// F for each row of the last hidden state x [R, n, d]; `rows` = how many copies of the B examples
// are stacked (R = rows · B).
torch::Tensor TargetValues(const Encoder& enc, const TargetSpec& target, const torch::Tensor& x,
                           const torch::Tensor& attention_mask, int64_t rows) {
  if (target.kind == TargetKind::kEmbeddingSimilarity) {
    auto mask = attention_mask.repeat({rows, 1});
    auto pooled = MeanPool(x.to(torch::kFloat32), mask);
    return torch::cosine_similarity(pooled, target.reference.unsqueeze(0), 1, 1e-8);
  }
  if (target.kind == TargetKind::kSequenceLogProb) {
    const auto positions = target.positions.repeat({rows, 1});  // [R, k]
    const auto hidden = x.gather(1, positions.unsqueeze(2).expand({-1, -1, x.size(2)}));
    const auto log_probs =
        torch::log_softmax(enc.LanguageModelLogits(hidden).to(torch::kFloat32), -1);  // [R, k, V]
    return log_probs.gather(2, target.next_ids.repeat({rows, 1}).unsqueeze(2)).squeeze(2).sum(1);
  }
  // fp32 logits (a bf16 integrand's head emits bf16): softmax and F keep fp32's resolution.
  auto logits = enc.Head(x, attention_mask.repeat({rows, 1})).to(torch::kFloat32);
  auto idx = target.classes.repeat({rows}).unsqueeze(1);
  if (target.kind == TargetKind::kClassLogit) return logits.gather(1, idx).squeeze(1);
  if (target.kind == TargetKind::kClassLogProb) {
    return torch::log_softmax(logits, -1).gather(1, idx).squeeze(1);
  }
  return torch::softmax(logits, -1).gather(1, idx).squeeze(1);
}

// Stacks `rows` copies of t along dim 0: [B, ...] -> [rows·B, ...].
torch::Tensor Stack(const torch::Tensor& t, int64_t rows) {
  std::vector<int64_t> reps(t.dim(), 1);
  reps[0] = rows;
  return t.repeat(reps);
}

// Layers l+1.. on top of layer l whose context is `ctx`; returns F per row.
torch::Tensor RunAbove(const Encoder& enc, int l, const torch::Tensor& h_rep,
                       const torch::Tensor& ctx, const torch::Tensor& add_mask_rep,
                       const TargetSpec& target, const torch::Tensor& attention_mask,
                       int64_t rows) {
  const int last = enc.num_layers() - 1;
  const bool row0 = target.first_row_only;
  auto x = row0 && l == last ? enc.FinishLayer(l, h_rep.narrow(1, 0, 1), ctx.narrow(2, 0, 1))
                             : enc.FinishLayer(l, h_rep, ctx);
  for (int u = l + 1; u <= last; ++u) {
    x = row0 && u == last ? enc.FirstRowOfLayer(u, x, add_mask_rep)
                          : enc.Layer(u, x, add_mask_rep, nullptr, nullptr);
  }
  return TargetValues(enc, target, x, attention_mask, rows);
}

// F(0) of each layer in `layers` (ascending): that layer's context zero, the layers above it as
// they are, from the clean inputs `hidden` (hidden[l] = layer l's input, [B, n, d]); [k·B] with
// layer-major rows. The paths started at each layer run through the layers above together,
// stacked in the batch dimension, so each layer above is one larger GEMM rather than one small
// GEMM per path.
torch::Tensor TargetsAtZero(const Encoder& enc, const std::vector<int>& layers,
                            const std::vector<torch::Tensor>& hidden, const torch::Tensor& add_mask,
                            const TargetSpec& target, const torch::Tensor& attention_mask) {
  const int last = enc.num_layers() - 1;
  const bool row0 = target.first_row_only;
  torch::Tensor paths;  // after layer u: [k·B, n (1 past the last layer with row0), d]
  int64_t k = 0;
  size_t next = 0;
  for (int u = layers.front(); u <= last; ++u) {
    const bool row_only = row0 && u == last;
    if (k > 0) {
      const auto mask = Stack(add_mask, k);
      paths = row_only ? enc.FirstRowOfLayer(u, paths, mask)
                       : enc.Layer(u, paths, mask, nullptr, nullptr);
    }
    if (next < layers.size() && layers[next] == u) {
      const torch::Tensor& h = hidden[u];
      const auto zero =
          torch::zeros({h.size(0), enc.num_heads(u), h.size(1), enc.head_dim()}, h.options());
      const auto start = row_only ? enc.FinishLayer(u, h.narrow(1, 0, 1), zero.narrow(2, 0, 1))
                                  : enc.FinishLayer(u, h, zero);
      paths = k > 0 ? torch::cat({paths, start}, 0) : start;
      ++k;
      ++next;
    }
  }
  return TargetValues(enc, target, paths, attention_mask, k);
}

// Where F reads the output: a decoder's last token (for a sequence target the last position it
// reads, before the last continuation token), the encoders' first.
int ScoredPosition(const ModelInfo& info, const Encoding& encoding, bool sequence) {
  const int last = static_cast<int>(encoding.input_ids.size()) - 1;
  return info.decoder ? last - (sequence ? 1 : 0) : 0;
}

// Each encoding with the continuation's tokens appended (a kSequenceLogProb target);
// InvalidArgument naming the example when that passes the model's maximum length.
absl::StatusOr<std::vector<Encoding>> AppendContinuation(const Model& model,
                                                         const std::vector<Encoding>& encodings,
                                                         const std::vector<int32_t>& ids) {
  std::vector<Encoding> out = encodings;
  const Tokenizer& tok = model.tokenizer();
  for (size_t i = 0; i < out.size(); ++i) {
    Encoding& e = out[i];
    if (static_cast<int>(e.size() + ids.size()) > model.info().max_length) {
      return absl::InvalidArgumentError(absl::StrCat(
          "examples[", i, "]: ", e.size(), " tokens and the continuation's ", ids.size(),
          " exceed the model's maximum length of ", model.info().max_length));
    }
    for (int32_t id : ids) {
      e.input_ids.push_back(id);
      e.token_type_ids.push_back(0);
      e.tokens.push_back(tok.IdToToken(id));
      e.offsets.push_back({-1, 0, 0});
    }
  }
  return out;
}

std::vector<int> ResolveLayers(const ModelInfo& info, const AttributionOptions& options) {
  if (!options.layers.empty()) return options.layers;
  std::vector<int> all(info.num_layers);
  std::iota(all.begin(), all.end(), 0);
  return all;
}

absl::StatusOr<torch::Tensor> ReferenceEmbedding(const Model& model,
                                                 const AttributionTarget& target) {
  const auto& impl = model.impl();
  if (!target.reference_text.empty()) {
    auto enc = model.Encode(Example{target.reference_text, std::nullopt, -1});
    if (!enc.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("target.reference_text: ", enc.status().message()));
    }
    ATTATTR_ASSIGN_OR_RETURN(auto emb, model.Embed({*enc}));
    return torch::tensor(emb[0]).to(impl.device);
  }
  return torch::tensor(target.reference_embedding).to(impl.device);
}

// The target with next_token resolved to its class_index.
absl::StatusOr<AttributionTarget> ResolveTarget(const Model& model, const AttributionTarget& t) {
  AttributionTarget out = t;
  if (!t.next_token.empty()) {
    ATTATTR_ASSIGN_OR_RETURN(out.class_index, NextTokenId(model, t.next_token));
  }
  return out;
}

// Per-row target classes for a batch of clean logits [B, C]; `continuation` holds a sequence
// target's token ids, which end every row (attention_mask [B, n]).
TargetSpec MakeTargetSpec(const Encoder& enc, const AttributionTarget& target,
                          const torch::Tensor& logits, const torch::Tensor& reference,
                          const std::vector<int32_t>& continuation,
                          const torch::Tensor& attention_mask) {
  TargetSpec spec;
  spec.kind = target.kind;
  spec.first_row_only = target.kind != TargetKind::kEmbeddingSimilarity &&
                        target.kind != TargetKind::kSequenceLogProb && enc.HeadReadsFirstToken();
  if (target.kind == TargetKind::kSequenceLogProb) {
    const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(attention_mask.device());
    const int64_t k = static_cast<int64_t>(continuation.size());
    const auto lengths = attention_mask.sum(1).to(torch::kInt64);  // [B]
    // Token c_t sits at n_r − k + t and is predicted by the output at n_r − k + t − 1.
    spec.positions = (lengths - k - 1).unsqueeze(1) + torch::arange(k, i64).unsqueeze(0);
    spec.next_ids =
        torch::tensor(std::vector<int64_t>(continuation.begin(), continuation.end()), i64)
            .unsqueeze(0)
            .expand({attention_mask.size(0), k})
            .contiguous();
  } else if (target.kind == TargetKind::kEmbeddingSimilarity) {
    spec.reference = reference;
  } else if (target.kind == TargetKind::kPredictedClassProb) {
    spec.classes = logits.argmax(1);
  } else {
    spec.classes = torch::full({logits.size(0)}, static_cast<int64_t>(target.class_index),
                               torch::TensorOptions().dtype(torch::kInt64).device(logits.device()));
  }
  return spec;
}

// Crops row r of [B, H, n, n] to its real length n_r and stores it in `layer`.
void StoreLayer(const torch::Tensor& attr, const torch::Tensor& probs, int64_t r, int64_t n_r,
                double f_full, double f_zero, bool keep_attention, LayerAttribution* layer) {
  auto a = attr[r].narrow(1, 0, n_r).narrow(2, 0, n_r);
  layer->num_heads = static_cast<int>(attr.size(1));
  layer->attribution = ToVector(a);
  if (keep_attention) layer->attention = ToVector(probs[r].narrow(1, 0, n_r).narrow(2, 0, n_r));
  layer->target_at_full = f_full;
  layer->target_at_zero = f_zero;
  layer->attribution_sum = a.to(torch::kFloat64).sum().item<double>();
  layer->completeness_gap = CompletenessGap(layer->attribution_sum, f_full, f_zero);
}

}  // namespace

absl::Status ValidateAttributionOptions(const Model& model, const AttributionOptions& options) {
  const ModelInfo& info = model.info();
  ATTATTR_ASSIGN_OR_RETURN(auto points, MakeQuadrature(options.rule, options.steps));
  if (options.precision == Precision::kFp32 && info.weights == Precision::kBf16) {
    return InvalidFieldError({"precision"},
                             "fp32 needs the model's weights in fp32; this model keeps bf16 "
                             "weights (loaded with bf16 weight storage): ask for bf16");
  }
  for (size_t i = 0; i < options.layers.size(); ++i) {
    const int l = options.layers[i];
    if (l < 0 || l >= info.num_layers) {
      return InvalidFieldError({"layers", static_cast<int64_t>(i)},
                               absl::StrCat(l, " is not in [0, ", info.num_layers - 1, "]"));
    }
    if (i > 0 && l <= options.layers[i - 1]) {
      return InvalidFieldError({"layers", static_cast<int64_t>(i)},
                               "layers must be ascending and unique");
    }
  }
  const auto& t = options.target;
  if (!t.next_token.empty()) {
    if (t.kind != TargetKind::kClassProb && t.kind != TargetKind::kClassLogProb &&
        t.kind != TargetKind::kClassLogit) {
      return InvalidFieldError({"target.next_token"},
                               "applies to the class probability, log-probability and logit "
                               "targets only");
    }
    ATTATTR_RETURN_IF_ERROR(NextTokenId(model, t.next_token).status());
  }
  switch (t.kind) {
    case TargetKind::kPredictedClassProb:
      if (!info.has_classifier) {
        return InvalidFieldError(
            {"target"}, "encoder-only model has no classes; use the embedding-similarity target");
      }
      if (auto softmax = RequireSoftmaxClasses(info); !softmax.ok()) {
        return InvalidFieldError({"target"}, softmax.message());
      }
      break;
    case TargetKind::kClassProb:
    case TargetKind::kClassLogit:
    case TargetKind::kClassLogProb:
      if (!info.has_classifier) {
        return InvalidFieldError(
            {"target"}, "encoder-only model has no classes; use the embedding-similarity target");
      }
      if (t.next_token.empty() && (t.class_index < 0 || t.class_index >= info.num_classes)) {
        return InvalidFieldError(
            {"target.class_index"},
            absl::StrCat(t.class_index, " is not in [0, ", info.num_classes - 1, "]",
                         info.language_model ? " (token ids)" : ""));
      }
      if (auto softmax = RequireSoftmaxClasses(info);
          t.kind != TargetKind::kClassLogit && !softmax.ok()) {
        return InvalidFieldError({"target"}, softmax.message());
      }
      break;
    case TargetKind::kSequenceLogProb:
      if (t.continuation.empty()) {
        return InvalidFieldError({"target.continuation"},
                                 "the sequence log-probability target needs a continuation");
      }
      ATTATTR_RETURN_IF_ERROR(ContinuationIds(model, t.continuation).status());
      break;
    case TargetKind::kEmbeddingSimilarity:
      if (t.reference_text.empty() && t.reference_embedding.empty()) {
        return InvalidFieldError({"target.reference_text"},
                                 "the similarity target needs a reference text or embedding");
      }
      if (t.reference_text.empty() &&
          static_cast<int>(t.reference_embedding.size()) != info.hidden_size) {
        return InvalidFieldError({"target.reference_embedding"},
                                 absl::StrCat("has ", t.reference_embedding.size(),
                                              " values, expected ", info.hidden_size));
      }
      break;
  }
  if (options.memory_budget_bytes <= 0) {
    return InvalidFieldError({"memory_budget_bytes"}, "must be positive");
  }
  if (options.max_batch_examples <= 0) {
    return InvalidFieldError({"max_batch_examples"}, "must be positive");
  }
  return absl::OkStatus();
}

namespace {

// The ids of `text`'s own tokens (special tokens the tokenizer adds aside), for the target field
// `field` (target.next_token, target.continuation), which only a language model has.
absl::StatusOr<std::vector<int32_t>> LanguageModelTokens(const Model& model,
                                                         const std::string& text,
                                                         const char* field) {
  if (!model.info().language_model) {
    return InvalidFieldError(
        {field}, absl::StrCat("model is not a language model (", model.info().architecture,
                              "); next-token and sequence targets need a causal LM checkpoint"));
  }
  auto encoding = model.Encode(Example{text, std::nullopt, -1});
  if (!encoding.ok()) {
    return InvalidFieldError({field}, encoding.status().message());
  }
  std::vector<int32_t> ids;
  for (size_t i = 0; i < encoding->size(); ++i) {
    if (encoding->offsets[i].segment >= 0) ids.push_back(encoding->input_ids[i]);
  }
  return ids;
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> ContinuationIds(const Model& model, const std::string& text) {
  ATTATTR_ASSIGN_OR_RETURN(auto ids, LanguageModelTokens(model, text, "target.continuation"));
  if (ids.empty()) {
    return InvalidFieldError({"target.continuation"},
                             absl::StrCat(QuoteInput(text), " holds no token"));
  }
  return ids;
}

int TargetExtraTokens(const Model& model, const AttributionTarget& target) {
  if (target.kind != TargetKind::kSequenceLogProb) return 0;
  auto ids = ContinuationIds(model, target.continuation);
  return ids.ok() ? static_cast<int>(ids->size()) : 0;
}

absl::StatusOr<int> NextTokenId(const Model& model, const std::string& text) {
  ATTATTR_ASSIGN_OR_RETURN(auto ids, LanguageModelTokens(model, text, "target.next_token"));
  if (ids.size() != 1) {
    return InvalidFieldError(
        {"target.next_token"},
        absl::StrCat(QuoteInput(text), " is ", ids.size(),
                     " tokens; it must be exactly one (a byte-level BPE marks a leading space: "
                     "' Paris')"));
  }
  return ids[0];
}

namespace {

// What both attribution paths start from: the target with next_token resolved, a sequence
// target's continuation ids, and the inputs with that continuation appended (else as given).
struct PreparedRun {
  AttributionTarget target;
  std::vector<int32_t> continuation;
  std::vector<Encoding> encodings;
};

absl::StatusOr<PreparedRun> PrepareRun(const Model& model, const std::vector<Encoding>& given,
                                       const AttributionOptions& options) {
  ATTATTR_RETURN_IF_ERROR(ValidateAttributionOptions(model, options));
  PreparedRun run;
  ATTATTR_ASSIGN_OR_RETURN(run.target, ResolveTarget(model, options.target));
  if (run.target.kind != TargetKind::kSequenceLogProb) {
    run.encodings = given;
    return run;
  }
  ATTATTR_ASSIGN_OR_RETURN(run.continuation, ContinuationIds(model, run.target.continuation));
  ATTATTR_ASSIGN_OR_RETURN(run.encodings, AppendContinuation(model, given, run.continuation));
  return run;
}

// Everything of an ExampleAttribution but its layers: the input, where F reads it (and where a
// sequence target's continuation of `continuation_tokens` starts), the clean prediction from row r
// of `logits` (undefined without a classifier), and the class F reads.
void StartResult(const Model::Impl& impl, const Encoding& encoding, size_t continuation_tokens,
                 const torch::Tensor& logits, const TargetSpec& target, int64_t r,
                 ExampleAttribution* res) {
  const bool sequence = target.kind == TargetKind::kSequenceLogProb;
  res->encoding = encoding;
  res->scored_position = ScoredPosition(impl.info, encoding, sequence);
  if (sequence) res->continuation_start = static_cast<int>(encoding.size() - continuation_tokens);
  if (logits.defined()) res->prediction = MakePrediction(impl, logits[r]);
  res->target_class =
      target.classes.defined() ? static_cast<int>(target.classes[r].item<int64_t>()) : -1;
}

}  // namespace

absl::StatusOr<std::vector<ExampleAttribution>> AttributeExamples(
    const Model& model, const std::vector<Example>& examples, const AttributionOptions& options,
    const RunControl& control) {
  std::vector<Encoding> encodings;
  encodings.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    auto e = model.Encode(examples[i]);
    if (!e.ok()) {
      return absl::Status(e.status().code(),
                          absl::StrCat("examples[", i, "].", e.status().message()));
    }
    encodings.push_back(std::move(*e));
  }
  return AttributeEncodings(model, encodings, options, control);
}

absl::StatusOr<std::vector<ExampleAttribution>> AttributeEncodings(
    const Model& model, const std::vector<Encoding>& given, const AttributionOptions& options,
    const RunControl& control) {
  ATTATTR_ASSIGN_OR_RETURN(const PreparedRun run, PrepareRun(model, given, options));
  const AttributionTarget& resolved = run.target;
  const std::vector<int32_t>& continuation = run.continuation;
  const std::vector<Encoding>& encodings = run.encodings;
  const auto& impl = model.impl();
  const Encoder& enc = *impl.encoder;
  const ModelInfo& info = model.info();
  const std::vector<int> layers = ResolveLayers(info, options);
  const auto points = *MakeQuadrature(options.rule, options.steps);
  for (size_t i = 0; i < encodings.size(); ++i) {
    if (encodings[i].size() < 1 || static_cast<int>(encodings[i].size()) > info.max_length) {
      return absl::InvalidArgumentError(absl::StrCat("examples[", i, "]: length ",
                                                     encodings[i].size(), " is not in [1, ",
                                                     info.max_length, "]"));
    }
  }
  std::vector<ExampleAttribution> results(encodings.size());
  try {
    torch::Tensor reference;
    if (options.target.kind == TargetKind::kEmbeddingSimilarity) {
      ATTATTR_ASSIGN_OR_RETURN(auto ref, ReferenceEmbedding(model, options.target));
      reference = ref;
    }
    // The α-points' forward passes run at options.precision; everything else in fp32.
    const Encoder& integrand = IntegrandEncoder(impl, options.precision);
    // Positions a language model's head is read at: 1, or a sequence target's continuation.
    const int64_t head_rows = std::max<int64_t>(1, static_cast<int64_t>(continuation.size()));
    // Sort by length so each batch pads little; results go back to input order.
    const std::vector<size_t> order = ShortestFirst(encodings);
    const int64_t total = static_cast<int64_t>(encodings.size() * layers.size());
    int64_t done = 0;
    const auto dev_opts = torch::TensorOptions().dtype(torch::kFloat32).device(impl.device);
    // Groups of at most max_batch_examples whose α-point at the costliest chosen layer (the
    // lowest) fits the budget together: a chunk then holds at least one point of every member.
    const auto groups = PlanBatches(
        order,
        [&](size_t i) {
          return PointBytes(info, layers.front(), static_cast<int64_t>(encodings[i].size()),
                            head_rows);
        },
        options.memory_budget_bytes, static_cast<size_t>(options.max_batch_examples));
    for (const std::vector<size_t>& group : groups) {
      if (control.ShouldStop()) return absl::CancelledError("attribution: cancelled");
      const int64_t b = static_cast<int64_t>(group.size());
      EncoderBatch batch = MakeBatch(encodings, group, impl.device);
      const int64_t n = batch.input_ids.size(1);
      // Passes outside the integrand multiply at the weights' own precision: fp32, or bf16 for
      // bf16 weights (weight_storage.h), whose scope turns autocast on around each of them.
      const auto at_weights = [&] { return LowPrecisionScope(info.weights, impl.device); };
      EncoderOutput clean;
      {
        torch::NoGradGuard no_grad;
        const auto arithmetic = at_weights();
        ForwardOptions fo;
        fo.capture_attention = true;
        fo.capture_hidden_states = true;
        clean = enc.Forward(batch, fo);
      }
      const TargetSpec target = MakeTargetSpec(enc, resolved, clean.logits, reference, continuation,
                                               batch.attention_mask);
      // F(A^l) is the clean pass's F for every l: unscaled probabilities are the clean ones.
      torch::Tensor f_full;
      {
        torch::NoGradGuard no_grad;
        const auto arithmetic = at_weights();
        f_full = TargetValues(enc, target, clean.last_hidden, batch.attention_mask, 1)
                     .to(torch::kFloat64)
                     .cpu();
      }
      const auto f_full_acc = f_full.accessor<double, 1>();
      const auto add_mask = enc.AdditiveMask(batch.attention_mask);
      // F(0) of every chosen layer, in groups of at most as many layers as one chunk has points
      // at layer 0 (a forward pass needs less than a point's forward and backward). fp32 whatever
      // the integrand's precision, so the completeness gap shows a bf16 integrand's error.
      std::vector<double> f_zero(layers.size() * b);
      {
        torch::NoGradGuard no_grad;
        const auto arithmetic = at_weights();
        const int64_t group_size = std::clamp<int64_t>(
            options.memory_budget_bytes / (PointBytes(info, 0, n, head_rows) * b), 1,
            static_cast<int64_t>(layers.size()));
        for (size_t g0 = 0; g0 < layers.size(); g0 += group_size) {
          const size_t g1 = std::min(layers.size(), g0 + group_size);
          const std::vector<int> part(layers.begin() + g0, layers.begin() + g1);
          auto values =
              TargetsAtZero(enc, part, clean.hidden_states, add_mask, target, batch.attention_mask)
                  .to(torch::kFloat64)
                  .cpu()
                  .contiguous();
          std::copy_n(values.data_ptr<double>(), values.numel(), f_zero.begin() + g0 * b);
        }
      }
      for (int64_t r = 0; r < b; ++r) {
        ExampleAttribution& res = results[group[r]];
        StartResult(impl, encodings[group[r]], continuation.size(), clean.logits, target, r, &res);
        res.precision = options.precision;
        res.layers.resize(layers.size());
      }
      for (size_t li = 0; li < layers.size(); ++li) {
        if (control.ShouldStop()) return absl::CancelledError("attribution: cancelled");
        const int l = layers[li];
        const torch::Tensor& probs = clean.attentions[l];  // A^l [B, H, n, n]
        const torch::Tensor& h = clean.hidden_states[l];   // input of layer l [B, n, d]
        const int64_t heads = probs.size(1);
        torch::Tensor values;
        {
          torch::NoGradGuard no_grad;
          const auto arithmetic = at_weights();
          // [B, H, n, dh], fp32 for layer l's own context (bf16 weights give bf16 values).
          values = enc.Values(l, enc.AttentionInput(l, h)).to(torch::kFloat32);
        }
        const int64_t per_point = PointBytes(info, l, n, head_rows) * b;
        const int64_t chunk = std::clamp<int64_t>(options.memory_budget_bytes / per_point, 1,
                                                  static_cast<int64_t>(points.size()));
        auto grad_sum = torch::zeros_like(probs);
        // Layer l's input and mask stacked once for a full chunk; a shorter last chunk uses a
        // prefix (Stack repeats along dim 0, so the first c·B rows are Stack(·, c)).
        const auto h_chunk = Stack(h, chunk);
        const auto mask_chunk = Stack(add_mask, chunk);
        torch::AutoGradMode grad_on(true);
        for (size_t p0 = 0; p0 < points.size(); p0 += chunk) {
          if (control.ShouldStop()) return absl::CancelledError("attribution: cancelled");
          const int64_t c = std::min<int64_t>(chunk, points.size() - p0);
          std::vector<float> alpha(c), weight(c);
          for (int64_t k = 0; k < c; ++k) {
            alpha[k] = static_cast<float>(points[p0 + k].alpha);
            weight[k] = static_cast<float>(points[p0 + k].weight);
          }
          auto alpha_t = torch::tensor(alpha, dev_opts).view({c, 1, 1, 1, 1});
          // Scaled probabilities α_k·A^l for every point and example: [c·B, H, n, n].
          auto scaled = (alpha_t * probs.unsqueeze(0)).reshape({c * b, heads, n, n}).detach();
          scaled.requires_grad_(true);
          torch::Tensor f;
          {
            // Layer l's own context in fp32 (α·A^l is the variable F is differentiated by; the
            // product is cheap), everything above at options.precision.
            auto ctx = torch::matmul(scaled.view({c, b, heads, n, n}), values.unsqueeze(0))
                           .view({c * b, heads, n, enc.head_dim()});
            LowPrecisionScope low_precision(options.precision, impl.device);
            f = RunAbove(integrand, l, h_chunk.narrow(0, 0, c * b), ctx,
                         mask_chunk.narrow(0, 0, c * b), target, batch.attention_mask, c);
          }
          auto w = torch::tensor(weight, dev_opts).repeat_interleave(b);
          auto objective = (f * w).sum();
          auto grad = torch::autograd::grad({objective}, {scaled})[0];
          grad_sum += grad.view({c, b, heads, n, n}).sum(0);
        }
        torch::NoGradGuard no_grad;
        auto attr = probs * grad_sum;  // Attr^l = A^l ⊙ Σ_k w_k ∂F(α_k A^l)/∂(α_k A^l)
        for (int64_t r = 0; r < b; ++r) {
          LayerAttribution& out = results[group[r]].layers[li];
          out.layer = l;
          StoreLayer(attr, probs, r, encodings[group[r]].size(), f_full_acc[r], f_zero[li * b + r],
                     options.keep_attention, &out);
        }
        done += b;
        control.Report({"attribution", done, total});
      }
    }
  } catch (...) {
    return TorchExceptionToStatus("attribution");
  }
  return results;
}

absl::StatusOr<std::vector<ExampleAttribution>> AttributeEncodingsReference(
    const Model& model, const std::vector<Encoding>& given, const AttributionOptions& options,
    int pad_to) {
  ATTATTR_ASSIGN_OR_RETURN(const PreparedRun run, PrepareRun(model, given, options));
  const AttributionTarget& resolved = run.target;
  const std::vector<int32_t>& continuation = run.continuation;
  const std::vector<Encoding>& encodings = run.encodings;
  const auto& impl = model.impl();
  const ModelInfo& info = model.info();
  const std::vector<int> layers = ResolveLayers(info, options);
  const auto points = *MakeQuadrature(options.rule, options.steps);
  std::vector<ExampleAttribution> results(encodings.size());
  try {
    // A private copy of the weights that require grad, as in the authors' training-mode code.
    std::vector<torch::Tensor> params;
    const std::unique_ptr<Encoder> owned = impl.encoder->CloneRequiringGrad(&params);
    const Encoder& enc = *owned;
    // Bf16 weights (weight_storage.h): every pass under bf16 autocast.
    const LowPrecisionScope arithmetic(info.weights, impl.device);
    torch::Tensor reference;
    if (options.target.kind == TargetKind::kEmbeddingSimilarity) {
      ATTATTR_ASSIGN_OR_RETURN(auto ref, ReferenceEmbedding(model, options.target));
      reference = ref;
    }
    const auto dev_opts = torch::TensorOptions().dtype(torch::kFloat32).device(impl.device);
    const int64_t m = static_cast<int64_t>(points.size());
    for (size_t e = 0; e < encodings.size(); ++e) {
      Encoding padded = encodings[e];
      const int64_t n_real = static_cast<int64_t>(padded.size());
      const int64_t n = std::max<int64_t>(pad_to, n_real);
      EncoderBatch batch = MakeBatch({padded}, {0}, impl.device);
      if (n > n_real) {
        auto pad = [&](const torch::Tensor& t) {
          return torch::constant_pad_nd(t, {0, n - n_real}, 0);
        };
        batch = {pad(batch.input_ids), pad(batch.token_type_ids), pad(batch.attention_mask)};
      }
      EncoderOutput clean;
      {
        torch::NoGradGuard no_grad;
        ForwardOptions fo;
        fo.capture_attention = true;
        clean = enc.Forward(batch, fo);
      }
      const TargetSpec target = MakeTargetSpec(enc, resolved, clean.logits, reference, continuation,
                                               batch.attention_mask);
      ExampleAttribution& res = results[e];
      StartResult(impl, encodings[e], continuation.size(), clean.logits, target, 0, &res);
      const EncoderBatch rep{Stack(batch.input_ids, m), Stack(batch.token_type_ids, m),
                             Stack(batch.attention_mask, m)};
      const auto add_mask = enc.AdditiveMask(rep.attention_mask);
      for (int l : layers) {
        torch::AutoGradMode grad_on(true);
        const torch::Tensor probs = clean.attentions[l].detach();
        std::vector<float> alpha(m), weight(m);
        for (int64_t k = 0; k < m; ++k) {
          alpha[k] = static_cast<float>(points[k].alpha);
          weight[k] = static_cast<float>(points[k].weight);
        }
        auto scaled = (torch::tensor(alpha, dev_opts).view({m, 1, 1, 1}) * probs).detach();
        scaled.requires_grad_(true);
        // Full forward from the embeddings for all m points, as the authors' code does.
        auto x = enc.Embed(rep);
        for (int u = 0; u < l; ++u) x = enc.Layer(u, x, add_mask, nullptr, nullptr);
        x = enc.FinishLayer(l, x, torch::matmul(scaled, enc.Values(l, enc.AttentionInput(l, x))));
        for (int u = l + 1; u < enc.num_layers(); ++u)
          x = enc.Layer(u, x, add_mask, nullptr, nullptr);
        auto f = TargetValues(enc, target, x, batch.attention_mask, m);
        auto objective = (f * torch::tensor(weight, dev_opts)).sum();
        std::vector<torch::Tensor> inputs{scaled};
        inputs.insert(inputs.end(), params.begin(), params.end());
        auto grads = torch::autograd::grad({objective}, inputs, /*grad_outputs=*/{},
                                           /*retain_graph=*/c10::nullopt,
                                           /*create_graph=*/false, /*allow_unused=*/true);
        torch::NoGradGuard no_grad;
        auto attr = probs * grads[0].sum(0, /*keepdim=*/true);
        // F(0), F(A) from the fast path's definition, for the completeness report.
        auto ends = torch::cat({torch::zeros_like(probs), probs}, 0);
        auto h = enc.Embed(batch);
        auto add1 = enc.AdditiveMask(batch.attention_mask);
        for (int u = 0; u < l; ++u) h = enc.Layer(u, h, add1, nullptr, nullptr);
        auto f_ends =
            RunAbove(enc, l, Stack(h, 2),
                     torch::matmul(ends, Stack(enc.Values(l, enc.AttentionInput(l, h)), 2)),
                     Stack(add1, 2), target, batch.attention_mask, 2)
                .to(torch::kFloat64)
                .cpu();
        LayerAttribution out;
        out.layer = l;
        StoreLayer(attr, probs, 0, n_real, f_ends[1].item<double>(), f_ends[0].item<double>(),
                   options.keep_attention, &out);
        res.layers.push_back(std::move(out));
      }
    }
  } catch (...) {
    return TorchExceptionToStatus("reference attribution");
  }
  return results;
}

int64_t AttributionBytesPerPoint(const ModelInfo& info, int n, const AttributionOptions& options,
                                 int head_rows) {
  int64_t most = 0;
  for (int l : ResolveLayers(info, options)) {
    most = std::max(most, PointBytes(info, l, n, std::max(head_rows, 1)));
  }
  return most;
}

double AttributionFlops(const ModelInfo& info, int n, const AttributionOptions& options) {
  const double d = info.hidden_size, i = info.intermediate_size, h = info.num_heads;
  const double dh = d / h, nn = static_cast<double>(n);
  const double m = options.steps;
  const double layer_fwd = 8 * nn * d * d + 4 * nn * nn * d + 4 * nn * d * i;
  // A language model's head at one row: [d] x [d, V] forward, the same again for the gradient.
  const double head = info.language_model ? 2 * d * info.num_classes : 0;
  double flops = info.num_layers * layer_fwd + head;  // the clean pass
  for (int l : ResolveLayers(info, options)) {
    const double upper = info.num_layers - 1 - l;
    const double target_fwd = 2 * h * nn * nn * dh + 2 * nn * d * d + 4 * nn * d * i;
    const double target_bwd = target_fwd;
    const double upper_fwd = upper * layer_fwd;
    const double upper_bwd = upper * (8 * nn * d * d + 8 * nn * nn * d + 4 * nn * d * i);
    flops += 2 * nn * d * d;                 // value projection
    flops += target_fwd + upper_fwd + head;  // F(0) (F(A) is the clean pass's own)
    flops += m * (target_fwd + target_bwd + upper_fwd + upper_bwd + 2 * head);
  }
  return flops;
}

}  // namespace attattr::engine
