// Explain RPC benchmark: an attattr Server started in-process on an ephemeral loopback port (models
// dir = a symlink to the shared sst2-bert-l4-h256, --workers 1, null log sink), called through the
// generated stub with SST-2 dev sentences, LEFT_RIEMANN m = 20, all layers, default top_k. Reports
// (1) throughput and p50/p95 latency at client concurrency 1, 4 and 16, first on a server without
// dynamic batching (--batch-max-examples 1), then on one with it, and their ratio,
// (2) server overhead per call = RPC latency − engine-only time (engine::AttributeEncodings on a
// Model loaded from the same directory with the same options, same process), (3) RSS after 100 and
// after --leak-calls calls (leak check); --precision bf16 runs it all with the bf16 integrand. A
// program, not a test: it never asserts timings. See bench/README.md.
#include <grpcpp/grpcpp.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/dataset.h"
#include "attattr/engine/model.h"
#include "attattr/engine/runtime.h"
#include "attattr/v1/attattr_service.grpc.pb.h"
#include "bench_support.h"
#include "nlohmann/json.hpp"
#include "server.h"
#include "spdlog/sinks/null_sink.h"
#include "spdlog/spdlog.h"

#ifndef ATTATTR_DEFAULT_SHARED_DIR
#define ATTATTR_DEFAULT_SHARED_DIR "../shared"
#endif

namespace {

using ::attattr::bench::Die;
using ::attattr::bench::OrDie;

namespace engine = attattr::engine;
namespace server = attattr::server;
namespace v1 = attattr::v1;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

constexpr char kModelName[] = "sst2";
constexpr int kSteps = 20;

struct Flags {
  std::string shared = ATTATTR_DEFAULT_SHARED_DIR;
  int examples = 64;         // SST-2 dev sentences; also the calls per concurrency level
  int threads = 2;           // LibTorch intra-op threads
  int leak_calls = 1000;     // calls of the leak check (RSS read after 100 and after this many)
  int leak_sentences = 16;   // the shortest dev sentences (word pieces) the leak check cycles over
  int overhead_repeats = 3;  // overhead check: runs per sentence and path; the minimum is kept
  int batch_max_examples = 8;         // the dynamic-batching server's --batch-max-examples
  int64_t batch_max_delay_us = 1000;  // ... and --batch-max-delay-us
  std::string device = "cpu";         // the models' device (server and engine-only reference)
  std::string precision = "fp32";     // the servers' --default-precision and the engine's
  std::string json_path;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Nearest-rank percentile (q in [0, 1]) of a copy of `v`; 0 when empty.
double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::max(0.0, std::ceil(q * v.size()) - 1));
  return v[std::min(rank, v.size() - 1)];
}

