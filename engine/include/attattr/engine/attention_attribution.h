// Self-attention attribution (AttAttr, Hao et al. 2021; DESIGN.md §1):
//   Attr^l = A^l ⊙ ∫₀¹ ∂F_x(α·A^l)/∂A^l dα   (zero-attention baseline),
// for chosen layers l, with the per-layer completeness gap. The fast path runs the layers below l
// once, needs only the value projection of layer l, takes gradients with respect to the scaled
// probabilities only, trims to the real length and batches α-points and examples within a memory
// budget. Thread-safety: Run() may be called concurrently on one const Model; each call uses
// thread-local grad mode and its own tensors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/example.h"
#include "attattr/engine/memory_plan.h"
#include "attattr/engine/model.h"
#include "attattr/engine/precision.h"
#include "attattr/engine/quadrature.h"
#include "attattr/engine/run_control.h"

namespace attattr::engine {

enum class TargetKind {
  kPredictedClassProb,   // softmax probability of the class the clean pass predicts (default)
  kClassProb,            // softmax probability of `class_index`
  kClassLogit,           // logit of `class_index`
  kEmbeddingSimilarity,  // cosine(mean-pooled last hidden state, reference embedding)
  kClassLogProb,         // log-softmax of `class_index` (a language model's next-token log-prob)
  // Language models: log p(continuation | input) = Σ_t log p(c_t | input, c_<t), teacher-forced:
  // the continuation's tokens are appended to each input and F sums their log-probabilities.
  kSequenceLogProb,
};

struct AttributionTarget {
  TargetKind kind = TargetKind::kPredictedClassProb;
  int class_index = -1;        // for kClassProb / kClassLogit / kClassLogProb
  std::string reference_text;  // for kEmbeddingSimilarity (embedded with this model) ...
  std::vector<float> reference_embedding;  // ... or given directly ([hidden_size]); text wins
  // Language models: the next token whose probability, log-probability or logit is F, as text that
  // encodes to exactly one token (" Paris" for a byte-level BPE); sets class_index (NextTokenId).
  std::string next_token;
  // kSequenceLogProb: the continuation text, tokenized on its own (special tokens aside) and
  // appended to every input (ContinuationIds).
  std::string continuation;
};

struct AttributionOptions {
  AttributionTarget target;
  // Default: Gauss–Legendre with m = 8 (kDefaultQuadratureRule / kDefaultQuadratureSteps).
  QuadratureRule rule = kDefaultQuadratureRule;
  int steps = kDefaultQuadratureSteps;
  // Layers to attribute (0-based, ascending, unique). Empty: all layers.
  std::vector<int> layers;
  // Activation memory one chunk of α-points may use (memory_plan.h). Examples are grouped so that
  // one α-point of each fits it together, and each chunk holds as many points as fit; a single
  // example whose one point exceeds the budget still runs alone. Studies size their forward
  // batches and the results they hold by it too. Default: 1 GiB.
  int64_t memory_budget_bytes = kDefaultMemoryBudgetBytes;
  // At most this many examples padded into one batch (sorted by length first; fewer when the
  // memory budget says so). Default: 4 (bench/README.md: 4 beat
  // 8 and 16 by ~20 % on SST-2 lengths; the α-points already fill the batch dimension).
  int max_batch_examples = 4;
  // Keep the clean attention probabilities A^l in the result. Default: true.
  bool keep_attention = true;
  // The integrand's arithmetic (precision.h). Default: fp32. The reference scheme is always fp32.
  Precision precision = Precision::kFp32;
};

struct LayerAttribution {
  int layer = 0;
  int num_heads = 0;               // H of this layer
  std::vector<float> attribution;  // [H, n, n], row i = query, column j = key
  std::vector<float> attention;    // [H, n, n] clean probabilities (empty unless kept)
  double target_at_full = 0;       // F_x(A^l)
  double target_at_zero = 0;       // F_x(0)
  double attribution_sum = 0;      // Σ Attr^l
  double completeness_gap = 0;     // see completeness_gap.h
};

struct ExampleAttribution {
  Encoding encoding;                     // n tokens
  Prediction prediction;                 // clean pass (empty logits for encoder-only models)
  int target_class = -1;                 // class whose probability/logit is F (-1 for similarity)
  std::vector<LayerAttribution> layers;  // in the order of AttributionOptions::layers
  // The query position whose output F reads: 0 for the encoders ([CLS]; also mean pooling's
  // convention), the last token for a decoder (for a sequence target the last position F reads,
  // the one before the last continuation token). Attribution trees are rooted there.
  int scored_position = 0;
  // kSequenceLogProb: the position of the first continuation token in `encoding`; -1 otherwise.
  int continuation_start = -1;
  // The integrand's arithmetic (AttributionOptions::precision; the reference scheme: fp32).
  Precision precision = Precision::kFp32;
};

// The token id `text` encodes to, for AttributionTarget::next_token: InvalidArgument naming
// target.next_token unless the model is a language model and the text is exactly one token
// (special tokens the tokenizer adds, such as a BOS, aside).
absl::StatusOr<int> NextTokenId(const Model& model, const std::string& text);

// The token ids of a kSequenceLogProb continuation (special tokens the tokenizer adds aside):
// InvalidArgument naming target.continuation unless the model is a language model and the text
// has at least one token.
absl::StatusOr<std::vector<int32_t>> ContinuationIds(const Model& model, const std::string& text);
// The tokens attribution appends to each input for `target`: a sequence target's continuation
// length, else 0 (also 0 for a continuation ValidateAttributionOptions would refuse).
int TargetExtraTokens(const Model& model, const AttributionTarget& target);

// Validates options against the model: InvalidArgument naming the field (steps, precision,
// layers[i], target, target.class_index, target.next_token, target.continuation,
// target.reference_text, target.reference_embedding, memory_budget_bytes, max_batch_examples),
// as a field error (attattr/base/field_error.h) so each boundary can name it in its own terms.
absl::Status ValidateAttributionOptions(const Model& model, const AttributionOptions& options);

// Attributes every example; results are in input order and do not depend on batching or chunking
// (to ~1e-5). CancelledError when `control` asks to stop (checked before every chunk of α-points).
absl::StatusOr<std::vector<ExampleAttribution>> AttributeExamples(
    const Model& model, const std::vector<Example>& examples, const AttributionOptions& options,
    const RunControl& control = {});
// Same, for already-tokenized inputs.
absl::StatusOr<std::vector<ExampleAttribution>> AttributeEncodings(
    const Model& model, const std::vector<Encoding>& encodings, const AttributionOptions& options,
    const RunControl& control = {});

// The authors' scheme, kept for cross-checks and as the benchmark baseline: per example and target
// layer, full-model forward passes over all m α-points with inputs padded to `pad_to` tokens, then
// backward through every parameter. Same result as AttributeEncodings up to float rounding; slow.
absl::StatusOr<std::vector<ExampleAttribution>> AttributeEncodingsReference(
    const Model& model, const std::vector<Encoding>& encodings, const AttributionOptions& options,
    int pad_to);

// Activation bytes one α-point of one example of n tokens needs in the costliest of the chosen
// layers (the smallest chunk the engine can run). Admission control compares it with
// AttributionOptions::memory_budget_bytes before work is queued. `head_rows`: the positions a
// language model's head is read at (a sequence target's continuation length; the engine's chunk
// planner counts the vocabulary-wide logits at each).
int64_t AttributionBytesPerPoint(const ModelInfo& info, int n, const AttributionOptions& options,
                                 int head_rows = 1);

// Floating-point operations AttributeEncodings spends on one example of n tokens (forward and
// input-gradient backward over all α-points and the chosen layers), for GFLOP/s reports.
double AttributionFlops(const ModelInfo& info, int n, const AttributionOptions& options);

}  // namespace attattr::engine
