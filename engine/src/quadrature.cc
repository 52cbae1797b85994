// Quadrature points for the attribution integral (see quadrature.h).
// Gauss–Legendre nodes come from Newton's method on the Legendre recurrence: Boost.Math's
// gauss<Real, N> fixes N at compile time, and m here is a run-time request parameter.
#include "attattr/engine/quadrature.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "attattr/base/field_error.h"

namespace attattr::engine {
namespace {

// Nodes x_i and weights w_i of the m-point Gauss–Legendre rule on [-1, 1].
void GaussLegendre(int m, std::vector<double>* x, std::vector<double>* w) {
  x->assign(m, 0.0);
  w->assign(m, 0.0);
  const double pi = std::acos(-1.0);
  for (int i = 0; i < (m + 1) / 2; ++i) {
    double z = std::cos(pi * (i + 0.75) / (m + 0.5));  // Tricomi's initial guess
    double dp = 0;
    for (int iter = 0; iter < 100; ++iter) {
      double p0 = 1.0, p1 = z;  // P_0, P_1
      for (int k = 2; k <= m; ++k) {
        double pk = ((2.0 * k - 1.0) * z * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = pk;
      }
      // p1 = P_m(z), p0 = P_{m-1}(z); derivative from the standard identity.
      dp = m * (z * p1 - p0) / (z * z - 1.0);
      double dz = p1 / dp;
      z -= dz;
      if (std::fabs(dz) < 1e-16) break;
    }
    (*x)[i] = -z;
    (*x)[m - 1 - i] = z;
    double wi = 2.0 / ((1.0 - z * z) * dp * dp);
    (*w)[i] = wi;
    (*w)[m - 1 - i] = wi;
  }
}

}  // namespace

absl::StatusOr<std::vector<QuadraturePoint>> MakeQuadrature(QuadratureRule rule, int steps) {
  const int min_steps = rule == QuadratureRule::kTrapezoid ? 2 : 1;
  if (steps < min_steps || steps > kMaxQuadratureSteps) {
    return InvalidFieldError(
        {"steps"}, absl::StrCat("must be in [", min_steps, ", ", kMaxQuadratureSteps, "] for ",
                                std::string(QuadratureRuleName(rule)), ", got ", steps));
  }
  std::vector<QuadraturePoint> points(steps);
  switch (rule) {
    case QuadratureRule::kLeftRiemann:
      for (int k = 0; k < steps; ++k) points[k] = {static_cast<double>(k) / steps, 1.0 / steps};
      break;
    case QuadratureRule::kTrapezoid:
      for (int k = 0; k < steps; ++k) {
        double w = 1.0 / (steps - 1);
        if (k == 0 || k == steps - 1) w *= 0.5;
        points[k] = {static_cast<double>(k) / (steps - 1), w};
      }
      break;
    case QuadratureRule::kGaussLegendre: {
      if (steps == 1) {
        points[0] = {0.5, 1.0};
        break;
      }
      std::vector<double> x, w;
      GaussLegendre(steps, &x, &w);
      for (int k = 0; k < steps; ++k) points[k] = {0.5 * (x[k] + 1.0), 0.5 * w[k]};
      break;
    }
  }
  return points;
}

std::string_view QuadratureRuleName(QuadratureRule rule) {
  switch (rule) {
    case QuadratureRule::kLeftRiemann:
      return "left-riemann";
    case QuadratureRule::kTrapezoid:
      return "trapezoid";
    case QuadratureRule::kGaussLegendre:
      return "gauss-legendre";
  }
  return "unknown";
}

absl::StatusOr<QuadratureRule> ParseQuadratureRule(std::string_view name) {
  for (auto r :
       {QuadratureRule::kLeftRiemann, QuadratureRule::kTrapezoid, QuadratureRule::kGaussLegendre}) {
    if (name == QuadratureRuleName(r)) return r;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("rule: unknown quadrature rule '", std::string(name),
                   "' (use left-riemann, trapezoid or gauss-legendre)"));
}

}  // namespace attattr::engine
