// GPT-2 (`GPT2Model`, `GPT2ForSequenceClassification`; config model_type "gpt2") in LibTorch ops,
// matching Hugging Face in eval mode (modeling_gpt2.py, eager attention), behind the Encoder seams:
//   embeddings: wte(ids) + wpe(0..n−1)                (learned absolute positions)
//   layer l:    x = h + c_proj(Attention(LN_1(h)))
//               y = x + mlp.c_proj(GELU(mlp.c_fc(LN_2(x))))   (GELU's tanh form for "gelu_new")
//   after the last layer: LayerNorm (ln_f)
//   head:       score(h at the last real token)       (as HF's sequence classifier reads it), or a
//               causal LM's lm_head there (its next-token logits; the tied embeddings when so)
// The checkpoint's Conv1D weights ([in, out], y = x·W + b) are stored transposed, and the fused
// c_attn split into query, key and value, at load (gpt2_loader.cc), so every projection here is a
// torch::linear. Attention is causal (decoder_parts.h), scores multiplied by head_dim^−½ when
// scale_attn_weights and divided by layer index + 1 when scale_attn_by_inverse_layer_idx, as HF
// does. A
// const Gpt2Decoder is safe to use from many threads.
#pragma once

#include <memory>
#include <vector>

#include "encoder.h"

namespace attattr::engine {

struct Gpt2LayerWeights {
  torch::Tensor ln1_w, ln1_b;    // ln_1
  torch::Tensor q_w, q_b;        // [d, d]: c_attn's first third, transposed
  torch::Tensor k_w, k_b;        // second third
  torch::Tensor v_w, v_b;        // last third
  torch::Tensor o_w, o_b;        // attn.c_proj [d, d]
  torch::Tensor ln2_w, ln2_b;    // ln_2
  torch::Tensor fc_w, fc_b;      // mlp.c_fc [I, d]
  torch::Tensor proj_w, proj_b;  // mlp.c_proj [d, I]
};

struct Gpt2Weights {
  int num_heads = 0;
  bool tanh_gelu = true;                // activation_function gelu_new / gelu_pytorch_tanh
  bool scale_attn_weights = true;       // scores / sqrt(head_dim)
  bool scale_by_inverse_layer = false;  // scores / (l + 1)
  torch::Tensor wte;                    // [V, d]
  torch::Tensor wpe;                    // [P, d]
  std::vector<Gpt2LayerWeights> layers;
  torch::Tensor lnf_w, lnf_b;  // ln_f
  torch::Tensor score_w;       // [C, d] classifier, or [V, d] LM head; undefined without either
};

class Gpt2Decoder final : public Encoder {
 public:
  Gpt2Decoder(Gpt2Weights weights, int head_dim, double layer_norm_eps);

  int num_layers() const override { return static_cast<int>(w_.layers.size()); }
  int head_dim() const override { return head_dim_; }
  int num_heads(int) const override { return w_.num_heads; }
  bool has_classifier() const override { return w_.score_w.defined(); }
  bool HeadReadsFirstToken() const override { return false; }

  torch::Tensor Embed(const EncoderBatch& batch) const override;
  torch::Tensor AdditiveMask(const torch::Tensor& attention_mask) const override;
  torch::Tensor AttentionInput(int l, const torch::Tensor& h) const override;  // LN_1(h)
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
  torch::Tensor Norm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) const;
  torch::Tensor SplitHeads(const torch::Tensor& x) const;  // [B, n, H·dh] -> [B, H, n, dh]

  Gpt2Weights w_;
  int head_dim_;
  double eps_;
};

}  // namespace attattr::engine
