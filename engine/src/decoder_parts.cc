// The causal mask and the last-real-token read of the decoders (see decoder_parts.h).
#include "decoder_parts.h"

#include <limits>

namespace attattr::engine {

torch::Tensor CausalAdditiveMask(const torch::Tensor& attention_mask, int sliding_window) {
  const int64_t n = attention_mask.size(1);
  auto ids =
      torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(attention_mask.device()));
  auto allowed = ids.unsqueeze(0) <= ids.unsqueeze(1);  // [n (query), n (key)]
  if (sliding_window > 0)
    allowed = allowed & (ids.unsqueeze(0) > ids.unsqueeze(1) - sliding_window);
  auto keys = attention_mask.to(torch::kBool).unsqueeze(1).unsqueeze(2);  // [B, 1, 1, n]
  auto all = allowed.unsqueeze(0).unsqueeze(0) & keys;                    // [B, 1, n, n]
  return torch::zeros(all.sizes(), attention_mask.options().dtype(torch::kFloat))
      .masked_fill(all.logical_not(), std::numeric_limits<float>::lowest());
}

torch::Tensor AtLastRealToken(const torch::Tensor& hidden, const torch::Tensor& attention_mask) {
  auto last = attention_mask.sum(1).to(torch::kLong).clamp_min(1) - 1;  // [B]
  auto index = last.view({-1, 1, 1}).expand({hidden.size(0), 1, hidden.size(2)});
  return hidden.gather(1, index).squeeze(1);
}

}  // namespace attattr::engine
