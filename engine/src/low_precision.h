// The bf16 integrand (precision.h): a scope that turns on LibTorch's autocast to bfloat16 for the
// device the integrand runs on, and the encoder whose matrices are already bfloat16 (made once per
// model on first use), so autocast casts activations only, never the weights chunk after chunk —
// its own cast cache keeps only the casts of weights that require grad. A model whose weights are
// stored in bf16 (weight_storage.h) runs every pass inside such a scope.
#pragma once

#include "attattr/engine/precision.h"
#include "encoder.h"
#include "model_impl.h"

namespace attattr::engine {

// While alive, on this thread: autocast to bfloat16 on `device`'s type when `precision` is kBf16;
// nothing for kFp32. Restores the previous autocast state (and empties autocast's cast cache when
// the outermost scope ends). Forward passes only: gradients follow the casts autocast recorded.
class LowPrecisionScope {
 public:
  LowPrecisionScope(Precision precision, const torch::Device& device);
  ~LowPrecisionScope();
  LowPrecisionScope(const LowPrecisionScope&) = delete;
  LowPrecisionScope& operator=(const LowPrecisionScope&) = delete;

 private:
  const bool active_;
  const c10::DeviceType type_;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

// The encoder the integrand runs at `precision`: the model's own for kFp32, its bf16-matrix copy
// (Encoder::CloneWithMatrices, made on first use, thread-safe) for kBf16 — or the model's own when
// its weights are stored in bf16 already (LoadOptions::weights).
const Encoder& IntegrandEncoder(const Model::Impl& impl, Precision precision);

}  // namespace attattr::engine
