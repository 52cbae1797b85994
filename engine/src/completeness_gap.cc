// Relative completeness gap (see completeness_gap.h).
#include "attattr/engine/completeness_gap.h"

#include <algorithm>
#include <cmath>

namespace attattr::engine {

double CompletenessGap(double attribution_sum, double target_at_full, double target_at_zero,
                       double epsilon) {
  const double delta = target_at_full - target_at_zero;
  return std::fabs(attribution_sum - delta) / std::max(std::fabs(delta), epsilon);
}

}  // namespace attattr::engine
