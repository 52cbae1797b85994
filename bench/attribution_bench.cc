// Attribution benchmark (DESIGN.md §1, "Cost and how to beat the reference"): the fast path
// (engine::AttributeEncodings) against the authors' scheme (engine::AttributeEncodingsReference,
// padded to 128 tokens, backward through every parameter) in one process, with achieved GFLOP/s
// against the machine's matmul peak measured in-process, peak RSS, and a fast-vs-baseline agreement
// check; and the bf16 integrand against fp32 (workload "precision"). A program, not a test: it
// reports figures and never asserts timings. See bench/README.md.
#include <ATen/ATen.h>
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/attribution_agreement.h"
#include "attattr/engine/dataset.h"
#include "attattr/engine/model.h"
#include "attattr/engine/quadrature.h"
#include "attattr/engine/runtime.h"
#include "bench_support.h"
#include "nlohmann/json.hpp"

#ifndef ATTATTR_DEFAULT_SHARED_DIR
#define ATTATTR_DEFAULT_SHARED_DIR "../shared"
#endif

namespace {

using ::attattr::bench::BestSeconds;
using ::attattr::bench::Die;
using ::attattr::bench::EncodeExactly;
using ::attattr::bench::MeanTokens;
using ::attattr::bench::OrDie;
using ::attattr::bench::SecondsSince;

namespace engine = attattr::engine;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

struct Flags {
  std::string shared = ATTATTR_DEFAULT_SHARED_DIR;
  int examples = 16;     // SST-2 dev sentences for workloads 1 and 3
  int examples_128 = 2;  // fast-path inputs for workload 2 (each 128 tokens)
  int gl_examples = 16;  // dev sentences for the gl-sweep
  int threads = 0;
  int steps = 20;
  std::string rule = "left-riemann";
  std::string precision = "fp32";
  std::string workload = "all";
  int baseline_examples = 2;
  int baseline_layers = 2;  // BERT-base baseline: layers actually run (0 = all); scaled to all
  int fast_layers_128 = 0;  // bertbase-128 fast path: layers run (0 = all); FLOP-scaled to all
  int pad_to = 128;
  int max_batch_examples = 0;     // 0 = engine default
  int64_t memory_budget_mib = 0;  // 0 = engine default
  bool tune = false;
  std::vector<int> tune_batches = {1, 4, 8, 16};
  std::vector<int64_t> tune_budgets_mib = {256, 1024, 4096};
  int tune_examples = 8;
  std::vector<int> tune_layers;         // empty = all layers
  std::string tune_workloads = "both";  // both | bertbase-sst2 | bertbase-128
  bool skip_matmul = false;
  std::string json_path;
};

// ---- Memory ---------------------------------------------------------------------------------

// Largest phase peak seen so far (ResetPeakRss may lower what getrusage reports afterwards).
double g_max_phase_rss_mib = 0;

// Process-wide peak RSS, MiB: getrusage ru_maxrss, or the largest phase peak if that is higher.
double MaxRssMiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return std::max(static_cast<double>(u.ru_maxrss) / 1024.0, g_max_phase_rss_mib);  // KiB
}

// Resets the kernel's RSS high-water mark (VmHWM) so each phase reports its own peak; Linux >= 4.0.
// Freed heap is first handed back to the OS (malloc_trim), so the new mark starts near live memory.
bool ResetPeakRss() {
  malloc_trim(0);
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

// Peak RSS since the last ResetPeakRss (VmHWM), MiB; ru_maxrss where /proc is unavailable.
double PhasePeakRssMiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream in(line.substr(6));
      double kib = 0;
      in >> kib;
      g_max_phase_rss_mib = std::max(g_max_phase_rss_mib, kib / 1024.0);
      return kib / 1024.0;
    }
  }
  return MaxRssMiB();
}

// ---- Matmul peak ----------------------------------------------------------------------------

struct MatmulFigure {
  std::string name;
  double flops = 0;    // per call
  double seconds = 0;  // best call
  double gflops() const { return flops / seconds / 1e9; }
};

// Times fn (best of repeats) and appends it to `out` as a figure of `flops` operations.
void AddFigure(std::vector<MatmulFigure>* out, const std::string& name, double flops,
               const std::function<void()>& fn) {
  MatmulFigure f;
  f.name = name;
  f.flops = flops;
  f.seconds = BestSeconds(fn);
  out->push_back(f);
}

