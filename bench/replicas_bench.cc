// replicas_bench: scale-out on one PostgreSQL job store, measured with real attattr-server
// processes (the tests' ServerProcess and PostgresServer fixtures, a private PostgreSQL).
//  1. A --examples SST-2 dataset ATTRIBUTION job (--steps) (the train split's first reviews) on 1,
//  2 and 3
//     replicas (each --threads 1 --workers 1, so the machine's cores are shared fairly): wall time,
//     speed-up and efficiency against the 1-replica run in the same process, and how many shards
//     each replica ran.
//  2. Failover: a job's replica killed with SIGKILL, --failover-runs times; the time until
//     another replica runs it (median), with --lease-seconds / --heartbeat-seconds as given.
// A program, not a test: it never asserts a timing (bench/README.md).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "support/job_rpc.h"
#include "support/postgres_server.h"
#include "support/server_process.h"
#include "support/test_paths.h"

namespace {

namespace v1 = attattr::v1;
using attattr::testing::PostgresServer;
using attattr::testing::ServerProcess;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "replicas_bench: " << what << std::endl;
  std::exit(1);
}

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Setup {
  PostgresServer* pg = nullptr;
  std::string model_dir;
  std::string data_root;
  int lease_seconds = 0;
  int heartbeat_seconds = 0;
  int shard_examples = 0;
};

std::vector<std::unique_ptr<ServerProcess>> StartReplicas(const Setup& setup, int count,
                                                          const std::string& uri) {
  std::vector<std::unique_ptr<ServerProcess>> replicas;
  for (int i = 0; i < count; ++i) {
    auto replica = std::make_unique<ServerProcess>(
        std::map<std::string, std::string>{{"sst2", setup.model_dir}},
        std::vector<std::string>{"--store=" + uri, "--replica-name=r" + std::to_string(i),
                                 "--job-runners=1", "--workers=1", "--data-root=" + setup.data_root,
                                 "--shard-examples=" + std::to_string(setup.shard_examples),
                                 "--lease-seconds=" + std::to_string(setup.lease_seconds),
                                 "--heartbeat-seconds=" + std::to_string(setup.heartbeat_seconds)});
    if (!replica->ok()) Die("a replica did not start");
    replicas.push_back(std::move(replica));
  }
  return replicas;
}

v1::JobSpec DatasetJob(int examples, int steps) {
  v1::JobSpec spec;
  spec.set_model("sst2");
  *spec.mutable_attribution()->mutable_examples() =
      attattr::testing::DatasetSource("sst2-train.tsv", examples);
  spec.mutable_attribution()->mutable_options()->set_steps(steps);
  return spec;
}

