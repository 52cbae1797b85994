// Checkpoint weights → an Encoder (see checkpoint_loader.h): the BERT-family layouts here (BERT,
// DistilBERT, ELECTRA, RoBERTa/XLM-R, DeBERTa-v2), ModernBERT's in modernbert_loader.cc, the Llama
// family's in llama_loader.cc, GPT-2's in gpt2_loader.cc. Tensors are copied out of the
// memory-mapped file in their stored dtype (checkpoint_tensors.h) onto the target device, so the
// mapping can be closed, then converted to the storage LoadOptions::weights asks for
// (weight_storage.h).
#include "checkpoint_loader.h"

#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "bert_family_names.h"
#include "checkpoint_tensors.h"
#include "deberta_encoder.h"
#include "gpt2_loader.h"
#include "llama_loader.h"
#include "modernbert_loader.h"
#include "weight_storage.h"

namespace attattr::engine {
namespace {

absl::StatusOr<LoadedEncoder> LoadBertFamily(TensorSource* src, const ModelConfig& config,
                                             const torch::Device& device) {
  LoadedEncoder out;
  out.weights_file = src->weights_file;
  const TensorNames names = NamesOf(config.family);
  const std::string word = "embeddings.word_embeddings.weight";
  ATTATTR_ASSIGN_OR_RETURN(const std::string prefix,
                           ModelPrefix(*src, names.encoder, word, "an encoder-only checkpoint"));
  WeightPicker pick(src, prefix, device, config.family);
  const int64_t d_model = config.hidden_size;
  const int64_t d_emb = config.embedding_size > 0 ? config.embedding_size : d_model;
  const int64_t dh = config.hidden_size / config.num_attention_heads;
  const int64_t inter = config.intermediate_size;
  BertWeights w;
  ATTATTR_RETURN_IF_ERROR(pick.Take(word, {config.vocab_size, d_emb}, &w.word_emb));
  const bool deberta = config.family == ModelFamily::kDebertaV2;
  if (!deberta || config.disentangled.position_biased_input) {
    ATTATTR_RETURN_IF_ERROR(pick.Take("embeddings.position_embeddings.weight",
                                      {config.max_position_embeddings, d_emb}, &w.pos_emb));
  }
  w.position_offset = config.position_offset;
  if (names.token_types && config.type_vocab_size > 0) {
    ATTATTR_RETURN_IF_ERROR(pick.Take("embeddings.token_type_embeddings.weight",
                                      {config.type_vocab_size, d_emb}, &w.type_emb));
  }
  // DeBERTa projects (without bias) before its LayerNorm; ELECTRA normalises, then projects.
  const int64_t d_norm = deberta ? d_model : d_emb;
  ATTATTR_RETURN_IF_ERROR(pick.Take("embeddings.LayerNorm.weight", {d_norm}, &w.emb_ln_w));
  ATTATTR_RETURN_IF_ERROR(pick.Take("embeddings.LayerNorm.bias", {d_norm}, &w.emb_ln_b));
  w.project_before_norm = deberta;
  if (deberta && d_emb != d_model) {
    ATTATTR_RETURN_IF_ERROR(
        pick.Take("embeddings.embed_proj.weight", {d_model, d_emb}, &w.emb_proj_w));
  } else if (d_emb != d_model) {  // ELECTRA's embeddings_project
    ATTATTR_RETURN_IF_ERROR(
        pick.Take("embeddings_project.weight", {d_model, d_emb}, &w.emb_proj_w));
    ATTATTR_RETURN_IF_ERROR(pick.Take("embeddings_project.bias", {d_model}, &w.emb_proj_b));
  }
  // Takes `<layer prefix><module>.weight` and `.bias`.
  const auto linear = [&](const std::string& p, const char* module, std::vector<int64_t> shape,
                          torch::Tensor* weight, torch::Tensor* bias) {
    ATTATTR_RETURN_IF_ERROR(pick.Take(absl::StrCat(p, module, ".weight"), shape, weight));
    return pick.Take(absl::StrCat(p, module, ".bias"), {shape[0]}, bias);
  };
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    BertLayerWeights lw;
    int pruned = 0;
    if (auto it = config.pruned_heads.find(l); it != config.pruned_heads.end()) {
      pruned = static_cast<int>(std::set<int>(it->second.begin(), it->second.end()).size());
    }
    lw.num_heads = config.num_attention_heads - pruned;
    const int64_t inner = lw.num_heads * dh;
    const std::string p = absl::StrCat(names.layer, l, ".");
    ATTATTR_RETURN_IF_ERROR(linear(p, names.query, {inner, d_model}, &lw.q_w, &lw.q_b));
    ATTATTR_RETURN_IF_ERROR(linear(p, names.key, {inner, d_model}, &lw.k_w, &lw.k_b));
    ATTATTR_RETURN_IF_ERROR(linear(p, names.value, {inner, d_model}, &lw.v_w, &lw.v_b));
    ATTATTR_RETURN_IF_ERROR(linear(p, names.attention_out, {d_model, inner}, &lw.o_w, &lw.o_b));
    ATTATTR_RETURN_IF_ERROR(linear(p, names.attention_norm, {d_model}, &lw.ln1_w, &lw.ln1_b));
    ATTATTR_RETURN_IF_ERROR(linear(p, names.ffn_in, {inter, d_model}, &lw.i_w, &lw.i_b));
    ATTATTR_RETURN_IF_ERROR(linear(p, names.ffn_out, {d_model, inter}, &lw.f_w, &lw.f_b));
    ATTATTR_RETURN_IF_ERROR(linear(p, names.output_norm, {d_model}, &lw.ln2_w, &lw.ln2_b));
    w.layers.push_back(std::move(lw));
  }
  std::optional<DisentangledWeights> disentangled;
  if (deberta) {
    DisentangledWeights dw;
    dw.config = config.disentangled;
    const auto& c = dw.config;
    if (c.relative_attention) {
      ATTATTR_RETURN_IF_ERROR(pick.Take("encoder.rel_embeddings.weight",
                                        {2 * static_cast<int64_t>(c.span()), d_model},
                                        &dw.rel_emb));
      if (c.norm_rel_embeddings) {
        ATTATTR_RETURN_IF_ERROR(
            linear("encoder.", "LayerNorm", {d_model}, &dw.rel_ln_w, &dw.rel_ln_b));
      }
      for (int l = 0; l < config.num_hidden_layers && !c.share_att_key; ++l) {
        const std::string p = absl::StrCat(names.layer, l, ".attention.self.");
        const int64_t inner = w.layers[l].num_heads * dh;
        torch::Tensor kw, kb, qw, qb;
        if (c.c2p) ATTATTR_RETURN_IF_ERROR(linear(p, "pos_key_proj", {inner, d_model}, &kw, &kb));
        if (c.p2c) ATTATTR_RETURN_IF_ERROR(linear(p, "pos_query_proj", {inner, d_model}, &qw, &qb));
        dw.pos_key_w.push_back(kw);
        dw.pos_key_b.push_back(kb);
        dw.pos_query_w.push_back(qw);
        dw.pos_query_b.push_back(qb);
      }
    }
    disentangled = std::move(dw);
  }
  // The classifier sits outside the encoder prefix; BERT's pooler inside it, DistilBERT's
  // pre_classifier and ELECTRA's classifier.dense outside.
  const std::string pooler = absl::StrCat(names.pooler_in_encoder ? prefix : "", names.pooler);
  w.pooled_activation = names.activation;
  if (pick.HasFull(pooler + ".weight")) {
    ATTATTR_RETURN_IF_ERROR(pick.TakeFull(pooler + ".weight", {d_model, d_model}, &w.pooler_w));
    ATTATTR_RETURN_IF_ERROR(pick.TakeFull(pooler + ".bias", {d_model}, &w.pooler_b));
  }
  const std::string classifier = names.classifier;
  const bool has_classifier = pick.HasFull(classifier + ".weight");
  if (has_classifier) {
    if (prefix.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(out.weights_file, ": unexpected tensor '", classifier,
                       ".weight' in an encoder-only checkpoint (classifier checkpoints name the "
                       "encoder '",
                       names.encoder, "*')"));
    }
    if (!w.pooler_w.defined()) {
      return absl::NotFoundError(absl::StrCat(out.weights_file, ": missing tensor '", pooler,
                                              ".weight' (the classifier needs it)"));
    }
    ATTATTR_ASSIGN_OR_RETURN(const int64_t num_labels,
                             ClassifierRows(*src, classifier + ".weight", config));
    out.num_labels = static_cast<int>(num_labels);
    ATTATTR_RETURN_IF_ERROR(pick.TakeFull(classifier + ".weight", {num_labels, d_model}, &w.cls_w));
    ATTATTR_RETURN_IF_ERROR(pick.TakeFull(classifier + ".bias", {num_labels}, &w.cls_b));
  }
  ATTATTR_RETURN_IF_ERROR(pick.CheckAllUsed([&](const std::string& name) {
    if (names.unused_pooler == nullptr) return false;
    const std::string unused = absl::StrCat(prefix, names.unused_pooler);
    return name == unused + ".weight" || name == unused + ".bias";
  }));
  out.parameter_count += pick.parameters();
  out.architecture = has_classifier ? names.architecture : names.base;
  const int head_dim = config.hidden_size / config.num_attention_heads;
  if (disentangled.has_value()) {
    out.encoder = std::make_unique<DebertaEncoder>(std::move(w), std::move(*disentangled), head_dim,
                                                   config.layer_norm_eps);
  } else {
    out.encoder = std::make_unique<BertEncoder>(std::move(w), head_dim, config.layer_norm_eps);
  }
  return out;
}

}  // namespace

absl::StatusOr<LoadedEncoder> LoadEncoder(const std::string& dir, const ModelConfig& config,
                                          const torch::Device& device, Precision weights) {
  absl::StatusOr<LoadedEncoder> loaded;
  {
    ATTATTR_ASSIGN_OR_RETURN(TensorSource src, ReadCheckpointTensors(dir));
    if (config.family == ModelFamily::kModernBert) {
      loaded = LoadModernBert(&src, config, device);
    } else if (config.family == ModelFamily::kGpt2) {
      loaded = LoadGpt2(&src, config, device);
    } else if (IsDecoder(config.family)) {
      loaded = LoadLlama(&src, config, device);
    } else {
      loaded = LoadBertFamily(&src, config, device);
    }
  }  // the checkpoint's tensors not taken are released before the weights are converted
  if (!loaded.ok()) return loaded.status();
  StoredEncoder stored = StoreWeights(*loaded->encoder, weights);
  loaded->encoder = std::move(stored.encoder);
  loaded->weight_bytes = stored.bytes;
  return loaded;
}

}  // namespace attattr::engine
