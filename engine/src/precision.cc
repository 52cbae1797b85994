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

}  // namespace attattr::engine
