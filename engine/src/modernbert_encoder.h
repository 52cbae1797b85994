// ModernBERT (`ModernBertModel`, `ModernBertForSequenceClassification`) in LibTorch ops, matching
// Hugging Face in eval mode (modeling_modernbert.py, eager attention):
//   embeddings: LayerNorm(word embedding)   (no absolute positions, no token types)
//   layer l:    x = h + Wo · Attention(LN_attn(h))        (layer 0 has no LN_attn)
//               y = x + Wo_mlp · (GELU(a) ⊙ g),  [a, g] = Wi · LN_mlp(x)   (GeGLU)
//   after the last layer: final LayerNorm
//   head:       classifier(LN(GELU(dense(pool(h))))),  pool = h[CLS] or the mean over real tokens
// Attention: fused Wqkv split into Q, K, V at load; rotary positions (RoPE, rotate-half form)
// applied to Q and K with the base of the layer's type; scores Q Kᵀ / sqrt(head_dim) plus the
// padding mask, and for sliding-window layers also −∞ (finfo.min) where |i − j| > local_window.
// The probabilities attribution scales are that softmax, per layer, as HF's
// `output_attentions=True` returns them. The final LayerNorm is applied at the end of the last
// layer's FinishLayer, so Layer/FirstRowOfLayer stay row-wise and exact. A const ModernBertEncoder
// is safe to use from many threads.
#pragma once

#include <memory>
#include <vector>

#include "encoder.h"
#include "model_config.h"
#include "rotary_embedding.h"

namespace attattr::engine {

struct ModernBertLayerWeights {
  torch::Tensor attn_norm_w, attn_norm_b;      // undefined in layer 0 (identity); b: norm_bias
  torch::Tensor q_w, q_b, k_w, k_b, v_w, v_b;  // [H·dh, d] rows of Wqkv; biases: attention_bias
  torch::Tensor o_w, o_b;                      // attn.Wo [d, H·dh]
  torch::Tensor mlp_norm_w, mlp_norm_b;
  torch::Tensor wi_w, wi_b;  // mlp.Wi [2·I, d]: the GELU input rows, then the gate rows
  torch::Tensor wo_w, wo_b;  // mlp.Wo [d, I]
};

struct ModernBertWeights {
  RotaryLayersConfig config;
  int num_heads = 0;
  torch::Tensor word_emb, emb_norm_w, emb_norm_b;
  std::vector<ModernBertLayerWeights> layers;
  torch::Tensor final_norm_w, final_norm_b;
  torch::Tensor head_w, head_b, head_norm_w, head_norm_b;  // head.dense, head.norm
  torch::Tensor cls_w, cls_b;  // classifier; everything from head_w on is undefined without one
};

class ModernBertEncoder final : public Encoder {
 public:
  ModernBertEncoder(ModernBertWeights weights, int head_dim, double norm_eps);

  int num_layers() const override { return static_cast<int>(w_.layers.size()); }
  int head_dim() const override { return head_dim_; }
  int num_heads(int) const override { return w_.num_heads; }
  bool has_classifier() const override { return w_.cls_w.defined(); }
  bool HeadReadsFirstToken() const override { return !w_.config.mean_pooling; }

  torch::Tensor Embed(const EncoderBatch& batch) const override;
  // The attention block's input: LN_attn(h), or h in layer 0.
  torch::Tensor AttentionInput(int l, const torch::Tensor& h) const override;
  torch::Tensor AttentionProbs(int l, const torch::Tensor& x,
                               const torch::Tensor& add_mask) const override;
  torch::Tensor Values(int l, const torch::Tensor& x) const override;
  torch::Tensor FinishLayer(int l, const torch::Tensor& h,
                            const torch::Tensor& context) const override;
  torch::Tensor Head(const torch::Tensor& last_hidden,
                     const torch::Tensor& attention_mask) const override;
  std::unique_ptr<Encoder> CloneMapped(const WeightMap& map) const override;

 private:
  torch::Tensor Norm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) const;
  torch::Tensor SplitHeads(const torch::Tensor& x) const;  // [B, n, H·dh] -> [B, H, n, dh]
  // RoPE with the base of layer l's type.
  torch::Tensor Rotate(int l, const torch::Tensor& x) const;

  ModernBertWeights w_;
  int head_dim_;
  double eps_;
  RotaryEmbedding global_rope_, local_rope_;
};

}  // namespace attattr::engine
