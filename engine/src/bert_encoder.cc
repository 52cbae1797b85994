// BERT forward pass in LibTorch ops (see bert_encoder.h). Every intermediate stays on the weights'
// device; nothing here changes grad mode (callers decide).
#include "bert_encoder.h"

#include <cmath>
#include <limits>

namespace attattr::engine {

namespace F = torch::nn::functional;

torch::Tensor BertEncoder::Embed(const EncoderBatch& batch) const {
  const int64_t n = batch.input_ids.size(1);
  auto positions = torch::arange(n, batch.input_ids.options()).unsqueeze(0);
  auto e = torch::embedding(w_.word_emb, batch.input_ids) +
           torch::embedding(w_.pos_emb, positions) +
           torch::embedding(w_.type_emb, batch.token_type_ids);
  return torch::layer_norm(e, {e.size(-1)}, w_.emb_ln_w, w_.emb_ln_b, eps_);
}

torch::Tensor BertEncoder::AdditiveMask(const torch::Tensor& attention_mask) {
  // Hugging Face: (1 − mask) · finfo(dtype).min, so padded keys get exactly zero probability.
  const float lowest = std::numeric_limits<float>::lowest();
  return ((1.0 - attention_mask) * lowest).unsqueeze(1).unsqueeze(2);
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

torch::Tensor BertEncoder::Layer(int l, const torch::Tensor& h, const torch::Tensor& add_mask,
                                 const torch::Tensor* head_mask_row,
                                 torch::Tensor* probs_out) const {
  if (w_.layers[l].num_heads == 0) {  // every head pruned: the attention block adds only its bias
    auto ctx = torch::zeros({h.size(0), 0, h.size(1), head_dim_}, h.options());
    if (probs_out) *probs_out = torch::zeros({h.size(0), 0, h.size(1), h.size(1)}, h.options());
    return FinishLayer(l, h, ctx);
  }
  auto probs = AttentionProbs(l, h, add_mask);
  if (head_mask_row != nullptr) probs = probs * head_mask_row->view({1, -1, 1, 1});
  if (probs_out) *probs_out = probs;
  return FinishLayer(l, h, torch::matmul(probs, Values(l, h)));
}

torch::Tensor BertEncoder::Head(const torch::Tensor& last_hidden) const {
  auto cls = last_hidden.select(1, 0);
  auto pooled = torch::tanh(torch::linear(cls, w_.pooler_w, w_.pooler_b));
  return torch::linear(pooled, w_.cls_w, w_.cls_b);
}

EncoderOutput BertEncoder::Forward(const EncoderBatch& batch, const ForwardOptions& options) const {
  EncoderOutput out;
  auto add_mask = AdditiveMask(batch.attention_mask);
  auto h = Embed(batch);
  for (int l = 0; l < num_layers(); ++l) {
    if (options.capture_hidden_states) out.hidden_states.push_back(h);
    torch::Tensor row;
    if (options.head_mask) {
      // Keep only the entries of heads still present (a pruned layer has fewer).
      row = (*options.head_mask)[l].narrow(0, 0, w_.layers[l].num_heads);
    }
    torch::Tensor probs;
    h = Layer(l, h, add_mask, options.head_mask ? &row : nullptr,
              options.capture_attention ? &probs : nullptr);
    if (options.capture_attention) out.attentions.push_back(probs);
  }
  if (options.capture_hidden_states) out.hidden_states.push_back(h);
  out.last_hidden = h;
  if (has_classifier()) out.logits = Head(h);
  return out;
}

void ForEachWeight(BertWeights& w, const std::function<void(torch::Tensor&)>& fn) {
  for (auto* t : {&w.word_emb, &w.pos_emb, &w.type_emb, &w.emb_ln_w, &w.emb_ln_b}) fn(*t);
  for (auto& lw : w.layers) {
    for (auto* t :
         {&lw.q_w, &lw.q_b, &lw.k_w, &lw.k_b, &lw.v_w, &lw.v_b, &lw.o_w, &lw.o_b, &lw.ln1_w,
          &lw.ln1_b, &lw.i_w, &lw.i_b, &lw.f_w, &lw.f_b, &lw.ln2_w, &lw.ln2_b}) {
      fn(*t);
    }
  }
  for (auto* t : {&w.pooler_w, &w.pooler_b, &w.cls_w, &w.cls_b}) {
    if (t->defined()) fn(*t);
  }
}

torch::Tensor MeanPool(const torch::Tensor& last_hidden, const torch::Tensor& attention_mask) {
  auto m = attention_mask.unsqueeze(-1).to(last_hidden.dtype());
  return (last_hidden * m).sum(1) / m.sum(1).clamp_min(1e-9);
}

}  // namespace attattr::engine