std::vector<MatmulFigure> MeasureMatmul() {
  at::manual_seed(0);
  std::vector<MatmulFigure> out;
  auto add = [&out](const std::string& name, double flops, const std::function<void()>& fn) {
    AddFigure(&out, name, flops, fn);
  };
  {
    auto a = at::randn({1024, 1024});
    auto b = at::randn({1024, 1024});
    add("matmul 1024x1024x1024", 2.0 * 1024 * 1024 * 1024, [&] { at::matmul(a, b); });
  }
  // BERT-base-like shapes: linear layers over (α-points × examples × tokens) rows, and the
  // batched per-head attention products.
  struct Lin {
    const char* name;
    int64_t rows, in, out;
  };
  for (const Lin& s :
       {Lin{"linear [5x8x25 rows] 768->3072 (FFN in, n=25)", 5 * 8 * 25, 768, 3072},
        Lin{"linear [5x8x25 rows] 3072->768 (FFN out, n=25)", 5 * 8 * 25, 3072, 768},
        Lin{"linear [5x8x25 rows] 768->768 (Q/K/V/O, n=25)", 5 * 8 * 25, 768, 768},
        Lin{"linear [3x2x128 rows] 768->3072 (FFN in, n=128)", 3 * 2 * 128, 768, 3072}}) {
    auto x = at::randn({s.rows, s.in});
    auto w = at::randn({s.out, s.in});
    auto b = at::randn({s.out});
    add(s.name, 2.0 * s.rows * s.in * s.out, [&, x, w, b] { at::linear(x, w, b); });
  }
  struct Bmm {
    const char* name;
    int64_t batch, m, k, n;
  };
  for (const Bmm& s : {Bmm{"bmm [40x12] 25x64 @ 64x25 (scores, n=25)", 40 * 12, 25, 64, 25},
                       Bmm{"bmm [40x12] 25x25 @ 25x64 (probs.V, n=25)", 40 * 12, 25, 25, 64},
                       Bmm{"bmm [6x12] 128x64 @ 64x128 (scores, n=128)", 6 * 12, 128, 64, 128}}) {
    auto a = at::randn({s.batch, s.m, s.k});
    auto b = at::randn({s.batch, s.k, s.n});
    add(s.name, 2.0 * s.batch * s.m * s.k * s.n, [&, a, b] { at::matmul(a, b); });
  }
  return out;
}

// ---- Inputs ---------------------------------------------------------------------------------

std::vector<engine::Example> ReadDev(const Flags& flags, int limit) {
  const std::string path = flags.shared + "/data/sst2/dev.tsv";
  auto ds = OrDie(engine::ReadDataset(path, limit), "reading " + path);
  if (static_cast<int>(ds.examples.size()) < limit) {
    Die(absl::StrCat(path, ": only ", ds.examples.size(), " examples, need ", limit));
  }
  return std::move(ds.examples);
}

std::vector<engine::Encoding> EncodeAll(const engine::Model& model,
                                        const std::vector<engine::Example>& examples) {
  std::vector<engine::Encoding> out;
  for (const auto& e : examples) out.push_back(OrDie(model.Encode(e), "encoding " + e.text));
  return out;
}

// ---- Measurements ---------------------------------------------------------------------------

struct Timed {
  std::vector<engine::ExampleAttribution> results;
  double seconds = 0;
  double peak_rss_mib = 0;  // phase peak
};

Timed TimeFast(const engine::Model& model, const std::vector<engine::Encoding>& encs,
               const engine::AttributionOptions& options) {
  ResetPeakRss();
  Timed t;
  const auto t0 = Clock::now();
  t.results = OrDie(engine::AttributeEncodings(model, encs, options), "AttributeEncodings");
  t.seconds = SecondsSince(t0);
  t.peak_rss_mib = PhasePeakRssMiB();
  return t;
}

Timed TimeBaseline(const engine::Model& model, const std::vector<engine::Encoding>& encs,
                   const engine::AttributionOptions& options, int pad_to) {
  ResetPeakRss();
  Timed t;
  const auto t0 = Clock::now();
  t.results = OrDie(engine::AttributeEncodingsReference(model, encs, options, pad_to),
                    "AttributeEncodingsReference");
  t.seconds = SecondsSince(t0);
  t.peak_rss_mib = PhasePeakRssMiB();
  return t;
}

// `count` layers spread evenly over [0, L-1] (first and last included); all when count <= 0 or >=
// L.
std::vector<int> SpreadLayers(int num_layers, int count) {
  std::vector<int> all(num_layers);
  std::iota(all.begin(), all.end(), 0);
  if (count <= 0 || count >= num_layers) return all;
  if (count == 1) return {0};
  std::vector<int> out;
  for (int k = 0; k < count; ++k) {
    const int l =
        static_cast<int>(std::lround(static_cast<double>(k) * (num_layers - 1) / (count - 1)));
    if (out.empty() || out.back() != l) out.push_back(l);
  }
  return out;
}

// Max over examples and the baseline's layers of max|fast − base| / max|base| (per layer).
double MaxRelativeDiff(const std::vector<engine::ExampleAttribution>& fast,
                       const std::vector<engine::ExampleAttribution>& base) {
  double worst = 0;
  for (size_t e = 0; e < base.size(); ++e) {
    for (const auto& bl : base[e].layers) {
      const engine::LayerAttribution* fl = nullptr;
      for (const auto& l : fast[e].layers) {
        if (l.layer == bl.layer) fl = &l;
      }
      if (fl == nullptr) continue;  // the fast run covered other layers
      if (fl->attribution.size() != bl.attribution.size()) {
        Die(absl::StrCat("agreement check: layer ", bl.layer, " has a different size"));
      }
      double diff = 0, scale = 0;
      for (size_t i = 0; i < bl.attribution.size(); ++i) {
        diff = std::max(diff, std::fabs(double{fl->attribution[i]} - bl.attribution[i]));
        scale = std::max(scale, std::fabs(double{bl.attribution[i]}));
      }
      worst = std::max(worst, diff / std::max(scale, 1e-30));
    }
  }
  return worst;
}

// Mean completeness gap of `fast` over the examples and layers `base` covers.
double MeanGapOn(const std::vector<engine::ExampleAttribution>& fast,
                 const std::vector<engine::ExampleAttribution>& base) {
  double s = 0;
  int count = 0;
  for (size_t e = 0; e < base.size(); ++e) {
    for (const auto& bl : base[e].layers) {
      for (const auto& fl : fast[e].layers) {
        if (fl.layer == bl.layer) {
          s += fl.completeness_gap;
          ++count;
        }
      }
    }
  }
  return count ? s / count : 0;
}

