// Checkpoint weights → BertWeights (see checkpoint_loader.h). Tensors are copied out of the
// memory-mapped file into float32 tensors on the target device, so the mapping can be closed.
#include "checkpoint_loader.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attattr/base/status_macros.h"
#include "safetensors_reader.h"

namespace attattr::engine {
namespace {

namespace fs = std::filesystem;

// Raw float tensors by name, with the file each came from for error messages.
struct TensorSource {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> file_of;
};

std::string ShapeString(at::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape.vec(), ", "), "]");
}

absl::StatusOr<torch::ScalarType> TorchType(const TensorEntry& e, const std::string& file) {
  switch (e.dtype) {
    case SafetensorsDType::kF32:
      return torch::kFloat32;
    case SafetensorsDType::kF16:
      return torch::kFloat16;
    case SafetensorsDType::kBF16:
      return torch::kBFloat16;
    case SafetensorsDType::kF64:
      return torch::kFloat64;
    case SafetensorsDType::kI64:
      return torch::kInt64;
    default:
      return absl::InvalidArgumentError(absl::StrCat(file, ": tensor '", e.name, "' has dtype ",
                                                     std::string(DTypeName(e.dtype)),
                                                     "; weights must be F32, F16 or BF16"));
  }
}

absl::StatusOr<TensorSource> ReadSafetensors(const std::string& dir) {
  ATTATTR_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::Open(dir));
  TensorSource src;
  for (const auto& name : ckpt->TensorNames()) {
    ATTATTR_ASSIGN_OR_RETURN(auto view, ckpt->Find(name));
    const std::string file = ckpt->FileOf(name);
    ATTATTR_ASSIGN_OR_RETURN(auto type, TorchType(*view.entry, file));
    auto t = torch::from_blob(const_cast<uint8_t*>(view.data), view.entry->shape,
                              torch::TensorOptions().dtype(type));
    src.tensors[name] = (type == torch::kInt64) ? t.clone() : t.to(torch::kFloat32).clone();
    src.file_of[name] = file;
  }
  return src;
}

absl::StatusOr<TensorSource> ReadPytorchBin(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TensorSource src;
  try {
    c10::IValue root = torch::pickle_load(bytes);
    if (!root.isGenericDict()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": expected a state dict (name -> tensor), got ", root.tagKind()));
    }
    for (const auto& item : root.toGenericDict()) {
      if (!item.key().isString() || !item.value().isTensor()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": state dict entries must map names to tensors"));
      }
      const std::string name = item.key().toStringRef();
      auto t = item.value().toTensor();
      if (t.scalar_type() != torch::kInt64) {
        if (!t.is_floating_point()) {
          return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", name, "' has dtype ",
                                                         std::string(t.dtype().name()),
                                                         "; weights must be floating point"));
        }
        t = t.to(torch::kFloat32);
      }
      src.tensors[name] = t.contiguous().clone();
      src.file_of[name] = path;
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a readable PyTorch checkpoint: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a readable PyTorch checkpoint: ", e.what()));
  }
  return src;
}

// Tensors a checkpoint may carry that the model does not use: buffers and pre-training heads
// (BERT's `cls.*`, DistilBERT's masked-LM `vocab_*`, ELECTRA's discriminator and generator heads,
// RoBERTa's `lm_head.*`, DeBERTa's masked-LM `lm_predictions.*`).
bool IsIgnorable(const std::string& name) {
  return absl::EndsWith(name, "embeddings.position_ids") || absl::StartsWith(name, "cls.") ||
         absl::StartsWith(name, "vocab_") || absl::StartsWith(name, "discriminator_predictions.") ||
         absl::StartsWith(name, "generator_") || absl::StartsWith(name, "lm_head.") ||
         absl::StartsWith(name, "lm_predictions.") || absl::StartsWith(name, "mask_predictions.");
}

