// The tensors of a Hugging Face checkpoint directory, family-independent: model.safetensors, a
// sharded model.safetensors.index.json, or pytorch_model.bin (through LibTorch's zip reader and
// unpickler: a plain dict of tensors in the zip format), as CPU tensors by name in their stored
// dtype (safetensors: views of the read-only mapping, so what no loader takes is never read); and
// WeightPicker, which takes them out by name with their expected shapes and a floating-point dtype
// onto a device (fp32 and bf16 as stored, fp16 and fp64 as fp32, always a copy of a mapping) and
// names the file, tensor and shapes in every error. The family loaders (checkpoint_loader.cc,
// modernbert_loader.cc, ...) say which names they need and which they ignore. Thread-compatible.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model_config.h"
#include "torch_pch.h"

namespace attattr::engine {

// Raw tensors by name, any dtype the file holds, with the file each came from for messages.
struct TensorSource {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> file_of;
  std::string weights_file;  // the file read (the index file for sharded checkpoints)
  // The tensors are views of read-only memory (a safetensors mapping, kept alive by the views):
  // never written, copied when taken.
  bool read_only = false;
};

// Reads the tensors of `dir`: model.safetensors.index.json, model.safetensors, pytorch_model.bin
// or pytorch_model.bin.index.json (sharded .bin), the first present. NotFound when it holds no
// weights file or a shard its index lists is missing; InvalidArgument for a
// malformed file, one that is not a regular file, or a pytorch_model.bin LibTorch cannot read (an
// OrderedDict state dict, the legacy non-zip format: the message says how to convert it).
absl::StatusOr<TensorSource> ReadCheckpointTensors(const std::string& dir);

// "[2, 3]".
std::string ShapeString(at::IntArrayRef shape);

// Where `src` keeps the model's tensors: `prefix` when it holds `prefix + first` (a checkpoint with
// a head: "bert.", "model.", ...), "" when it holds `first` bare (a base-model checkpoint, called
// `bare_kind` in the message); NotFound naming both names otherwise.
absl::StatusOr<std::string> ModelPrefix(const TensorSource& src, const std::string& prefix,
                                        const std::string& first, const char* bare_kind);

// The rows of the classifier weight `name` (its label count), checked against config.json's
// id2label when that names labels.
absl::StatusOr<int64_t> ClassifierRows(const TensorSource& src, const std::string& name,
                                       const ModelConfig& config);

class WeightPicker;

// A decoder checkpoint's `score` classifier ([labels, hidden], no bias), as the Llama family's and
// GPT-2's *ForSequenceClassification save it: taken into *weight, its rows into *num_labels, when
// present; both left alone when absent. A base-model checkpoint (`pick`'s prefix empty) holding
// one is refused: classifier checkpoints keep the decoder under `decoder_prefix`.
absl::Status TakeDecoderScore(WeightPicker* pick, const TensorSource& src,
                              const ModelConfig& config, const char* decoder_prefix,
                              torch::Tensor* weight, int* num_labels);

// A decoder's head, into *weight: the `score` classifier (TakeDecoderScore), or a causal LM's head
// when config.json's architectures name a *ForCausalLM / *LMHeadModel class or the checkpoint holds
// `lm_head.weight` and no score — `lm_head.weight` ([vocab, hidden], no bias), else with
// tie_word_embeddings the input embeddings `embed` themselves (*language_model set, *num_labels =
// vocab). Neither (a base model): both left alone. A causal LM with neither an lm_head nor tied
// embeddings is refused (NotFound naming lm_head.weight).
absl::Status TakeDecoderHead(WeightPicker* pick, const TensorSource& src, const ModelConfig& config,
                             const char* decoder_prefix, const torch::Tensor& embed,
                             torch::Tensor* weight, int* num_labels, bool* language_model);

class WeightPicker {
 public:
  WeightPicker(TensorSource* src, std::string prefix, const torch::Device& device,
               ModelFamily family)
      : src_(src), prefix_(std::move(prefix)), device_(device), family_(family) {}

  // Takes tensor `prefix + name`, checking its shape.
  absl::Status Take(const std::string& name, std::vector<int64_t> shape, torch::Tensor* out) {
    return TakeFull(prefix_ + name, std::move(shape), out);
  }
  // Takes tensor `full` (outside the prefix: a classifier head), checking its shape.
  absl::Status TakeFull(const std::string& full, std::vector<int64_t> shape, torch::Tensor* out);

  bool HasFull(const std::string& full) const { return src_->tensors.count(full) > 0; }
  const std::string& prefix() const { return prefix_; }

  // InvalidArgument naming the first tensor nobody took, other than buffers and pre-training heads
  // every family may carry, and those `also_ignorable` accepts.
  absl::Status CheckAllUsed(
      const std::function<bool(const std::string&)>& also_ignorable = nullptr) const;

  int64_t parameters() const { return parameters_; }

 private:
  TensorSource* src_;
  std::string prefix_;
  torch::Device device_;
  ModelFamily family_;
  std::set<std::string> used_;
  int64_t parameters_ = 0;
};

}  // namespace attattr::engine
