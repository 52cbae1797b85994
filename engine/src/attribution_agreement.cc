// Agreement between two attributions of one input (see attribution_agreement.h).
#include "attattr/engine/attribution_agreement.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace attattr::engine {
namespace {

// Indices of the k largest entries of `v` (ties broken by index, so the set is deterministic).
std::vector<size_t> TopK(const std::vector<float>& v, size_t k) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](size_t a, size_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace

absl::StatusOr<std::vector<LayerAgreement>> CompareAttributions(const ExampleAttribution& reference,
                                                                const ExampleAttribution& other,
                                                                int k) {
  if (reference.encoding.input_ids != other.encoding.input_ids) {
    return absl::InvalidArgumentError("attributions of different inputs");
  }
  if (reference.layers.size() != other.layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat("attributions of ", reference.layers.size(),
                                                   " and ", other.layers.size(), " layers"));
  }
  std::vector<LayerAgreement> out;
  for (size_t i = 0; i < reference.layers.size(); ++i) {
    const auto& a = reference.layers[i].attribution;
    const auto& b = other.layers[i].attribution;
    if (reference.layers[i].layer != other.layers[i].layer || a.size() != b.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("layers[", i, "]: different layers or shapes"));
    }
    LayerAgreement g;
    g.layer = reference.layers[i].layer;
    double max_ref = 0, max_diff = 0;
    for (size_t j = 0; j < a.size(); ++j) {
      max_ref = std::max(max_ref, std::fabs(static_cast<double>(a[j])));
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(a[j]) - b[j]));
    }
    g.relative_error = max_ref > 0 ? max_diff / max_ref : 0;
    const size_t top = std::min<size_t>(std::max(k, 1), a.size());
    if (top > 0) {
      const auto ta = TopK(a, top), tb = TopK(b, top);
      std::vector<size_t> common;
      std::set_intersection(ta.begin(), ta.end(), tb.begin(), tb.end(), std::back_inserter(common));
      g.top_k_overlap = static_cast<double>(common.size()) / static_cast<double>(top);
    }
    out.push_back(g);
  }
  return out;
}

}  // namespace attattr::engine
