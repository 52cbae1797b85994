// Model::Impl: what a loaded model owns (info, tokenizer, encoder, device), plus the helper that
// pads encodings into a device batch. Private to the engine; the only place Model's tensors live.
#pragma once

#include <memory>
#include <vector>

#include "absl/base/call_once.h"
#include "attattr/engine/model.h"
#include "encoder.h"
#include "model_config.h"

namespace attattr::engine {

struct Model::Impl {
  ModelInfo info;
  ModelFamily family = ModelFamily::kBert;  // info.family, as the enum
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Encoder> encoder;  // the family's implementation
  torch::Device device = torch::kCPU;
  // Token types the embeddings have (an encoding's type ids must be below it); 0 = the family has
  // no token types and ignores the ids.
  int token_types = 0;
  // A decoder sequence classifier's pad_token_id (DecoderConfig::pad_token_id), or -1: the
  // classifier scores the rightmost other token (Model::EndAtScoredToken).
  int score_pad_id = -1;
  // The bf16 integrand's copy of `encoder` with bfloat16 matrices (low_precision.h:
  // IntegrandEncoder), made once on first use; null until then.
  mutable absl::once_flag bf16_once;
  mutable std::unique_ptr<Encoder> bf16_encoder;
};

// Pads `encodings` (indices `order` of them, in that order) to the longest one; [B, n] tensors on
// `device`.
EncoderBatch MakeBatch(const std::vector<Encoding>& encodings, const std::vector<size_t>& order,
                       const torch::Device& device);

// The Prediction of one example's head output [C]: every logit and probability, or for a language
// model (C = the vocabulary) the kTopTokens most probable tokens only.
Prediction MakePrediction(const Model::Impl& impl, const torch::Tensor& logits_row);

// Copies a float tensor into a std::vector (moving it to the CPU first).
std::vector<float> ToVector(const torch::Tensor& t);

}  // namespace attattr::engine
