// The family-independent parts of Encoder (see encoder.h): the whole forward pass and one layer
// from the pieces, the padding mask, fresh parameters for the reference scheme, and mean pooling.
#include "encoder.h"

#include <limits>
#include <stdexcept>

namespace attattr::engine {

torch::Tensor Encoder::AdditiveMask(const torch::Tensor& attention_mask) const {
  // Hugging Face: (1 − mask) · finfo(dtype).min, so padded keys get exactly zero probability.
  const float lowest = std::numeric_limits<float>::lowest();
  return ((1.0 - attention_mask) * lowest).unsqueeze(1).unsqueeze(2);
}

torch::Tensor Encoder::LanguageModelLogits(const torch::Tensor& /*hidden*/) const {
  // Callers check ModelInfo::language_model first (ValidateAttributionOptions).
  throw std::logic_error("LanguageModelLogits: not a language model");
}

torch::Tensor Encoder::Layer(int l, const torch::Tensor& h, const torch::Tensor& add_mask,
                             const torch::Tensor* head_mask_row, torch::Tensor* probs_out) const {
  if (num_heads(l) == 0) {  // every head pruned: the attention block adds only its bias
    auto ctx = torch::zeros({h.size(0), 0, h.size(1), head_dim()}, h.options());
    if (probs_out) *probs_out = torch::zeros({h.size(0), 0, h.size(1), h.size(1)}, h.options());
    return FinishLayer(l, h, ctx);
  }
  const auto x = AttentionInput(l, h);
  auto probs = AttentionProbs(l, x, add_mask);
  if (head_mask_row != nullptr) probs = probs * head_mask_row->view({1, -1, 1, 1});
  if (probs_out) *probs_out = probs;
  return FinishLayer(l, h, torch::matmul(probs, Values(l, x)));
}

torch::Tensor Encoder::FirstRowOfLayer(int l, const torch::Tensor& h,
                                       const torch::Tensor& add_mask) const {
  const auto first = h.narrow(1, 0, 1);
  if (num_heads(l) == 0) {
    return FinishLayer(l, first, torch::zeros({h.size(0), 0, 1, head_dim()}, h.options()));
  }
  const auto x = AttentionInput(l, h);
  auto probs = AttentionProbs(l, x, add_mask).narrow(2, 0, 1);  // [B, H, 1, n]
  return FinishLayer(l, first, torch::matmul(probs, Values(l, x)));
}

EncoderOutput Encoder::Forward(const EncoderBatch& batch, const ForwardOptions& options) const {
  EncoderOutput out;
  auto add_mask = AdditiveMask(batch.attention_mask);
  auto h = Embed(batch);
  for (int l = 0; l < num_layers(); ++l) {
    if (options.capture_hidden_states) out.hidden_states.push_back(h);
    torch::Tensor row;
    if (options.head_mask) {
      // Keep only the entries of heads still present (a pruned layer has fewer).
      row = (*options.head_mask)[l].narrow(0, 0, num_heads(l));
    }
    torch::Tensor probs;
    h = Layer(l, h, add_mask, options.head_mask ? &row : nullptr,
              options.capture_attention ? &probs : nullptr);
    if (options.capture_attention) out.attentions.push_back(probs);
  }
  if (options.capture_hidden_states) out.hidden_states.push_back(h);
  out.last_hidden = h;
  if (has_classifier()) out.logits = Head(h, batch.attention_mask);
  return out;
}

std::unique_ptr<Encoder> Encoder::CloneRequiringGrad(std::vector<torch::Tensor>* params) const {
  return CloneMapped([params](const torch::Tensor& t, WeightRole) {
    auto fresh = t.detach().clone().requires_grad_(true);
    params->push_back(fresh);
    return fresh;
  });
}

std::unique_ptr<Encoder> Encoder::CloneWithMatrices(torch::ScalarType dtype) const {
  return CloneMapped([dtype](const torch::Tensor& t, WeightRole role) {
    return role == WeightRole::kMatrix && t.is_floating_point() ? t.to(dtype) : t;
  });
}

void MapWeights(std::initializer_list<torch::Tensor*> tensors, WeightRole role,
                const WeightMap& map) {
  for (torch::Tensor* t : tensors) {
    if (t->defined()) *t = map(*t, role);
  }
}

torch::Tensor LookUp(const torch::Tensor& table, const torch::Tensor& ids) {
  return torch::embedding(table, ids).to(torch::kFloat32);
}

torch::Tensor MeanPool(const torch::Tensor& last_hidden, const torch::Tensor& attention_mask) {
  auto m = attention_mask.unsqueeze(-1).to(last_hidden.dtype());
  return (last_hidden * m).sum(1) / m.sum(1).clamp_min(1e-9);
}

}  // namespace attattr::engine
