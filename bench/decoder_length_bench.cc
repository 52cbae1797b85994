// What a decoder's attribution costs against prompt length (issue "Decoder LLMs", bench/README.md
// "Decoders by prompt length"): seconds per example for one prompt of each length (64 … 1,024
// tokens by default) with every layer attributed, the growth per doubling, and the fraction of the
// machine's matmul peak (a 1024³ matmul in the integrand's precision, timed in the same process)
// the run reaches, counting
// the model FLOPs of the fast path: per layer l, m α-points through layer l's output projection and
// feed-forward and every layer above, forward and backward (≈ 3× forward). The checkpoint is a
// random decoder of realistic shape made by bench/make_family_models.py; speed does not depend on
// the weights' values. --precision and --weights pick the integrand's arithmetic and the weights'
// storage (README "Precision"); --device cuda runs it on a GPU (the peak is then an 8192³ matmul,
// and every timing ends with a device synchronisation; scripts/gpu_check.sh runs it there on a
// ~1 B model made by bench/make_random_decoder.py). The process's RSS is printed at the end.
// Reports, never asserts.
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/dataset.h"
#include "attattr/engine/model.h"
#include "attattr/engine/runtime.h"
#include "bench_support.h"

#ifndef ATTATTR_DEFAULT_SHARED_DIR
#define ATTATTR_DEFAULT_SHARED_DIR "../shared"
#endif

namespace attattr::bench {
namespace {

struct Flags {
  std::string model;  // a decoder checkpoint directory
  std::string shared = ATTATTR_DEFAULT_SHARED_DIR;
  std::vector<int> lengths = {64, 128, 256, 512, 1024};
  int steps = 8;
  int repeats = 2;
  int threads = 0;
  std::string precision = "fp32";  // the integrand's
  std::string weights = "fp32";    // how the model is stored (engine::LoadOptions::weights)
  std::string device = "cpu";      // engine::LoadOptions::device
  std::string data;                // the prompts' sentences (default: SST-2 dev under --shared)
};

// Forward FLOPs of one layer at n tokens (multiply-adds × 2): the query/output projections over
// H·dh, key/value over KV·dh, the three SwiGLU matrices (two for GPT-2's MLP, counted as three:
// an upper bound within 1.5× on that term), and the two n×n attention products per head.
double LayerFlops(const engine::ModelInfo& info, double n) {
  const double d = info.hidden_size, heads = info.num_heads, kv = info.num_key_value_heads;
  const double dh = d / heads, inter = info.intermediate_size;
  const double projections = 2 * d * heads * dh + 2 * d * kv * dh;
  return 2 * n * (projections + 3 * d * inter) + 2 * 2 * heads * n * n * dh;
}

// Model FLOPs of attributing every layer with m points: for layer l the m points run layers l..L−1
// forward and backward.
double AttributionFlops(const engine::ModelInfo& info, double n, int m) {
  double layers = 0;
  for (int l = 0; l < info.num_layers; ++l) layers += info.num_layers - l;
  return 3.0 * m * layers * LayerFlops(info, n);
}

// A /proc/self/status entry in MiB ("VmRSS:" now, "VmHWM:" the peak), 0 where unreadable.
double StatusMib(const std::string& key) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size())) / 1024.0;  // kB
  }
  return 0;
}

// Waits for the device's queued work (CUDA runs asynchronously); nothing on the CPU.
void Synchronize(const std::string& device) {
  if (device != "cpu") torch::cuda::synchronize();
}

// The matmul rate in `dtype` (the integrand's: bf16 products run on AMX / tensor cores) on
// `device`: a 1024³ product on the CPU, 8192³ on a GPU (a smaller one leaves it idle).
double MatmulPeakGflops(torch::ScalarType dtype, const std::string& device, int64_t* size) {
  *size = device == "cpu" ? 1024 : 8192;
  torch::manual_seed(0);
  const auto opts = torch::TensorOptions().dtype(dtype).device(device);
  auto a = torch::randn({*size, *size}, opts), b = torch::randn({*size, *size}, opts);
  const double flops = 2.0 * *size * *size * *size;
  return flops / BestSeconds([&] {
           torch::matmul(a, b);
           Synchronize(device);
         }) /
         1e9;
}

}  // namespace
}  // namespace attattr::bench

