// GPT-2's forward pass in LibTorch ops (see gpt2_decoder.h). Each step follows Hugging Face's
// modeling_gpt2.py (eager attention) so results agree to float rounding.
#include "gpt2_decoder.h"

#include <cmath>

#include "decoder_parts.h"

namespace attattr::engine {

Gpt2Decoder::Gpt2Decoder(Gpt2Weights weights, int head_dim, double layer_norm_eps)
    : w_(std::move(weights)), head_dim_(head_dim), eps_(layer_norm_eps) {}

torch::Tensor Gpt2Decoder::Norm(const torch::Tensor& x, const torch::Tensor& w,
                                const torch::Tensor& b) const {
  // In the norm's dtype (fp32), whatever a bf16 integrand hands it.
  return torch::layer_norm(x.to(w.scalar_type()), {x.size(-1)}, w, b, eps_);
}

torch::Tensor Gpt2Decoder::SplitHeads(const torch::Tensor& x) const {
  return x.view({x.size(0), x.size(1), w_.num_heads, head_dim_}).transpose(1, 2);
}

torch::Tensor Gpt2Decoder::Embed(const EncoderBatch& batch) const {
  // Positions 0..n−1 whatever the padding (right padding leaves the real tokens' positions as HF's
  // unpadded pass gives them).
  const int64_t n = batch.input_ids.size(1);
  auto positions = torch::arange(n, batch.input_ids.options()).unsqueeze(0);
  return LookUp(w_.wte, batch.input_ids) + LookUp(w_.wpe, positions);
}

torch::Tensor Gpt2Decoder::AdditiveMask(const torch::Tensor& attention_mask) const {
  return CausalAdditiveMask(attention_mask, /*sliding_window=*/0);
}

torch::Tensor Gpt2Decoder::AttentionInput(int l, const torch::Tensor& h) const {
  const auto& lw = w_.layers[l];
  return Norm(h, lw.ln1_w, lw.ln1_b);
}

torch::Tensor Gpt2Decoder::AttentionProbs(int l, const torch::Tensor& x,
                                          const torch::Tensor& add_mask) const {
  const auto& lw = w_.layers[l];
  auto q = SplitHeads(torch::linear(x, lw.q_w, lw.q_b));
  auto k = SplitHeads(torch::linear(x, lw.k_w, lw.k_b));
  // One factor, as HF computes GPT2Attention.scaling: head_dim^−½ (or 1), then / (l + 1).
  double scaling = w_.scale_attn_weights ? std::pow(head_dim_, -0.5) : 1.0;
  if (w_.scale_by_inverse_layer) scaling /= static_cast<double>(l + 1);
  return torch::softmax(torch::matmul(q, k.transpose(-1, -2)) * scaling + add_mask, -1);
}

torch::Tensor Gpt2Decoder::Values(int l, const torch::Tensor& x) const {
  const auto& lw = w_.layers[l];
  return SplitHeads(torch::linear(x, lw.v_w, lw.v_b));
}

torch::Tensor Gpt2Decoder::FinishLayer(int l, const torch::Tensor& h,
                                       const torch::Tensor& context) const {
  const auto& lw = w_.layers[l];
  auto ctx = context.transpose(1, 2).reshape({h.size(0), h.size(1), w_.num_heads * head_dim_});
  auto x = h + torch::linear(ctx, lw.o_w, lw.o_b);
  auto inner = torch::linear(Norm(x, lw.ln2_w, lw.ln2_b), lw.fc_w, lw.fc_b);
  inner = w_.tanh_gelu ? torch::gelu(inner, "tanh") : torch::gelu(inner);
  x = x + torch::linear(inner, lw.proj_w, lw.proj_b);
  if (l == num_layers() - 1) x = Norm(x, w_.lnf_w, w_.lnf_b);
  return x;
}

torch::Tensor Gpt2Decoder::Head(const torch::Tensor& last_hidden,
                                const torch::Tensor& attention_mask) const {
  return torch::linear(AtLastRealToken(last_hidden, attention_mask), w_.score_w);
}

std::unique_ptr<Encoder> Gpt2Decoder::CloneMapped(const WeightMap& map) const {
  Gpt2Weights w = w_;
  MapWeights({&w.wte, &w.wpe}, WeightRole::kTable, map);
  MapWeights({&w.lnf_w, &w.lnf_b}, WeightRole::kOther, map);
  MapWeights({&w.score_w}, WeightRole::kMatrix, map);  // also when tied to wte (the LM head)
  for (auto& lw : w.layers) {
    MapWeights({&lw.q_w, &lw.k_w, &lw.v_w, &lw.o_w, &lw.fc_w, &lw.proj_w}, WeightRole::kMatrix,
               map);
    MapWeights({&lw.ln1_w, &lw.ln1_b, &lw.q_b, &lw.k_b, &lw.v_b, &lw.o_b, &lw.ln2_w, &lw.ln2_b,
                &lw.fc_b, &lw.proj_b},
               WeightRole::kOther, map);
  }
  return std::make_unique<Gpt2Decoder>(std::move(w), head_dim_, eps_);
}

}  // namespace attattr::engine
