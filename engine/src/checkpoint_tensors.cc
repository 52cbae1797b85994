// Reading a checkpoint's tensors and taking them out by name (see checkpoint_tensors.h).
// pytorch_model.bin goes through LibTorch's own zip reader and unpickler (no hand-written pickle
// reader), over the open file rather than a copy of it in memory.
#include "checkpoint_tensors.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attattr/base/quote.h"
#include "attattr/base/status_macros.h"
#include "model_file.h"
#include "safetensors_reader.h"

namespace attattr::engine {

std::string ShapeString(at::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape.vec(), ", "), "]");
}

namespace {

namespace fs = std::filesystem;

// Safetensors dtypes as torch types: every one the format has, so a checkpoint's buffers (a bool
// causal mask, uint8 indices) are read as what they are; whether a tensor may be a weight is
// decided when it is taken (WeightPicker::TakeFull), by which time a loader has said which
// tensors it ignores.
torch::ScalarType TorchType(SafetensorsDType dtype) {
  switch (dtype) {
    case SafetensorsDType::kF64:
      return torch::kFloat64;
    case SafetensorsDType::kF32:
      return torch::kFloat32;
    case SafetensorsDType::kF16:
      return torch::kFloat16;
    case SafetensorsDType::kBF16:
      return torch::kBFloat16;
    case SafetensorsDType::kI64:
      return torch::kInt64;
    case SafetensorsDType::kI32:
      return torch::kInt32;
    case SafetensorsDType::kI16:
      return torch::kInt16;
    case SafetensorsDType::kI8:
      return torch::kInt8;
    case SafetensorsDType::kU8:
      return torch::kUInt8;
    case SafetensorsDType::kBool:
      return torch::kBool;
  }
  return torch::kUInt8;
}

// A torch dtype as safetensors spells it, for messages ("U8", "BOOL"); torch's name otherwise.
std::string DTypeSpelling(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat64:
      return "F64";
    case torch::kFloat32:
      return "F32";
    case torch::kFloat16:
      return "F16";
    case torch::kBFloat16:
      return "BF16";
    case torch::kInt64:
      return "I64";
    case torch::kInt32:
      return "I32";
    case torch::kInt16:
      return "I16";
    case torch::kInt8:
      return "I8";
    case torch::kUInt8:
      return "U8";
    case torch::kBool:
      return "BOOL";
    default:
      return c10::toString(type);
  }
}

// What a checkpoint tensor is kept as until the weights are stored (weight_storage.h): fp32 and
// bf16 as they are, so a bf16 checkpoint loaded with bf16 weights never holds an fp32 copy; fp16
// and fp64 widened or narrowed to fp32 (fp16 → fp32 is exact, and not every LibTorch CPU kernel a
// loader may run takes fp16).
torch::Tensor KeepOrWiden(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  if (type == torch::kFloat32 || type == torch::kBFloat16) return t;
  return t.to(torch::kFloat32);
}

// The tensors are views of the memory-mapped files, not copies: a tensor no loader takes (a
// pre-training head, a causal-mask buffer) is never read from disk. Each view keeps the mapping
// alive; the mapping is read-only, so TakeFull copies what it takes.
absl::StatusOr<TensorSource> ReadSafetensors(const std::string& dir) {
  ATTATTR_ASSIGN_OR_RETURN(std::shared_ptr<const SafetensorsCheckpoint> ckpt,
                           SafetensorsCheckpoint::Open(dir));
  TensorSource src;
  src.read_only = true;
  for (const auto& name : ckpt->TensorNames()) {
    ATTATTR_ASSIGN_OR_RETURN(auto view, ckpt->Find(name));
    src.tensors[name] = torch::from_blob(
        const_cast<uint8_t*>(view.data), view.entry->shape, [ckpt](void*) {},
        torch::TensorOptions().dtype(TorchType(view.entry->dtype)));
    src.file_of[name] = ckpt->FileOf(name);
  }
  return src;
}

