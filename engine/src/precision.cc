// Names of the integrand precisions (see precision.h).
#include "attattr/engine/precision.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "attattr/base/quote.h"

namespace attattr::engine {

std::string_view PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kBf16:
      return "bf16";
  }
  return "unknown";
}

absl::StatusOr<Precision> ParsePrecision(std::string_view name) {
  for (auto p : {Precision::kFp32, Precision::kBf16}) {
    if (name == PrecisionName(p)) return p;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "precision: unknown precision ", QuoteInput(std::string(name)), " (use fp32 or bf16)"));
}

std::optional<bool> CpuHasNativeBf16() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
#else
  return std::nullopt;
#endif
}

std::string EmulatedBf16Warning(Precision precision, Precision weights) {
  if (precision != Precision::kBf16 && weights != Precision::kBf16) return "";
  if (CpuHasNativeBf16().value_or(true)) return "";
  return "this CPU has neither AVX-512-BF16 nor AMX-BF16: bf16 arithmetic is emulated and runs "
         "several times slower than fp32 here (README \"Precision\"); fp32 is the faster choice "
         "unless bf16 weights are needed for memory";
}

}  // namespace attattr::engine
