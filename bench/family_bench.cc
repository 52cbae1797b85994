// What each model family's attention costs: attribution throughput of checkpoints of every family
// at equal size (same layers, hidden size, heads, feed-forward width), on the same number of
// inputs of the same token length, as a ratio to BERT measured in the same process
// (bench/README.md "Families"). The checkpoints are random, made by bench/make_family_models.py
// with Hugging Face transformers; speed does not depend on the weights' values (their completeness
// gaps mean nothing, so none are printed). Reports, never asserts.
#include <chrono>
#include <cstdio>
#include <filesystem>
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
  std::string models;  // a directory of <family>/ checkpoints
  std::string shared = ATTATTR_DEFAULT_SHARED_DIR;
  std::vector<std::string> families = {"bert",       "distilbert",  "electra",
                                       "roberta",    "xlm-roberta", "deberta-v2",
                                       "modernbert", "llama",       "gpt2"};
  int examples = 16;
  int length = 24;
  int steps = 20;
  int repeats = 5;
  int threads = 0;
};

struct Measured {
  std::string family;
  double best_seconds = 0;
};

Measured Measure(const Flags& flags, const std::string& family,
                 const std::vector<engine::Example>& sentences) {
  const std::string dir = flags.models + "/" + family;
  auto model = OrDie(engine::Model::Load(dir), "loading " + dir);
  const auto encodings = EncodeExactly(*model, sentences, flags.length);
  engine::AttributionOptions options;
  options.rule = engine::QuadratureRule::kGaussLegendre;
  options.steps = flags.steps;
  options.keep_attention = false;
  OrDie(engine::AttributeEncodings(*model, {encodings.front()}, options), "warm-up");
  Measured m;
  m.family = family;
  for (int r = 0; r < flags.repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    OrDie(engine::AttributeEncodings(*model, encodings, options), family);
    const double s = SecondsSince(t0);
    if (r == 0 || s < m.best_seconds) m.best_seconds = s;
  }
  return m;
}

}  // namespace
}  // namespace attattr::bench

int main(int argc, char** argv) {
  using namespace attattr::bench;
  Flags flags;
  CLI::App app{"Attribution throughput per model family at equal size, as a ratio to BERT"};
  app.add_option("--models", flags.models,
                 "Directory of <family>/ checkpoints (bench/make_family_models.py)")
      ->required();
  app.add_option("--shared", flags.shared, "The shared data directory (SST-2 dev sentences)");
  app.add_option("--families", flags.families, "Families to measure (the first is the baseline)")
      ->delimiter(',');
  app.add_option("--examples", flags.examples, "Inputs per run");
  app.add_option("--length", flags.length, "Tokens per input (special tokens included)");
  app.add_option("--steps", flags.steps, "Gauss-Legendre points m");
  app.add_option("--repeats", flags.repeats, "Runs per family (the fastest counts)");
  app.add_option("--threads", flags.threads, "Intra-op threads (0 = all cores)");
  CLI11_PARSE(app, argc, argv);
  if (auto s = attattr::engine::ConfigureRuntime({flags.threads}); !s.ok()) Die(s.ToString());
  const std::string path = flags.shared + "/data/sst2/dev.tsv";
  auto dev = OrDie(attattr::engine::ReadDataset(path, flags.examples), "reading " + path);
  std::cout << attattr::engine::RuntimeDescription() << "\n"
            << absl::StrFormat(
                   "%d inputs of %d tokens, all layers, Gauss-Legendre m = %d, best of %d runs\n",
                   flags.examples, flags.length, flags.steps, flags.repeats)
            << absl::StrFormat("%-12s %10s %10s %10s\n", "family", "seconds", "inputs/s",
                               "vs first");
  double baseline = 0;
  for (const auto& family : flags.families) {
    const Measured m = Measure(flags, family, dev.examples);
    if (baseline == 0) baseline = m.best_seconds;
    std::cout << absl::StrFormat("%-12s %10.3f %10.2f %9.2fx\n", m.family, m.best_seconds,
                                 flags.examples / m.best_seconds, baseline / m.best_seconds)
              << std::flush;
  }
  return 0;
}
