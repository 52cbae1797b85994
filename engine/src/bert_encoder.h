// The BERT encoder in plain LibTorch ops, matching Hugging Face `BertModel` /
// `BertForSequenceClassification` in eval mode: embeddings (word + position + token type,
// LayerNorm), layers of self-attention (additive mask, optional head mask, optional replacement of
// one layer's probabilities) and exact-erf GELU feed-forward, pooler tanh(dense(h[CLS])),
// classifier. It exposes the pieces attribution needs (per-layer steps, value projection, head).
// Weights are plain tensors without requires_grad; a const BertEncoder is safe to use from many
// threads.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "torch_pch.h"

namespace attattr::engine {

struct BertLayerWeights {
  int num_heads = 0;                           // heads present (fewer than configured when pruned)
  torch::Tensor q_w, q_b, k_w, k_b, v_w, v_b;  // [H*dh, d], [H*dh]
  torch::Tensor o_w, o_b;                      // [d, H*dh], [d]
  torch::Tensor ln1_w, ln1_b;                  // attention output LayerNorm
  torch::Tensor i_w, i_b;                      // [I, d], [I]
  torch::Tensor f_w, f_b;                      // [d, I], [d]
  torch::Tensor ln2_w, ln2_b;                  // output LayerNorm
};

struct BertWeights {
  torch::Tensor word_emb, pos_emb, type_emb, emb_ln_w, emb_ln_b;
  std::vector<BertLayerWeights> layers;
  torch::Tensor pooler_w, pooler_b;  // undefined when absent
  torch::Tensor cls_w, cls_b;        // undefined for encoder-only checkpoints
};

// Calls fn on every defined weight tensor (embeddings, layers, pooler, classifier), in a fixed
// order.
void ForEachWeight(BertWeights& w, const std::function<void(torch::Tensor&)>& fn);

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

class BertEncoder {
 public:
  BertEncoder(BertWeights weights, int head_dim, double layer_norm_eps)
      : w_(std::move(weights)), head_dim_(head_dim), eps_(layer_norm_eps) {}

  const BertWeights& weights() const { return w_; }
  int head_dim() const { return head_dim_; }
  int num_layers() const { return static_cast<int>(w_.layers.size()); }
  bool has_classifier() const { return w_.cls_w.defined(); }

  // Full clean pass.
  EncoderOutput Forward(const EncoderBatch& batch, const ForwardOptions& options = {}) const;

  // Pieces for attribution -----------------------------------------------------------------------
  torch::Tensor Embed(const EncoderBatch& batch) const;                    // [B, n, d]
  static torch::Tensor AdditiveMask(const torch::Tensor& attention_mask);  // [B, 1, 1, n]
  // Clean attention probabilities of layer l for hidden input h: [B, H, n, n].
  torch::Tensor AttentionProbs(int l, const torch::Tensor& h, const torch::Tensor& add_mask) const;
  // Value projection of layer l, [B, H, n, dh].
  torch::Tensor Values(int l, const torch::Tensor& h) const;
  // Rest of layer l once its context (probs @ values, [B, H, n, dh]) is known; h is its input.
  torch::Tensor FinishLayer(int l, const torch::Tensor& h, const torch::Tensor& context) const;
  // One whole layer; `probs_out` receives the probabilities when non-null.
  torch::Tensor Layer(int l, const torch::Tensor& h, const torch::Tensor& add_mask,
                      const torch::Tensor* head_mask_row, torch::Tensor* probs_out) const;
  // Classifier logits from the last hidden state ([B, C]); requires has_classifier().
  torch::Tensor Head(const torch::Tensor& last_hidden) const;

 private:
  torch::Tensor SplitHeads(const torch::Tensor& x, int heads) const;  // [B,n,H*dh] -> [B,H,n,dh]
  BertWeights w_;
  int head_dim_;
  double eps_;
};

// Sentence-transformers mean pooling: Σ_i mask_i h_i / Σ_i mask_i, [B, d].
torch::Tensor MeanPool(const torch::Tensor& last_hidden, const torch::Tensor& attention_mask);

}  // namespace attattr::engine
