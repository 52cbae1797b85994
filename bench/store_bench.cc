// store_bench: what a job costs in the job store, PostgreSQL against the embedded SQLite baseline
// measured in the same process. One job's store life is what the scheduler and a client do with
// it: Create, Claim (lease), two progress updates, PutResult (--result-kib), Finish, Get and
// ReadResult; each job is timed whole. Prints the median and p99 per job for each store and their
// ratio, then the same for one shard of a split job (ClaimShard + CompleteShard; PostgreSQL only).
// PostgreSQL is the server at --postgres, or one started here from Debian's binaries (the tests'
// fixture). A program, not a test: it never asserts a timing (bench/README.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "bench_support.h"
#include "store/postgres_job_store.h"
#include "store/shard_store.h"
#include "store/sqlite_job_store.h"
#include "support/postgres_server.h"
#include "support/test_paths.h"

namespace attattr::bench {
namespace {

struct Timing {
  double median_ms = 0;
  double p99_ms = 0;
};

Timing Summarise(std::vector<double> seconds) {
  std::sort(seconds.begin(), seconds.end());
  const auto at = [&](double q) {
    return 1000 * seconds[std::min(seconds.size() - 1, static_cast<size_t>(q * seconds.size()))];
  };
  return {at(0.5), at(0.99)};
}

// Runs `jobs` job lives on `store`; each one's seconds.
std::vector<double> RunJobs(store::JobStore& store, int jobs, size_t result_bytes) {
  const std::string result(result_bytes, 'r');
  std::vector<double> seconds;
  for (int i = 0; i < jobs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    store::JobRecord record;
    record.kind = "ATTRIBUTION";
    record.model = "sst2";
    record.owner = "bench";
    record.spec = std::string(512, 's');
    OrDie(store.Create(record), "Create");
    const store::JobRecord job = *OrDie(store.Claim({"bench", 30000, 0}), "Claim");
    for (int step = 1; step <= 2; ++step) {
      const absl::Status progress =
          store.UpdateProgress(job.id, {"attribution", step, 2}, job.lease_token);
      if (!progress.ok()) Die(progress.ToString());
    }
    const absl::Status put = store.PutResult(job.id, result, job.lease_token);
    if (!put.ok()) Die(put.ToString());
    OrDie(store.Finish(job.id, store::JobState::kSucceeded, 0, "", job.lease_token), "Finish");
    OrDie(store.Get(job.id), "Get");
    size_t read = 0;
    const absl::Status got = store.ReadResult(job.id, [&](const std::string& chunk) {
      read += chunk.size();
      return absl::OkStatus();
    });
    if (!got.ok() || read != result.size()) Die("ReadResult: " + got.ToString());
    seconds.push_back(SecondsSince(t0));
  }
  return seconds;
}

// Splits one job into `shards` one-item shards and runs each shard's store life (ClaimShard,
// CompleteShard with a `result_bytes` result; the last completion takes the job back); each
// shard's seconds.
std::vector<double> RunShards(store::JobStore& store, int shards, size_t result_bytes) {
  store::ShardStore* shard_store = store.shards();
  if (shard_store == nullptr) Die("this store has no shards");
  store::JobRecord record;
  record.kind = "ATTRIBUTION";
  record.model = "sst2";
  record.owner = "bench";
  OrDie(store.Create(record), "Create");
  const store::JobRecord job = *OrDie(store.Claim({"bench", 30000, 0}), "Claim");
  std::vector<store::ShardRange> ranges;
  for (int i = 0; i < shards; ++i) ranges.push_back({i, i + 1});
  OrDie(shard_store->SplitJob(job.id, job.lease_token, {0, "bench", ranges, ""}), "SplitJob");
  const std::string result(result_bytes, 'r');
  std::vector<double> seconds;
  for (int i = 0; i < shards; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const store::ShardRecord shard =
        *OrDie(shard_store->ClaimShard({"bench", 30000, 0}), "ClaimShard");
    OrDie(shard_store->CompleteShard({shard.job_id, shard.index, shard.lease_token}, result,
                                     "bench", 30000),
          "CompleteShard");
    seconds.push_back(SecondsSince(t0));
  }
  return seconds;
}

}  // namespace
}  // namespace attattr::bench

int main(int argc, char** argv) {
  using namespace attattr;
  CLI::App app{"store_bench: a job's cost in the PostgreSQL job store against SQLite"};
  int jobs = 500;
  int result_kib = 64;
  std::string postgres;
  app.add_option("--jobs", jobs, "Jobs per store")->capture_default_str();
  app.add_option("--result-kib", result_kib, "Result size of each job, KiB")->capture_default_str();
  app.add_option("--postgres", postgres,
                 "PostgreSQL URI of an empty database (default: start a private server)");
  CLI11_PARSE(app, argc, argv);

  const std::string dir = testing::MakeTempDir("attattr-store-bench");
  store::SqliteJobStoreOptions sqlite_options;
  sqlite_options.path = dir + "/jobs.db";
  auto sqlite = bench::OrDie(store::SqliteJobStore::Open(sqlite_options), "opening SQLite");
  bench::RunJobs(*sqlite, std::min(jobs, 20), 1024);  // warm-up
  const bench::Timing baseline =
      bench::Summarise(bench::RunJobs(*sqlite, jobs, static_cast<size_t>(result_kib) << 10));

  std::unique_ptr<testing::PostgresServer> server;
  if (postgres.empty()) {
    server = bench::OrDie(testing::PostgresServer::Start(), "starting PostgreSQL");
    postgres = bench::OrDie(server->CreateDatabase(), "creating a database");
  }
  store::PostgresJobStoreOptions pg_options;
  pg_options.uri = postgres;
  auto pg = bench::OrDie(store::PostgresJobStore::Open(pg_options), "opening PostgreSQL");
  bench::RunJobs(*pg, std::min(jobs, 20), 1024);
  const bench::Timing measured =
      bench::Summarise(bench::RunJobs(*pg, jobs, static_cast<size_t>(result_kib) << 10));

  std::cout << absl::StrFormat(
      "jobs per store: %d, result %d KiB, one job = Create + Claim + 2 progress + PutResult + "
      "Finish + Get + ReadResult\n",
      jobs, result_kib);
  std::cout << absl::StrFormat("%-22s %10s %10s\n", "store", "median ms", "p99 ms");
  std::cout << absl::StrFormat("%-22s %10.3f %10.3f\n", "sqlite (baseline)", baseline.median_ms,
                               baseline.p99_ms);
  std::cout << absl::StrFormat("%-22s %10.3f %10.3f\n", "postgresql", measured.median_ms,
                               measured.p99_ms);
  std::cout << absl::StrFormat("postgresql / sqlite: median %.2fx, p99 %.2fx\n",
                               measured.median_ms / baseline.median_ms,
                               measured.p99_ms / baseline.p99_ms);
  // Shards exist only in the shared store: their cost is against a whole job's on SQLite.
  const bench::Timing shard =
      bench::Summarise(bench::RunShards(*pg, jobs, static_cast<size_t>(result_kib) << 10));
  std::cout << absl::StrFormat(
      "postgresql, one shard (ClaimShard + CompleteShard, %d KiB result): median %.3f ms, p99 "
      "%.3f ms (%.2fx / %.2fx a whole job on sqlite)\n",
      result_kib, shard.median_ms, shard.p99_ms, shard.median_ms / baseline.median_ms,
      shard.p99_ms / baseline.p99_ms);
  return 0;
}