// How a family names its tensors (Hugging Face's module paths). `encoder` prefixes the encoder in
// classifier checkpoints; `layer` is followed by the layer index and a dot; the head's dense layer
// (`pooler`) is inside the encoder prefix for BERT and outside it otherwise; `classifier` is the
// output projection.
struct TensorNames {
  const char* encoder = "bert.";
  const char* architecture = "BertForSequenceClassification";  // with a classifier
  const char* base = "BertModel";                              // without
  bool token_types = true;
  const char* layer = "encoder.layer.";
  const char* query = "attention.self.query";
  const char* key = "attention.self.key";
  const char* value = "attention.self.value";
  const char* attention_out = "attention.output.dense";
  const char* attention_norm = "attention.output.LayerNorm";
  const char* ffn_in = "intermediate.dense";
  const char* ffn_out = "output.dense";
  const char* output_norm = "output.LayerNorm";
  const char* pooler = "pooler.dense";
  bool pooler_in_encoder = true;
  PooledActivation activation = PooledActivation::kTanh;
  const char* classifier = "classifier";
};

TensorNames NamesOf(ModelFamily family) {
  TensorNames n;  // BERT's
  switch (family) {
    case ModelFamily::kDistilBert:
      n.encoder = "distilbert.";
      n.architecture = "DistilBertForSequenceClassification";
      n.base = "DistilBertModel";
      n.token_types = false;
      n.layer = "transformer.layer.";
      n.query = "attention.q_lin";
      n.key = "attention.k_lin";
      n.value = "attention.v_lin";
      n.attention_out = "attention.out_lin";
      n.attention_norm = "sa_layer_norm";
      n.ffn_in = "ffn.lin1";
      n.ffn_out = "ffn.lin2";
      n.output_norm = "output_layer_norm";
      n.pooler = "pre_classifier";
      n.pooler_in_encoder = false;
      n.activation = PooledActivation::kRelu;
      break;
    case ModelFamily::kElectra:
      n.encoder = "electra.";
      n.architecture = "ElectraForSequenceClassification";
      n.base = "ElectraModel";
      n.pooler = "classifier.dense";
      n.pooler_in_encoder = false;
      n.activation = PooledActivation::kGelu;
      n.classifier = "classifier.out_proj";
      break;
    case ModelFamily::kRoberta:
    case ModelFamily::kXlmRoberta: {
      const bool xlm = family == ModelFamily::kXlmRoberta;
      n.encoder = "roberta.";
      n.architecture =
          xlm ? "XLMRobertaForSequenceClassification" : "RobertaForSequenceClassification";
      n.base = xlm ? "XLMRobertaModel" : "RobertaModel";
      n.pooler = "classifier.dense";
      n.pooler_in_encoder = false;
      n.classifier = "classifier.out_proj";
      break;
    }
    case ModelFamily::kDebertaV2:
      n.encoder = "deberta.";
      n.architecture = "DebertaV2ForSequenceClassification";
      n.base = "DebertaV2Model";
      n.query = "attention.self.query_proj";
      n.key = "attention.self.key_proj";
      n.value = "attention.self.value_proj";
      n.pooler = "pooler.dense";
      n.pooler_in_encoder = false;
      n.activation = PooledActivation::kGelu;
      break;
    case ModelFamily::kBert:
      break;
  }
  return n;
}

class WeightPicker {
 public:
  WeightPicker(TensorSource* src, std::string prefix, const torch::Device& device,
               std::string default_file, ModelFamily family)
      : src_(src),
        prefix_(std::move(prefix)),
        device_(device),
        default_file_(std::move(default_file)),
        family_(family) {}

  // Takes tensor `prefix + name`, checking its shape.
  absl::Status Take(const std::string& name, std::vector<int64_t> shape, torch::Tensor* out) {
    return TakeFull(prefix_ + name, std::move(shape), out);
  }
  // Takes tensor `full` (outside the prefix: a classifier head), checking its shape.
  absl::Status TakeFull(const std::string& full, std::vector<int64_t> shape, torch::Tensor* out) {
    auto it = src_->tensors.find(full);
    if (it == src_->tensors.end()) {
      return absl::NotFoundError(absl::StrCat(default_file_, ": missing tensor '", full,
                                              "' (expected shape ", ShapeString(shape), ")"));
    }
    if (it->second.sizes().vec() != shape) {
      return absl::InvalidArgumentError(
          absl::StrCat(src_->file_of[full], ": tensor '", full, "' has shape ",
                       ShapeString(it->second.sizes()), ", expected ", ShapeString(shape)));
    }
    if (it->second.scalar_type() != torch::kFloat32) {
      return absl::InvalidArgumentError(
          absl::StrCat(src_->file_of[full], ": tensor '", full, "' is not floating point"));
    }
    *out = it->second.to(device_);
    parameters_ += out->numel();
    used_.insert(full);
    return absl::OkStatus();
  }