double MeanGap(const std::vector<engine::ExampleAttribution>& results, double* max_gap) {
  double s = 0, mx = 0;
  int count = 0;
  for (const auto& r : results) {
    for (const auto& l : r.layers) {
      s += l.completeness_gap;
      mx = std::max(mx, l.completeness_gap);
      ++count;
    }
  }
  if (max_gap != nullptr) *max_gap = mx;
  return count ? s / count : 0;
}

double TotalFlops(const engine::ModelInfo& info, const std::vector<engine::Encoding>& encs,
                  const engine::AttributionOptions& options) {
  double f = 0;
  for (const auto& e : encs)
    f += engine::AttributionFlops(info, static_cast<int>(e.size()), options);
  return f;
}

// FLOPs the reference spends per example and layer (estimate): m full forward passes at pad_to
// tokens, backward ≈ 2× forward (input and parameter gradients).
double ReferenceFlopsPerLayer(const engine::ModelInfo& info, int pad_to, int steps) {
  const double d = info.hidden_size, i = info.intermediate_size, n = pad_to;
  const double layer_fwd = 8 * n * d * d + 4 * n * n * d + 4 * n * d * i;
  return 3.0 * steps * info.num_layers * layer_fwd;
}

// Cheap untimed runs so thread pools, allocator and BLAS kernels are warm before timing.
void WarmUp(const engine::Model& model, const engine::Encoding& enc,
            const engine::AttributionOptions& base, int pad_to, bool baseline) {
  engine::AttributionOptions o = base;
  o.steps = std::min(base.steps, 2);
  if (o.rule == engine::QuadratureRule::kTrapezoid) o.steps = 2;
  OrDie(engine::AttributeEncodings(model, {enc}, o), "warm-up");
  if (baseline) {
    o.layers = {model.info().num_layers - 1};
    OrDie(engine::AttributeEncodingsReference(model, {enc}, o, pad_to), "warm-up (reference)");
  }
}

// ---- Workload records -----------------------------------------------------------------------

struct Row {
  std::string workload;
  std::string model;
  double mean_n = 0;
  int fast_examples = 0;
  int baseline_examples = 0;
  std::vector<int> baseline_layers;
  std::vector<int> fast_layers;  // layers the fast path ran; its time is FLOP-scaled to all layers
  int num_layers = 0;
  double fast_seconds = 0, baseline_seconds = 0;
  double fast_eps = 0, baseline_eps = 0;  // examples/s; the baseline's scaled to all layers
  double ratio = 0;
  double fast_gflops = 0, baseline_gflops = 0;  // baseline: its own (estimated) FLOPs
  double peak_gflops = 0, pct_peak = 0;
  double fast_rss = 0, baseline_rss = 0, max_rss = 0;
  double max_rel_diff = -1;
  double fast_mean_gap = 0, baseline_mean_gap = 0, fast_mean_gap_on_baseline = 0;
  int max_batch_examples = 0;
  int64_t memory_budget_bytes = 0;
  std::string note;
};

Json ToJson(const Row& r) {
  return Json{
      {"workload", r.workload},
      {"model", r.model},
      {"mean_tokens", r.mean_n},
      {"fast_examples", r.fast_examples},
      {"baseline_examples", r.baseline_examples},
      {"baseline_layers_run", r.baseline_layers},
      {"fast_layers_run", r.fast_layers},
      {"num_layers", r.num_layers},
      {"fast_seconds", r.fast_seconds},
      {"baseline_seconds_measured", r.baseline_seconds},
      {"fast_examples_per_s", r.fast_eps},
      {"baseline_examples_per_s", r.baseline_eps},
      {"ratio_fast_over_baseline", r.ratio},
      {"fast_gflops", r.fast_gflops},
      {"baseline_gflops_estimated", r.baseline_gflops},
      {"matmul_peak_gflops", r.peak_gflops},
      {"fast_percent_of_peak", r.pct_peak},
      {"fast_peak_rss_mib", r.fast_rss},
      {"baseline_peak_rss_mib", r.baseline_rss},
      {"process_max_rss_mib", r.max_rss},
      {"max_rel_diff_fast_vs_baseline", r.max_rel_diff},
      {"fast_mean_completeness_gap", r.fast_mean_gap},
      {"baseline_mean_completeness_gap", r.baseline_mean_gap},
      {"fast_mean_completeness_gap_on_baseline_examples_layers", r.fast_mean_gap_on_baseline},
      {"max_batch_examples", r.max_batch_examples},
      {"memory_budget_bytes", r.memory_budget_bytes},
      {"note", r.note}};
}

