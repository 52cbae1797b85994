// The Llama-family decoders' forward pass in LibTorch ops (see llama_decoder.h). Each step follows
// Hugging Face's modeling_llama.py / modeling_mistral.py / modeling_qwen2.py (eager attention) so
// results agree to float rounding.
#include "llama_decoder.h"

#include <cmath>

#include "decoder_parts.h"

namespace attattr::engine {

LlamaDecoder::LlamaDecoder(LlamaWeights weights, int head_dim, double rms_norm_eps)
    : w_(std::move(weights)),
      head_dim_(head_dim),
      eps_(rms_norm_eps),
      rope_(w_.config.rope, head_dim, w_.embed.device()) {}

torch::Tensor LlamaDecoder::RmsNorm(const torch::Tensor& x, const torch::Tensor& weight) const {
  // In fp32, as Hugging Face's LlamaRMSNorm computes it, whatever a bf16 integrand hands it.
  const auto x32 = x.to(torch::kFloat32);
  return weight * (x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps_));
}

torch::Tensor LlamaDecoder::SplitHeads(const torch::Tensor& x, int64_t heads) const {
  return x.view({x.size(0), x.size(1), heads, head_dim_}).transpose(1, 2);
}

torch::Tensor LlamaDecoder::ExpandKeyValueHeads(const torch::Tensor& x) const {
  const int64_t kv = x.size(1), group = w_.num_heads / kv;
  if (group == 1) return x;
  return x.unsqueeze(2)
      .expand({x.size(0), kv, group, x.size(2), x.size(3)})
      .reshape({x.size(0), kv * group, x.size(2), x.size(3)});
}

torch::Tensor LlamaDecoder::Embed(const EncoderBatch& batch) const {
  return LookUp(w_.embed, batch.input_ids);
}

torch::Tensor LlamaDecoder::AdditiveMask(const torch::Tensor& attention_mask) const {
  return CausalAdditiveMask(attention_mask, w_.config.sliding_window);
}

torch::Tensor LlamaDecoder::AttentionInput(int l, const torch::Tensor& h) const {
  return RmsNorm(h, w_.layers[l].input_norm_w);
}

torch::Tensor LlamaDecoder::AttentionProbs(int l, const torch::Tensor& x,
                                           const torch::Tensor& add_mask) const {
  const auto& lw = w_.layers[l];
  const int64_t kv = w_.config.num_key_value_heads;
  auto q = rope_.Apply(SplitHeads(torch::linear(x, lw.q_w, lw.q_b), w_.num_heads));
  auto k = ExpandKeyValueHeads(rope_.Apply(SplitHeads(torch::linear(x, lw.k_w, lw.k_b), kv)));
  auto scores = torch::matmul(q, k.transpose(-1, -2)) * std::pow(head_dim_, -0.5);
  return torch::softmax(scores + add_mask, -1);
}

torch::Tensor LlamaDecoder::Values(int l, const torch::Tensor& x) const {
  const auto& lw = w_.layers[l];
  return ExpandKeyValueHeads(
      SplitHeads(torch::linear(x, lw.v_w, lw.v_b), w_.config.num_key_value_heads));
}

torch::Tensor LlamaDecoder::FinishLayer(int l, const torch::Tensor& h,
                                        const torch::Tensor& context) const {
  const auto& lw = w_.layers[l];
  auto ctx = context.transpose(1, 2).reshape({h.size(0), h.size(1), w_.num_heads * head_dim_});
  auto x = h + torch::linear(ctx, lw.o_w, lw.o_b);
  const auto z = RmsNorm(x, lw.post_norm_w);
  x = x + torch::linear(torch::silu(torch::linear(z, lw.gate_w, lw.gate_b)) *
                            torch::linear(z, lw.up_w, lw.up_b),
                        lw.down_w, lw.down_b);
  if (l == num_layers() - 1) x = RmsNorm(x, w_.final_norm_w);
  return x;
}

torch::Tensor LlamaDecoder::Head(const torch::Tensor& last_hidden,
                                 const torch::Tensor& attention_mask) const {
  return torch::linear(AtLastRealToken(last_hidden, attention_mask), w_.score_w);
}

std::unique_ptr<Encoder> LlamaDecoder::CloneMapped(const WeightMap& map) const {
  LlamaWeights w = w_;
  MapWeights({&w.embed}, WeightRole::kTable, map);
  MapWeights({&w.final_norm_w}, WeightRole::kOther, map);
  MapWeights({&w.score_w}, WeightRole::kMatrix, map);
  for (auto& lw : w.layers) {
    MapWeights({&lw.q_w, &lw.k_w, &lw.v_w, &lw.o_w, &lw.gate_w, &lw.up_w, &lw.down_w},
               WeightRole::kMatrix, map);
    MapWeights({&lw.input_norm_w, &lw.q_b, &lw.k_b, &lw.v_b, &lw.o_b, &lw.post_norm_w, &lw.gate_b,
                &lw.up_b, &lw.down_b},
               WeightRole::kOther, map);
  }
  return std::make_unique<LlamaDecoder>(std::move(w), head_dim_, eps_);
}

}  // namespace attattr::engine
