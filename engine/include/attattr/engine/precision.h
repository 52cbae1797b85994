// The arithmetic precision of the attribution integrand (README "Precision", bench/README.md):
//   kFp32  everything in fp32 (the default);
//   kBf16  the integrand — forward and backward through layer l's context and the layers above it
//          at every α-point — runs its matrix products in bfloat16 (AMX / AVX-512-BF16 through
//          oneDNN on CPU, tensor cores on GPU) by LibTorch's autocast over a bf16 copy of the
//          model's matrices; norms, softmax, the residual stream and the target's logits stay fp32
//          (type promotion and autocast's policy), and the clean pass, F(0) and F(A), the gradient
//          sum over α-points, Attr = A ⊙ Σ and completeness are fp32 as with kFp32.
// The same names say how a model's weights are stored (LoadOptions::weights, weight_storage.h):
// with bf16 weights every pass multiplies in bf16 and only kBf16 attribution is accepted.
// bf16 pays only where the hardware multiplies it (CpuHasNativeBf16 on the CPU; tensor cores).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace attattr::engine {

enum class Precision { kFp32, kBf16 };

std::string_view PrecisionName(Precision precision);  // "fp32", "bf16"
// "fp32" or "bf16"; InvalidArgument naming `precision` otherwise.
absl::StatusOr<Precision> ParsePrecision(std::string_view name);

// Whether this CPU multiplies bfloat16 in hardware: on x86-64, AVX-512-BF16 or AMX-BF16 (Intel
// Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and later). Without either, LibTorch emulates
// bf16 products and a bf16 run on the CPU is many times slower than fp32 (README "Precision").
// nullopt on other architectures, which this does not check.
std::optional<bool> CpuHasNativeBf16();

// For a program about to run on the CPU with this integrand precision and weight storage: a
// one-line warning when either is bf16 and CpuHasNativeBf16() is false, naming what is missing;
// empty otherwise (fp32 only, or a CPU that multiplies bf16, or one this cannot check).
std::string EmulatedBf16Warning(Precision precision, Precision weights);

}  // namespace attattr::engine
