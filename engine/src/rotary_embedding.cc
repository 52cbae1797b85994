// RoPE in the rotate-half form with the scaling types of transformers' modeling_rope_utils.py (see
// rotary_embedding.h). Each formula follows HF's, in the same float32 tensor operations and double
// scalars, so the frequencies agree to the bit or to float rounding.
#include "rotary_embedding.h"

#include <algorithm>
#include <cmath>

namespace attattr::engine {
namespace {

// base^(2i/d), i = 0..d/2−1, the exponents computed as transformers computes them (integers, then
// float, then ÷ d), so the frequencies match it bit for bit.
torch::Tensor PositionFrequencies(double base, int dim) {
  return torch::pow(
      base,
      torch::arange(0, dim, 2, torch::TensorOptions().dtype(torch::kLong)).to(torch::kFloat) / dim);
}

// base^(−2i/d): the default frequencies (compute_default_rope_parameters).
torch::Tensor DefaultInverseFrequencies(double base, int dim) {
  return 1.0 / PositionFrequencies(base, dim);
}

// Llama-3.1's: frequencies whose wavelength exceeds original/low_freq_factor divided by `factor`,
// those shorter than original/high_freq_factor kept, a smooth blend between.
torch::Tensor Llama3InverseFrequencies(const RopeConfig& r, int dim) {
  const auto inv_freq = DefaultInverseFrequencies(r.theta, dim);
  const double old_context = r.original_max_position_embeddings;
  const double low_wavelen = old_context / r.low_freq_factor;
  const double high_wavelen = old_context / r.high_freq_factor;
  const auto wavelen = 2 * M_PI / inv_freq;
  auto llama = torch::where(wavelen > low_wavelen, inv_freq / r.factor, inv_freq);
  const auto smooth =
      (old_context / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
  const auto smoothed = (1 - smooth) * llama / r.factor + smooth * llama;
  const auto medium =
      (wavelen < high_wavelen).logical_not() & (wavelen > low_wavelen).logical_not();
  return torch::where(medium, smoothed, llama);
}

// YaRN's: interpolated (÷ factor) and extrapolated frequencies blended by a linear ramp over the
// dimensions between the correction range of beta_fast and beta_slow rotations.
torch::Tensor YarnInverseFrequencies(const RopeConfig& r, int dim) {
  const double base = r.theta;
  const auto correction_dim = [&](double rotations) {
    return (dim * std::log(r.original_max_position_embeddings / (rotations * 2 * M_PI))) /
           (2 * std::log(base));
  };
  double low = correction_dim(r.beta_fast), high = correction_dim(r.beta_slow);
  if (r.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // HF: prevents a singular ramp
  const auto pos_freqs = PositionFrequencies(base, dim);
  const auto extrapolation = 1.0 / pos_freqs;
  const auto interpolation = 1.0 / (r.factor * pos_freqs);
  const auto ramp = torch::clamp(
      (torch::arange(dim / 2, torch::TensorOptions().dtype(torch::kFloat)) - low) / (high - low), 0,
      1);
  const auto extrapolation_factor = 1 - ramp;
  return interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor;
}

}  // namespace

RotaryEmbedding::RotaryEmbedding(const RopeConfig& rope, int head_dim, const torch::Device& device)
    : rope_(rope), head_dim_(head_dim) {
  switch (rope.type) {
    case RopeConfig::Type::kLinear:
      inv_freq_ = DefaultInverseFrequencies(rope.theta, head_dim) / rope.factor;
      break;
    case RopeConfig::Type::kLlama3:
      inv_freq_ = Llama3InverseFrequencies(rope, head_dim);
      break;
    case RopeConfig::Type::kYarn:
      inv_freq_ = YarnInverseFrequencies(rope, head_dim);
      attention_scaling_ = rope.attention_factor;
      break;
    case RopeConfig::Type::kDefault:
    case RopeConfig::Type::kDynamic:  // the default frequencies up to max_position_embeddings
      inv_freq_ = DefaultInverseFrequencies(rope.theta, head_dim);
      break;
  }
  inv_freq_ = inv_freq_.to(device);
  const int64_t tabulated = std::min<int64_t>(rope.max_position_embeddings, kTabulatedPositions);
  if (tabulated > 0) std::tie(cos_, sin_) = Angles(tabulated, inv_freq_);
}

torch::Tensor RotaryEmbedding::InverseFrequencies(int64_t n) const {
  const int max_positions = rope_.max_position_embeddings;
  if (rope_.type != RopeConfig::Type::kDynamic || n <= max_positions) return inv_freq_;
  // Dynamic NTK (HF's dynamic_frequency_update on a fresh model): a base grown for n tokens.
  const double factor = rope_.factor, dim = head_dim_;
  const double base =
      rope_.theta *
      std::pow((factor * static_cast<double>(n) / max_positions) - (factor - 1), dim / (dim - 2));
  return DefaultInverseFrequencies(base, head_dim_).to(inv_freq_.device());
}

std::pair<torch::Tensor, torch::Tensor> RotaryEmbedding::Angles(
    int64_t n, const torch::Tensor& inv_freq) const {
  auto positions = torch::arange(n, inv_freq.options());
  auto freqs = positions.unsqueeze(1) * inv_freq.unsqueeze(0);  // [n, d/2]
  auto angles = torch::cat({freqs, freqs}, -1);                 // [n, d]
  return {angles.cos() * attention_scaling_, angles.sin() * attention_scaling_};
}

torch::Tensor RotaryEmbedding::Apply(const torch::Tensor& x) const {
  const int64_t n = x.size(-2), half = x.size(-1) / 2;
  torch::Tensor cos, sin;
  if (cos_.defined() && n <= cos_.size(0)) {
    cos = cos_.narrow(0, 0, n);
    sin = sin_.narrow(0, 0, n);
  } else {
    std::tie(cos, sin) = Angles(n, InverseFrequencies(n));
  }
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

}  // namespace attattr::engine