// caffe2's zip reader over an open file: it reads the records it is asked for, with pread, and
// never holds the whole file.
class FileReadAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit FileReadAdapter(std::shared_ptr<const ModelFile> file) : file_(std::move(file)) {}
  size_t size() const override { return static_cast<size_t>(file_->size()); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    size_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(file_->fd(), static_cast<char*>(buf) + done, n - done,
                                  static_cast<off_t>(pos + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

 private:
  std::shared_ptr<const ModelFile> file_;
};

// How to turn any PyTorch checkpoint into what the engine reads, for messages.
constexpr char kConvertHint[] =
    "; convert it to model.safetensors (README \"Checkpoint formats\"): python -c \"import torch; "
    "from safetensors.torch import save_file; sd = torch.load('pytorch_model.bin', "
    "map_location='cpu', weights_only=True); save_file({k: v.contiguous().clone() for k, v in "
    "sd.items()}, 'model.safetensors', metadata={'format': 'pt'})\"";

absl::StatusOr<TensorSource> ReadPytorchBin(const std::string& path) {
  ATTATTR_ASSIGN_OR_RETURN(ModelFile opened, ModelFile::Open(path));
  auto file = std::make_shared<const ModelFile>(std::move(opened));
  std::string magic(4, '\0');
  magic.resize(FileReadAdapter(file).read(0, magic.data(), magic.size(), "magic"));
  if (magic != std::string("PK\x03\x04", 4)) {
    // torch.save before PyTorch 1.6 (or with _use_new_zipfile_serialization=False) wrote a
    // sequence of pickles, which starts with pickle's PROTO opcode; LibTorch reads only the zip.
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        !magic.empty() && static_cast<unsigned char>(magic[0]) == 0x80
            ? ": a PyTorch checkpoint in the legacy (pre-1.6, non-zip) torch.save format, which "
              "LibTorch cannot read"
            : ": not a PyTorch checkpoint (torch.save writes a zip archive)",
        kConvertHint));
  }
  TensorSource src;
  try {
    caffe2::serialize::PyTorchStreamReader reader(std::make_shared<FileReadAdapter>(file));
    // torch.save(model.state_dict()) pickles an OrderedDict (with a _metadata attribute), which
    // LibTorch's unpickler turns into None (it only meets OrderedDicts as a tensor's empty
    // backward hooks; a type resolver is not consulted for it) and then fails an internal assert
    // on; say so before it gets there. (transformers' save_pretrained saves plain dicts since it
    // shards checkpoints.)
    // Protocol 2, as torch.save writes: PROTO 2, then GLOBAL 'collections OrderedDict'.
    const auto [pickle, pickle_size] = reader.getRecord("data.pkl");
    const std::string_view head(static_cast<const char*>(pickle.get()),
                                std::min<size_t>(pickle_size, 64));
    if (head.size() >= 26 && head.substr(2, 24) == "ccollections\nOrderedDict") {
      return absl::InvalidArgumentError(
          absl::StrCat(path,
                       ": a state dict saved as an OrderedDict (torch.save(model.state_dict()), "
                       "as training scripts and older transformers versions write it), which "
                       "LibTorch's unpickler cannot read (it reads a plain dict of tensors)",
                       kConvertHint));
    }
    c10::IValue root =
        torch::jit::readArchiveAndTensors("data", /*pickle_prefix=*/"", /*tensor_prefix=*/"",
                                          c10::nullopt, c10::nullopt, c10::nullopt, reader);
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
      src.tensors[name] = item.value().toTensor().contiguous();
      src.file_of[name] = path;
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a readable PyTorch checkpoint: ",
                                                   EscapeForLog(e.what_without_backtrace(), 300),
                                                   kConvertHint));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a readable PyTorch checkpoint: ", EscapeForLog(e.what(), 300), kConvertHint));
  }
  return src;
}

// At most this many tensors in a sharded pytorch_model.bin, as in safetensors checkpoints.
constexpr std::size_t kMaxCheckpointTensors = 1'000'000;

