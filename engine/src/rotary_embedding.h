// Rotary position embeddings (RoPE, Su et al. 2021) as Hugging Face applies them (the rotate-half
// form): for positions p = 0..n−1, x·cos(p·θ)·s + rotate_half(x)·sin(p·θ)·s, rotate_half(x) =
// [−x₂, x₁], θ the inverse frequencies for the first d/2 features repeated for the second half and
// s the attention scaling — θ_i = base^(−2i/d) and s = 1 by default, or as the config's scaling
// type rescales them for long contexts (RopeConfig: linear, dynamic NTK, Llama-3.1's llama3, YaRN),
// each computed in float32 as transformers' modeling_rope_utils.py does. cos and sin are tabulated
// once for the first positions (up to max_position_embeddings, at most kTabulatedPositions) and
// computed per call beyond. Used by ModernBERT and the Llama family. Immutable after construction;
// safe to share between threads.
#pragma once

#include "model_config.h"
#include "torch_pch.h"

namespace attattr::engine {

class RotaryEmbedding {
 public:
  static constexpr int64_t kTabulatedPositions = 8192;

  RotaryEmbedding() = default;
  RotaryEmbedding(const RopeConfig& rope, int head_dim, const torch::Device& device);

  // x: [..., n, head_dim] with positions 0..n−1 along dimension −2.
  torch::Tensor Apply(const torch::Tensor& x) const;

  // The inverse frequencies θ ([head_dim / 2], float32) for a text of n tokens: the same for every
  // n except with dynamic NTK scaling past max_position_embeddings, where the base grows with n.
  torch::Tensor InverseFrequencies(int64_t n) const;
  // s, the factor on cos and sin (YaRN's; 1 otherwise).
  double attention_scaling() const { return attention_scaling_; }

 private:
  // cos and sin ([n, head_dim]) of positions 0..n−1 from `inv_freq`, times the attention scaling.
  std::pair<torch::Tensor, torch::Tensor> Angles(int64_t n, const torch::Tensor& inv_freq) const;

  RopeConfig rope_;
  int head_dim_ = 0;
  torch::Tensor inv_freq_;  // [head_dim / 2], float32
  double attention_scaling_ = 1.0;
  torch::Tensor cos_, sin_;  // [tabulated, head_dim]
};

}  // namespace attattr::engine