void PrintRow(const Row& r) {
  std::cout << absl::StrFormat(
      "  tokens (mean) %.1f; fast: %d examples x layers {%s} in %.2f s -> %.4f ex/s over all %d "
      "layers, %.1f GFLOP/s (%.0f%% of %.1f peak), peak RSS %.0f MiB\n",
      r.mean_n, r.fast_examples, absl::StrJoin(r.fast_layers, ","), r.fast_seconds, r.fast_eps,
      r.num_layers, r.fast_gflops, r.pct_peak, r.peak_gflops, r.fast_rss);
  if (r.baseline_examples > 0) {
    std::cout << absl::StrFormat(
        "  baseline: %d examples x layers {%s} in %.2f s -> %.4f ex/s over all %d layers, "
        "~%.1f GFLOP/s (own FLOPs, est.), peak RSS %.0f MiB\n",
        r.baseline_examples, absl::StrJoin(r.baseline_layers, ","), r.baseline_seconds,
        r.baseline_eps, r.num_layers, r.baseline_gflops, r.baseline_rss);
    std::cout << absl::StrFormat(
        "  ratio fast/baseline (examples/s) %.2fx; max |fast-base| / max|base| per layer %.2e; "
        "mean completeness gap on the baseline's examples and layers: fast %.3e, baseline %.3e "
        "(fast over all its examples and layers: %.3e)\n",
        r.ratio, r.max_rel_diff, r.fast_mean_gap_on_baseline, r.baseline_mean_gap, r.fast_mean_gap);
  }
  std::cout << absl::StrFormat("  fast options: max_batch_examples %d, memory_budget %d MiB\n",
                               r.max_batch_examples, r.memory_budget_bytes >> 20);
  std::cout.flush();
}

engine::AttributionOptions BaseOptions(const Flags& flags) {
  engine::AttributionOptions o;
  o.rule = OrDie(engine::ParseQuadratureRule(flags.rule), "--rule");
  o.steps = flags.steps;
  o.precision = OrDie(engine::ParsePrecision(flags.precision), "--precision");
  if (flags.max_batch_examples > 0) o.max_batch_examples = flags.max_batch_examples;
  if (flags.memory_budget_mib > 0) o.memory_budget_bytes = flags.memory_budget_mib << 20;
  return o;
}

// ---- bf16 against fp32 (workload "precision") ---------------------------------------------

struct PrecisionRow {
  std::string model;
  int examples = 0;
  double mean_n = 0;
  double fp32_eps = 0, bf16_eps = 0;
  double max_error = 0;                      // max over examples and layers of max |Δ| / layer max
  double mean_overlap = 0, min_overlap = 1;  // top-10 connections
  double fp32_gap = 0, bf16_gap = 0;         // largest completeness gap
};

// The fast path on `encs` at fp32 and at bf16, one after the other in this process, with the
// same options otherwise: examples/s and how far bf16 is from fp32 (engine::CompareAttributions).
PrecisionRow ComparePrecision(const std::string& model_name, const engine::Model& model,
                              const std::vector<engine::Encoding>& encs, const Flags& flags) {
  engine::AttributionOptions fp32 = BaseOptions(flags);
  fp32.precision = engine::Precision::kFp32;
  engine::AttributionOptions bf16 = fp32;
  bf16.precision = engine::Precision::kBf16;
  std::cout << "[precision " << model_name << "] warm-up ..." << std::endl;
  WarmUp(model, encs.front(), fp32, flags.pad_to, false);
  WarmUp(model, encs.front(), bf16, flags.pad_to, false);
  PrecisionRow r;
  r.model = model_name;
  r.examples = static_cast<int>(encs.size());
  r.mean_n = MeanTokens(encs);
  std::cout << "[precision " << model_name << "] fp32, then bf16, on " << encs.size()
            << " examples ..." << std::endl;
  const Timed exact = TimeFast(model, encs, fp32);
  const Timed low = TimeFast(model, encs, bf16);
  r.fp32_eps = r.examples / exact.seconds;
  r.bf16_eps = r.examples / low.seconds;
  double overlap_sum = 0;
  int layers = 0;
  for (size_t e = 0; e < encs.size(); ++e) {
    const auto agreement =
        OrDie(engine::CompareAttributions(exact.results[e], low.results[e]), "compare");
    for (size_t i = 0; i < agreement.size(); ++i) {
      r.max_error = std::max(r.max_error, agreement[i].relative_error);
      r.min_overlap = std::min(r.min_overlap, agreement[i].top_k_overlap);
      overlap_sum += agreement[i].top_k_overlap;
      r.fp32_gap = std::max(r.fp32_gap, exact.results[e].layers[i].completeness_gap);
      r.bf16_gap = std::max(r.bf16_gap, low.results[e].layers[i].completeness_gap);
      ++layers;
    }
  }
  r.mean_overlap = overlap_sum / std::max(layers, 1);
  return r;
}

Json ToJson(const PrecisionRow& r) {
  return Json{{"model", r.model},
              {"examples", r.examples},
              {"mean_tokens", r.mean_n},
              {"fp32_examples_per_s", r.fp32_eps},
              {"bf16_examples_per_s", r.bf16_eps},
              {"bf16_over_fp32", r.bf16_eps / r.fp32_eps},
              {"max_relative_error", r.max_error},
              {"mean_top10_overlap", r.mean_overlap},
              {"min_top10_overlap", r.min_overlap},
              {"max_fp32_gap", r.fp32_gap},
              {"max_bf16_gap", r.bf16_gap}};
}

// bf16 matmul figures beside the fp32 peak: AMX / AVX-512-BF16 through oneDNN on this CPU.
std::vector<MatmulFigure> MeasureBf16Matmul() {
  std::vector<MatmulFigure> out;
  auto add = [&out](const std::string& name, double flops, const std::function<void()>& fn) {
    AddFigure(&out, name, flops, fn);
  };
  const auto bf16 = at::TensorOptions().dtype(at::kBFloat16);
  auto a = at::randn({1024, 1024}, bf16), b = at::randn({1024, 1024}, bf16);
  add("bf16 matmul 1024x1024x1024", 2.0 * 1024 * 1024 * 1024, [&] { at::matmul(a, b); });
  auto x = at::randn({5 * 8 * 25, 768}, bf16), w = at::randn({3072, 768}, bf16);
  add("bf16 linear [5x8x25 rows] 768->3072 (FFN in, n=25)", 2.0 * 5 * 8 * 25 * 768 * 3072,
      [&] { at::linear(x, w); });
  return out;
}

