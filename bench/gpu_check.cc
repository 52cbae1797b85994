// GPU check: does the engine's CUDA path (engine::LoadOptions::device = "cuda") give the same
// attributions as the CPU path, and how much does batching several examples into one engine call
// (what the server's dynamic batching does with small Explain requests) speed attribution up on a
// GPU? A program, not a test: it prints figures (and optionally writes them as JSON) and never
// asserts timings. Without a CUDA device (or with a CPU-only LibTorch) the CUDA parts are skipped
// with a message; scripts/gpu_check.sh builds and runs it on a machine with a GPU.
//
//   (a) correctness: the SST-2 model on cpu and on cuda, the first --examples dev sentences,
//       LEFT_RIEMANN m = 20, all layers: per layer the worst max |Attr_cpu − Attr_cuda| / max
//       |Attr_cpu| over the examples, and the completeness gaps of both devices;
//   (b) batching: on cuda, --bench-examples sentences attributed with max_batch_examples = each of
//       --batches (large memory budget, so the α-points of a batch run as one chunk), after a
//       warm-up, timed with torch::cuda::synchronize; examples/s and the ratio to batch 1;
//   (c) the same on a random model with BERT-base dimensions for --bertbase-examples sentences;
//       --precision bf16 times (b) and (c) with the bf16 integrand (tensor cores).
#include <dlfcn.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/dataset.h"
#include "attattr/engine/model.h"
#include "attattr/engine/runtime.h"
#include "bench_support.h"
#include "nlohmann/json.hpp"

#ifndef ATTATTR_DEFAULT_SHARED_DIR
#define ATTATTR_DEFAULT_SHARED_DIR "../shared"
#endif

namespace {

using ::attattr::bench::Die;
using ::attattr::bench::MeanTokens;
using ::attattr::bench::OrDie;
using ::attattr::bench::SecondsSince;

namespace engine = attattr::engine;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

struct Flags {
  std::string model = std::string(ATTATTR_DEFAULT_SHARED_DIR) + "/models/sst2-bert-l4-h256";
  std::string data = std::string(ATTATTR_DEFAULT_SHARED_DIR) + "/data/sst2/dev.tsv";
  std::string vocab;  // random BERT-base model; default: <model>/vocab.txt
  int examples = 16;
  int bench_examples = 64;
  std::vector<int> batches = {1, 4, 8, 16, 32, 64};
  int bertbase_examples = 16;
  std::vector<int> bertbase_batches = {1, 16};
  int steps = 20;
  std::string precision = "fp32";  // the integrand of the timed sweeps (b) and (c)
  int repeats = 3;
  int64_t memory_budget_mib = 16384;
  int threads = 0;
  bool skip_bertbase = false;
  bool cpu_timing = false;  // without CUDA, run (b) and (c) on the CPU (to test this program)
  std::string json_path;
};

void Line(const std::string& s) {
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);
}

