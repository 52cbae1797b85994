// The bf16 integrand (AttributionOptions::precision, README "Precision") against fp32 on the
// golden examples of both shared models (../shared/golden), Gauss–Legendre m = 20: per-layer error
// relative to the layer's max, top-10 connection overlap and completeness gap within the
// documented tolerances, and evidence that the integrand really ran in bf16 (the results differ
// from fp32). Most of the error is the weights' bf16 rounding itself: the same model with bf16-
// rounded weights and fp32 arithmetic errs as much on sst2-minilm-l6 (README "Precision").
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/attribution_agreement.h"
#include "attattr/engine/precision.h"
#include "support/golden.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

using ::attattr::testing::LoadGolden;
using ::attattr::testing::SharedDir;

struct Case {
  std::string model;  // under ../shared/models and ../shared/golden
  double max_error;   // per layer, of the layer's max
  double max_gap;     // the bf16 result's completeness gap
  // Run only where the CPU has bf16 arithmetic (CpuHasNativeBf16): MiniLM's ten examples take
  // ~7 minutes of emulated bf16 on an AVX2-only CPU, and its gap bound was measured on AMX (the
  // emulated products round differently: gaps up to 0.13 there). The shared model's case runs
  // everywhere and checks the emulated path.
  bool needs_native_bf16 = false;
  // The bounds where the CPU emulates bf16 (LibTorch 1.13 on an AVX2-only AMD EPYC erred up to
  // 2.6e-2 of the layer's max with gaps up to 2.2e-2 on the shared model; 2.15 stayed within the
  // native bounds).
  double emulated_max_error = 0;
  double emulated_max_gap = 0;
};

// The bounds that apply on this CPU: (max error, max gap).
std::pair<double, double> Bounds(const Case& c) {
  if (CpuHasNativeBf16().value_or(true)) return {c.max_error, c.max_gap};
  return {c.emulated_max_error, c.emulated_max_gap};
}

// The warning appears when bf16 is in play (either the integrand or the weights) on a CPU that
// emulates it, and never for fp32 alone.
TEST(EmulatedBf16WarningTest, OnlyWhenBf16MeetsACpuThatEmulatesIt) {
  EXPECT_EQ(EmulatedBf16Warning(Precision::kFp32, Precision::kFp32), "");
  const bool emulated = !CpuHasNativeBf16().value_or(true);
  for (auto [precision, weights] : {std::pair{Precision::kBf16, Precision::kFp32},
                                    std::pair{Precision::kFp32, Precision::kBf16},
                                    std::pair{Precision::kBf16, Precision::kBf16}}) {
    const std::string warning = EmulatedBf16Warning(precision, weights);
    EXPECT_EQ(!warning.empty(), emulated) << warning;
    if (emulated) {
      EXPECT_NE(warning.find("emulated"), std::string::npos) << warning;
    }
  }
}

class Bf16AttributionTest : public ::testing::TestWithParam<Case> {};

TEST_P(Bf16AttributionTest, AgreesWithFp32OnTheGoldenExamples) {
  const std::string dir = SharedDir() + "/models/" + GetParam().model;
  const std::string golden_path = SharedDir() + "/golden/" + GetParam().model + ".json";
  ATTATTR_SKIP_IF_MISSING(dir);
  ATTATTR_SKIP_IF_MISSING(golden_path);
  if (GetParam().needs_native_bf16 && !CpuHasNativeBf16().value_or(true)) {
    GTEST_SKIP() << "this CPU has no bf16 arithmetic ("
                 << EmulatedBf16Warning(Precision::kBf16, Precision::kFp32) << ")";
  }
  auto model = Model::Load(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<Example> examples;
  for (const auto& g : LoadGolden(golden_path).examples) {
    examples.push_back({g.text, g.text_pair, -1});
  }
  AttributionOptions fp32;
  fp32.rule = QuadratureRule::kGaussLegendre;
  fp32.steps = 20;
  AttributionOptions bf16 = fp32;
  bf16.precision = Precision::kBf16;
  auto exact = AttributeExamples(**model, examples, fp32);
  ASSERT_TRUE(exact.ok()) << exact.status();
  auto low = AttributeExamples(**model, examples, bf16);
  ASSERT_TRUE(low.ok()) << low.status();

  double worst_error = 0, least_overlap = 1, overlap_sum = 0, worst_gap = 0;
  int layers = 0;
  for (size_t e = 0; e < examples.size(); ++e) {
    auto agreement = CompareAttributions((*exact)[e], (*low)[e]);
    ASSERT_TRUE(agreement.ok()) << agreement.status();
    for (size_t i = 0; i < agreement->size(); ++i) {
      const LayerAgreement& g = (*agreement)[i];
      const LayerAttribution& got = (*low)[e].layers[i];
      // The documented tolerances (README "Precision").
      EXPECT_LE(g.relative_error, Bounds(GetParam()).first)
          << "example " << e << " layer " << g.layer;
      EXPECT_GE(g.top_k_overlap, 0.8) << "example " << e << " layer " << g.layer;
      EXPECT_LT(got.completeness_gap, Bounds(GetParam()).second)
          << "example " << e << " layer " << g.layer;
      // F(0) and F(A) are fp32 whatever the integrand's precision.
      EXPECT_EQ(got.target_at_full, (*exact)[e].layers[i].target_at_full);
      EXPECT_EQ(got.target_at_zero, (*exact)[e].layers[i].target_at_zero);
      worst_error = std::max(worst_error, g.relative_error);
      least_overlap = std::min(least_overlap, g.top_k_overlap);
      overlap_sum += g.top_k_overlap;
      worst_gap = std::max(worst_gap, got.completeness_gap);
      ++layers;
    }
  }
  const double mean_overlap = overlap_sum / layers;
  EXPECT_GE(mean_overlap, 0.9);
  // The integrand really ran in bf16: its rounding shows.
  EXPECT_GT(worst_error, 1e-5);
  std::printf(
      "%s, %zu examples x %d layers: max relative error %.2e, top-10 overlap mean %.3f "
      "min %.2f, max bf16 completeness gap %.2e\n",
      GetParam().model.c_str(), examples.size(), layers / static_cast<int>(examples.size()),
      worst_error, mean_overlap, least_overlap, worst_gap);
}

INSTANTIATE_TEST_SUITE_P(SharedModels, Bf16AttributionTest,
                         // Measured 2026-12-06: 6.8e-3 and 7.1e-3; 2.5e-2 and 6.0e-2 (README).
                         ::testing::Values(Case{"sst2-bert-l4-h256", 1e-2, 2e-2, false, 4e-2, 4e-2},
                                           Case{"sst2-minilm-l6", 4e-2, 1e-1, true}),
                         [](const auto& info) {
                           std::string name = info.param.model;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace attattr::engine