// pytorch_model.bin.index.json (transformers' sharded .bin, the format of model.safetensors.index
// .json): every shard read as one pytorch_model.bin, each tensor in exactly the shard the index
// names. The shards are read one after another; together they hold what one file would.
absl::StatusOr<TensorSource> ReadPytorchBinShards(const std::string& dir,
                                                  const std::string& index_file) {
  ATTATTR_ASSIGN_OR_RETURN(const auto weight_map, ReadShardIndex(dir, index_file));
  const std::string index_path = (fs::path(dir) / index_file).string();
  std::set<std::string> shards;
  for (const auto& [tensor, shard] : weight_map) shards.insert(shard);
  TensorSource src;
  for (const std::string& shard : shards) {
    const std::string path = (fs::path(dir) / shard).string();
    absl::StatusOr<TensorSource> part = ReadPytorchBin(path);
    if (absl::IsNotFound(part.status())) {
      return absl::NotFoundError(
          absl::StrCat("shard ", path, " listed in ", index_path, " is missing"));
    }
    ATTATTR_RETURN_IF_ERROR(part.status());
    if (src.tensors.size() + part->tensors.size() > kMaxCheckpointTensors) {
      return absl::InvalidArgumentError(
          absl::StrCat(dir, ": the shards hold more than ", kMaxCheckpointTensors, " tensors"));
    }
    for (auto& [name, tensor] : part->tensors) {
      const auto [it, inserted] = src.file_of.emplace(name, path);
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat(dir, ": tensor ", QuoteInput(name, 200),
                                                       " is in two shards: ", it->second, " and ",
                                                       path));
      }
      src.tensors.emplace(name, std::move(tensor));
    }
  }
  for (const auto& [tensor, shard] : weight_map) {
    const auto it = src.file_of.find(tensor);
    const std::string path = (fs::path(dir) / shard).string();
    if (it == src.file_of.end() || it->second != path) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": tensor ", QuoteInput(tensor, 200), ": is listed in shard ",
                       path, ", which does not hold it"));
    }
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
  } else if (fs::exists(d / "pytorch_model.bin.index.json")) {
    file = (d / "pytorch_model.bin.index.json").string();
    src = ReadPytorchBinShards(dir, "pytorch_model.bin.index.json");
  } else {
    return absl::NotFoundError(
        absl::StrCat(dir,
                     ": no weights (model.safetensors, model.safetensors.index.json, "
                     "pytorch_model.bin or pytorch_model.bin.index.json)"));
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
  // A stored lm_head.weight is the head even with tie_word_embeddings true: transformers 5 does
  // the same when it differs from the embeddings (it warns and does not tie them).
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
  const torch::Tensor& stored = it->second;
  // Checked here, not when the file is read: only what a loader takes is a weight.
  if (!stored.is_floating_point()) {
    return absl::InvalidArgumentError(
        absl::StrCat(src_->file_of[full], ": tensor '", full, "' has dtype ",
                     DTypeSpelling(stored.scalar_type()), "; weights must be F32, F16 or BF16"));
  }
  if (stored.sizes().vec() != shape) {
    return absl::InvalidArgumentError(absl::StrCat(src_->file_of[full], ": tensor '", full,
                                                   "' has shape ", ShapeString(stored.sizes()),
                                                   ", expected ", ShapeString(shape)));
  }
  torch::Tensor t = KeepOrWiden(stored).to(device_);
  // A view of a read-only mapping is copied (on the CPU .to() returns the view itself).
  if (src_->read_only && t.is_alias_of(stored)) t = t.clone();
  *out = std::move(t);
  parameters_ += out->numel();
  used_.insert(full);
  return absl::OkStatus();
}

absl::Status WeightPicker::CheckAllUsed(
    const std::function<bool(const std::string&)>& also_ignorable) const {
  for (const auto& [name, t] : src_->tensors) {
    if (used_.count(name) == 0 && !IsIgnorable(name) && !(also_ignorable && also_ignorable(name))) {
      return absl::InvalidArgumentError(
          absl::StrCat(src_->file_of.at(name), ": unexpected tensor ", QuoteInput(name, 200),
                       " with shape ", ShapeString(t.sizes()), " (not part of a ",
                       FamilyName(family_), " encoder or classifier)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace attattr::engine
