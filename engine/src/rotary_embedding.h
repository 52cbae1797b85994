// Rotary position embeddings (RoPE, Su et al. 2021) as Hugging Face applies them (the rotate-half
// form): for positions p = 0..n−1, x·cos(p·θ) + rotate_half(x)·sin(p·θ), θ_i = base^(−2i/d) for the
// first d/2 features, repeated for the second half, rotate_half(x) = [−x₂, x₁]. Computed in float32
// as transformers does (`compute_default_rope_parameters`, `apply_rotary_pos_emb`). Used by
// ModernBERT and the Llama family. Immutable after construction; safe to share between threads.
#pragma once

#include "torch_pch.h"

namespace attattr::engine {

class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  RotaryEmbedding(double base, int head_dim, const torch::Device& device);

  // x: [..., n, head_dim] with positions 0..n−1 along dimension −2.
  torch::Tensor Apply(const torch::Tensor& x) const;

 private:
  torch::Tensor inv_freq_;  // [head_dim / 2], float32
};

}  // namespace attattr::engine
