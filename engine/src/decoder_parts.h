// What the causal decoders (llama_decoder.h, gpt2_decoder.h) share: the causal additive mask, with
// padding and an optional sliding window, and reading each row's last real token, where Hugging
// Face's sequence classifiers read the score. Pure functions of their arguments.
#pragma once

#include "torch_pch.h"

namespace attattr::engine {

// [B, 1, n, n] float: 0 where query i may read key j — j ≤ i, key j not padding, and, with a
// sliding window W > 0, j > i − W — and finfo.min elsewhere (once, as HF turns its boolean mask
// additive, so a fully hidden row stays finite). `attention_mask` is [B, n], 1 = real token.
torch::Tensor CausalAdditiveMask(const torch::Tensor& attention_mask, int sliding_window);

// hidden [B, n, d] at each row's last real token (right padding: the count of real tokens minus
// one): [B, d].
torch::Tensor AtLastRealToken(const torch::Tensor& hidden, const torch::Tensor& attention_mask);

}  // namespace attattr::engine
