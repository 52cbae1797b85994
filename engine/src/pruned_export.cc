// Pruned-checkpoint export (see pruned_export.h).
#include "attattr/engine/pruned_export.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "bert_encoder.h"
#include "bert_family_names.h"
#include "model_file.h"
#include "model_impl.h"
#include "nlohmann/json.hpp"
#include "safetensors_writer.h"
#include "torch_boundary.h"
#include "untrusted_json.h"

namespace attattr::engine {
namespace {

namespace fs = std::filesystem;

RawTensor ToRaw(const std::string& name, const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU, torch::kFloat32).contiguous();
  return {name, "F32", c.sizes().vec(),
          std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size())};
}

// Row indices of the kept heads' slices ([h·dh, (h+1)·dh) for each kept h).
torch::Tensor KeptRows(const std::vector<int>& kept, int head_dim, const torch::Device& device) {
  std::vector<int64_t> rows;
  for (int h : kept) {
    for (int i = 0; i < head_dim; ++i) rows.push_back(static_cast<int64_t>(h) * head_dim + i);
  }
  return torch::tensor(rows, torch::kLong).to(device);
}

absl::Status CheckMask(const ModelInfo& info, const std::vector<std::vector<float>>& mask) {
  if (static_cast<int>(mask.size()) != info.num_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("head_mask: ", mask.size(), " rows for ", info.num_layers, " layers"));
  }
  for (int l = 0; l < info.num_layers; ++l) {
    if (static_cast<int>(mask[l].size()) != info.num_heads) {
      return absl::InvalidArgumentError(absl::StrCat("head_mask[", l, "]: ", mask[l].size(),
                                                     " entries for ", info.num_heads, " heads"));
    }
    for (int h = 0; h < info.num_heads; ++h) {
      if (mask[l][h] != 0.0f && mask[l][h] != 1.0f) {
        return absl::InvalidArgumentError(
            absl::StrCat("head_mask[", l, "][", h, "]: ", mask[l][h], " is neither 0 nor 1"));
      }
    }
  }
  return absl::OkStatus();
}

