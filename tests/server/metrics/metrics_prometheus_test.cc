// End-to-end proof of the exposition format: `promtool check metrics` on a registry with one metric of
// each type plus the process collector, then a real Prometheus server (child process, loopback,
// ephemeral ports) scraping MetricsHttpServer until its query API returns the counter we set.
// Skips when the Debian `prometheus` package (prometheus, promtool) is not installed. Single-threaded
// test body; MetricsHttpServer serves the scrapes on its own threads.
#include <fcntl.h>
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

#include "gtest/gtest.h"
#include "http_get.h"
#include "server/metrics/metrics.h"
#include "server/metrics/metrics_http.h"
#include "server/metrics/process_collector.h"
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

// A loopback port free right now (the kernel may hand it out again, but not for a while).
int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(addr.sin_port);
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

// One metric of each type, named the way promtool's linter wants (base units, _total counters).
struct DemoMetrics {
  explicit DemoMetrics(Registry& registry)
      : jobs(BuildCounter()
                 .Name("attattr_e2e_jobs_total")
                 .Help("Jobs finished, by kind and final state.")
                 .Labels({{"instance_role", "test"}})
                 .Register(registry)),
        depth(BuildGauge().Name("attattr_e2e_queue_depth").Help("Jobs waiting.").Register(registry)),
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
    GTEST_SKIP() << "promtool not found on PATH: install the Debian package `prometheus` "
                    "(scripts/packages.txt) to run this test";
  }
  Registry registry;
  DemoMetrics demo(registry);
  absl::StatusOr<std::unique_ptr<ProcessCollector>> process = ProcessCollector::Register(&registry);
  ASSERT_TRUE(process.ok()) << process.status();
  const std::string text = SerializeText(registry.Collect());
  ASSERT_NE(text.find("process_resident_memory_bytes "), std::string::npos);

  const std::string dir = ::attattr::testing::MakeTempDir("metrics_promtool");
  const std::string input = dir + "/metrics.txt";
  const std::string log = dir + "/promtool.log";
  std::ofstream(input) << text;
  // promtool reads the exposition on stdin; exit 0 means it parsed and passed the linter.
  const std::string command =
      "'" + promtool + "' check metrics < '" + input + "' > '" + log + "' 2>&1";
  const int status = std::system(command.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "promtool check metrics failed:\n"
      << ReadAll(log) << "\n--- input ---\n"
      << text;
  std::filesystem::remove_all(dir);
}

TEST(PrometheusTest, RealPrometheusScrapesTheServer) {
  const std::string prometheus = FindOnPath("prometheus");
  if (prometheus.empty()) {
    GTEST_SKIP() << "prometheus not found on PATH: install the Debian package `prometheus` "
                    "(scripts/packages.txt) to run this test";
  }
  Registry registry;
  DemoMetrics demo(registry);
  absl::StatusOr<std::unique_ptr<ProcessCollector>> process = ProcessCollector::Register(&registry);
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(server.ok()) << server.status();

  const int prometheus_port = FreeLoopbackPort();
  ASSERT_GT(prometheus_port, 0);
  const std::string dir = ::attattr::testing::MakeTempDir("metrics_prometheus");
  const std::string config = dir + "/prometheus.yml";
  std::ofstream(config) << "global:\n"
                           "  scrape_interval: 1s\n"
                           "  evaluation_interval: 1s\n"
                           "scrape_configs:\n"
                           "  - job_name: attattr_e2e\n"
                           "    scrape_interval: 1s\n"
                           "    scrape_timeout: 1s\n"
                           "    static_configs:\n"
                           "      - targets: ['127.0.0.1:"
                        << (*server)->port() << "']\n";
  const std::string log = dir + "/prometheus.log";
  ChildGuard child(Spawn({prometheus, "--config.file=" + config,
                          "--storage.tsdb.path=" + dir + "/data",
                          "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port),
                          "--log.level=warn"},
                         "/dev/null", log));

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
                     << answer.status << "): " << answer.body << "\nlog:\n" << ReadAll(log);
  EXPECT_NE(answer.body.find("\"job\":\"attattr_e2e\""), std::string::npos) << answer.body;
  EXPECT_NE(answer.body.find("\"instance_role\":\"test\""), std::string::npos) << answer.body;

  // The same scrape carried the histogram and the escaped label value.
  HttpResult count = HttpGet(prometheus_port,
                             "/api/v1/query?query=attattr_e2e_job_duration_seconds_count");
  EXPECT_NE(count.body.find(",\"4\"]"), std::string::npos) << count.body;
  HttpResult failed = HttpGet(prometheus_port,
                              "/api/v1/query?query=attattr_e2e_jobs_total%7Bkind%3D%22trigger_"
                              "search%22%7D");
  EXPECT_NE(failed.body.find("\"state\":\"failed \\\"oom\\\"\\n\\\\\""), std::string::npos)
      << failed.body;
  HttpResult up = HttpGet(prometheus_port, "/api/v1/query?query=up");
  EXPECT_NE(up.body.find(",\"1\"]"), std::string::npos) << up.body;

  child.Stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace attattr::metrics