// Fast path on `fast_encs` over `fast_layer_count` layers (0 = all; time scaled to all layers by
// AttributionFlops) vs the reference on the first `baseline_examples` of them over
// `baseline_layer_count` layers (0 = all; its per-layer cost does not depend on the layer, so its
// time is scaled by L / layers run). Both are reported per example over all L layers.
Row FastVsBaseline(const std::string& name, const std::string& model_name,
                   const engine::Model& model, const std::vector<engine::Encoding>& fast_encs,
                   int fast_layer_count, int baseline_examples, int baseline_layer_count,
                   const Flags& flags, double peak_gflops) {
  const engine::ModelInfo& info = model.info();
  engine::AttributionOptions options = BaseOptions(flags);
  const engine::AttributionOptions all_layers = options;
  options.layers = SpreadLayers(info.num_layers, fast_layer_count);
  Row r;
  r.workload = name;
  r.model = model_name;
  r.num_layers = info.num_layers;
  r.mean_n = MeanTokens(fast_encs);
  r.max_batch_examples = options.max_batch_examples;
  r.memory_budget_bytes = options.memory_budget_bytes;
  r.peak_gflops = peak_gflops;
  baseline_examples = std::min<int>(baseline_examples, static_cast<int>(fast_encs.size()));
  std::cout << "[" << name << "] warm-up ..." << std::endl;
  WarmUp(model, fast_encs.front(), options, flags.pad_to, baseline_examples > 0);

  std::cout << "[" << name << "] fast path on " << fast_encs.size() << " examples ..." << std::endl;
  Timed fast = TimeFast(model, fast_encs, options);
  r.fast_examples = static_cast<int>(fast_encs.size());
  r.fast_layers = options.layers;
  r.fast_seconds = fast.seconds;
  const double run_flops = TotalFlops(info, fast_encs, options);
  const double all_seconds = fast.seconds * TotalFlops(info, fast_encs, all_layers) / run_flops;
  r.fast_eps = r.fast_examples / all_seconds;
  r.fast_gflops = run_flops / fast.seconds / 1e9;
  r.pct_peak = peak_gflops > 0 ? 100.0 * r.fast_gflops / peak_gflops : 0;
  r.fast_rss = fast.peak_rss_mib;
  r.fast_mean_gap = MeanGap(fast.results, nullptr);

  if (baseline_examples > 0) {
    engine::AttributionOptions bo = options;
    bo.layers = SpreadLayers(info.num_layers, baseline_layer_count);
    const std::vector<engine::Encoding> base_encs(fast_encs.begin(),
                                                  fast_encs.begin() + baseline_examples);
    std::cout << "[" << name << "] baseline on " << baseline_examples << " examples, layers {"
              << absl::StrJoin(bo.layers, ",") << "}, pad_to " << flags.pad_to << " ..."
              << std::endl;
    Timed base = TimeBaseline(model, base_encs, bo, flags.pad_to);
    r.baseline_examples = baseline_examples;
    r.baseline_layers = bo.layers;
    r.baseline_seconds = base.seconds;
    const double per_example_all_layers = base.seconds / baseline_examples *
                                          static_cast<double>(info.num_layers) /
                                          static_cast<double>(bo.layers.size());
    r.baseline_eps = 1.0 / per_example_all_layers;
    r.baseline_gflops = ReferenceFlopsPerLayer(info, flags.pad_to, options.steps) *
                        static_cast<double>(bo.layers.size()) * baseline_examples / base.seconds /
                        1e9;
    r.ratio = r.fast_eps / r.baseline_eps;
    r.baseline_rss = base.peak_rss_mib;
    r.max_rel_diff = MaxRelativeDiff(fast.results, base.results);
    r.baseline_mean_gap = MeanGap(base.results, nullptr);
    r.fast_mean_gap_on_baseline = MeanGapOn(fast.results, base.results);
  }
  r.max_rss = MaxRssMiB();
  std::cout << "[" << name << "]\n";
  PrintRow(r);
  return r;
}

// ---- gl-sweep -------------------------------------------------------------------------------

struct SweepRow {
  std::string rule;
  int steps = 0;
  double mean_gap = 0, max_gap = 0, seconds = 0, eps = 0;
};

