// Agreement between two head rankings (DESIGN.md §1, Head importance): Pearson's r on the scores
// and Spearman's ρ (Pearson on ranks, ties get their average rank). Written here rather than taken
// from a library: the two formulas are a few lines and no statistics library is packaged for C++
// in Debian that the engine would otherwise need. Pure functions, thread-safe.
#pragma once

#include <vector>

#include "absl/status/statusor.h"

namespace attattr::engine {

// InvalidArgument when the sizes differ or are below 2, or either side is constant (r undefined).
absl::StatusOr<double> PearsonCorrelation(const std::vector<double>& x,
                                          const std::vector<double>& y);
absl::StatusOr<double> SpearmanCorrelation(const std::vector<double>& x,
                                           const std::vector<double>& y);

// 1-based ranks, ascending; tied values share their average rank.
std::vector<double> AverageRanks(const std::vector<double>& values);

}  // namespace attattr::engine