// Resident set size of this process (server included: it runs in-process), MiB.
double RssMiB() {
  std::ifstream f("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  f >> pages_total >> pages_resident;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) /
         (1024.0 * 1024.0);
}

v1::ExplainRequest Request(const std::string& text) {
  v1::ExplainRequest req;
  req.set_model(kModelName);
  req.mutable_example()->set_text(text);
  req.mutable_options()->set_rule(v1::LEFT_RIEMANN);
  req.mutable_options()->set_steps(kSteps);
  // result left unset: the server's default (top 10 connections per layer, no matrices).
  return req;
}

// One Explain call; returns its latency in ms (dies on an RPC error: a benchmark of failures is
// meaningless).
double CallOnce(v1::Attattr::Stub& stub, const v1::ExplainRequest& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  v1::ExplainResponse resp;
  const auto t0 = Clock::now();
  const grpc::Status s = stub.Explain(&ctx, req, &resp);
  const double ms = Ms(Clock::now() - t0);
  if (!s.ok()) Die("Explain: " + s.error_message());
  return ms;
}

struct LoadResult {
  int concurrency = 0;
  int calls = 0;
  double seconds = 0;
  std::vector<double> latencies_ms;
  double calls_per_s() const { return seconds > 0 ? calls / seconds : 0; }
};

// `total` calls spread over `concurrency` threads, each with its own stub over `channel`; call k
// (claimed from a shared counter) explains requests[k % size].
LoadResult RunLoad(const std::shared_ptr<grpc::Channel>& channel,
                   const std::vector<v1::ExplainRequest>& requests, int concurrency, int total) {
  std::atomic<int> next{0};
  std::vector<std::vector<double>> per_thread(concurrency);
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      auto stub = v1::Attattr::NewStub(channel);
      for (int k = next++; k < total; k = next++) {
        per_thread[t].push_back(CallOnce(*stub, requests[k % requests.size()]));
      }
    });
  }
  for (auto& th : threads) th.join();
  LoadResult r;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.concurrency = concurrency;
  r.calls = total;
  for (auto& v : per_thread) r.latencies_ms.insert(r.latencies_ms.end(), v.begin(), v.end());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{
      "Explain RPC benchmark: throughput by client concurrency, server overhead per call, "
      "RSS leak check (reports only; never asserts timings)"};
  app.add_option("--shared", flags.shared, "Shared data/models directory")->capture_default_str();
  app.add_option("--examples", flags.examples,
                 "SST-2 dev sentences; also the calls per concurrency level")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--threads", flags.threads, "LibTorch intra-op threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--leak-calls", flags.leak_calls,
                 "Leak-check calls (RSS read after 100 and after this many; 0 = skip)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--leak-sentences", flags.leak_sentences,
                 "Shortest dev sentences the leak check cycles over")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--overhead-repeats", flags.overhead_repeats,
                 "Overhead check: runs per sentence and path (the minimum is kept)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--batch-max-examples", flags.batch_max_examples,
                 "Dynamic-batching server: most examples per engine call")
      ->check(CLI::Range(2, 256))
      ->capture_default_str();
  app.add_option("--batch-max-delay-us", flags.batch_max_delay_us,
                 "Dynamic-batching server: longest wait of the oldest item, microseconds")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--device", flags.device, "Device of the models: cpu, or cuda / cuda:N")
      ->capture_default_str();
  app.add_option("--precision", flags.precision,
                 "fp32 | bf16: the integrand of the servers (--default-precision) and the engine")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app.add_option("--json", flags.json_path, "Write the figures as JSON to this file");
  CLI11_PARSE(app, argc, argv);

  engine::RuntimeOptions runtime;
  runtime.intra_op_threads = flags.threads;
  if (auto s = engine::ConfigureRuntime(runtime); !s.ok()) Die(s.ToString());

  const std::string model_dir = flags.shared + "/models/sst2-bert-l4-h256";
  const std::string data_path = flags.shared + "/data/sst2/dev.tsv";
  if (!fs::exists(model_dir)) Die("missing model " + model_dir);

  // The whole dev set (the leak check picks the shortest sentences); the first --examples are the
  // throughput/overhead sentences.
  auto dataset = engine::ReadDataset(data_path);
  if (!dataset.ok()) Die(dataset.status().ToString());
  if (dataset->examples.empty()) Die("no examples in " + data_path);
  const int n_examples = std::min<int>(flags.examples, dataset->examples.size());

  // Models dir holding a symlink to the shared model, as the server expects.
  std::string tmpl = (fs::temp_directory_path() / "explain-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp failed");
  const std::string models_dir = tmpl;
  fs::create_directory_symlink(fs::absolute(model_dir), models_dir + "/" + kModelName);

  server::ServerConfig config;
  config.models_dir = models_dir;
  config.store = models_dir + "/jobs.db";
  config.listen = "127.0.0.1:0";
  config.metrics_listen = "";
  config.workers = 1;
  config.intra_op_threads = flags.threads;  // each worker's (ConfigureRuntime set the process's)
  config.batch_max_examples = flags.batch_max_examples;
  config.batch_max_delay_us = flags.batch_max_delay_us;
  config.device = flags.device;
  config.default_precision = OrDie(engine::ParsePrecision(flags.precision), "--precision");
  auto log =
      std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  // A server with `batch` as --batch-max-examples (1 = no dynamic batching), and a channel to it.
  auto start_server = [&](int batch) {
    server::ServerConfig c = config;
    c.batch_max_examples = batch;
    auto started = server::Server::Start(c, log);
    if (!started.ok()) Die("Server::Start: " + started.status().ToString());
    return std::move(*started);
  };
  std::unique_ptr<server::Server> srv = start_server(1);
  auto connect = [](const server::Server& s) {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(s.port()),
                               grpc::InsecureChannelCredentials());
  };
  auto channel = connect(*srv);

  // Engine-only reference: the same directory, the options the server derives from the request.
  auto model = engine::Model::Load(model_dir, engine::LoadOptions{flags.device});
  if (!model.ok()) Die(model.status().ToString());
  engine::AttributionOptions options;
  options.rule = engine::QuadratureRule::kLeftRiemann;
  options.steps = kSteps;
  options.memory_budget_bytes = config.memory_budget_bytes;
  options.precision = config.default_precision;

  std::vector<v1::ExplainRequest> requests;
  std::vector<engine::Encoding> encodings;
  double mean_tokens = 0;
  for (int i = 0; i < n_examples; ++i) {
    const std::string& text = dataset->examples[i].text;
    requests.push_back(Request(text));
    auto enc = (*model)->tokenizer().Encode(text, std::nullopt, 1 << 20);
    if (!enc.ok()) Die(enc.status().ToString());
    mean_tokens += enc->size();
    encodings.push_back(std::move(*enc));
  }
  mean_tokens /= n_examples;

  std::printf(
      "explain_bench: model %s, %d SST-2 dev sentences (mean %.1f word pieces), "
      "LEFT_RIEMANN m=%d, all layers, top_k default (10)\n",
      model_dir.c_str(), n_examples, mean_tokens, kSteps);
  std::printf(
      "server: in-process, --device %s, --workers %d, --threads %d; dynamic batching: "
      "--batch-max-examples %d, --batch-max-delay-us %lld\nruntime:\n%s\n",
      flags.device.c_str(), config.workers, flags.threads, flags.batch_max_examples,
      static_cast<long long>(flags.batch_max_delay_us), engine::RuntimeDescription().c_str());
  std::printf("RSS after start-up (server + engine-only model): %.1f MiB\n\n", RssMiB());

  Json out;
  out["config"] = {{"model_dir", model_dir},
                   {"examples", n_examples},
                   {"mean_tokens", mean_tokens},
                   {"rule", "LEFT_RIEMANN"},
                   {"steps", kSteps},
                   {"top_k", 10},
                   {"device", flags.device},
                   {"workers", config.workers},
                   {"batch_max_examples", flags.batch_max_examples},
                   {"batch_max_delay_us", flags.batch_max_delay_us},
                   {"threads", flags.threads},
                   {"leak_calls", flags.leak_calls},
                   {"runtime", engine::RuntimeDescription()}};

  // Warm-up: a few calls through both paths so first-call costs (allocator, gRPC connection) are
  // not measured.
  {
    auto stub = v1::Attattr::NewStub(channel);
    for (int i = 0; i < std::min(4, n_examples); ++i) {
      CallOnce(*stub, requests[i]);
      if (!engine::AttributeEncodings(**model, {encodings[i]}, options).ok()) Die("engine warm-up");
    }
  }

  // ---- 1. Throughput by client concurrency, without and with dynamic batching ---------------
  // The same process, the same sentences: first a server with --batch-max-examples 1 (every call
  // its own engine call), then one with dynamic batching; the ratio at each concurrency compares
  // them.
  std::printf(
      "1. Throughput, %d calls per level: without dynamic batching (--batch-max-examples "
      "1), then with it (--batch-max-examples %d)\n",
      n_examples, flags.batch_max_examples);
  std::printf("%10s %12s %8s %10s %10s %10s %10s %8s\n", "batching", "concurrency", "calls",
              "seconds", "calls/s", "p50 ms", "p95 ms", "ratio");
  Json throughput = Json::array();
  std::map<int, double> baseline_rate;
  for (bool batching : {false, true}) {
    if (batching) {
      srv->Shutdown(std::chrono::milliseconds(0));
      srv->Wait();
      srv.reset();
      srv = start_server(flags.batch_max_examples);
      channel = connect(*srv);
      auto stub = v1::Attattr::NewStub(channel);
      for (int i = 0; i < std::min(4, n_examples); ++i) CallOnce(*stub, requests[i]);
    }
    for (int concurrency : {1, 4, 16}) {
      LoadResult r = RunLoad(channel, requests, concurrency, n_examples);
      const double p50 = Percentile(r.latencies_ms, 0.5), p95 = Percentile(r.latencies_ms, 0.95);
      if (!batching) baseline_rate[concurrency] = r.calls_per_s();
      const double ratio = r.calls_per_s() / baseline_rate[concurrency];
      std::printf("%10s %12d %8d %10.2f %10.2f %10.1f %10.1f %8.2f\n",
                  batching ? "dynamic" : "none", concurrency, r.calls, r.seconds, r.calls_per_s(),
                  p50, p95, ratio);
      std::fflush(stdout);
      throughput.push_back({{"concurrency", concurrency},
                            {"calls", r.calls},
                            {"seconds", r.seconds},
                            {"calls_per_s", r.calls_per_s()},
                            {"p50_ms", p50},
                            {"p95_ms", p95},
                            {"batching", batching},
                            {"ratio_to_no_batching", ratio}});
    }
  }
  out["throughput"] = throughput;
  out["throughput_note"] =
      "ratio = calls/s with dynamic batching / calls/s without, same process and sentences; "
      "sections 2 and 3 use the dynamic-batching server";

  // ---- 2. Server overhead per call --------------------------------------------------------
  // Per sentence, the minimum over --overhead-repeats of each path (the VM's noise is larger than
  // the overhead we look for). Passes alternate (engine pass, RPC pass, ...) rather than calls, so
  // neither path runs right after the other on the same sentence with the other's OpenMP pool hot.
  std::printf(
      "\n2. Server overhead per call (concurrency 1, RPC latency - engine-only time, "
      "same sentence, min of %d runs each)\n",
      flags.overhead_repeats);
  std::vector<double> rpc_ms(n_examples, 1e30), engine_ms(n_examples, 1e30), overhead_ms;
  // Both paths are driven from one non-main thread, as the server runs the engine on a worker
  // thread (on the main thread the engine-only time was ~30 ms slower in a trial run; cause
  // unknown).
  std::thread([&] {
    auto stub = v1::Attattr::NewStub(channel);
    for (int rep = 0; rep < flags.overhead_repeats; ++rep) {
      for (int i = 0; i < n_examples; ++i) {
        const auto t0 = Clock::now();
        auto r = engine::AttributeEncodings(**model, {encodings[i]}, options);
        engine_ms[i] = std::min(engine_ms[i], Ms(Clock::now() - t0));
        if (!r.ok()) Die("AttributeEncodings: " + r.status().ToString());
      }
      for (int i = 0; i < n_examples; ++i) {
        rpc_ms[i] = std::min(rpc_ms[i], CallOnce(*stub, requests[i]));
      }
    }
  }).join();
  for (int i = 0; i < n_examples; ++i) overhead_ms.push_back(rpc_ms[i] - engine_ms[i]);
  const double ov50 = Percentile(overhead_ms, 0.5), ov95 = Percentile(overhead_ms, 0.95);
  std::printf("   RPC latency   p50 %.1f ms, p95 %.1f ms\n", Percentile(rpc_ms, 0.5),
              Percentile(rpc_ms, 0.95));
  std::printf("   engine-only   p50 %.1f ms, p95 %.1f ms\n", Percentile(engine_ms, 0.5),
              Percentile(engine_ms, 0.95));
  std::printf("   overhead      median %.2f ms, p95 %.2f ms (target: median < 5 ms)\n", ov50, ov95);
  out["overhead"] = {{"calls", n_examples},
                     {"repeats", flags.overhead_repeats},
                     {"rpc_p50_ms", Percentile(rpc_ms, 0.5)},
                     {"rpc_p95_ms", Percentile(rpc_ms, 0.95)},
                     {"engine_p50_ms", Percentile(engine_ms, 0.5)},
                     {"engine_p95_ms", Percentile(engine_ms, 0.95)},
                     {"overhead_median_ms", ov50},
                     {"overhead_p95_ms", ov95},
                     {"target_median_ms", 5.0}};

  // ---- 3. Leak check ----------------------------------------------------------------------
  if (flags.leak_calls > 0) {
    // The shortest dev sentences (by word pieces), so the 1,000 calls stay quick.
    std::vector<std::pair<size_t, std::string>> by_length;
    for (const auto& ex : dataset->examples) {
      auto enc = (*model)->tokenizer().Encode(ex.text, std::nullopt, 1 << 20);
      if (enc.ok()) by_length.emplace_back(enc->size(), ex.text);
    }
    std::stable_sort(by_length.begin(), by_length.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    const size_t k = std::min<size_t>(flags.leak_sentences, by_length.size());
    std::vector<v1::ExplainRequest> short_requests;
    double short_tokens = 0;
    for (size_t i = 0; i < k; ++i) {
      short_requests.push_back(Request(by_length[i].second));
      short_tokens += by_length[i].first;
    }
    short_tokens /= k;
    const int first = std::min(100, flags.leak_calls);
    std::printf(
        "\n3. Leak check: %d calls at concurrency 4 over the %zu shortest dev sentences "
        "(mean %.1f word pieces)\n",
        flags.leak_calls, k, short_tokens);
    const auto t0 = Clock::now();
    RunLoad(channel, short_requests, 4, first);
    const double rss_first = RssMiB();
    RunLoad(channel, short_requests, 4, flags.leak_calls - first);
    const double rss_last = RssMiB();
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    malloc_trim(0);
    const double rss_trimmed = RssMiB();
    const double ratio = rss_first > 0 ? rss_last / rss_first : 0;
    std::printf(
        "   RSS after %d calls: %.1f MiB; after %d calls: %.1f MiB; ratio %.3f "
        "(target within 10%%); %.1f s; after malloc_trim: %.1f MiB\n",
        first, rss_first, flags.leak_calls, rss_last, ratio, seconds, rss_trimmed);
    out["leak"] = {{"calls", flags.leak_calls},
                   {"concurrency", 4},
                   {"sentences", k},
                   {"mean_tokens", short_tokens},
                   {"rss_after_first_mib", rss_first},
                   {"first_calls", first},
                   {"rss_after_all_mib", rss_last},
                   {"ratio", ratio},
                   {"rss_after_malloc_trim_mib", rss_trimmed},
                   {"seconds", seconds}};
  }

  srv->Shutdown(std::chrono::seconds(5));
  srv->Wait();
  srv.reset();
  std::error_code ec;
  fs::remove_all(models_dir, ec);

  if (!flags.json_path.empty()) {
    std::ofstream f(flags.json_path);
    if (!f) Die("cannot write " + flags.json_path);
    f << out.dump(2) << "\n";
    std::printf("\nJSON: %s\n", flags.json_path.c_str());
  }
  return 0;
}
