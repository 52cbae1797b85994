// RoPE in the rotate-half form (see rotary_embedding.h).
#include "rotary_embedding.h"

namespace attattr::engine {

RotaryEmbedding::RotaryEmbedding(double base, int head_dim, const torch::Device& device) {
  auto exponents =
      torch::arange(0, head_dim, 2, torch::TensorOptions().dtype(torch::kFloat)) / head_dim;
  inv_freq_ = (1.0 / torch::pow(base, exponents)).to(device);
}

torch::Tensor RotaryEmbedding::Apply(const torch::Tensor& x) const {
  const int64_t n = x.size(-2), half = x.size(-1) / 2;
  auto positions = torch::arange(n, inv_freq_.options());
  auto freqs = positions.unsqueeze(1) * inv_freq_.unsqueeze(0);  // [n, d/2]
  auto angles = torch::cat({freqs, freqs}, -1);                  // [n, d]
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * angles.cos() + rotated * angles.sin();
}

}  // namespace attattr::engine
