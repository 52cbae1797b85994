// End-to-end proof of the exposition format: `promtool check metrics` on a registry with one metric
// of each type plus the process collector, then a real Prometheus server (child process, loopback,
// ephemeral ports) scraping MetricsHttpServer until its query API returns the counter we set; and
// the same against the real attattr service after it served an Explain call and a job.
// Skips when the Debian `prometheus` package (prometheus, promtool) is not installed.
// Single-threaded test body; MetricsHttpServer serves the scrapes on its own threads.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "attattr/v1/attattr_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "metrics/metrics.h"
#include "metrics/metrics_http.h"
#include "metrics/process_collector.h"
#include "server.h"
#include "spdlog/sinks/null_sink.h"
#include "support/http_get.h"
#include "support/test_paths.h"

namespace attattr::metrics {
namespace {

using ::attattr::testing::HttpGet;
using ::attattr::testing::HttpResult;

// The executable `name` on PATH, or "".
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/" + name;
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Runs argv with stdin from `stdin_path`, stdout+stderr to `log_path`; returns the child's pid.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& stdin_path,
            const std::string& log_path) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int in = open(stdin_path.c_str(), O_RDONLY);
  const int out = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || out < 0) _exit(127);
  dup2(in, 0);
  dup2(out, 1);
  dup2(out, 2);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

// Kills (SIGTERM, then SIGKILL after 10 s) and reaps a child when it goes out of scope.
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ~ChildGuard() { Stop(); }
  bool Exited() {
    int status = 0;
    if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) pid_ = 0;
    return pid_ <= 0;
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Exited()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

 private:
  pid_t pid_;
};

// Runs `promtool check metrics` on `text`; "" when it passes, else promtool's output.
std::string PromtoolProblems(const std::string& promtool, const std::string& text) {
  const std::string dir = ::attattr::testing::MakeTempDir("metrics_promtool");
  const std::string input = dir + "/metrics.txt";
  const std::string log = dir + "/promtool.log";
  std::ofstream(input) << text;
  // promtool reads the exposition on stdin; exit 0 means it parsed and passed the linter.
  const std::string command =
      "'" + promtool + "' check metrics < '" + input + "' > '" + log + "' 2>&1";
  const int status = std::system(command.c_str());
  std::string problems;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    problems = "promtool check metrics failed:\n" + ReadAll(log);
  }
  std::filesystem::remove_all(dir);
  return problems;
}