// The GPU's name as nvidia-smi reports it ("" when there is none).
std::string GpuName() {
  FILE* p = popen(
      "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader "
      "2>/dev/null",
      "r");
  if (p == nullptr) return "";
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// torch::cuda::is_available(), after loading libtorch_cuda.so by hand if the linker dropped it
// (an --as-needed link of a binary that names no CUDA symbol leaves the CUDA backend unloaded).
bool CudaAvailable() {
  if (torch::cuda::is_available()) return true;
  if (dlopen("libtorch_cuda.so", RTLD_NOW | RTLD_GLOBAL) != nullptr) {
    Line("gpu_check: libtorch_cuda.so was not loaded by the link; loaded it with dlopen");
    return torch::cuda::is_available();
  }
  return false;
}

void Synchronize(bool cuda) {
  if (cuda) torch::cuda::synchronize();
}

engine::AttributionOptions Options(int steps, int batch, int64_t budget_mib, bool keep_attention) {
  engine::AttributionOptions o;
  o.rule = engine::QuadratureRule::kLeftRiemann;
  o.steps = steps;
  o.max_batch_examples = batch;
  o.memory_budget_bytes = budget_mib << 20;
  o.keep_attention = keep_attention;
  return o;
}

std::vector<engine::Encoding> EncodeAll(const engine::Model& model,
                                        const std::vector<engine::Example>& examples) {
  std::vector<engine::Encoding> out;
  for (size_t i = 0; i < examples.size(); ++i) {
    out.push_back(OrDie(model.Encode(examples[i]), absl::StrCat("encode example ", i)));
  }
  return out;
}

// Worst over examples of max |a − b| / max |a| for layer index li (a is the reference).
struct Agreement {
  std::vector<double> per_layer;  // worst relative difference per layer
  double worst = 0;
  double max_target_diff = 0;  // max |F_a(A) − F_b(A)| and |F_a(0) − F_b(0)|
  int predictions_agree = 0;
};

Agreement Compare(const std::vector<engine::ExampleAttribution>& a,
                  const std::vector<engine::ExampleAttribution>& b) {
  Agreement g;
  if (a.empty()) return g;
  g.per_layer.assign(a[0].layers.size(), 0.0);
  for (size_t e = 0; e < a.size(); ++e) {
    if (a[e].prediction.predicted == b[e].prediction.predicted) ++g.predictions_agree;
    for (size_t li = 0; li < a[e].layers.size(); ++li) {
      const auto& x = a[e].layers[li];
      const auto& y = b[e].layers[li];
      if (x.attribution.size() != y.attribution.size()) Die("attribution sizes differ");
      double scale = 0, diff = 0;
      for (size_t k = 0; k < x.attribution.size(); ++k) {
        scale = std::max(scale, std::fabs(static_cast<double>(x.attribution[k])));
        diff = std::max(diff, std::fabs(static_cast<double>(x.attribution[k]) - y.attribution[k]));
      }
      const double rel = diff / std::max(scale, 1e-30);
      g.per_layer[li] = std::max(g.per_layer[li], rel);
      g.worst = std::max(g.worst, rel);
      g.max_target_diff =
          std::max({g.max_target_diff, std::fabs(x.target_at_full - y.target_at_full),
                    std::fabs(x.target_at_zero - y.target_at_zero)});
    }
  }
  return g;
}

struct Gaps {
  double mean = 0, max = 0;
};

Gaps CompletenessGaps(const std::vector<engine::ExampleAttribution>& r) {
  Gaps g;
  int n = 0;
  for (const auto& e : r) {
    for (const auto& l : e.layers) {
      g.mean += l.completeness_gap;
      g.max = std::max(g.max, l.completeness_gap);
      ++n;
    }
  }
  if (n > 0) g.mean /= n;
  return g;
}

// Seconds of the best of `repeats` timed calls after one untimed warm-up call.
struct Timing {
  double best_s = 0, median_s = 0;
  std::vector<engine::ExampleAttribution> results;
};

Timing TimeAttribution(const engine::Model& model, const std::vector<engine::Encoding>& encs,
                       const engine::AttributionOptions& options, int repeats, bool cuda) {
  Timing t;
  OrDie(engine::AttributeEncodings(model, encs, options), "warm-up");
  Synchronize(cuda);
  std::vector<double> times;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    Synchronize(cuda);
    const auto t0 = Clock::now();
    t.results = OrDie(engine::AttributeEncodings(model, encs, options), "attribution");
    Synchronize(cuda);
    times.push_back(SecondsSince(t0));
  }
  std::sort(times.begin(), times.end());
  t.best_s = times.front();
  t.median_s = times[times.size() / 2];
  return t;
}

