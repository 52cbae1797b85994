// How a loaded model keeps its weights (LoadOptions::weights): kFp32 keeps every weight in fp32;
// kBf16 keeps the matrices and embedding tables (WeightRole::kMatrix, kTable: nearly all of a
// model's bytes) in bfloat16 and the rest — biases, norm scales — in fp32, so a 0.5–1.5 B decoder
// takes half the memory and every pass over it runs the bf16 integrand's arithmetic (autocast;
// low_precision.h). Weights the checkpoint ties (a causal LM's head and its token embeddings) stay
// one tensor. Pure: returns a new encoder, the given one is left as it was.
#pragma once

#include <cstdint>
#include <memory>

#include "attattr/engine/precision.h"
#include "encoder.h"

namespace attattr::engine {

struct StoredEncoder {
  std::unique_ptr<Encoder> encoder;
  int64_t bytes = 0;  // the weights' bytes, each tensor counted once
};

// `encoder`'s weights in the storage `weights` asks for, whatever dtype the checkpoint had.
StoredEncoder StoreWeights(const Encoder& encoder, Precision weights);

}  // namespace attattr::engine