  bool HasFull(const std::string& full) const { return src_->tensors.count(full) > 0; }
  const std::string& prefix() const { return prefix_; }

  // InvalidArgument naming the first tensor nobody took (other than ignorable ones).
  absl::Status CheckAllUsed() const {
    for (const auto& [name, t] : src_->tensors) {
      if (used_.count(name) == 0 && !IsIgnorable(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat(src_->file_of.at(name), ": unexpected tensor '", name, "' with shape ",
                         ShapeString(t.sizes()), " (not part of a ", FamilyName(family_),
                         " encoder or classifier)"));
      }
    }
    return absl::OkStatus();
  }

  int64_t parameters() const { return parameters_; }

 private:
  TensorSource* src_;
  std::string prefix_;
  torch::Device device_;
  std::string default_file_;
  ModelFamily family_;
  std::set<std::string> used_;
  int64_t parameters_ = 0;
};

}  // namespace

absl::StatusOr<LoadedWeights> LoadBertWeights(const std::string& dir, const ModelConfig& config,
                                              const torch::Device& device) {
  LoadedWeights out;
  absl::StatusOr<TensorSource> src;
  const fs::path d(dir);
  if (fs::exists(d / "model.safetensors.index.json")) {
    out.weights_file = (d / "model.safetensors.index.json").string();
    src = ReadSafetensors(dir);
  } else if (fs::exists(d / "model.safetensors")) {
    out.weights_file = (d / "model.safetensors").string();
    src = ReadSafetensors(dir);
  } else if (fs::exists(d / "pytorch_model.bin")) {
    out.weights_file = (d / "pytorch_model.bin").string();
    src = ReadPytorchBin(out.weights_file);
  } else {
    return absl::NotFoundError(absl::StrCat(
        dir,
        ": no weights (model.safetensors, model.safetensors.index.json or pytorch_model.bin)"));
  }
  if (!src.ok()) return src.status();

  const TensorNames names = NamesOf(config.family);
  const std::string word = "embeddings.word_embeddings.weight";
  std::string prefix;
  if (src->tensors.count(names.encoder + word)) {
    prefix = names.encoder;
  } else if (!src->tensors.count(word)) {
    return absl::NotFoundError(absl::StrCat(out.weights_file, ": missing tensor '", names.encoder,
                                            word, "' (or, for an encoder-only checkpoint, '", word,
                                            "')"));
  }
  WeightPicker pick(&*src, prefix, device, out.weights_file, config.family);
  const int64_t d_model = config.hidden_size;
  const int64_t d_emb = config.embedding_size > 0 ? config.embedding_size : d_model;
  const int64_t dh = config.hidden_size / config.num_attention_heads;
  const int64_t inter = config.intermediate_size;
  BertWeights& w = out.weights;
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
    out.disentangled = std::move(dw);
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
    const int64_t num_labels = src->tensors[classifier + ".weight"].size(0);
    if (!config.id2label.empty() && num_labels != static_cast<int64_t>(config.id2label.size())) {
      return absl::InvalidArgumentError(absl::StrCat(
          out.weights_file, ": tensor '", classifier, ".weight' has ", num_labels,
          " rows but config.json's id2label names ", config.id2label.size(), " labels"));
    }
    ATTATTR_RETURN_IF_ERROR(pick.TakeFull(classifier + ".weight", {num_labels, d_model}, &w.cls_w));
    ATTATTR_RETURN_IF_ERROR(pick.TakeFull(classifier + ".bias", {num_labels}, &w.cls_b));
  }
  ATTATTR_RETURN_IF_ERROR(pick.CheckAllUsed());
  out.parameter_count += pick.parameters();
  out.architecture = has_classifier ? names.architecture : names.base;
  return out;
}

}  // namespace attattr::engine