// Times every batch size in `batches` on `model`; prints a table and returns it as JSON.
Json BatchSweep(const std::string& label, const engine::Model& model,
                const std::vector<engine::Encoding>& encs, const std::vector<int>& batches,
                const Flags& flags, bool cuda) {
  Line(absl::StrCat("[", label, "] ", model.info().num_layers, " layers x ", model.info().num_heads,
                    " heads x ", model.info().hidden_size, " on ", model.info().device, ", ",
                    encs.size(), " sentences (mean ", absl::StrFormat("%.1f", MeanTokens(encs)),
                    " word pieces), LEFT_RIEMANN m=", flags.steps, ", all layers, ",
                    flags.precision, ", keep_attention=false, budget ", flags.memory_budget_mib,
                    " MiB, best of ", flags.repeats, " after a warm-up"));
  Json rows = Json::array();
  double base_ex_s = 0;
  std::vector<engine::ExampleAttribution> first;
  for (int batch : batches) {
    auto options = Options(flags.steps, batch, flags.memory_budget_mib, false);
    options.precision = OrDie(engine::ParsePrecision(flags.precision), "--precision");
    Timing t = TimeAttribution(model, encs, options, flags.repeats, cuda);
    const double ex_s = static_cast<double>(encs.size()) / t.best_s;
    if (base_ex_s == 0) base_ex_s = ex_s;
    double rel = 0;
    if (first.empty()) {
      first = std::move(t.results);
    } else {
      rel = Compare(first, t.results).worst;
    }
    Line(
        absl::StrFormat("  batch %3d: %8.4f s (median %8.4f s)  %9.2f ex/s  x%.2f vs batch %d"
                        "  (max rel diff to batch %d: %.2e)",
                        batch, t.best_s, t.median_s, ex_s, ex_s / base_ex_s, batches.front(),
                        batches.front(), rel));
    rows.push_back({{"max_batch_examples", batch},
                    {"best_s", t.best_s},
                    {"median_s", t.median_s},
                    {"examples_per_s", ex_s},
                    {"speedup_vs_first", ex_s / base_ex_s},
                    {"max_rel_diff_vs_first", rel}});
  }
  return {{"label", label},
          {"device", model.info().device},
          {"num_layers", model.info().num_layers},
          {"num_heads", model.info().num_heads},
          {"hidden_size", model.info().hidden_size},
          {"examples", encs.size()},
          {"mean_tokens", MeanTokens(encs)},
          {"rule", "LEFT_RIEMANN"},
          {"steps", flags.steps},
          {"memory_budget_mib", flags.memory_budget_mib},
          {"repeats", flags.repeats},
          {"rows", rows}};
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"GPU check: engine CUDA path vs CPU path, and the speed-up of batching examples"};
  app.add_option("--model", flags.model, "SST-2 model directory")->capture_default_str();
  app.add_option("--data", flags.data, "SST-2 dev.tsv")->capture_default_str();
  app.add_option("--vocab", flags.vocab,
                 "vocab.txt of the random BERT-base model (default: "
                 "<model>/vocab.txt)");
  app.add_option("--examples", flags.examples, "(a) sentences compared cpu vs cuda")
      ->capture_default_str();
  app.add_option("--bench-examples", flags.bench_examples, "(b) sentences timed")
      ->capture_default_str();
  app.add_option("--batches", flags.batches, "(b) max_batch_examples values (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--bertbase-examples", flags.bertbase_examples, "(c) sentences timed")
      ->capture_default_str();
  app.add_option("--bertbase-batches", flags.bertbase_batches,
                 "(c) max_batch_examples values (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--steps", flags.steps, "LEFT_RIEMANN steps m")->capture_default_str();
  app.add_option("--precision", flags.precision,
                 "fp32 | bf16: the integrand of the timed sweeps (b) and (c) (bf16: tensor cores)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app.add_option("--repeats", flags.repeats, "timed calls per configuration (best reported)")
      ->capture_default_str();
  app.add_option("--memory-budget-mib", flags.memory_budget_mib, "engine memory budget")
      ->capture_default_str();
  app.add_option("--threads", flags.threads, "CPU intra-op threads (0 = all usable)")
      ->capture_default_str();
  app.add_flag("--skip-bertbase", flags.skip_bertbase, "skip (c)");
  app.add_flag("--cpu-timing", flags.cpu_timing,
               "without CUDA, run (b) and (c) on the CPU instead of skipping them");
  app.add_option("--json", flags.json_path, "write the figures as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  if (flags.vocab.empty()) flags.vocab = flags.model + "/vocab.txt";
  if (flags.batches.empty() || flags.bertbase_batches.empty()) Die("empty batch list");

  if (auto s = engine::ConfigureRuntime({flags.threads}); !s.ok()) Die(s.ToString());
  const bool cuda = CudaAvailable();
  const std::string gpu = cuda ? GpuName() : "";
  Line(absl::StrCat("gpu_check: torch ", TORCH_VERSION, ", CUDA available: ", cuda ? "yes" : "no",
                    cuda ? absl::StrCat(" (", torch::cuda::device_count(), " device(s))") : "",
                    gpu.empty() ? "" : absl::StrCat(", GPU: ", gpu)));
  Line(engine::RuntimeDescription());
  Json report = {{"torch_version", TORCH_VERSION}, {"cuda_available", cuda}, {"gpu", gpu}};

  const int need = std::max({flags.examples, flags.bench_examples, flags.bertbase_examples});
  auto dataset = OrDie(engine::ReadDataset(flags.data, need), "read " + flags.data);
  auto take = [&](int n) {
    if (static_cast<int>(dataset.examples.size()) < n) {
      Die(absl::StrCat(flags.data, ": has ", dataset.examples.size(), " examples, need ", n));
    }
    return std::vector<engine::Example>(dataset.examples.begin(), dataset.examples.begin() + n);
  };

  // (a) correctness ------------------------------------------------------------------------------
  auto cpu_model = OrDie(engine::Model::Load(flags.model), "load " + flags.model + " on cpu");
  const auto check_examples = take(flags.examples);
  const auto check_options = Options(flags.steps, 4, flags.memory_budget_mib, true);
  auto t0 = Clock::now();
  auto cpu_results = OrDie(engine::AttributeExamples(*cpu_model, check_examples, check_options),
                           "cpu attribution");
  const double cpu_s = SecondsSince(t0);
  const Gaps cpu_gaps = CompletenessGaps(cpu_results);
  Line(
      absl::StrFormat("[correctness] %s, %d sentences, LEFT_RIEMANN m=%d, all %d layers, "
                      "max_batch_examples 4",
                      flags.model, flags.examples, flags.steps, cpu_model->info().num_layers));
  Line(absl::StrFormat("  cpu : %.3f s; completeness gap mean %.3e, max %.3e", cpu_s, cpu_gaps.mean,
                       cpu_gaps.max));
  Json correctness = {{"model", flags.model},          {"examples", flags.examples},
                      {"steps", flags.steps},          {"cpu_seconds", cpu_s},
                      {"cpu_gap_mean", cpu_gaps.mean}, {"cpu_gap_max", cpu_gaps.max}};
  std::unique_ptr<engine::Model> cuda_model;
  if (!cuda) {
    Line(
        "  cuda: skipped (torch::cuda::is_available() is false: no CUDA device, or a CPU-only "
        "LibTorch)");
  } else {
    engine::LoadOptions lo;
    lo.device = "cuda";
    cuda_model = OrDie(engine::Model::Load(flags.model, lo), "load " + flags.model + " on cuda");
    OrDie(engine::AttributeExamples(*cuda_model, check_examples, check_options), "cuda warm-up");
    Synchronize(true);
    t0 = Clock::now();
    auto cuda_results = OrDie(engine::AttributeExamples(*cuda_model, check_examples, check_options),
                              "cuda attribution");
    Synchronize(true);
    const double cuda_s = SecondsSince(t0);
    const Gaps cuda_gaps = CompletenessGaps(cuda_results);
    const Agreement g = Compare(cpu_results, cuda_results);
    Line(absl::StrFormat("  cuda: %.3f s (after a warm-up); completeness gap mean %.3e, max %.3e",
                         cuda_s, cuda_gaps.mean, cuda_gaps.max));
    std::vector<std::string> per_layer;
    for (size_t li = 0; li < g.per_layer.size(); ++li) {
      per_layer.push_back(
          absl::StrFormat("layer %d %.2e", cpu_results[0].layers[li].layer, g.per_layer[li]));
    }
    Line(absl::StrCat("  max |cpu - cuda| / max |cpu| per layer (worst example): ",
                      absl::StrJoin(per_layer, ", ")));
    Line(
        absl::StrFormat("  worst over layers: %.3e; max |F_cpu - F_cuda| (F(A), F(0)): %.3e; "
                        "predictions agree %d/%d",
                        g.worst, g.max_target_diff, g.predictions_agree, flags.examples));
    correctness["cuda_seconds"] = cuda_s;
    correctness["cuda_gap_mean"] = cuda_gaps.mean;
    correctness["cuda_gap_max"] = cuda_gaps.max;
    correctness["max_rel_diff_per_layer"] = g.per_layer;
    correctness["max_rel_diff"] = g.worst;
    correctness["max_target_diff"] = g.max_target_diff;
    correctness["predictions_agree"] = g.predictions_agree;
  }
  report["correctness"] = correctness;

  // (b) batching on the SST-2 model, (c) on BERT-base dimensions -------------------------------
  const bool timing = cuda || flags.cpu_timing;
  if (!timing) {
    Line("[batching] skipped: no CUDA device (--cpu-timing runs it on the CPU)");
  } else {
    const engine::Model& model = cuda ? *cuda_model : *cpu_model;
    const auto encs = EncodeAll(model, take(flags.bench_examples));
    report["batching"] = BatchSweep("batching", model, encs, flags.batches, flags, cuda);
    if (flags.skip_bertbase) {
      Line("[bertbase] skipped (--skip-bertbase)");
    } else {
      engine::RandomModelSpec spec;  // BERT-base dimensions
      spec.vocab_path = flags.vocab;
      spec.device = cuda ? "cuda" : "cpu";
      auto bertbase = OrDie(engine::Model::CreateRandom(spec), "CreateRandom(BERT-base)");
      const auto bencs = EncodeAll(*bertbase, take(flags.bertbase_examples));
      report["bertbase"] =
          BatchSweep("bertbase", *bertbase, bencs, flags.bertbase_batches, flags, cuda);
    }
  }

  if (!flags.json_path.empty()) {
    std::ofstream f(flags.json_path);
    f << report.dump(2) << "\n";
    if (!f) Die("cannot write " + flags.json_path);
    Line("gpu_check: wrote " + flags.json_path);
  }
  return 0;
}