// fsync of a file or directory, so a rename publishes data that is on disk.
bool SyncPath(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// A staging directory beside the target, created exclusively (mkdtemp) and removed on destruction
// unless Publish renamed it into place.
class StagingDir {
 public:
  static absl::StatusOr<StagingDir> Create(const fs::path& target) {
    std::string name = (target.parent_path() /
                        absl::StrCat(".", target.filename().string(), ".attattr-export-XXXXXX"))
                           .string();
    if (::mkdtemp(name.data()) == nullptr) {
      return absl::PermissionDeniedError(absl::StrCat(
          "the export directory's parent cannot hold a staging directory: ", std::strerror(errno)));
    }
    return StagingDir(name);
  }
  StagingDir(StagingDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  ~StagingDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

  // Renames the staged files into `target` in one step: the target must not exist or be an empty
  // directory (rename replaces an empty directory atomically); otherwise AlreadyExists, and the
  // first of two racing exports wins. With `replace`, the target (an earlier export of the same
  // owner) and the staged files trade places in one step instead, and the old files go with the
  // staging directory. The parent directory is synced after the rename.
  absl::Status Publish(const fs::path& target, bool replace) {
    for (const auto& entry : fs::directory_iterator(path_)) {
      if (!SyncPath(entry.path())) {
        return absl::DataLossError(
            absl::StrCat("syncing ", entry.path().filename().string(), ": ", std::strerror(errno)));
      }
    }
    SyncPath(path_);
    if (replace) {
      if (::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
        return absl::PermissionDeniedError(
            absl::StrCat("replacing the earlier export: ", std::strerror(errno)));
      }
      SyncPath(target.parent_path());
      return absl::OkStatus();  // path_ now holds the earlier export: removed with this
    }
    if (::rename(path_.c_str(), target.c_str()) != 0) {
      const int err = errno;
      if (err == ENOTEMPTY || err == EEXIST || err == ENOTDIR) {
        return absl::AlreadyExistsError(
            "the export directory already exists and is not empty (another export won?)");
      }
      return absl::PermissionDeniedError(
          absl::StrCat("publishing the export: ", std::strerror(err)));
    }
    path_.clear();
    SyncPath(target.parent_path());
    return absl::OkStatus();
  }

 private:
  explicit StagingDir(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

}  // namespace

absl::Status CheckPrunedExportSupported(const ModelInfo& info) {
  // The families whose Hugging Face classes read `pruned_heads` from config.json (transformers
  // 4.x: BertModel, DistilBertModel, ElectraModel, RobertaModel, XLMRobertaModel); DeBERTa-v2's
  // and ModernBERT's never did.
  for (const char* family : {"bert", "distilbert", "electra", "roberta", "xlm-roberta"}) {
    if (info.family == family) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "pruned checkpoints are exported for bert, distilbert, electra, roberta and xlm-roberta "
      "models (whose Hugging Face classes read pruned_heads); this one is ",
      info.family, " (head masks and pruning curves work for it)"));
}

std::string PrunedExportOwner(const std::string& dir) {
  // A few bytes at most (a job id); a larger or unreadable file names nobody.
  std::ifstream file(fs::path(dir) / kPrunedExportOwnerFile, std::ios::binary);
  std::string owner(256, '\0');
  file.read(owner.data(), static_cast<std::streamsize>(owner.size()));
  if (file.gcount() <= 0 || file.gcount() == static_cast<std::streamsize>(owner.size())) return "";
  owner.resize(static_cast<size_t>(file.gcount()));
  return owner;
}

absl::StatusOr<ExportedCheckpoint> ExportPrunedCheckpoint(
    const Model& model, const std::vector<std::vector<float>>& head_mask,
    const std::string& out_dir, const std::string& owner) {
  const auto& impl = model.impl();
  const ModelInfo& info = impl.info;
  ATTATTR_RETURN_IF_ERROR(CheckMask(info, head_mask));
  ATTATTR_RETURN_IF_ERROR(CheckPrunedExportSupported(info));
  const auto* bert = dynamic_cast<const BertEncoder*>(impl.encoder.get());
  if (bert == nullptr) return absl::InternalError("a bert-family model without a BertEncoder");
  if (info.path.empty()) {
    return absl::FailedPreconditionError("model: not loaded from a directory (nothing to copy)");
  }
  for (int l = 0; l < info.num_layers; ++l) {
    if (info.heads_per_layer[l] != info.num_heads) {
      return absl::FailedPreconditionError(
          absl::StrCat("model: layer ", l, " is already pruned; export from the unpruned model"));
    }
  }
  std::error_code ec;
  const fs::path target = fs::path(out_dir).lexically_normal();
  // An earlier export of this owner is replaced; anything else there is refused.
  const bool replace = fs::exists(target, ec) && !fs::is_empty(target, ec);
  if (replace && (owner.empty() || PrunedExportOwner(target.string()) != owner)) {
    return absl::FailedPreconditionError("the export directory exists and is not empty");
  }
  fs::create_directories(target.parent_path(), ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("the export directory's parent cannot be created: ", ec.message()));
  }
  // Everything is written into a staging directory and renamed into place at the end: a reader
  // never sees a half-written checkpoint, and of two exports to one path exactly one lands.
  ATTATTR_ASSIGN_OR_RETURN(StagingDir staging, StagingDir::Create(target));

  // Read again as at load (model_file.h, untrusted_json.h): the folder may have changed since.
  const std::string config_path = (fs::path(info.path) / "config.json").string();
  auto config_text = ReadModelFile(config_path, kMaxConfigJsonBytes);
  if (!config_text.ok()) return absl::DataLossError(config_text.status().message());
  auto parsed = ParseUntrustedJson(*config_text, config_path);
  if (!parsed.ok() || !parsed->is_object()) {
    return absl::DataLossError(absl::StrCat(config_path, ": not a JSON object"));
  }
  nlohmann::json config = std::move(*parsed);
  ExportedCheckpoint out;
  out.dir = out_dir;
  const TensorNames names = NamesOf(impl.family);
  const std::string prefix = info.has_classifier ? names.encoder : "";
  const BertWeights& w = bert->weights();
  const int dh = bert->head_dim();
  std::vector<RawTensor> tensors;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    out.parameter_count += t.numel();
    tensors.push_back(ToRaw(name, t));
  };
  try {
    torch::NoGradGuard no_grad;
    add(prefix + "embeddings.word_embeddings.weight", w.word_emb);
    add(prefix + "embeddings.position_embeddings.weight", w.pos_emb);
    if (w.type_emb.defined()) add(prefix + "embeddings.token_type_embeddings.weight", w.type_emb);
    add(prefix + "embeddings.LayerNorm.weight", w.emb_ln_w);
    add(prefix + "embeddings.LayerNorm.bias", w.emb_ln_b);
    if (w.emb_proj_w.defined()) {  // ELECTRA's embeddings_project
      add(prefix + "embeddings_project.weight", w.emb_proj_w);
      add(prefix + "embeddings_project.bias", w.emb_proj_b);
    }
    nlohmann::json pruned = nlohmann::json::object();
    for (int l = 0; l < info.num_layers; ++l) {
      const BertLayerWeights& lw = w.layers[l];
      std::vector<int> kept, removed;
      for (int h = 0; h < info.num_heads; ++h) (head_mask[l][h] != 0 ? kept : removed).push_back(h);
      out.heads_removed += static_cast<int>(removed.size());
      // Every head off: head 0 stays, silenced by zero output-projection columns (see the header).
      const bool silenced = kept.empty();
      if (silenced) {
        kept.push_back(removed.front());
        removed.erase(removed.begin());
      }
      if (!removed.empty()) pruned[std::to_string(l)] = removed;
      const auto rows = KeptRows(kept, dh, impl.device);
      torch::Tensor o_w = lw.o_w.index_select(1, rows);
      if (silenced) o_w.zero_();
      const std::string p = prefix + names.layer + std::to_string(l) + ".";
      const auto linear = [&](const char* module, const torch::Tensor& weight,
                              const torch::Tensor& bias) {
        add(p + module + ".weight", weight);
        add(p + module + ".bias", bias);
      };
      linear(names.query, lw.q_w.index_select(0, rows), lw.q_b.index_select(0, rows));
      linear(names.key, lw.k_w.index_select(0, rows), lw.k_b.index_select(0, rows));
      linear(names.value, lw.v_w.index_select(0, rows), lw.v_b.index_select(0, rows));
      linear(names.attention_out, o_w, lw.o_b);
      linear(names.attention_norm, lw.ln1_w, lw.ln1_b);
      linear(names.ffn_in, lw.i_w, lw.i_b);
      linear(names.ffn_out, lw.f_w, lw.f_b);
      linear(names.output_norm, lw.ln2_w, lw.ln2_b);
    }
    if (w.pooler_w.defined()) {
      const std::string pooler = (names.pooler_in_encoder ? prefix : "") + names.pooler;
      add(pooler + ".weight", w.pooler_w);
      add(pooler + ".bias", w.pooler_b);
    }
    if (w.cls_w.defined()) {
      add(std::string(names.classifier) + ".weight", w.cls_w);
      add(std::string(names.classifier) + ".bias", w.cls_b);
    }
    config["pruned_heads"] = pruned;
  } catch (...) {
    return TorchExceptionToStatus("export");
  }
  const fs::path& dir = staging.path();
  if (!WriteSafetensors((dir / "model.safetensors").string(), tensors)) {
    return absl::ResourceExhaustedError("model.safetensors: cannot be written (disk full?)");
  }
  {
    std::ofstream config_file(dir / "config.json");
    config_file << config.dump(2) << "\n";
    if (!config_file.flush()) return absl::ResourceExhaustedError("config.json: cannot be written");
  }
  // The tokenizer files Hugging Face saves, whichever the checkpoint has.
  for (const char* file :
       {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spm.model"}) {
    if (!fs::exists(fs::path(info.path) / file, ec)) continue;
    fs::copy_file(fs::path(info.path) / file, dir / file, fs::copy_options::overwrite_existing, ec);
    if (ec) return absl::DataLossError(absl::StrCat(info.path, "/", file, ": ", ec.message()));
  }
  if (!owner.empty()) {
    std::ofstream owner_file(dir / kPrunedExportOwnerFile, std::ios::binary);
    owner_file << owner;
    if (!owner_file.flush()) {
      return absl::ResourceExhaustedError(
          absl::StrCat(kPrunedExportOwnerFile, ": cannot be written"));
    }
  }
  out.weights_bytes = static_cast<int64_t>(fs::file_size(dir / "model.safetensors", ec));
  ATTATTR_RETURN_IF_ERROR(staging.Publish(target, replace));
  return out;
}

}  // namespace attattr::engine
