// The model abstraction attribution runs on: a stack of self-attention layers whose per-head
// attention probabilities A^l can be replaced (scaled by α), split into the pieces the fast path
// needs — embeddings, the attention mask, layer l's probabilities and value projection, the rest
// of layer l once its context A^l·V is known, and the head that reads the target off the last
// hidden state. Each family implements it (bert_encoder.h: the BERT family; deberta_encoder.h;
// modernbert_encoder.h: pre-LayerNorm, RoPE, GeGLU, local/global layers); a decoder fits the
// same seams (a causal AdditiveMask, rotary positions inside AttentionProbs, grouped KV heads
// expanded to query heads in Values, its own Head). Pre-LayerNorm families normalise layer l's
// input once (AttentionInput) for both AttentionProbs and Values. Implementations are immutable
// after construction, so a const Encoder is safe to use from many threads.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <vector>

#include "torch_pch.h"

namespace attattr::engine {

// What a weight does, for maps that treat weights differently: a matrix multiplies activations
// (linear and projection weights, a head's weights); a table is read by index (token, position and
// segment embeddings; LookUp turns its rows fp32 whatever it is stored in); everything else —
// biases, norm scales, relative-position embeddings that are normalised before use — is kOther.
// Bf16 weight storage (LoadOptions::weights) keeps matrices and tables in bfloat16, kOther in fp32.
enum class WeightRole { kMatrix, kTable, kOther };
using WeightMap = std::function<torch::Tensor(const torch::Tensor&, WeightRole)>;

// A padded batch: every tensor [B, n] (int64 ids, float mask with 1 = real token).
struct EncoderBatch {
  torch::Tensor input_ids;
  torch::Tensor token_type_ids;
  torch::Tensor attention_mask;
};

struct EncoderOutput {
  torch::Tensor last_hidden;                 // [B, n, d]
  torch::Tensor logits;                      // [B, C]; undefined without a classifier
  std::vector<torch::Tensor> attentions;     // L × [B, H_l, n, n] when captured
  std::vector<torch::Tensor> hidden_states;  // L+1 × [B, n, d] (input to layer l at index l)
};

struct ForwardOptions {
  bool capture_attention = false;
  bool capture_hidden_states = false;
  // [L, H] float with 1 = keep; multiplies each layer's probabilities, as Hugging Face does.
  std::optional<torch::Tensor> head_mask;
};

class Encoder {
 public:
  virtual ~Encoder() = default;

  virtual int num_layers() const = 0;
  virtual int head_dim() const = 0;
  // Heads present in layer l (fewer than configured when pruned).
  virtual int num_heads(int l) const = 0;
  virtual bool has_classifier() const = 0;

  // Full clean pass: Embed, every Layer, Head.
  EncoderOutput Forward(const EncoderBatch& batch, const ForwardOptions& options = {}) const;

  // Pieces for attribution -----------------------------------------------------------------------
  virtual torch::Tensor Embed(const EncoderBatch& batch) const = 0;  // [B, n, d]
  // What is added to the attention scores before the softmax, broadcastable to [B, H, n, n].
  // Default: padded keys get finfo.min (exactly zero probability), as Hugging Face's encoders do.
  virtual torch::Tensor AdditiveMask(const torch::Tensor& attention_mask) const;
  // What layer l's attention reads from its input h ([B, n, d]): h itself (post-LayerNorm
  // families), or its pre-attention normalisation (ModernBERT, the decoders). AttentionProbs and
  // Values take this, computed once per layer.
  virtual torch::Tensor AttentionInput(int /*l*/, const torch::Tensor& h) const { return h; }
  // Clean attention probabilities of layer l for attention input x = AttentionInput(l, h):
  // [B, H, n, n].
  virtual torch::Tensor AttentionProbs(int l, const torch::Tensor& x,
                                       const torch::Tensor& add_mask) const = 0;
  // Value projection of layer l for x = AttentionInput(l, h), one per query head: [B, H, n, dh].
  virtual torch::Tensor Values(int l, const torch::Tensor& x) const = 0;
  // Rest of layer l once its context (probs @ values, [B, H, n, dh]) is known; h is its input.
  virtual torch::Tensor FinishLayer(int l, const torch::Tensor& h,
                                    const torch::Tensor& context) const = 0;
  // Classifier logits from the last hidden state ([B, C]); requires has_classifier(). The mask
  // ([B, n], 1 = real token) is for heads that pool over the tokens (ModernBERT's mean pooling).
  virtual torch::Tensor Head(const torch::Tensor& last_hidden,
                             const torch::Tensor& attention_mask) const = 0;
  // A language model's head applied to hidden states [..., d] (the last layer's output at any
  // positions): next-token logits [..., V]. Only for language models (sequence targets).
  virtual torch::Tensor LanguageModelLogits(const torch::Tensor& hidden) const;
  // Whether Head reads the first token's hidden state only (a [CLS] classifier): then the last
  // layer is needed at query row 0 only (FirstRowOfLayer), exactly.
  virtual bool HeadReadsFirstToken() const { return true; }

  // One whole layer; `probs_out` receives the probabilities when non-null.
  torch::Tensor Layer(int l, const torch::Tensor& h, const torch::Tensor& add_mask,
                      const torch::Tensor* head_mask_row, torch::Tensor* probs_out) const;

  // Layer l's output at query row 0 only, [B, 1, d]: that row's attention over every key, then its
  // output projection and feed-forward. Equals Layer(...)[:, :1] (FinishLayer works row by row).
  torch::Tensor FirstRowOfLayer(int l, const torch::Tensor& h, const torch::Tensor& add_mask) const;

  // A copy of the same family whose every defined weight w is map(w, its role); undefined ones
  // (absent biases) stay undefined. What CloneRequiringGrad and CloneForPrecision are made of.
  virtual std::unique_ptr<Encoder> CloneMapped(const WeightMap& map) const = 0;

  // A copy whose weights are fresh tensors that require grad (listed in `params`): the authors'
  // scheme backpropagates through every parameter (AttributeEncodingsReference).
  std::unique_ptr<Encoder> CloneRequiringGrad(std::vector<torch::Tensor>* params) const;
  // A copy whose matrices (WeightRole::kMatrix) are stored in `dtype` (kBFloat16 for the bf16
  // integrand, low_precision.h); every other weight is shared with this one, unchanged.
  std::unique_ptr<Encoder> CloneWithMatrices(torch::ScalarType dtype) const;
};

// CloneMapped's step: each defined tensor is replaced by map(tensor, role); undefined ones are
// left alone.
void MapWeights(std::initializer_list<torch::Tensor*> tensors, WeightRole role,
                const WeightMap& map);

// Rows `ids` of the embedding table `table`, in fp32 whatever the table's storage (bf16 tables of a
// model loaded with bf16 weights): the residual stream starts fp32 in every family.
torch::Tensor LookUp(const torch::Tensor& table, const torch::Tensor& ids);

// Sentence-transformers mean pooling: Σ_i mask_i h_i / Σ_i mask_i, [B, d].
torch::Tensor MeanPool(const torch::Tensor& last_hidden, const torch::Tensor& attention_mask);

}  // namespace attattr::engine
