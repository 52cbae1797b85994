// Quadrature rules for the attribution integral ∫₀¹ ∂F(α·A)/∂A dα (DESIGN.md §1). `steps` m is the
// number of gradient evaluations for every rule, so rules are compared at equal cost:
//   LEFT_RIEMANN   α_k = k/m, k = 0..m−1, weights 1/m (the authors' code; m = 20 in the paper);
//   TRAPEZOID      α_k = k/(m−1), k = 0..m−1, end weights halved (m ≥ 2);
//   GAUSS_LEGENDRE m Gauss–Legendre nodes mapped to [0, 1] (exact for polynomials of degree 2m−1).
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace attattr::engine {

enum class QuadratureRule { kLeftRiemann, kTrapezoid, kGaussLegendre };

struct QuadraturePoint {
  double alpha = 0;   // in [0, 1]
  double weight = 0;  // weights sum to 1
};

// Largest accepted `steps`.
inline constexpr int kMaxQuadratureSteps = 1024;

// The service's and the CLI's default: Gauss–Legendre with m = 8 (completeness gap ≤ 8e-4 on the
// shared model; DESIGN.md §1). The paper's scheme is left Riemann with m = 20.
inline constexpr QuadratureRule kDefaultQuadratureRule = QuadratureRule::kGaussLegendre;
inline constexpr int kDefaultQuadratureSteps = 8;

// InvalidArgument when steps is out of [1, kMaxQuadratureSteps] (or < 2 for TRAPEZOID).
absl::StatusOr<std::vector<QuadraturePoint>> MakeQuadrature(QuadratureRule rule, int steps);

// "left-riemann", "trapezoid", "gauss-legendre".
std::string_view QuadratureRuleName(QuadratureRule rule);
absl::StatusOr<QuadratureRule> ParseQuadratureRule(std::string_view name);

}  // namespace attattr::engine
