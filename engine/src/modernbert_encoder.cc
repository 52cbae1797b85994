// ModernBERT's forward pass in LibTorch ops (see modernbert_encoder.h). Each step follows Hugging
// Face's modeling_modernbert.py (eager attention) so results agree to float rounding.
#include "modernbert_encoder.h"

#include <cmath>
#include <limits>

namespace attattr::engine {
namespace {

// ModernBERT's unscaled rotary positions of one layer type.
RopeConfig Rope(double theta, int max_positions) {
  RopeConfig rope;
  rope.theta = theta;
  rope.max_position_embeddings = max_positions;
  return rope;
}

}  // namespace

ModernBertEncoder::ModernBertEncoder(ModernBertWeights weights, int head_dim, double norm_eps)
    : w_(std::move(weights)),
      head_dim_(head_dim),
      eps_(norm_eps),
      global_rope_(Rope(w_.config.global_rope_theta, w_.config.max_position_embeddings), head_dim,
                   w_.word_emb.device()),
      local_rope_(Rope(w_.config.local_rope_theta, w_.config.max_position_embeddings), head_dim,
                  w_.word_emb.device()) {}

torch::Tensor ModernBertEncoder::Norm(const torch::Tensor& x, const torch::Tensor& w,
                                      const torch::Tensor& b) const {
  // In the norm's dtype (fp32): a bf16 integrand's activations (the head's dense output) meet fp32
  // norm weights here.
  return torch::layer_norm(x.to(w.scalar_type()), {x.size(-1)}, w, b, eps_);
}

torch::Tensor ModernBertEncoder::Embed(const EncoderBatch& batch) const {
  return Norm(LookUp(w_.word_emb, batch.input_ids), w_.emb_norm_w, w_.emb_norm_b);
}

torch::Tensor ModernBertEncoder::AttentionInput(int l, const torch::Tensor& h) const {
  const auto& lw = w_.layers[l];
  return lw.attn_norm_w.defined() ? Norm(h, lw.attn_norm_w, lw.attn_norm_b) : h;
}

torch::Tensor ModernBertEncoder::SplitHeads(const torch::Tensor& x) const {
  return x.view({x.size(0), x.size(1), w_.num_heads, head_dim_}).transpose(1, 2);
}

torch::Tensor ModernBertEncoder::Rotate(int l, const torch::Tensor& x) const {
  return (w_.config.sliding[l] ? local_rope_ : global_rope_).Apply(x);
}

torch::Tensor ModernBertEncoder::AttentionProbs(int l, const torch::Tensor& x,
                                                const torch::Tensor& add_mask) const {
  const auto& lw = w_.layers[l];
  auto q = Rotate(l, SplitHeads(torch::linear(x, lw.q_w, lw.q_b)));
  auto k = Rotate(l, SplitHeads(torch::linear(x, lw.k_w, lw.k_b)));
  auto scores = torch::matmul(q, k.transpose(-1, -2)) * std::pow(head_dim_, -0.5);
  if (!w_.config.sliding[l]) return torch::softmax(scores + add_mask, -1);
  // Keys farther than the window get finfo.min, as the padded ones do (the minimum, not the sum,
  // so a key both padded and outside the window is not pushed to −inf).
  const int64_t n = x.size(1);
  auto ids = torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
  auto outside = (ids.unsqueeze(1) - ids.unsqueeze(0)).abs() > w_.config.local_window;
  auto window =
      torch::zeros({n, n}, x.options()).masked_fill(outside, std::numeric_limits<float>::lowest());
  return torch::softmax(scores + torch::minimum(add_mask, window), -1);
}

torch::Tensor ModernBertEncoder::Values(int l, const torch::Tensor& x) const {
  const auto& lw = w_.layers[l];
  return SplitHeads(torch::linear(x, lw.v_w, lw.v_b));
}

torch::Tensor ModernBertEncoder::FinishLayer(int l, const torch::Tensor& h,
                                             const torch::Tensor& context) const {
  const auto& lw = w_.layers[l];
  auto ctx = context.transpose(1, 2).reshape({h.size(0), h.size(1), w_.num_heads * head_dim_});
  auto x = h + torch::linear(ctx, lw.o_w, lw.o_b);
  auto parts = torch::linear(Norm(x, lw.mlp_norm_w, lw.mlp_norm_b), lw.wi_w, lw.wi_b).chunk(2, -1);
  x = x + torch::linear(torch::gelu(parts[0]) * parts[1], lw.wo_w, lw.wo_b);  // exact erf GELU
  if (l == num_layers() - 1) x = Norm(x, w_.final_norm_w, w_.final_norm_b);
  return x;
}

torch::Tensor ModernBertEncoder::Head(const torch::Tensor& last_hidden,
                                      const torch::Tensor& attention_mask) const {
  auto pooled =
      w_.config.mean_pooling ? MeanPool(last_hidden, attention_mask) : last_hidden.select(1, 0);
  auto dense = torch::gelu(torch::linear(pooled, w_.head_w, w_.head_b));
  return torch::linear(Norm(dense, w_.head_norm_w, w_.head_norm_b), w_.cls_w, w_.cls_b);
}

std::unique_ptr<Encoder> ModernBertEncoder::CloneMapped(const WeightMap& map) const {
  ModernBertWeights w = w_;
  MapWeights({&w.word_emb}, WeightRole::kTable, map);
  MapWeights({&w.emb_norm_w, &w.emb_norm_b, &w.final_norm_w, &w.final_norm_b, &w.head_b,
              &w.head_norm_w, &w.head_norm_b, &w.cls_b},
             WeightRole::kOther, map);
  MapWeights({&w.head_w, &w.cls_w}, WeightRole::kMatrix, map);
  for (auto& lw : w.layers) {
    MapWeights({&lw.q_w, &lw.k_w, &lw.v_w, &lw.o_w, &lw.wi_w, &lw.wo_w}, WeightRole::kMatrix, map);
    MapWeights({&lw.attn_norm_w, &lw.attn_norm_b, &lw.q_b, &lw.k_b, &lw.v_b, &lw.o_b,
                &lw.mlp_norm_w, &lw.mlp_norm_b, &lw.wi_b, &lw.wo_b},
               WeightRole::kOther, map);
  }
  return std::make_unique<ModernBertEncoder>(std::move(w), head_dim_, eps_);
}

}  // namespace attattr::engine
