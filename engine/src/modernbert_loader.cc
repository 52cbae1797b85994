// ModernBERT checkpoints → ModernBertEncoder (see modernbert_loader.h). Biases are taken only where
// config.json says the modules have them (norm_bias, attention_bias, mlp_bias, classifier_bias);
// a masked-LM checkpoint's `head.*` and `decoder.*` are ignored, so it loads as an encoder.
#include "modernbert_loader.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "modernbert_encoder.h"

namespace attattr::engine {

absl::StatusOr<LoadedEncoder> LoadModernBert(TensorSource* src, const ModelConfig& config,
                                             const torch::Device& device) {
  LoadedEncoder out;
  out.weights_file = src->weights_file;
  const std::string word = "embeddings.tok_embeddings.weight";
  ATTATTR_ASSIGN_OR_RETURN(const std::string prefix,
                           ModelPrefix(*src, "model.", word, "an encoder-only checkpoint"));
  WeightPicker pick(src, prefix, device, config.family);
  const RotaryLayersConfig& rc = config.rotary;
  const int64_t d = config.hidden_size, inter = config.intermediate_size;
  // Takes `<p>.weight` of `shape` and, when `bias`, `<p>.bias`.
  const auto take = [&](const std::string& p, std::vector<int64_t> shape, bool bias,
                        torch::Tensor* weight, torch::Tensor* bias_out, bool full = false) {
    const std::string name = full ? p : prefix + p;
    ATTATTR_RETURN_IF_ERROR(pick.TakeFull(name + ".weight", shape, weight));
    return bias ? pick.TakeFull(name + ".bias", {shape[0]}, bias_out) : absl::OkStatus();
  };
  ModernBertWeights w;
  w.config = rc;
  w.num_heads = config.num_attention_heads;
  ATTATTR_RETURN_IF_ERROR(pick.Take(word, {config.vocab_size, d}, &w.word_emb));
  ATTATTR_RETURN_IF_ERROR(take("embeddings.norm", {d}, rc.norm_bias, &w.emb_norm_w, &w.emb_norm_b));
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    ModernBertLayerWeights lw;
    const std::string p = absl::StrCat("layers.", l, ".");
    if (l > 0) {
      ATTATTR_RETURN_IF_ERROR(
          take(p + "attn_norm", {d}, rc.norm_bias, &lw.attn_norm_w, &lw.attn_norm_b));
    }
    torch::Tensor qkv_w, qkv_b;
    ATTATTR_RETURN_IF_ERROR(take(p + "attn.Wqkv", {3 * d, d}, rc.attention_bias, &qkv_w, &qkv_b));
    lw.q_w = qkv_w.narrow(0, 0, d).contiguous();
    lw.k_w = qkv_w.narrow(0, d, d).contiguous();
    lw.v_w = qkv_w.narrow(0, 2 * d, d).contiguous();
    if (qkv_b.defined()) {
      lw.q_b = qkv_b.narrow(0, 0, d).contiguous();
      lw.k_b = qkv_b.narrow(0, d, d).contiguous();
      lw.v_b = qkv_b.narrow(0, 2 * d, d).contiguous();
    }
    ATTATTR_RETURN_IF_ERROR(take(p + "attn.Wo", {d, d}, rc.attention_bias, &lw.o_w, &lw.o_b));
    ATTATTR_RETURN_IF_ERROR(
        take(p + "mlp_norm", {d}, rc.norm_bias, &lw.mlp_norm_w, &lw.mlp_norm_b));
    ATTATTR_RETURN_IF_ERROR(take(p + "mlp.Wi", {2 * inter, d}, rc.mlp_bias, &lw.wi_w, &lw.wi_b));
    ATTATTR_RETURN_IF_ERROR(take(p + "mlp.Wo", {d, inter}, rc.mlp_bias, &lw.wo_w, &lw.wo_b));
    w.layers.push_back(std::move(lw));
  }
  ATTATTR_RETURN_IF_ERROR(take("final_norm", {d}, rc.norm_bias, &w.final_norm_w, &w.final_norm_b));
  const bool has_classifier = pick.HasFull("classifier.weight");
  if (has_classifier) {
    if (prefix.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(out.weights_file,
                       ": unexpected tensor 'classifier.weight' in an encoder-only checkpoint "
                       "(classifier checkpoints name the encoder 'model.*')"));
    }
    ATTATTR_ASSIGN_OR_RETURN(const int64_t labels,
                             ClassifierRows(*src, "classifier.weight", config));
    out.num_labels = static_cast<int>(labels);
    ATTATTR_RETURN_IF_ERROR(
        take("head.dense", {d, d}, rc.classifier_bias, &w.head_w, &w.head_b, true));
    ATTATTR_RETURN_IF_ERROR(
        take("head.norm", {d}, rc.norm_bias, &w.head_norm_w, &w.head_norm_b, true));
    ATTATTR_RETURN_IF_ERROR(take("classifier", {labels, d}, true, &w.cls_w, &w.cls_b, true));
  }
  // A masked-LM checkpoint's prediction head and decoder (tied to the embeddings).
  ATTATTR_RETURN_IF_ERROR(pick.CheckAllUsed([&](const std::string& name) {
    return !has_classifier &&
           (absl::StartsWith(name, "head.") || absl::StartsWith(name, "decoder."));
  }));
  out.parameter_count = pick.parameters();
  out.architecture = has_classifier ? "ModernBertForSequenceClassification" : "ModernBertModel";
  out.encoder = std::make_unique<ModernBertEncoder>(
      std::move(w), config.hidden_size / config.num_attention_heads, config.layer_norm_eps);
  return out;
}

}  // namespace attattr::engine