// A real Prometheus (child process) scraping 127.0.0.1:`target_port` every second as job
// `job_name`, with its own temporary directory; stopped and cleaned up on destruction.
struct RealPrometheus {
  RealPrometheus(const std::string& binary, const std::string& job_name, int target_port) {
    port = ::attattr::testing::FreeLoopbackPort();
    if (port <= 0) return;
    dir = ::attattr::testing::MakeTempDir("metrics_prometheus");
    const std::string config = dir + "/prometheus.yml";
    std::ofstream(config) << "global:\n"
                             "  scrape_interval: 1s\n"
                             "  evaluation_interval: 1s\n"
                             "scrape_configs:\n"
                             "  - job_name: "
                          << job_name
                          << "\n"
                             "    scrape_interval: 1s\n"
                             "    scrape_timeout: 1s\n"
                             "    static_configs:\n"
                             "      - targets: ['127.0.0.1:"
                          << target_port << "']\n";
    log = dir + "/prometheus.log";
    child = std::make_unique<ChildGuard>(
        Spawn({binary, "--config.file=" + config, "--storage.tsdb.path=" + dir + "/data",
               "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"},
              "/dev/null", log));
  }
  ~RealPrometheus() {
    child.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
  // Polls the query API (≤ 30 s) until the answer contains `needle`; returns the last answer.
  HttpResult QueryUntil(const std::string& query, const std::string& needle) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    HttpResult answer;
    while (std::chrono::steady_clock::now() < deadline && !child->Exited()) {
      answer = HttpGet(port, "/api/v1/query?query=" + query);
      if (answer.ok && answer.status == 200 && answer.body.find(needle) != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return answer;
  }
  int port = 0;
  std::string dir, log;
  std::unique_ptr<ChildGuard> child;
};

// One metric of each type, named the way promtool's linter wants (base units, _total counters).
struct DemoMetrics {
  explicit DemoMetrics(Registry& registry)
      : jobs(BuildCounter()
                 .Name("attattr_e2e_jobs_total")
                 .Help("Jobs finished, by kind and final state.")
                 .Labels({{"instance_role", "test"}})
                 .Register(registry)),
        depth(
            BuildGauge().Name("attattr_e2e_queue_depth").Help("Jobs waiting.").Register(registry)),
        latency(BuildHistogram()
                    .Name("attattr_e2e_job_duration_seconds")
                    .Help("Job duration \"wall\" time.\nIncludes queueing \\ waiting.")
                    .Register(registry)) {
    jobs.Add({{"kind", "attribution"}, {"state", "succeeded"}}).Increment(42);
    jobs.Add({{"kind", "trigger_search"}, {"state", "failed \"oom\"\n\\"}}).Increment();
    depth.Add({}).Set(3);
    Histogram& h = latency.Add({{"kind", "attribution"}}, ExponentialBuckets(0.01, 10, 4));
    for (double v : {0.005, 0.5, 2.0, 30.0}) h.Observe(v);
  }
  Family<Counter>& jobs;
  Family<Gauge>& depth;
  Family<Histogram>& latency;
};

TEST(PrometheusTest, PromtoolAcceptsTheExposition) {
  const std::string promtool = FindOnPath("promtool");
  if (promtool.empty()) {
    ATTATTR_MISSING_DEPENDENCY(
        "promtool not found on PATH: install the Debian package "
        "`prometheus` (scripts/packages.txt) to run this test");
  }
  Registry registry;
  DemoMetrics demo(registry);
  absl::StatusOr<std::unique_ptr<ProcessCollector>> process = ProcessCollector::Register(&registry);
  ASSERT_TRUE(process.ok()) << process.status();
  const std::string text = SerializeText(registry.Collect());
  ASSERT_NE(text.find("process_resident_memory_bytes "), std::string::npos);

  EXPECT_EQ(PromtoolProblems(promtool, text), "") << "--- input ---\n" << text;
}

TEST(PrometheusTest, RealPrometheusScrapesTheServer) {
  const std::string prometheus = FindOnPath("prometheus");
  if (prometheus.empty()) {
    ATTATTR_MISSING_DEPENDENCY(
        "prometheus not found on PATH: install the Debian package "
        "`prometheus` (scripts/packages.txt) to run this test");
  }
  Registry registry;
  DemoMetrics demo(registry);
  absl::StatusOr<std::unique_ptr<ProcessCollector>> process = ProcessCollector::Register(&registry);
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(server.ok()) << server.status();

  RealPrometheus prom(prometheus, "attattr_e2e", (*server)->port());
  ASSERT_GT(prom.port, 0);
  const int prometheus_port = prom.port;
  const std::string& log = prom.log;
  ChildGuard& child = *prom.child;

  // Wait (≤ 30 s) until Prometheus has scraped us and answers the counter's value.
  const std::string query =
      "/api/v1/query?query=attattr_e2e_jobs_total%7Bkind%3D%22attribution%22%7D";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  HttpResult answer;
  bool found = false;
  while (!found && std::chrono::steady_clock::now() < deadline) {
    ASSERT_FALSE(child.Exited()) << "prometheus exited early:\n" << ReadAll(log);
    answer = HttpGet(prometheus_port, query);
    found = answer.ok && answer.status == 200 && answer.body.find(",\"42\"]") != std::string::npos;
    if (!found) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(found) << "no value 42 from Prometheus within 30 s; last answer (status "
                     << answer.status << "): " << answer.body << "\nlog:\n"
                     << ReadAll(log);
  EXPECT_NE(answer.body.find("\"job\":\"attattr_e2e\""), std::string::npos) << answer.body;
  EXPECT_NE(answer.body.find("\"instance_role\":\"test\""), std::string::npos) << answer.body;

  // The same scrape carried the histogram and the escaped label value.
  HttpResult count =
      HttpGet(prometheus_port, "/api/v1/query?query=attattr_e2e_job_duration_seconds_count");
  EXPECT_NE(count.body.find(",\"4\"]"), std::string::npos) << count.body;
  HttpResult failed = HttpGet(prometheus_port,
                              "/api/v1/query?query=attattr_e2e_jobs_total%7Bkind%3D%22trigger_"
                              "search%22%7D");
  EXPECT_NE(failed.body.find("\"state\":\"failed \\\"oom\\\"\\n\\\\\""), std::string::npos)
      << failed.body;
  HttpResult up = HttpGet(prometheus_port, "/api/v1/query?query=up");
  EXPECT_NE(up.body.find(",\"1\"]"), std::string::npos) << up.body;

  child.Stop();
}

TEST(PrometheusTest, RealPrometheusScrapesTheAttattrService) {
  const std::string prometheus = FindOnPath("prometheus");
  const std::string promtool = FindOnPath("promtool");
  if (prometheus.empty() || promtool.empty()) {
    ATTATTR_MISSING_DEPENDENCY(
        "prometheus/promtool not found on PATH: install the Debian "
        "package `prometheus` (scripts/packages.txt) to run this test");
  }
  ATTATTR_SKIP_IF_MISSING(::attattr::testing::Sst2ModelDir());
  namespace v1 = ::attattr::v1;
  const std::string models = ::attattr::testing::MakeTempDir("attattr-models");
  std::filesystem::create_directory_symlink(::attattr::testing::Sst2ModelDir(), models + "/sst2");
  server::ServerConfig config;
  config.models_dir = models;
  config.store = models + "/jobs.db";
  config.listen = "127.0.0.1:0";
  config.metrics_listen = "127.0.0.1:0";
  auto started = server::Server::Start(
      config,
      std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>()));
  ASSERT_TRUE(started.ok()) << started.status();
  auto& srv = **started;
  auto stub = v1::Attattr::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(srv.port()),
                                                       grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    v1::ExplainRequest req;
    req.set_model("sst2");
    req.mutable_example()->set_text("a fine film .");
    v1::ExplainResponse resp;
    ASSERT_TRUE(stub->Explain(&ctx, req, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::SubmitJobRequest req;
    req.mutable_spec()->set_model("sst2");
    auto* a = req.mutable_spec()->mutable_attribution();
    a->mutable_examples()->mutable_inline_()->add_examples()->set_text("a dull film .");
    a->mutable_options()->set_steps(2);
    v1::Job job;
    ASSERT_TRUE(stub->SubmitJob(&ctx, req, &job).ok());
    grpc::ClientContext wait_ctx;
    v1::WaitJobRequest wait;
    wait.set_name(job.name());
    wait.set_timeout_ms(60000);
    ASSERT_TRUE(stub->WaitJob(&wait_ctx, wait, &job).ok());
    ASSERT_EQ(job.state(), v1::SUCCEEDED);
  }
  HttpResult exposition = HttpGet(srv.metrics_port(), "/metrics");
  ASSERT_EQ(exposition.status, 200);
  EXPECT_EQ(PromtoolProblems(promtool, exposition.body), "") << exposition.body;

  RealPrometheus prom(prometheus, "attattr", srv.metrics_port());
  ASSERT_GT(prom.port, 0);
  HttpResult jobs = prom.QueryUntil(
      "attattr_jobs_total%7Bkind%3D%22ATTRIBUTION%22%2Cstate%3D%22SUCCEEDED%22%7D", ",\"1\"]");
  EXPECT_NE(jobs.body.find(",\"1\"]"), std::string::npos) << jobs.body << "\nlog:\n"
                                                          << ReadAll(prom.log);
  HttpResult explains = prom.QueryUntil(
      "attattr_rpc_requests_total%7Bmethod%3D%22Explain%22%2Ccode%3D%22OK%22%7D", ",\"1\"]");
  EXPECT_NE(explains.body.find(",\"1\"]"), std::string::npos) << explains.body;
  HttpResult batches = prom.QueryUntil("attattr_batch_size_count", "\"job\":\"attattr\"");
  EXPECT_NE(batches.body.find("\"job\":\"attattr\""), std::string::npos) << batches.body;
  // /healthz agrees with grpc.health.v1: serving now, 503 once the server drains.
  EXPECT_EQ(HttpGet(srv.metrics_port(), "/healthz").status, 200);
  srv.Shutdown(std::chrono::milliseconds(0));
  HttpResult draining = HttpGet(srv.metrics_port(), "/healthz");
  EXPECT_EQ(draining.status, 503);
  EXPECT_EQ(draining.body, "draining: shutting down\n");
  srv.Wait();
  started->reset();
  std::filesystem::remove_all(models);
}

}  // namespace
}  // namespace attattr::metrics
