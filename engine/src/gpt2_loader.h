// GPT-2's tensor layout (`transformer.*` in classifier and causal-LM checkpoints, bare in
// `GPT2Model` ones; `score` the classifier, or GPT2LMHeadModel's `lm_head` / tied `wte` as the head
// over the vocabulary: TakeDecoderHead; the old checkpoints' causal mask buffers `attn.bias` /
// `attn.masked_bias` ignored) → a Gpt2Decoder. Conv1D weights are
// transposed to torch::linear's [out, in] and the fused c_attn split into query, key and value.
// Called by LoadEncoder (checkpoint_loader.h) with the checkpoint's tensors already read.
// Thread-compatible.
#pragma once

#include "absl/status/statusor.h"
#include "checkpoint_loader.h"
#include "checkpoint_tensors.h"

namespace attattr::engine {

absl::StatusOr<LoadedEncoder> LoadGpt2(TensorSource* src, const ModelConfig& config,
                                       const torch::Device& device);

}  // namespace attattr::engine