Json GlSweep(const engine::Model& model, const std::vector<engine::Encoding>& encs,
             const Flags& flags, std::string* summary) {
  engine::AttributionOptions base = BaseOptions(flags);
  base.keep_attention = false;
  std::vector<SweepRow> rows;
  auto run = [&](engine::QuadratureRule rule, int m) {
    engine::AttributionOptions o = base;
    o.rule = rule;
    o.steps = m;
    Timed t = TimeFast(model, encs, o);
    SweepRow s;
    s.rule = std::string(engine::QuadratureRuleName(rule));
    s.steps = m;
    s.mean_gap = MeanGap(t.results, &s.max_gap);
    s.seconds = t.seconds;
    s.eps = static_cast<double>(encs.size()) / t.seconds;
    rows.push_back(s);
    std::cout << absl::StrFormat("  %-15s m=%2d  mean gap %.3e  max gap %.3e  %.2f s  %.2f ex/s\n",
                                 s.rule, m, s.mean_gap, s.max_gap, s.seconds, s.eps)
              << std::flush;
    return s;
  };
  std::cout << "[gl-sweep] " << encs.size() << " examples, all layers" << std::endl;
  WarmUp(model, encs.front(), base, flags.pad_to, false);
  const SweepRow lr = run(engine::QuadratureRule::kLeftRiemann, 20);
  int chosen = -1;
  SweepRow chosen_row;
  for (int m = 1; m <= 20; ++m) {
    SweepRow g = run(engine::QuadratureRule::kGaussLegendre, m);
    if (chosen < 0 && g.mean_gap <= lr.mean_gap) {
      chosen = m;
      chosen_row = g;
    }
  }
  Json j;
  j["examples"] = encs.size();
  j["mean_tokens"] = MeanTokens(encs);
  for (const auto& s : rows) {
    j["runs"].push_back(Json{{"rule", s.rule},
                             {"steps", s.steps},
                             {"mean_gap", s.mean_gap},
                             {"max_gap", s.max_gap},
                             {"seconds", s.seconds},
                             {"examples_per_s", s.eps}});
  }
  if (chosen > 0) {
    j["smallest_gl_steps_matching_lr20"] = chosen;
    j["speedup_vs_lr20"] = chosen_row.eps / lr.eps;
    *summary = absl::StrFormat(
        "gl-sweep: left-riemann m=20 mean gap %.3e (%.2f ex/s); smallest Gauss-Legendre m with "
        "mean gap <= that: m=%d, mean gap %.3e, %.2f ex/s = %.2fx the speed of left-riemann m=20",
        lr.mean_gap, lr.eps, chosen, chosen_row.mean_gap, chosen_row.eps, chosen_row.eps / lr.eps);
  } else {
    *summary = "gl-sweep: no Gauss-Legendre m in 1..20 matched left-riemann m=20";
  }
  std::cout << summary->c_str() << std::endl;
  return j;
}

// ---- Tuning ---------------------------------------------------------------------------------

