// How closely two attributions of the same input agree — a bf16 integrand against fp32 (README
// "Precision"), one build or device against another: per layer, the largest entry-wise difference
// relative to the layer's largest |entry|, and the overlap of the k strongest connections (the
// largest entries of [H, n, n], as ResultOptions.top_k returns them).
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"

namespace attattr::engine {

struct LayerAgreement {
  int layer = 0;
  double relative_error = 0;  // max |a − b| / max |a|, a = the reference (0 when a is all zero)
  double top_k_overlap = 0;   // |top_k(a) ∩ top_k(b)| / k, k capped at the entry count
};

// `reference` and `other` must attribute the same tokens and layers; InvalidArgument otherwise.
absl::StatusOr<std::vector<LayerAgreement>> CompareAttributions(const ExampleAttribution& reference,
                                                                const ExampleAttribution& other,
                                                                int k = 10);

}  // namespace attattr::engine
