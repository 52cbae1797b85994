// Quadrature rules: the authors' exact points, exactness where theory promises it, and errors.
#include "attattr/engine/quadrature.h"

#include <gtest/gtest.h>

#include <cmath>

#include "attattr/engine/completeness_gap.h"

namespace attattr::engine {
namespace {

double Integrate(const std::vector<QuadraturePoint>& pts, double (*f)(double)) {
  double s = 0;
  for (const auto& p : pts) s += p.weight * f(p.alpha);
  return s;
}

TEST(QuadratureTest, LeftRiemannIsTheAuthorsScheme) {
  auto pts = MakeQuadrature(QuadratureRule::kLeftRiemann, 20);
  ASSERT_TRUE(pts.ok());
  ASSERT_EQ(pts->size(), 20u);
  for (int k = 0; k < 20; ++k) {
    EXPECT_DOUBLE_EQ((*pts)[k].alpha, k / 20.0);
    EXPECT_DOUBLE_EQ((*pts)[k].weight, 1 / 20.0);
  }
}

TEST(QuadratureTest, TrapezoidIncludesBothEnds) {
  auto pts = MakeQuadrature(QuadratureRule::kTrapezoid, 5);
  ASSERT_TRUE(pts.ok());
  EXPECT_DOUBLE_EQ(pts->front().alpha, 0.0);
  EXPECT_DOUBLE_EQ(pts->back().alpha, 1.0);
  EXPECT_DOUBLE_EQ(pts->front().weight, 0.125);
  EXPECT_NEAR(Integrate(*pts, [](double x) { return x; }), 0.5, 1e-15);
}

TEST(QuadratureTest, GaussLegendreIsExactToDegree2mMinus1) {
  for (int m = 1; m <= 40; ++m) {
    auto pts = MakeQuadrature(QuadratureRule::kGaussLegendre, m);
    ASSERT_TRUE(pts.ok());
    double wsum = 0;
    for (const auto& p : *pts) {
      EXPECT_GT(p.alpha, 0.0);
      EXPECT_LT(p.alpha, 1.0);
      wsum += p.weight;
    }
    EXPECT_NEAR(wsum, 1.0, 1e-13) << m;
    // ∫₀¹ x^k dx = 1/(k+1) for every k ≤ 2m−1.
    for (int k = 0; k <= 2 * m - 1 && k <= 60; ++k) {
      double s = 0;
      for (const auto& p : *pts) s += p.weight * std::pow(p.alpha, k);
      EXPECT_NEAR(s, 1.0 / (k + 1), 1e-12) << "m=" << m << " k=" << k;
    }
  }
  // And beats the left Riemann sum by orders of magnitude on a smooth integrand.
  auto gl = MakeQuadrature(QuadratureRule::kGaussLegendre, 8);
  auto lr = MakeQuadrature(QuadratureRule::kLeftRiemann, 20);
  auto f = [](double x) { return std::exp(3 * x); };
  const double exact = (std::exp(3.0) - 1) / 3;
  EXPECT_LT(std::fabs(Integrate(*gl, f) - exact), 1e-9);
  EXPECT_GT(std::fabs(Integrate(*lr, f) - exact), 1e-2);
}

TEST(QuadratureTest, RejectsOutOfRangeSteps) {
  EXPECT_EQ(MakeQuadrature(QuadratureRule::kGaussLegendre, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeQuadrature(QuadratureRule::kLeftRiemann, kMaxQuadratureSteps + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto tr = MakeQuadrature(QuadratureRule::kTrapezoid, 1);
  ASSERT_FALSE(tr.ok());
  EXPECT_NE(std::string(tr.status().message()).find("steps"), std::string::npos);
}

TEST(QuadratureTest, RuleNamesRoundTrip) {
  for (auto r :
       {QuadratureRule::kLeftRiemann, QuadratureRule::kTrapezoid, QuadratureRule::kGaussLegendre}) {
    auto parsed = ParseQuadratureRule(QuadratureRuleName(r));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_FALSE(ParseQuadratureRule("simpson").ok());
}

TEST(CompletenessGapTest, RelativeToTargetDifference) {
  EXPECT_NEAR(CompletenessGap(0.09, 1.0, 0.9), 0.1, 1e-12);
  EXPECT_NEAR(CompletenessGap(0.1, 1.0, 0.9), 0.0, 1e-12);
  EXPECT_GT(CompletenessGap(1e-3, 0.5, 0.5), 1e6);  // no change in F: ε guards the division
}

}  // namespace
}  // namespace attattr::engine