std::string Sql(const Setup& setup, const std::string& database, const std::string& sql) {
  auto value = setup.pg->Query(database, sql);
  if (!value.ok()) Die(value.status().ToString());
  return *value;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"replicas_bench: one job's speed on 1-3 replicas of a PostgreSQL store, failover"};
  int examples = 2000;
  int steps = 4;
  int failover_runs = 5;
  std::string counts = "1,2,3";
  Setup setup;
  setup.lease_seconds = 10;
  setup.heartbeat_seconds = 2;
  setup.shard_examples = 64;
  app.add_option("--examples", examples, "Examples of the dataset job")->capture_default_str();
  app.add_option("--steps", steps, "Integration steps per example")->capture_default_str();
  app.add_option("--replicas", counts, "Replica counts to run the job on")->capture_default_str();
  app.add_option("--shard-examples", setup.shard_examples, "Examples per shard")
      ->capture_default_str();
  app.add_option("--failover-runs", failover_runs, "kill -9 repetitions (0 = none)")
      ->capture_default_str();
  app.add_option("--lease-seconds", setup.lease_seconds, "Replicas' job lease")
      ->capture_default_str();
  app.add_option("--heartbeat-seconds", setup.heartbeat_seconds, "Replicas' heartbeat")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  setup.model_dir = attattr::testing::Sst2ModelDir();
  if (!attattr::testing::PathExists(setup.model_dir)) Die("no model at " + setup.model_dir);
  setup.data_root = attattr::testing::MakeTempDir("attattr-replicas-bench");
  {
    std::ifstream in(attattr::testing::SharedDir() + "/data/sst2/train.tsv");
    std::ofstream out(setup.data_root + "/sst2-train.tsv");
    std::string line;
    for (int i = 0; i <= examples && std::getline(in, line); ++i) out << line << "\n";
  }
  auto pg = PostgresServer::Start();
  if (!pg.ok()) Die(pg.status().ToString());
  setup.pg = pg->get();

  std::cout << absl::StrFormat(
      "dataset job: %d SST-2 train reviews, %d steps, shards of %d; each replica --threads 1 "
      "--workers 1 "
      "--job-runners 1\n",
      examples, steps, setup.shard_examples);
  std::cout << absl::StrFormat("%-9s %10s %9s %11s  %s\n", "replicas", "wall s", "speed-up",
                               "efficiency", "shards per replica");
  double baseline = 0;
  for (const absl::string_view count_text : absl::StrSplit(counts, ',')) {
    int count = 0;
    if (!absl::SimpleAtoi(count_text, &count) || count < 1) Die("bad --replicas");
    const std::string uri = *(*pg)->CreateDatabase();
    const std::string database = uri.substr(uri.rfind('/') + 1);
    auto replicas = StartReplicas(setup, count, uri);
    auto stub = attattr::testing::Connect(replicas[0]->address());
    v1::Job job;
    const auto t0 = Clock::now();
    if (!attattr::testing::Submit(*stub, DatasetJob(examples, steps), &job).ok()) Die("SubmitJob");
    const v1::Job done = attattr::testing::WaitDone(*stub, job.name(), 3600);
    const double seconds = SecondsSince(t0);
    if (done.state() != v1::SUCCEEDED) Die("the job did not succeed: " + done.error_message());
    if (baseline == 0) baseline = seconds * count;  // the first entry is the reference
    std::string per_replica;
    for (int i = 0; i < count; ++i) {
      absl::StrAppend(&per_replica, i > 0 ? " " : "", "r", i, "=",
                      Sql(setup, database,
                          absl::StrCat("SELECT COUNT(*) FROM attattr_shards WHERE job_id = '",
                                       job.name(), "' AND lease_holder = 'r", i, "'")));
    }
    const double speedup = baseline / seconds;
    std::cout << absl::StrFormat("%-9d %10.1f %8.2fx %10.0f%%  %s\n", count, seconds, speedup,
                                 100 * speedup / count, per_replica);
  }

  if (failover_runs > 0) {
    const std::string uri = *(*pg)->CreateDatabase();
    const std::string database = uri.substr(uri.rfind('/') + 1);
    Setup small = setup;
    small.shard_examples = 0;  // one job on one replica
    std::vector<double> takeovers;
    for (int run = 0; run < failover_runs; ++run) {
      auto replicas = StartReplicas(small, 2, uri);
      auto stub = attattr::testing::Connect(replicas[0]->address());
      v1::Job job;
      if (!attattr::testing::Submit(*stub, DatasetJob(200, steps), &job).ok()) Die("SubmitJob");
      const std::string holder_sql =
          absl::StrCat("SELECT lease_holder FROM attattr_jobs WHERE id = '", job.name(),
                       "' AND state = 'RUNNING'");
      std::string holder;
      while ((holder = Sql(small, database, holder_sql)).empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      const int victim = holder == "r0" ? 0 : 1;
      const auto killed = Clock::now();
      replicas[victim]->Kill();
      std::string now;
      while ((now = Sql(small, database, holder_sql)).empty() || now == holder) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      takeovers.push_back(SecondsSince(killed));
      (void)attattr::testing::Cancel(*attattr::testing::Connect(replicas[1 - victim]->address()),
                                     job.name());
    }
    std::sort(takeovers.begin(), takeovers.end());
    std::cout << absl::StrFormat(
        "failover after kill -9 (lease %d s, heartbeat %d s), %d runs: median %.2f s, min %.2f "
        "s, max %.2f s\n",
        setup.lease_seconds, setup.heartbeat_seconds, failover_runs,
        takeovers[takeovers.size() / 2], takeovers.front(), takeovers.back());
  }
  return 0;
}
