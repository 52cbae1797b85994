// The Llama family of decoders — `llama`, `mistral`, `qwen2` (`LlamaModel`,
// `LlamaForSequenceClassification` and their Mistral/Qwen2 twins) — in LibTorch ops, matching
// Hugging Face in eval mode (modeling_llama.py, eager attention), behind the Encoder seams:
//   embeddings: embed_tokens(ids)                      (positions enter through RoPE only)
//   layer l:    x = h + o_proj(Attention(RMSNorm_in(h)))
//               y = x + down_proj(SiLU(gate_proj(z)) ⊙ up_proj(z)),  z = RMSNorm_post(x)
//   after the last layer: RMSNorm (model.norm)
//   head:       score(h at the last real token)       (as HF's sequence classifier reads it), or a
//               causal LM's lm_head there (its next-token logits; the tied embeddings when so)
// Attention is causal (AdditiveMask: finfo.min above the diagonal and on padded keys; Mistral's
// sliding window also hides keys more than sliding_window − 1 positions back), with RoPE on Q and
// K and grouped-query attention: num_key_value_heads key/value heads, each shared by a group of
// query heads, expanded to one per query head (HF's repeat_kv) so probabilities, and attributions,
// are [heads][n][n] per query head, lower-triangular. A const LlamaDecoder is safe to use from
// many threads.
#pragma once

#include <memory>
#include <vector>

#include "encoder.h"
#include "model_config.h"
#include "rotary_embedding.h"

namespace attattr::engine {

struct LlamaLayerWeights {
  torch::Tensor input_norm_w;                // input_layernorm (RMSNorm)
  torch::Tensor q_w, q_b;                    // [H·dh, d]; biases: attention_bias / Qwen2
  torch::Tensor k_w, k_b, v_w, v_b;          // [KV·dh, d]
  torch::Tensor o_w, o_b;                    // [d, H·dh]
  torch::Tensor post_norm_w;                 // post_attention_layernorm
  torch::Tensor gate_w, gate_b, up_w, up_b;  // [I, d]; biases: mlp_bias
  torch::Tensor down_w, down_b;              // [d, I]
};

struct LlamaWeights {
  DecoderConfig config;
  int num_heads = 0;
  torch::Tensor embed;  // embed_tokens [V, d]
  std::vector<LlamaLayerWeights> layers;
  torch::Tensor final_norm_w;  // norm
  torch::Tensor score_w;       // [C, d] classifier, or [V, d] LM head; undefined without either
};

class LlamaDecoder final : public Encoder {
 public:
  LlamaDecoder(LlamaWeights weights, int head_dim, double rms_norm_eps);

  int num_layers() const override { return static_cast<int>(w_.layers.size()); }
  int head_dim() const override { return head_dim_; }
  int num_heads(int) const override { return w_.num_heads; }
  bool has_classifier() const override { return w_.score_w.defined(); }
  bool HeadReadsFirstToken() const override { return false; }

  torch::Tensor Embed(const EncoderBatch& batch) const override;
  torch::Tensor AdditiveMask(const torch::Tensor& attention_mask) const override;
  torch::Tensor AttentionInput(int l, const torch::Tensor& h) const override;  // RMSNorm_in(h)
  torch::Tensor AttentionProbs(int l, const torch::Tensor& x,
                               const torch::Tensor& add_mask) const override;
  torch::Tensor Values(int l, const torch::Tensor& x) const override;
  torch::Tensor FinishLayer(int l, const torch::Tensor& h,
                            const torch::Tensor& context) const override;
  torch::Tensor Head(const torch::Tensor& last_hidden,
                     const torch::Tensor& attention_mask) const override;
  torch::Tensor LanguageModelLogits(const torch::Tensor& hidden) const override {
    return torch::linear(hidden, w_.score_w);  // the LM head (its [V, d] weight, no bias)
  }
  std::unique_ptr<Encoder> CloneMapped(const WeightMap& map) const override;

 private:
  torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight) const;
  // [B, n, heads·dh] -> [B, heads, n, dh]
  torch::Tensor SplitHeads(const torch::Tensor& x, int64_t heads) const;
  // Key/value heads [B, KV, n, dh] repeated to one per query head [B, H, n, dh] (head h reads
  // key/value head h / (H / KV)).
  torch::Tensor ExpandKeyValueHeads(const torch::Tensor& x) const;

  LlamaWeights w_;
  int head_dim_;
  double eps_;
  RotaryEmbedding rope_;
};

}  // namespace attattr::engine
