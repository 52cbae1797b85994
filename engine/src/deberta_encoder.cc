// DeBERTa-v2's disentangled attention scores on top of BertEncoder (see deberta_encoder.h). Each
// step follows Hugging Face's DisentangledSelfAttention (modeling_deberta_v2.py) so results agree
// to float rounding; the relative positions are recomputed per call (an [n, n] integer table on the
// CPU), the LayerNorm-ed relative embeddings once, and only the embedding rows the positions reach
// are projected.
#include "deberta_encoder.h"

#include <cmath>

namespace attattr::engine {

DebertaEncoder::DebertaEncoder(BertWeights weights, DisentangledWeights disentangled, int head_dim,
                               double layer_norm_eps)
    : BertEncoder(std::move(weights), head_dim, layer_norm_eps),
      d_(std::move(disentangled)),
      eps_(layer_norm_eps) {
  if (d_.rel_emb.defined() && !d_.rel_emb.requires_grad()) {
    torch::NoGradGuard no_grad;
    rel_emb_ = ComputeRelativeEmbeddings();
  }
}

torch::Tensor DebertaEncoder::RelativeEmbeddings() const {
  return rel_emb_.defined() ? rel_emb_ : ComputeRelativeEmbeddings();
}

torch::Tensor DebertaEncoder::ComputeRelativeEmbeddings() const {
  if (!d_.config.norm_rel_embeddings) return d_.rel_emb;
  return torch::layer_norm(d_.rel_emb, {d_.rel_emb.size(-1)}, d_.rel_ln_w, d_.rel_ln_b, eps_);
}

torch::Tensor DebertaEncoder::RelativePositions(int64_t n) const {
  auto ids = torch::arange(n, torch::TensorOptions().dtype(torch::kLong));
  auto rel = ids.unsqueeze(1) - ids.unsqueeze(0);
  const int buckets = d_.config.position_buckets;
  const int max_position = d_.config.max_relative_positions;
  if (buckets <= 0 || max_position <= 0) return rel;
  // make_log_bucket_position, in float32 as PyTorch computes it there.
  const int64_t mid = buckets / 2;
  auto sign = torch::sign(rel);
  auto abs_pos =
      torch::where((rel < mid) & (rel > -mid), torch::full_like(rel, mid - 1), torch::abs(rel));
  auto abs_f = abs_pos.to(torch::kFloat);
  const float denominator =
      std::log(static_cast<float>(static_cast<double>(max_position - 1) / mid));
  auto log_pos = torch::ceil(torch::log(abs_f / static_cast<float>(mid)) / denominator *
                             static_cast<float>(mid - 1)) +
                 static_cast<float>(mid);
  auto bucket = torch::where(abs_pos <= mid, rel.to(torch::kFloat), log_pos * sign);
  return bucket.to(torch::kLong);
}

torch::Tensor DebertaEncoder::AttentionProbs(int l, const torch::Tensor& h,
                                             const torch::Tensor& add_mask) const {
  const auto& lw = weights().layers[l];
  const int64_t heads = lw.num_heads, dh = head_dim();
  const auto split = [&](const torch::Tensor& x) { return SplitHeads(x, lw.num_heads); };
  const auto& c = d_.config;
  const int scale_factor = 1 + (c.c2p ? 1 : 0) + (c.p2c ? 1 : 0);
  const float scale = std::sqrt(static_cast<float>(dh) * static_cast<float>(scale_factor));
  auto q = split(torch::linear(h, lw.q_w, lw.q_b));
  auto k = split(torch::linear(h, lw.k_w, lw.k_b));
  auto scores = torch::matmul(q, k.transpose(-1, -2) / scale);
  if (c.relative_attention && (c.c2p || c.p2c)) {
    const int64_t n = h.size(1), span = c.span();
    // Rows of the relative-position embedding that δ indexes: c2p reads clamp(rel + span), p2c
    // clamp(−rel + span), over rel ∈ [−(n−1), n−1]. Only rows [lo, hi] are ever read, so only they
    // are projected and multiplied: the same scores, while v3's 2 × 256 rows would otherwise cost
    // several times QKᵀ at typical lengths.
    const torch::Tensor rel = RelativePositions(n);
    const torch::Tensor c2p_index = torch::clamp(rel + span, 0, 2 * span - 1);
    const torch::Tensor p2c_index = torch::clamp(-rel + span, 0, 2 * span - 1);
    const int64_t lo = std::min(c2p_index.min().item<int64_t>(), p2c_index.min().item<int64_t>());
    const int64_t hi = std::max(c2p_index.max().item<int64_t>(), p2c_index.max().item<int64_t>());
    auto rel_emb = RelativeEmbeddings().narrow(0, lo, hi - lo + 1).unsqueeze(0);  // [1, r, d]
    const auto expand = [&](const torch::Tensor& index) {  // [n, n] -> [B, H, n, n], h's device
      return (index - lo).to(h.device()).view({1, 1, n, n}).expand({h.size(0), heads, n, n});
    };
    if (c.c2p) {
      auto pos_k = c.share_att_key
                       ? split(torch::linear(rel_emb, lw.k_w, lw.k_b))
                       : split(torch::linear(rel_emb, d_.pos_key_w[l], d_.pos_key_b[l]));
      auto c2p = torch::matmul(q, pos_k.transpose(-1, -2));  // [B, H, n, r]
      scores = scores + torch::gather(c2p, -1, expand(c2p_index)) / scale;
    }
    if (c.p2c) {
      auto pos_q = c.share_att_key
                       ? split(torch::linear(rel_emb, lw.q_w, lw.q_b))
                       : split(torch::linear(rel_emb, d_.pos_query_w[l], d_.pos_query_b[l]));
      auto p2c = torch::matmul(k, pos_q.transpose(-1, -2));  // [B, H, n (keys), r]
      scores = scores + torch::gather(p2c, -1, expand(p2c_index)).transpose(-1, -2) / scale;
    }
  }
  return torch::softmax(scores + add_mask, -1);
}

std::unique_ptr<Encoder> DebertaEncoder::CloneMapped(const WeightMap& map) const {
  BertEncoder base = CloneWeights(map);
  DisentangledWeights d = d_;
  MapWeights({&d.rel_emb, &d.rel_ln_w, &d.rel_ln_b}, WeightRole::kOther, map);
  for (auto* list : {&d.pos_key_w, &d.pos_query_w}) {
    for (auto& t : *list) MapWeights({&t}, WeightRole::kMatrix, map);
  }
  for (auto* list : {&d.pos_key_b, &d.pos_query_b}) {
    for (auto& t : *list) MapWeights({&t}, WeightRole::kOther, map);
  }
  return std::make_unique<DebertaEncoder>(base.weights(), std::move(d), head_dim(), eps_);
}

}  // namespace attattr::engine
