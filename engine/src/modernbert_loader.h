// ModernBERT's tensor layout (`model.*` in classifier checkpoints, bare in `ModernBertModel` ones;
// the fused attention projection Wqkv split into Q, K, V) → a ModernBertEncoder. Called by
// LoadEncoder (checkpoint_loader.h) with the checkpoint's tensors already read. Thread-compatible.
#pragma once

#include "absl/status/statusor.h"
#include "checkpoint_loader.h"
#include "checkpoint_tensors.h"

namespace attattr::engine {

absl::StatusOr<LoadedEncoder> LoadModernBert(TensorSource* src, const ModelConfig& config,
                                             const torch::Device& device);

}  // namespace attattr::engine
