// The Llama family's tensor layout (`model.*` in classifier and causal-LM checkpoints, bare in
// `LlamaModel` ones; `score` the classifier, or a causal LM's `lm_head` / tied embeddings as the
// head over the vocabulary: TakeDecoderHead) → a LlamaDecoder.
// Called by LoadEncoder (checkpoint_loader.h) with the checkpoint's tensors already read.
// Thread-compatible.
#pragma once

#include "absl/status/statusor.h"
#include "checkpoint_loader.h"
#include "checkpoint_tensors.h"

namespace attattr::engine {

absl::StatusOr<LoadedEncoder> LoadLlama(TensorSource* src, const ModelConfig& config,
                                        const torch::Device& device);

}  // namespace attattr::engine
