// Turns a Hugging Face checkpoint directory's weights (the families of model_config.h;
// model.safetensors, a sharded model.safetensors.index.json, or pytorch_model.bin) into the
// family's Encoder on a device, checking every tensor's presence, shape and dtype against
// config.json. Does not parse the tokenizer or build the Model. Thread-compatible (no shared
// state).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "attattr/engine/precision.h"
#include "encoder.h"
#include "model_config.h"

namespace attattr::engine {

struct LoadedEncoder {
  std::unique_ptr<Encoder> encoder;
  int num_labels = 0;           // rows of the classifier (the vocabulary for an LM); 0 for none
  bool language_model = false;  // the head is a causal LM's (lm_head or tied embeddings)
  std::string weights_file;     // file the weights came from (index file for sharded checkpoints)
  std::string architecture;     // e.g. "BertForSequenceClassification", "DistilBertModel"
  int64_t parameter_count = 0;
  int64_t weight_bytes = 0;  // what the weights take in the storage asked for (weight_storage.h)
};

// Reads and validates the weights of `dir` for `config`. Errors (naming file and tensor): NotFound
// when no weights file or a required tensor is missing; InvalidArgument for a wrong shape, an
// unsupported dtype, an unexpected tensor, or a malformed file. The weights end up stored as
// `weights` asks (StoreWeights) whatever the checkpoint's dtype.
absl::StatusOr<LoadedEncoder> LoadEncoder(const std::string& dir, const ModelConfig& config,
                                          const torch::Device& device, Precision weights);

}  // namespace attattr::engine
