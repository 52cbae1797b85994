// Llama, Mistral and Qwen2 checkpoints → LlamaDecoder (see llama_loader.h). Biases are taken only
// where the family and config.json say the projections have them (DecoderConfig).
#include "llama_loader.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "llama_decoder.h"

namespace attattr::engine {
namespace {

// Hugging Face's class name per family for a classifier, a causal LM, or a bare model.
const char* Architecture(ModelFamily family, bool classifier, bool language_model) {
  const bool mistral = family == ModelFamily::kMistral, qwen2 = family == ModelFamily::kQwen2;
  if (language_model) {
    return mistral ? "MistralForCausalLM" : qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
  }
  if (classifier) {
    return mistral ? "MistralForSequenceClassification"
           : qwen2 ? "Qwen2ForSequenceClassification"
                   : "LlamaForSequenceClassification";
  }
  return mistral ? "MistralModel" : qwen2 ? "Qwen2Model" : "LlamaModel";
}

}  // namespace

absl::StatusOr<LoadedEncoder> LoadLlama(TensorSource* src, const ModelConfig& config,
                                        const torch::Device& device) {
  LoadedEncoder out;
  out.weights_file = src->weights_file;
  const std::string word = "embed_tokens.weight";
  ATTATTR_ASSIGN_OR_RETURN(const std::string prefix,
                           ModelPrefix(*src, "model.", word, "a bare model checkpoint"));
  WeightPicker pick(src, prefix, device, config.family);
  const DecoderConfig& dc = config.decoder;
  const int64_t d = config.hidden_size, inter = config.intermediate_size;
  const int64_t dh = config.hidden_size / config.num_attention_heads;
  const int64_t q_rows = config.num_attention_heads * dh, kv_rows = dc.num_key_value_heads * dh;
  // Takes `<prefix><p>.weight` of `shape` and, when `bias`, `<prefix><p>.bias`.
  const auto take = [&](const std::string& p, std::vector<int64_t> shape, bool bias,
                        torch::Tensor* weight, torch::Tensor* bias_out) {
    ATTATTR_RETURN_IF_ERROR(pick.Take(p + ".weight", shape, weight));
    return bias ? pick.Take(p + ".bias", {shape[0]}, bias_out) : absl::OkStatus();
  };
  LlamaWeights w;
  w.config = dc;
  w.num_heads = config.num_attention_heads;
  ATTATTR_RETURN_IF_ERROR(pick.Take(word, {config.vocab_size, d}, &w.embed));
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    LlamaLayerWeights lw;
    const std::string p = absl::StrCat("layers.", l, ".");
    torch::Tensor none;
    ATTATTR_RETURN_IF_ERROR(take(p + "input_layernorm", {d}, false, &lw.input_norm_w, &none));
    ATTATTR_RETURN_IF_ERROR(
        take(p + "self_attn.q_proj", {q_rows, d}, dc.qkv_bias, &lw.q_w, &lw.q_b));
    ATTATTR_RETURN_IF_ERROR(
        take(p + "self_attn.k_proj", {kv_rows, d}, dc.qkv_bias, &lw.k_w, &lw.k_b));
    ATTATTR_RETURN_IF_ERROR(
        take(p + "self_attn.v_proj", {kv_rows, d}, dc.qkv_bias, &lw.v_w, &lw.v_b));
    ATTATTR_RETURN_IF_ERROR(take(p + "self_attn.o_proj", {d, q_rows}, dc.o_bias, &lw.o_w, &lw.o_b));
    ATTATTR_RETURN_IF_ERROR(
        take(p + "post_attention_layernorm", {d}, false, &lw.post_norm_w, &none));
    ATTATTR_RETURN_IF_ERROR(
        take(p + "mlp.gate_proj", {inter, d}, dc.mlp_bias, &lw.gate_w, &lw.gate_b));
    ATTATTR_RETURN_IF_ERROR(take(p + "mlp.up_proj", {inter, d}, dc.mlp_bias, &lw.up_w, &lw.up_b));
    ATTATTR_RETURN_IF_ERROR(
        take(p + "mlp.down_proj", {d, inter}, dc.mlp_bias, &lw.down_w, &lw.down_b));
    w.layers.push_back(std::move(lw));
  }
  ATTATTR_RETURN_IF_ERROR(pick.Take("norm.weight", {d}, &w.final_norm_w));
  ATTATTR_RETURN_IF_ERROR(TakeDecoderHead(&pick, *src, config, "model.", w.embed, &w.score_w,
                                          &out.num_labels, &out.language_model));
  const bool has_classifier = w.score_w.defined();
  // Older checkpoints saved RoPE's inverse frequencies as a buffer per layer.
  ATTATTR_RETURN_IF_ERROR(pick.CheckAllUsed(
      [](const std::string& name) { return absl::EndsWith(name, "rotary_emb.inv_freq"); }));
  out.parameter_count = pick.parameters();
  out.architecture = Architecture(config.family, has_classifier, out.language_model);
  out.encoder =
      std::make_unique<LlamaDecoder>(std::move(w), static_cast<int>(dh), config.layer_norm_eps);
  return out;
}

}  // namespace attattr::engine
