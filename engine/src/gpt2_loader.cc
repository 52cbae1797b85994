// GPT-2 checkpoints → Gpt2Decoder (see gpt2_loader.h).
#include "gpt2_loader.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "gpt2_decoder.h"

namespace attattr::engine {

absl::StatusOr<LoadedEncoder> LoadGpt2(TensorSource* src, const ModelConfig& config,
                                       const torch::Device& device) {
  LoadedEncoder out;
  out.weights_file = src->weights_file;
  const std::string word = "wte.weight";
  ATTATTR_ASSIGN_OR_RETURN(const std::string prefix,
                           ModelPrefix(*src, "transformer.", word, "a bare model checkpoint"));
  WeightPicker pick(src, prefix, device, config.family);
  const int64_t d = config.hidden_size, inter = config.intermediate_size;
  // A Conv1D `<p>` of [in, out] as torch::linear's weight [out, in] and its bias [out].
  const auto conv1d = [&](const std::string& p, int64_t in, int64_t out_features,
                          torch::Tensor* weight, torch::Tensor* bias) {
    ATTATTR_RETURN_IF_ERROR(pick.Take(p + ".weight", {in, out_features}, weight));
    *weight = weight->t().contiguous();
    return pick.Take(p + ".bias", {out_features}, bias);
  };
  const auto norm = [&](const std::string& p, torch::Tensor* weight, torch::Tensor* bias) {
    ATTATTR_RETURN_IF_ERROR(pick.Take(p + ".weight", {d}, weight));
    return pick.Take(p + ".bias", {d}, bias);
  };
  Gpt2Weights w;
  w.num_heads = config.num_attention_heads;
  w.tanh_gelu = config.hidden_act != "gelu";
  w.scale_attn_weights = config.decoder.scale_attn_weights;
  w.scale_by_inverse_layer = config.decoder.scale_attn_by_inverse_layer_idx;
  ATTATTR_RETURN_IF_ERROR(pick.Take(word, {config.vocab_size, d}, &w.wte));
  ATTATTR_RETURN_IF_ERROR(pick.Take("wpe.weight", {config.max_position_embeddings, d}, &w.wpe));
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    Gpt2LayerWeights lw;
    const std::string p = absl::StrCat("h.", l, ".");
    ATTATTR_RETURN_IF_ERROR(norm(p + "ln_1", &lw.ln1_w, &lw.ln1_b));
    torch::Tensor qkv_w, qkv_b;
    ATTATTR_RETURN_IF_ERROR(conv1d(p + "attn.c_attn", d, 3 * d, &qkv_w, &qkv_b));
    lw.q_w = qkv_w.narrow(0, 0, d).contiguous();
    lw.k_w = qkv_w.narrow(0, d, d).contiguous();
    lw.v_w = qkv_w.narrow(0, 2 * d, d).contiguous();
    lw.q_b = qkv_b.narrow(0, 0, d).contiguous();
    lw.k_b = qkv_b.narrow(0, d, d).contiguous();
    lw.v_b = qkv_b.narrow(0, 2 * d, d).contiguous();
    ATTATTR_RETURN_IF_ERROR(conv1d(p + "attn.c_proj", d, d, &lw.o_w, &lw.o_b));
    ATTATTR_RETURN_IF_ERROR(norm(p + "ln_2", &lw.ln2_w, &lw.ln2_b));
    ATTATTR_RETURN_IF_ERROR(conv1d(p + "mlp.c_fc", d, inter, &lw.fc_w, &lw.fc_b));
    ATTATTR_RETURN_IF_ERROR(conv1d(p + "mlp.c_proj", inter, d, &lw.proj_w, &lw.proj_b));
    w.layers.push_back(std::move(lw));
  }
  ATTATTR_RETURN_IF_ERROR(norm("ln_f", &w.lnf_w, &w.lnf_b));
  ATTATTR_RETURN_IF_ERROR(TakeDecoderHead(&pick, *src, config, "transformer.", w.wte, &w.score_w,
                                          &out.num_labels, &out.language_model));
  const bool has_classifier = w.score_w.defined();
  // Checkpoints written by older transformers saved the causal mask as buffers of each layer.
  ATTATTR_RETURN_IF_ERROR(pick.CheckAllUsed([](const std::string& name) {
    return absl::EndsWith(name, ".attn.bias") || absl::EndsWith(name, ".attn.masked_bias");
  }));
  out.parameter_count = pick.parameters();
  out.architecture = out.language_model ? "GPT2LMHeadModel"
                     : has_classifier   ? "GPT2ForSequenceClassification"
                                        : "GPT2Model";
  out.encoder = std::make_unique<Gpt2Decoder>(
      std::move(w), static_cast<int>(d / config.num_attention_heads), config.layer_norm_eps);
  return out;
}

}  // namespace attattr::engine