Json Tune(const std::string& name, const engine::Model& model,
          const std::vector<engine::Encoding>& encs, const Flags& flags, double peak_gflops,
          std::vector<std::string>* table) {
  const engine::ModelInfo& info = model.info();
  engine::AttributionOptions base = BaseOptions(flags);
  base.layers = flags.tune_layers;
  std::cout << "[tune " << name << "] " << encs.size() << " examples, mean " << MeanTokens(encs)
            << " tokens, layers " << (base.layers.empty() ? "all" : absl::StrJoin(base.layers, ","))
            << std::endl;
  WarmUp(model, encs.front(), base, flags.pad_to, false);
  const double flops = TotalFlops(info, encs, base);
  Json j;
  for (int mb : flags.tune_batches) {
    for (int64_t mib : flags.tune_budgets_mib) {
      engine::AttributionOptions o = base;
      o.max_batch_examples = mb;
      o.memory_budget_bytes = mib << 20;
      Timed t = TimeFast(model, encs, o);
      const double gf = flops / t.seconds / 1e9;
      const std::string pct =
          peak_gflops > 0 ? absl::StrFormat("%.0f%%", 100 * gf / peak_gflops) : std::string("-");
      const std::string line =
          absl::StrFormat("| %s | %d | %d | %.3f | %.1f | %s | %.0f |", name, mb, mib,
                          static_cast<double>(encs.size()) / t.seconds, gf, pct, t.peak_rss_mib);
      std::cout << line << std::endl;
      table->push_back(line);
      j.push_back(Json{{"workload", name},
                       {"max_batch_examples", mb},
                       {"memory_budget_mib", mib},
                       {"seconds", t.seconds},
                       {"examples_per_s", static_cast<double>(encs.size()) / t.seconds},
                       {"gflops", gf},
                       {"peak_rss_mib", t.peak_rss_mib}});
    }
  }
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"Attribution benchmark: fast path vs the authors' scheme (see bench/README.md)"};
  app.add_option("--shared", flags.shared, "The shared/ directory (data, models, vocab)")
      ->capture_default_str();
  app.add_option("--examples", flags.examples,
                 "SST-2 dev sentences for bertbase-sst2 and sst2-model")
      ->capture_default_str();
  app.add_option("--examples-128", flags.examples_128,
                 "Fast-path inputs for bertbase-128 (each exactly 128 tokens)")
      ->capture_default_str();
  app.add_option("--gl-examples", flags.gl_examples, "SST-2 dev sentences for gl-sweep")
      ->capture_default_str();
  app.add_option("--precision", flags.precision, "fp32 | bf16: the fast path's integrand")
      ->capture_default_str();
  app.add_option("--threads", flags.threads, "Intra-op threads (0 = all cores)")
      ->capture_default_str();
  app.add_option("--steps", flags.steps, "Integration points m")->capture_default_str();
  app.add_option("--rule", flags.rule, "left-riemann | trapezoid | gauss-legendre")
      ->capture_default_str();
  app.add_option(
         "--workload", flags.workload,
         "all | bertbase-sst2 | bertbase-128 | sst2-model | gl-sweep | precision (bf16 against "
         "fp32) | none (e.g. with --tune)")
      ->check(CLI::IsMember(
          {"all", "bertbase-sst2", "bertbase-128", "sst2-model", "gl-sweep", "precision", "none"}))
      ->capture_default_str();
  app.add_option("--baseline-examples", flags.baseline_examples,
                 "Examples the (slow) baseline runs on; compared per example (0 = skip)")
      ->capture_default_str();
  app.add_option("--baseline-layers", flags.baseline_layers,
                 "BERT-base workloads: layers the baseline runs (spread evenly, 0 = all); its "
                 "time is scaled to all layers (its cost per layer does not depend on the layer)")
      ->capture_default_str();
  app.add_option("--fast-layers-128", flags.fast_layers_128,
                 "bertbase-128: layers the fast path runs (spread evenly, 0 = all); its time is "
                 "scaled to all layers by AttributionFlops")
      ->capture_default_str();
  app.add_option("--pad-to", flags.pad_to, "Baseline padding length")->capture_default_str();
  app.add_option("--max-batch-examples", flags.max_batch_examples,
                 "Fast path: examples per batch (0 = engine default)")
      ->capture_default_str();
  app.add_option("--memory-budget-mib", flags.memory_budget_mib,
                 "Fast path: activation budget in MiB (0 = engine default)")
      ->capture_default_str();
  app.add_flag("--tune", flags.tune,
               "Also sweep max_batch_examples x memory budget on the BERT-base workloads");
  app.add_option("--tune-batches", flags.tune_batches, "max_batch_examples values to try")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--tune-budgets-mib", flags.tune_budgets_mib, "memory budgets (MiB) to try")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--tune-examples", flags.tune_examples, "bertbase-sst2 sentences for --tune")
      ->capture_default_str();
  app.add_option("--tune-layers", flags.tune_layers, "Layers for --tune (default: all)")
      ->delimiter(',');
  app.add_option("--tune-workloads", flags.tune_workloads, "both | bertbase-sst2 | bertbase-128")
      ->check(CLI::IsMember({"both", "bertbase-sst2", "bertbase-128"}))
      ->capture_default_str();
  app.add_flag("--skip-matmul", flags.skip_matmul, "Do not measure the matmul peak");
  app.add_option("--json", flags.json_path, "Write all figures to this JSON file");
  CLI11_PARSE(app, argc, argv);

  if (auto s = engine::ConfigureRuntime({flags.threads}); !s.ok()) Die(s.ToString());
  const auto t_start = Clock::now();
  const bool all = flags.workload == "all";
  auto want = [&](const char* w) { return all || flags.workload == w; };
  Json out;
  out["flags"] = Json{{"examples", flags.examples},
                      {"examples_128", flags.examples_128},
                      {"gl_examples", flags.gl_examples},
                      {"threads", flags.threads},
                      {"steps", flags.steps},
                      {"rule", flags.rule},
                      {"workload", flags.workload},
                      {"baseline_examples", flags.baseline_examples},
                      {"baseline_layers", flags.baseline_layers},
                      {"fast_layers_128", flags.fast_layers_128},
                      {"pad_to", flags.pad_to}};
  const std::string runtime = engine::RuntimeDescription();
  std::cout << "== Runtime\n" << runtime << std::endl;
  out["runtime"] = runtime;

  // Matmul peak.
  double peak = 0;
  if (!flags.skip_matmul) {
    std::cout << "== Matmul peak (best of repeats, float32)" << std::endl;
    for (const auto& f : MeasureMatmul()) {
      std::cout << absl::StrFormat("  %-50s %8.1f GFLOP/s\n", f.name, f.gflops());
      out["matmul"].push_back(Json{{"name", f.name}, {"gflops", f.gflops()}});
      peak = std::max(peak, f.gflops());
    }
    std::cout << absl::StrFormat("  peak (max of the above): %.1f GFLOP/s\n", peak) << std::flush;
  }
  out["matmul_peak_gflops"] = peak;

  std::vector<Row> rows;
  std::vector<PrecisionRow> precision_rows;
  std::vector<std::string> tune_table;
  std::string gl_summary;

  if (want("precision")) {
    std::cout << "== bf16 matmul (best of repeats)" << std::endl;
    for (const auto& f : MeasureBf16Matmul()) {
      std::cout << absl::StrFormat("  %-50s %8.1f GFLOP/s\n", f.name, f.gflops());
      out["bf16_matmul"].push_back(Json{{"name", f.name}, {"gflops", f.gflops()}});
    }
    engine::RandomModelSpec spec;
    spec.vocab_path = flags.shared + "/vocab/bert-base-uncased-vocab.txt";
    auto bert_base = OrDie(engine::Model::CreateRandom(spec), "CreateRandom(BERT-base)");
    std::cout << "== Workload precision: bf16 against fp32, SST-2 dev sentences" << std::endl;
    precision_rows.push_back(ComparePrecision("random BERT-base 12x12x768", *bert_base,
                                              EncodeAll(*bert_base, ReadDev(flags, flags.examples)),
                                              flags));
    for (const char* name : {"sst2-bert-l4-h256", "sst2-minilm-l6"}) {
      auto model = OrDie(engine::Model::Load(flags.shared + "/models/" + name), name);
      precision_rows.push_back(
          ComparePrecision(name, *model, EncodeAll(*model, ReadDev(flags, flags.examples)), flags));
    }
  }
  if (want("bertbase-sst2") || want("bertbase-128") || flags.tune) {
    engine::RandomModelSpec spec;
    spec.vocab_path = flags.shared + "/vocab/bert-base-uncased-vocab.txt";
    auto model = OrDie(engine::Model::CreateRandom(spec), "CreateRandom(BERT-base)");
    const std::string name = "random BERT-base 12x12x768";
    if (want("bertbase-sst2")) {
      auto encs = EncodeAll(*model, ReadDev(flags, flags.examples));
      std::cout << "== Workload bertbase-sst2: BERT-base dims, SST-2 dev sentences at real length"
                << std::endl;
      rows.push_back(FastVsBaseline("bertbase-sst2", name, *model, encs, /*all layers*/ 0,
                                    flags.baseline_examples, flags.baseline_layers, flags, peak));
    }
    if (want("bertbase-128")) {
      auto encs = EncodeExactly(*model, ReadDev(flags, flags.examples_128), 128);
      std::cout << "== Workload bertbase-128: BERT-base dims, inputs of exactly 128 tokens"
                << std::endl;
      rows.push_back(FastVsBaseline("bertbase-128", name, *model, encs, flags.fast_layers_128,
                                    flags.baseline_examples, flags.baseline_layers, flags, peak));
    }
    if (flags.tune) {
      std::cout << "== Tuning (fast path only): | workload | max_batch_examples | budget MiB | "
                   "ex/s | GFLOP/s | % peak | peak RSS MiB |"
                << std::endl;
      if (flags.tune_workloads != "bertbase-128") {
        auto e1 = EncodeAll(*model, ReadDev(flags, flags.tune_examples));
        out["tuning"]["bertbase-sst2"] =
            Tune("bertbase-sst2", *model, e1, flags, peak, &tune_table);
      }
      if (flags.tune_workloads != "bertbase-sst2") {
        auto e2 = EncodeExactly(*model, ReadDev(flags, flags.examples_128), 128);
        out["tuning"]["bertbase-128"] = Tune("bertbase-128", *model, e2, flags, peak, &tune_table);
      }
    }
  }
  if (want("sst2-model") || want("gl-sweep")) {
    const std::string dir = flags.shared + "/models/sst2-bert-l4-h256";
    auto model = OrDie(engine::Model::Load(dir), "loading " + dir);
    if (want("sst2-model")) {
      auto encs = EncodeAll(*model, ReadDev(flags, flags.examples));
      std::cout << "== Workload sst2-model: shared SST-2 model (4x8x256), SST-2 dev sentences"
                << std::endl;
      rows.push_back(FastVsBaseline("sst2-model", "sst2-bert-l4-h256", *model, encs,
                                    /*all layers*/ 0, flags.baseline_examples, /*all layers*/ 0,
                                    flags, peak));
    }
    if (want("gl-sweep")) {
      auto encs = EncodeAll(*model, ReadDev(flags, flags.gl_examples));
      std::cout << "== Workload gl-sweep: completeness gap vs quadrature on the shared model"
                << std::endl;
      out["gl_sweep"] = GlSweep(*model, encs, flags, &gl_summary);
      out["gl_sweep"]["summary"] = gl_summary;
    }
  }

  // Summary table (Markdown).
  std::cout << "\n== Summary (rule " << flags.rule << ", m=" << flags.steps << ", threads "
            << (flags.threads == 0 ? std::string("all") : std::to_string(flags.threads))
            << ", baseline pad_to " << flags.pad_to << ")\n";
  std::cout << "| workload | tokens | fast ex/s | baseline ex/s | fast/base | fast GFLOP/s | "
               "matmul peak | % peak | RSS fast / base MiB | max rel diff |\n"
               "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const Row& r : rows) {
    std::cout << absl::StrFormat(
        "| %s | %.1f | %.3f | %.4f | %.2fx | %.1f | %.1f | %.0f%% | "
        "%.0f / %.0f | %.1e |\n",
        r.workload, r.mean_n, r.fast_eps, r.baseline_eps, r.ratio, r.fast_gflops, r.peak_gflops,
        r.pct_peak, r.fast_rss, r.baseline_rss, r.max_rel_diff);
    out["workloads"].push_back(ToJson(r));
  }
  if (!precision_rows.empty()) {
    std::cout << "\n| model | tokens | fp32 ex/s | bf16 ex/s | bf16/fp32 | max rel. error | "
                 "top-10 overlap mean / min | max gap fp32 / bf16 |\n"
                 "|---|---|---|---|---|---|---|---|\n";
    for (const PrecisionRow& r : precision_rows) {
      std::cout << absl::StrFormat(
          "| %s | %.1f | %.3f | %.3f | %.2fx | %.1e | %.3f / %.2f | "
          "%.1e / %.1e |\n",
          r.model, r.mean_n, r.fp32_eps, r.bf16_eps, r.bf16_eps / r.fp32_eps, r.max_error,
          r.mean_overlap, r.min_overlap, r.fp32_gap, r.bf16_gap);
      out["precision"].push_back(ToJson(r));
    }
  }
  if (!gl_summary.empty()) std::cout << gl_summary << "\n";
  if (!tune_table.empty()) {
    std::cout << "\n| workload | max_batch_examples | budget MiB | ex/s | GFLOP/s | % peak | "
                 "peak RSS MiB |\n|---|---|---|---|---|---|---|\n";
    for (const auto& l : tune_table) std::cout << l << "\n";
  }
  const double total = SecondsSince(t_start);
  std::cout << absl::StrFormat("process max RSS (ru_maxrss) %.0f MiB; total %.1f s\n", MaxRssMiB(),
                               total);
  out["process_max_rss_mib"] = MaxRssMiB();
  out["total_seconds"] = total;
  if (!flags.json_path.empty()) {
    std::ofstream f(flags.json_path);
    f << out.dump(2) << "\n";
    if (!f) Die("cannot write " + flags.json_path);
    std::cout << "wrote " << flags.json_path << std::endl;
  }
  return 0;
}