int main(int argc, char** argv) {
  using namespace attattr::bench;
  namespace engine = attattr::engine;
  Flags flags;
  CLI::App app{"A decoder's attribution cost per example against prompt length"};
  app.add_option("--model", flags.model, "A decoder checkpoint (bench/make_family_models.py)")
      ->required();
  app.add_option("--shared", flags.shared, "The shared data directory (SST-2 dev sentences)");
  app.add_option("--lengths", flags.lengths, "Prompt lengths in tokens")->delimiter(',');
  app.add_option("--steps", flags.steps, "Gauss-Legendre points m");
  app.add_option("--repeats", flags.repeats, "Runs per length (the fastest counts)");
  app.add_option("--threads", flags.threads, "Intra-op threads (0 = all cores)");
  app.add_option("--precision", flags.precision, "fp32 | bf16: the integrand's arithmetic");
  app.add_option("--weights", flags.weights, "fp32 | bf16: how the model's weights are stored");
  app.add_option("--device", flags.device, "cpu | cuda | cuda:N: where the model runs");
  app.add_option(
      "--data", flags.data,
      "A GLUE TSV whose sentences make the prompts (default: <shared>/data/sst2/dev.tsv)");
  CLI11_PARSE(app, argc, argv);
  if (auto s = engine::ConfigureRuntime({flags.threads}); !s.ok()) Die(s.ToString());
  const engine::Precision precision = OrDie(engine::ParsePrecision(flags.precision), "--precision");
  engine::LoadOptions load;
  load.weights = OrDie(engine::ParsePrecision(flags.weights), "--weights");
  load.device = flags.device;
  auto model = OrDie(engine::Model::Load(flags.model, load), "loading " + flags.model);
  const auto& info = model->info();
  if (!info.decoder) Die(flags.model + ": not a decoder");
  const std::string path = flags.data.empty() ? flags.shared + "/data/sst2/dev.tsv" : flags.data;
  auto dev = OrDie(engine::ReadDataset(path, 1), "reading " + path);
  int64_t peak_size = 0;
  const double peak =
      MatmulPeakGflops(precision == engine::Precision::kBf16 ? torch::kBFloat16 : torch::kFloat32,
                       flags.device, &peak_size);
  std::cout << engine::RuntimeDescription() << "\n"
            << absl::StrFormat(
                   "%s %s: %d layers, hidden %d, %d heads (%d key/value), feed-forward %d, %.1fM "
                   "parameters; weights %s (%.0f MiB), integrand %s\n",
                   info.family, info.architecture, info.num_layers, info.hidden_size,
                   info.num_heads, info.num_key_value_heads, info.intermediate_size,
                   info.parameter_count / 1e6, flags.weights, info.weight_bytes / 1048576.0,
                   flags.precision)
            << absl::StrFormat(
                   "one prompt per length, all layers, Gauss-Legendre m = %d, best of %d runs; "
                   "%s matmul peak %.1f GFLOP/s (%d^3 on %s, this process)\n",
                   flags.steps, flags.repeats, flags.precision, peak, peak_size, flags.device)
            << absl::StrFormat("%8s %12s %12s %12s %10s\n", "tokens", "seconds", "x previous",
                               "GFLOP/s", "of peak");
  engine::AttributionOptions options;
  options.rule = engine::QuadratureRule::kGaussLegendre;
  options.steps = flags.steps;
  options.keep_attention = false;
  options.precision = precision;
  double previous = 0;
  for (int n : flags.lengths) {
    if (n > info.max_length) {
      std::cout << absl::StrFormat("%8d  (beyond the model's %d positions)\n", n, info.max_length);
      continue;
    }
    const auto encodings = EncodeExactly(*model, dev.examples, n);
    double best = 0;
    for (int r = 0; r < flags.repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      OrDie(engine::AttributeEncodings(*model, encodings, options), "attributing");
      Synchronize(flags.device);
      const double s = SecondsSince(t0);
      if (r == 0 || s < best) best = s;
    }
    const double gflops = AttributionFlops(info, n, flags.steps) / best / 1e9;
    std::cout << absl::StrFormat("%8d %12.3f %12s %12.1f %9.0f%%\n", n, best,
                                 previous > 0 ? absl::StrFormat("%.2fx", best / previous) : "",
                                 gflops, 100 * gflops / peak)
              << std::flush;
    previous = best;
  }
  std::cout << absl::StrFormat("RSS %.0f MiB after the runs (peak %.0f MiB, loading included)\n",
                               StatusMib("VmRSS:"), StatusMib("VmHWM:"));
  return 0;
}
