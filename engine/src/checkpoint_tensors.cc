// Reading a checkpoint's tensors and taking them out by name (see checkpoint_tensors.h).
#include "checkpoint_tensors.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attattr/base/status_macros.h"
#include "safetensors_reader.h"

namespace attattr::engine {

std::string ShapeString(at::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape.vec(), ", "), "]");
}

namespace {

namespace fs = std::filesystem;

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

// What a checkpoint tensor is kept as until the weights are stored (weight_storage.h): fp32 and
// bf16 as they are, so a bf16 checkpoint loaded with bf16 weights never holds an fp32 copy; int64
// buffers too; fp16 and fp64 widened or narrowed to fp32 (fp16 → fp32 is exact, and not every
// LibTorch CPU kernel a loader may run takes fp16).
torch::Tensor KeepOrWiden(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  if (type == torch::kFloat32 || type == torch::kBFloat16 || type == torch::kInt64) return t;
  return t.to(torch::kFloat32);
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
    src.tensors[name] = KeepOrWiden(t).clone();
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
        t = KeepOrWiden(t);
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

}  // namespace

absl::StatusOr<TensorSource> ReadCheckpointTensors(const std::string& dir) {
  const fs::path d(dir);
  absl::StatusOr<TensorSource> src;
  std::string file;
  if (fs::exists(d / "model.safetensors.index.json")) {
    file = (d / "model.safetensors.index.json").string();
    src = ReadSafetensors(dir);
  } else if (fs::exists(d / "model.safetensors")) {
    file = (d / "model.safetensors").string();
    src = ReadSafetensors(dir);
  } else if (fs::exists(d / "pytorch_model.bin")) {
    file = (d / "pytorch_model.bin").string();
    src = ReadPytorchBin(file);
  } else {
    return absl::NotFoundError(absl::StrCat(
        dir,
        ": no weights (model.safetensors, model.safetensors.index.json or pytorch_model.bin)"));
  }
  if (src.ok()) src->weights_file = file;
  return src;
}

absl::StatusOr<std::string> ModelPrefix(const TensorSource& src, const std::string& prefix,
                                        const std::string& first, const char* bare_kind) {
  if (src.tensors.count(prefix + first)) return prefix;
  if (src.tensors.count(first)) return std::string();
  return absl::NotFoundError(absl::StrCat(src.weights_file, ": missing tensor '", prefix, first,
                                          "' (or, for ", bare_kind, ", '", first, "')"));
}

absl::Status TakeDecoderScore(WeightPicker* pick, const TensorSource& src,
                              const ModelConfig& config, const char* decoder_prefix,
                              torch::Tensor* weight, int* num_labels) {
  const std::string name = "score.weight";
  if (!pick->HasFull(name)) return absl::OkStatus();
  if (pick->prefix().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(src.weights_file, ": unexpected tensor '", name,
                     "' in a bare model checkpoint (classifier checkpoints name the decoder '",
                     decoder_prefix, "*')"));
  }
  ATTATTR_ASSIGN_OR_RETURN(const int64_t labels, ClassifierRows(src, name, config));
  *num_labels = static_cast<int>(labels);
  return pick->TakeFull(name, {labels, config.hidden_size}, weight);
}

absl::Status TakeDecoderHead(WeightPicker* pick, const TensorSource& src, const ModelConfig& config,
                             const char* decoder_prefix, const torch::Tensor& embed,
                             torch::Tensor* weight, int* num_labels, bool* language_model) {
  ATTATTR_RETURN_IF_ERROR(TakeDecoderScore(pick, src, config, decoder_prefix, weight, num_labels));
  const std::string lm_head = "lm_head.weight";
  const bool named_lm = std::any_of(
      config.architectures.begin(), config.architectures.end(), [](const std::string& a) {
        return absl::EndsWith(a, "ForCausalLM") || absl::EndsWith(a, "LMHeadModel");
      });
  if (weight->defined() || (!named_lm && !pick->HasFull(lm_head))) return absl::OkStatus();
  if (pick->HasFull(lm_head)) {
    ATTATTR_RETURN_IF_ERROR(
        pick->TakeFull(lm_head, {config.vocab_size, config.hidden_size}, weight));
  } else if (config.decoder.tie_word_embeddings) {
    *weight = embed;
  } else {
    return absl::NotFoundError(absl::StrCat(
        src.weights_file, ": missing tensor '", lm_head, "' (config.json names a causal LM, ",
        config.architectures.empty() ? std::string() : config.architectures[0].substr(0, 64),
        ", and tie_word_embeddings is false)"));
  }
  *num_labels = config.vocab_size;
  *language_model = true;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ClassifierRows(const TensorSource& src, const std::string& name,
                                       const ModelConfig& config) {
  auto it = src.tensors.find(name);
  if (it == src.tensors.end() || it->second.dim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(src.weights_file, ": tensor '", name, "' is missing or not a matrix"));
  }
  const int64_t rows = it->second.size(0);
  if (!config.id2label.empty() && rows != static_cast<int64_t>(config.id2label.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat(src.file_of.at(name), ": tensor '", name, "' has ", rows,
                     " rows but config.json's id2label names ", config.id2label.size(), " labels"));
  }
  return rows;
}

absl::Status WeightPicker::TakeFull(const std::string& full, std::vector<int64_t> shape,
                                    torch::Tensor* out) {
  auto it = src_->tensors.find(full);
  if (it == src_->tensors.end()) {
    return absl::NotFoundError(absl::StrCat(src_->weights_file, ": missing tensor '", full,
                                            "' (expected shape ", ShapeString(shape), ")"));
  }
  if (it->second.sizes().vec() != shape) {
    return absl::InvalidArgumentError(absl::StrCat(src_->file_of[full], ": tensor '", full,
                                                   "' has shape ", ShapeString(it->second.sizes()),
                                                   ", expected ", ShapeString(shape)));
  }
  if (!it->second.is_floating_point()) {
    return absl::InvalidArgumentError(
        absl::StrCat(src_->file_of[full], ": tensor '", full, "' is not floating point"));
  }
  *out = it->second.to(device_);
  parameters_ += out->numel();
  used_.insert(full);
  return absl::OkStatus();
}

absl::Status WeightPicker::CheckAllUsed(
    const std::function<bool(const std::string&)>& also_ignorable) const {
  for (const auto& [name, t] : src_->tensors) {
    if (used_.count(name) == 0 && !IsIgnorable(name) && !(also_ignorable && also_ignorable(name))) {
      return absl::InvalidArgumentError(
          absl::StrCat(src_->file_of.at(name), ": unexpected tensor '", name, "' with shape ",
                       ShapeString(t.sizes()), " (not part of a ", FamilyName(family_),
                       " encoder or classifier)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace attattr::engine
