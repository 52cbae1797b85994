// BERT-family forward pass in LibTorch ops (see bert_encoder.h). Every intermediate stays on the
// weights' device; nothing here changes grad mode (callers decide).
#include "bert_encoder.h"

#include <cmath>

namespace attattr::engine {

namespace F = torch::nn::functional;

torch::Tensor BertEncoder::Embed(const EncoderBatch& batch) const {
  const int64_t n = batch.input_ids.size(1);
  torch::Tensor positions;
  if (w_.position_offset > 0) {
    // RoBERTa's numbering (transformers' create_position_ids_from_input_ids): tokens other than
    // the padding id count up from pad + 1; the padding id itself — a literal <pad> inside a
    // text — takes position pad and is not counted. (A batch's padding slots, id 0, get positions
    // inside the table either way — counted on, or pad itself when pad is 0 — and are masked.)
    const int64_t pad = w_.position_offset - 1;
    const auto counted = batch.input_ids.ne(pad).to(batch.input_ids.scalar_type());
    positions = counted.cumsum(1) * counted + pad;
  } else {
    positions = torch::arange(n, batch.input_ids.options()).unsqueeze(0);
  }
  auto e = LookUp(w_.word_emb, batch.input_ids);
  if (w_.pos_emb.defined()) e = e + LookUp(w_.pos_emb, positions);
  if (w_.type_emb.defined()) e = e + LookUp(w_.type_emb, batch.token_type_ids);
  const auto project = [&](const torch::Tensor& x) {
    return w_.emb_proj_w.defined() ? torch::linear(x, w_.emb_proj_w, w_.emb_proj_b) : x;
  };
  // fp32 into the norm and out to the layers: a bf16-stored model's projection (weight_storage.h)
  // gives bf16, and the residual stream stays fp32.
  if (w_.project_before_norm) e = project(e).to(torch::kFloat32);
  e = torch::layer_norm(e, {e.size(-1)}, w_.emb_ln_w, w_.emb_ln_b, eps_);
  return w_.project_before_norm ? e : project(e).to(torch::kFloat32);
}

torch::Tensor BertEncoder::SplitHeads(const torch::Tensor& x, int heads) const {
  return x.view({x.size(0), x.size(1), heads, head_dim_}).transpose(1, 2);
}

torch::Tensor BertEncoder::AttentionProbs(int l, const torch::Tensor& h,
                                          const torch::Tensor& add_mask) const {
  const auto& lw = w_.layers[l];
  auto q = SplitHeads(torch::linear(h, lw.q_w, lw.q_b), lw.num_heads);
  auto k = SplitHeads(torch::linear(h, lw.k_w, lw.k_b), lw.num_heads);
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(head_dim_));
  return torch::softmax(scores + add_mask, -1);
}

torch::Tensor BertEncoder::Values(int l, const torch::Tensor& h) const {
  const auto& lw = w_.layers[l];
  return SplitHeads(torch::linear(h, lw.v_w, lw.v_b), lw.num_heads);
}

torch::Tensor BertEncoder::FinishLayer(int l, const torch::Tensor& h,
                                       const torch::Tensor& context) const {
  const auto& lw = w_.layers[l];
  auto ctx = context.transpose(1, 2).reshape({h.size(0), h.size(1), lw.num_heads * head_dim_});
  const int64_t d = h.size(-1);
  auto h1 =
      torch::layer_norm(torch::linear(ctx, lw.o_w, lw.o_b) + h, {d}, lw.ln1_w, lw.ln1_b, eps_);
  auto inter = torch::gelu(torch::linear(h1, lw.i_w, lw.i_b));  // exact erf GELU
  return torch::layer_norm(torch::linear(inter, lw.f_w, lw.f_b) + h1, {d}, lw.ln2_w, lw.ln2_b,
                           eps_);
}

torch::Tensor BertEncoder::Head(const torch::Tensor& last_hidden,
                                const torch::Tensor& /*attention_mask*/) const {
  auto cls = last_hidden.select(1, 0);
  auto dense = torch::linear(cls, w_.pooler_w, w_.pooler_b);
  torch::Tensor pooled;
  switch (w_.pooled_activation) {
    case PooledActivation::kRelu:
      pooled = torch::relu(dense);
      break;
    case PooledActivation::kGelu:
      pooled = torch::gelu(dense);  // exact erf
      break;
    case PooledActivation::kTanh:
      pooled = torch::tanh(dense);
      break;
  }
  return torch::linear(pooled, w_.cls_w, w_.cls_b);
}

void ForEachWeight(BertWeights& w, const std::function<void(torch::Tensor&, WeightRole)>& fn) {
  auto each = [&](std::initializer_list<torch::Tensor*> tensors, WeightRole role) {
    for (torch::Tensor* t : tensors) {
      if (t->defined()) fn(*t, role);
    }
  };
  constexpr WeightRole kMatrix = WeightRole::kMatrix, kOther = WeightRole::kOther;
  each({&w.word_emb, &w.pos_emb, &w.type_emb}, WeightRole::kTable);
  each({&w.emb_ln_w, &w.emb_ln_b}, kOther);
  each({&w.emb_proj_w}, kMatrix);
  each({&w.emb_proj_b}, kOther);
  for (auto& lw : w.layers) {
    each({&lw.q_w, &lw.k_w, &lw.v_w, &lw.o_w, &lw.i_w, &lw.f_w}, kMatrix);
    each({&lw.q_b, &lw.k_b, &lw.v_b, &lw.o_b, &lw.ln1_w, &lw.ln1_b, &lw.i_b, &lw.f_b, &lw.ln2_w,
          &lw.ln2_b},
         kOther);
  }
  each({&w.pooler_w, &w.cls_w}, kMatrix);
  each({&w.pooler_b, &w.cls_b}, kOther);
}

BertEncoder BertEncoder::CloneWeights(const WeightMap& map) const {
  BertWeights w = w_;
  ForEachWeight(w, [&](torch::Tensor& t, WeightRole role) { t = map(t, role); });
  return BertEncoder(std::move(w), head_dim_, eps_);
}

std::unique_ptr<Encoder> BertEncoder::CloneMapped(const WeightMap& map) const {
  return std::make_unique<BertEncoder>(CloneWeights(map));
}

}  // namespace attattr::engine
