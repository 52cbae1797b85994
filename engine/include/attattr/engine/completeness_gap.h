// The completeness check of integrated gradients, per layer (DESIGN.md §1):
//   gap = |Σ_{h,i,j} Attr_{h,i,j} − (F(A) − F(0))| / max(|F(A) − F(0)|, ε).
// Captum calls the numerator the convergence delta. Pure function, thread-safe.
#pragma once

namespace attattr::engine {

inline constexpr double kCompletenessEpsilon = 1e-12;

// Relative gap between the attribution sum and the target difference it should equal.
double CompletenessGap(double attribution_sum, double target_at_full, double target_at_zero,
                       double epsilon = kCompletenessEpsilon);

}  // namespace attattr::engine
