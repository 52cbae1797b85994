// Several real attattr-server processes on one real PostgreSQL job store (the scale-out of
// DESIGN.md: any replica serves any job): a job submitted to one replica is read, waited on,
// watched, listed and fetched through the others, byte-identical to a single-replica run;
// idempotent submits race across replicas into one job; a replica killed (SIGKILL) or frozen
// (SIGSTOP) loses its job to another within lease + heartbeat, and the frozen one's late writes
// are fenced off; SIGTERM hands running work back at once; a cancel sent to one replica stops the
// run on another; a PostgreSQL restart loses nothing. Leases are short here (--lease-seconds 6,
// --heartbeat-seconds 1: short for the tests' sake, long enough that a replica on a loaded CI
// machine still renews in time). Skips with a message without PostgreSQL or the shared model.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "support/job_rpc.h"
#include "support/postgres_server.h"
#include "support/server_process.h"
#include "support/test_paths.h"

namespace {

namespace v1 = attattr::v1;
using ::attattr::testing::Connect;
using ::attattr::testing::PostgresServer;
using ::attattr::testing::ReadFile;
using ::attattr::testing::ReadResult;
using ::attattr::testing::ServerProcess;
using ::attattr::testing::Sst2ModelDir;
using ::attattr::testing::Submit;
using ::attattr::testing::WaitDone;
using ::attattr::testing::WaitForState;
using Clock = std::chrono::steady_clock;

constexpr char kModel[] = "sst2";
constexpr int kLeaseSeconds = 6;
constexpr int kHeartbeatSeconds = 1;

// `count` distinct reviews (ReviewsJob): small counts finish in a second, large ones run long
// enough to kill, freeze or cancel their replica mid-job.
v1::JobSpec TextJob(int count, int steps = 4) {
  return ::attattr::testing::ReviewsJob(kModel, count, steps);
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A data root holding the first `lines` of the shared SST-2 dev set as sst2-dev.tsv.
std::string DataRoot(const std::string& dir, int lines) {
  std::ifstream in(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv");
  std::ofstream out(dir + "/sst2-dev.tsv");
  std::string line;
  for (int i = 0; i < lines && std::getline(in, line); ++i) out << line << "\n";
  return dir;
}

// dir/name: the shared SST-2 dev set's header, then its reviews [first, first + count).
void WriteReviews(const std::string& dir, const std::string& name, int first, int count) {
  std::ifstream in(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv");
  std::ofstream out(dir + "/" + name);
  std::string line;
  for (int i = 0; std::getline(in, line) && i <= first + count; ++i) {
    if (i == 0 || i > first) out << line << "\n";
  }
}

// A head-importance study: every method on 20 reviews (agreement with 8 others), pruning curves
// on 40 more, and a pruned export — stages of 28 and 40 items.
v1::JobSpec StudyJob() {
  v1::JobSpec spec;
  spec.set_model(kModel);
  v1::HeadImportanceSpec& h = *spec.mutable_head_importance();
  *h.mutable_importance_set() = ::attattr::testing::DatasetSource("sst2-dev.tsv", 20);
  *h.mutable_agreement_set() = ::attattr::testing::DatasetSource("agreement.tsv", 8);
  *h.mutable_evaluation_set() = ::attattr::testing::DatasetSource("evaluation.tsv", 40);
  for (auto m : {v1::IMPORTANCE_METHOD_ATTRIBUTION, v1::IMPORTANCE_METHOD_ATTENTION,
                 v1::IMPORTANCE_METHOD_TAYLOR, v1::IMPORTANCE_METHOD_RANDOM}) {
    h.add_methods(m);
  }
  for (double r : {0.0, 25.0, 50.0, 75.0}) h.add_ratios(r);
  h.set_seed(3);
  h.mutable_attribution()->set_steps(3);
  h.set_export_path("pruned");
  h.set_export_ratio(25);
  return spec;
}

// A trigger search: patterns mined from 20 reviews, the top 2 evaluated on 40 others — stages of
// 20 and 40 items.
v1::JobSpec SearchJob() {
  v1::JobSpec spec;
  spec.set_model(kModel);
  v1::TriggerSearchSpec& t = *spec.mutable_trigger_search();
  *t.mutable_mining_set() = ::attattr::testing::DatasetSource("sst2-dev.tsv", 20);
  *t.mutable_evaluation_set() = ::attattr::testing::DatasetSource("evaluation.tsv", 40);
  t.set_top_k(2);
  t.set_seed(5);
  t.mutable_attribution()->set_steps(3);
  return spec;
}

// The heads a curve point prunes: the round(ratio% · L·H) lowest scores, ties to the earlier head
// (engine::PruneLowest).
std::vector<int> Pruned(const v1::MethodResult& method, double ratio) {
  std::vector<int> heads(method.importance_size());
  for (int h = 0; h < method.importance_size(); ++h) heads[h] = h;
  std::stable_sort(heads.begin(), heads.end(),
                   [&](int a, int b) { return method.importance(a) < method.importance(b); });
  heads.resize(static_cast<size_t>(std::lround(ratio / 100.0 * heads.size())));
  std::sort(heads.begin(), heads.end());
  return heads;
}

// A sharded study against the whole one: rankings within float rounding (the shards batch their
// examples differently), curves and correlations likewise, accuracies exactly wherever the two
// rankings prune the same heads.
void ExpectSameStudy(const v1::HeadImportanceResult& sharded,
                     const v1::HeadImportanceResult& whole) {
  ASSERT_EQ(sharded.methods_size(), whole.methods_size());
  for (int m = 0; m < whole.methods_size(); ++m) {
    const v1::MethodResult& s = sharded.methods(m);
    const v1::MethodResult& w = whole.methods(m);
    SCOPED_TRACE(v1::ImportanceMethod_Name(w.method()));
    ASSERT_EQ(s.importance_size(), w.importance_size());
    for (int h = 0; h < w.importance_size(); ++h) {
      EXPECT_NEAR(s.importance(h), w.importance(h),
                  1e-5 * std::max(1.0, std::fabs(w.importance(h))));
    }
    ASSERT_EQ(s.curve_size(), w.curve_size());
    for (int r = 0; r < w.curve_size(); ++r) {
      EXPECT_EQ(s.curve(r).heads_pruned(), w.curve(r).heads_pruned());
      if (Pruned(s, w.curve(r).ratio()) != Pruned(w, w.curve(r).ratio())) continue;
      EXPECT_EQ(s.curve(r).accuracy(), w.curve(r).accuracy());
      EXPECT_NEAR(s.curve(r).mean_gold_probability(), w.curve(r).mean_gold_probability(), 1e-6);
    }
    EXPECT_EQ(s.has_agreement(), w.has_agreement());
    EXPECT_NEAR(s.agreement().pearson(), w.agreement().pearson(), 1e-4);
  }
  ASSERT_EQ(sharded.correlations_size(), whole.correlations_size());
  for (int c = 0; c < whole.correlations_size(); ++c) {
    EXPECT_NEAR(sharded.correlations(c).pearson(), whole.correlations(c).pearson(), 1e-4);
  }
  EXPECT_EQ(sharded.export_heads_removed(), whole.export_heads_removed());
  EXPECT_EQ(sharded.export_parameter_count(), whole.export_parameter_count());
}

// A sharded search against the whole one: the same patterns (scores within float rounding) and
// exactly the same accuracies and counts.
void ExpectSameSearch(const v1::TriggerSearchResult& sharded,
                      const v1::TriggerSearchResult& whole) {
  EXPECT_EQ(sharded.mined_examples(), whole.mined_examples());
  EXPECT_EQ(sharded.patterns_above_threshold(), whole.patterns_above_threshold());
  ASSERT_EQ(sharded.patterns_size(), whole.patterns_size());
  for (int p = 0; p < whole.patterns_size(); ++p) {
    v1::TriggerPattern s = sharded.patterns(p), w = whole.patterns(p);
    EXPECT_NEAR(s.score(), w.score(), 1e-5);
    s.clear_score();
    w.clear_score();
    EXPECT_EQ(s.SerializeAsString(), w.SerializeAsString()) << s.DebugString() << w.DebugString();
  }
}

v1::JobSpec DatasetJob(int limit) {
  v1::JobSpec spec;
  spec.set_model(kModel);
  *spec.mutable_attribution()->mutable_examples() =
      ::attattr::testing::DatasetSource("sst2-dev.tsv", limit);
  spec.mutable_attribution()->mutable_options()->set_steps(4);
  return spec;
}

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    ATTATTR_SHARED_POSTGRES_OR_SKIP(pg_);
    auto uri = pg_->CreateDatabase();
    ASSERT_TRUE(uri.ok()) << uri.status();
    uri_ = *uri;
    database_ = uri_.substr(uri_.rfind('/') + 1);
    dir_ = tmp_.path();
  }

  // A replica named `name` on the test's database; its log goes to dir_/<name>.log.
  std::unique_ptr<ServerProcess> Replica(const std::string& name,
                                         std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--store=" + uri_, "--replica-name=" + name,
                                     "--heartbeat-seconds=" + std::to_string(kHeartbeatSeconds),
                                     "--job-runners=1", "--log-level=info"};
    const auto given = [&extra](const std::string& flag) {
      return std::any_of(extra.begin(), extra.end(),
                         [&flag](const std::string& a) { return a.rfind(flag, 0) == 0; });
    };
    if (!given("--lease-seconds")) {
      args.push_back("--lease-seconds=" + std::to_string(kLeaseSeconds));
    }
    // Jobs run whole unless a test splits them.
    if (!given("--shard-examples")) args.push_back("--shard-examples=0");
    args.insert(args.end(), extra.begin(), extra.end());
    auto replica = std::make_unique<ServerProcess>(
        std::map<std::string, std::string>{{kModel, Sst2ModelDir()}}, args,
        dir_ + "/" + name + ".log");
    EXPECT_TRUE(replica->ok()) << ReadFile(dir_ + "/" + name + ".log");
    return replica;
  }

  std::string Sql(const std::string& sql) {
    auto value = pg_->Query(database_, sql);
    EXPECT_TRUE(value.ok()) << value.status();
    return value.value_or("");
  }
  std::string Holder(const std::string& job) {
    return Sql("SELECT lease_holder FROM attattr_jobs WHERE id = '" + job + "'");
  }
  int Attempts(const std::string& job) {
    return std::stoi(Sql("SELECT attempts FROM attattr_jobs WHERE id = '" + job + "'"));
  }
  // Polls until `job` runs (or ran) under a lease of a holder other than `not_holder` ("" = any).
  std::string WaitForHolder(const std::string& job, const std::string& not_holder,
                            int seconds = 60) {
    const auto until = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < until) {
      const std::string state = Sql("SELECT state FROM attattr_jobs WHERE id = '" + job + "'");
      const std::string holder = Holder(job);
      // A short job may already be done when looked at: its last holder stays recorded.
      if ((state == "RUNNING" || state == "SUCCEEDED") && !holder.empty() && holder != not_holder) {
        return holder;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << job << " never ran on a replica other than '" << not_holder << "'";
    return "";
  }
  // The result bytes of `spec` run by a single replica on its own SQLite store.
  static std::string SingleReplicaResult(const v1::JobSpec& spec,
                                         const std::vector<std::string>& args = {}) {
    ServerProcess alone({{kModel, Sst2ModelDir()}}, args);
    EXPECT_TRUE(alone.ok());
    auto stub = Connect(alone.address());
    v1::Job job;
    EXPECT_TRUE(Submit(*stub, spec, &job).ok());
    EXPECT_EQ(WaitDone(*stub, job.name(), 300).state(), v1::SUCCEEDED);
    return ReadResult(*stub, job.name()).bytes;
  }

  // Three replicas (a, b, c) splitting jobs into shards of 10 examples, and a 120-review dataset
  // job submitted to a.
  struct ShardedRun {
    std::vector<std::unique_ptr<ServerProcess>> replicas;
    std::string data;  // the data root
    v1::JobSpec spec;
    v1::Job job;  // empty name when something failed (reported)
  };
  ShardedRun StartShardedJob() {
    ShardedRun run;
    run.data = DataRoot(dir_, 121);  // a header and 120 reviews
    for (const char* name : {"a", "b", "c"}) {
      run.replicas.push_back(Replica(name, {"--data-root=" + run.data, "--shard-examples=10"}));
      if (!run.replicas.back()->ok()) return run;
    }
    run.spec = DatasetJob(120);
    EXPECT_TRUE(Submit(*Connect(run.replicas[0]->address()), run.spec, &run.job).ok());
    return run;
  }

  // Three replicas (a, b, c) splitting stages into shards of 8 examples, exporting under
  // dir_/exports, `spec` submitted to a; c is killed (SIGKILL) once it runs a shard of stage
  // `kill_in_stage`. Returns the job's result once done, and checks the shards: both stages'
  // shards all succeeded, each merged once, run by at least two replicas.
  v1::JobResult RunShardedAndKill(const v1::JobSpec& spec, int stage0_shards, int stage1_shards,
                                  int kill_in_stage) {
    const std::string data = DataRoot(dir_, 21);  // a header and 20 reviews
    WriteReviews(data, "agreement.tsv", 100, 8);
    WriteReviews(data, "evaluation.tsv", 200, 40);
    std::filesystem::create_directories(dir_ + "/exports");
    std::filesystem::create_directories(dir_ + "/whole-exports");
    std::vector<std::unique_ptr<ServerProcess>> replicas;
    for (const char* name : {"a", "b", "c"}) {
      replicas.push_back(Replica(name, {"--data-root=" + data, "--shard-examples=8",
                                        "--export-root=" + dir_ + "/exports"}));
      if (!replicas.back()->ok()) return {};
    }
    v1::Job job;
    EXPECT_TRUE(Submit(*Connect(replicas[0]->address()), spec, &job).ok());
    const std::string where = "FROM attattr_shards WHERE job_id = '" + job.name() + "'";
    const std::string on_c = where + " AND state = 'RUNNING' AND lease_holder = 'c' AND stage = " +
                             std::to_string(kill_in_stage);
    const auto until = Clock::now() + std::chrono::seconds(120);
    while (Clock::now() < until && Sql("SELECT COUNT(*) " + on_c) == "0") {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const std::string killed_shard = Sql("SELECT MIN(shard) " + on_c);
    replicas[2]->Kill();
    EXPECT_FALSE(killed_shard.empty()) << "c never ran a shard of stage " << kill_in_stage;
    auto on_b = Connect(replicas[1]->address());
    const v1::Job done = WaitDone(*on_b, job.name(), 600);
    EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.error_message();
    for (int stage : {0, 1}) {
      const std::string in_stage = where + " AND stage = " + std::to_string(stage);
      EXPECT_EQ(Sql("SELECT COUNT(*) " + in_stage + " AND state = 'SUCCEEDED'"),
                std::to_string(stage == 0 ? stage0_shards : stage1_shards))
          << "stage " << stage;
      EXPECT_EQ(Sql("SELECT COUNT(*) " + in_stage),
                Sql("SELECT COUNT(*) " + in_stage + " AND state = 'SUCCEEDED'"));
    }
    // Only the killed replica's shard ran twice; it was stored (merged) once, by another.
    if (!killed_shard.empty()) {
      const std::string killed = where + " AND shard = " + killed_shard;
      EXPECT_EQ(Sql("SELECT attempts " + killed), "2");
      EXPECT_NE(Sql("SELECT lease_holder " + killed), "c");
      EXPECT_EQ(Sql("SELECT COUNT(*) " + where + " AND attempts <> 1 AND shard <> " + killed_shard),
                "0");
    }
    EXPECT_GE(std::stoi(Sql("SELECT COUNT(DISTINCT lease_holder) " + where)), 2);
    auto result = ReadResult(*on_b, job.name());
    EXPECT_TRUE(result.status.ok()) << result.status.error_message();
    return result.result;
  }

  // `spec` run whole by a single replica on its own SQLite store, on the same data.
  v1::JobResult WholeResult(const v1::JobSpec& spec) {
    ServerProcess alone({{kModel, Sst2ModelDir()}},
                        {"--data-root=" + dir_, "--export-root=" + dir_ + "/whole-exports"});
    EXPECT_TRUE(alone.ok());
    auto stub = Connect(alone.address());
    v1::Job job;
    EXPECT_TRUE(Submit(*stub, spec, &job).ok());
    EXPECT_EQ(WaitDone(*stub, job.name(), 300).state(), v1::SUCCEEDED);
    return ReadResult(*stub, job.name()).result;
  }

  PostgresServer* pg_ = nullptr;
  std::string uri_;
  std::string database_;
  ::attattr::testing::TempDir tmp_{"attattr-replicas"};
  std::string dir_;
};

TEST_F(ReplicasTest, AnyReplicaServesEveryJob) {
  auto a = Replica("a");
  auto b = Replica("b");
  auto c = Replica("c");
  ASSERT_TRUE(a->ok() && b->ok() && c->ok());
  auto on_a = Connect(a->address());
  auto on_b = Connect(b->address());
  auto on_c = Connect(c->address());
  const v1::JobSpec spec = TextJob(3);
  v1::Job job;
  ASSERT_TRUE(Submit(*on_a, spec, &job).ok());
  EXPECT_EQ(::attattr::testing::Get(*on_b, job.name()).name(), job.name());
  // WatchJob on B and WaitJob on C, both woken by the other replicas' changes (NOTIFY).
  auto watched = std::async(std::launch::async, [&] {
    grpc::ClientContext ctx;
    v1::WatchJobRequest req;
    req.set_name(job.name());
    auto reader = on_b->WatchJob(&ctx, req);
    v1::Job update, last;
    while (reader->Read(&update)) last = update;
    EXPECT_TRUE(reader->Finish().ok());
    return last;
  });
  EXPECT_EQ(WaitDone(*on_c, job.name()).state(), v1::SUCCEEDED);
  const v1::Job last_seen = watched.get();
  EXPECT_EQ(last_seen.state(), v1::SUCCEEDED);
  // Watchers get whole jobs, spec included (replicas read specs only for jobs someone watches).
  EXPECT_EQ(last_seen.spec().SerializeAsString(), job.spec().SerializeAsString());
  auto result = ReadResult(*on_c, job.name());
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_TRUE(result.bytes == SingleReplicaResult(spec));

  // Jobs submitted through every replica list once each, whichever replica serves each page.
  std::set<std::string> submitted = {job.name()};
  for (int i = 0; i < 5; ++i) {
    v1::Job more;
    ASSERT_TRUE(Submit(*(i % 3 == 0 ? on_a : i % 3 == 1 ? on_b : on_c), TextJob(1), &more).ok());
    submitted.insert(more.name());
  }
  std::multiset<std::string> listed;
  std::string token;
  int page = 0;
  do {
    grpc::ClientContext ctx;
    v1::ListJobsRequest req;
    req.set_page_size(2);
    req.set_page_token(token);
    v1::ListJobsResponse resp;
    auto& stub = page % 3 == 0 ? on_a : page % 3 == 1 ? on_b : on_c;
    ASSERT_TRUE(stub->ListJobs(&ctx, req, &resp).ok());
    for (const auto& j : resp.jobs()) listed.insert(j.name());
    token = resp.next_page_token();
    ++page;
  } while (!token.empty());
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), submitted);
  EXPECT_EQ(listed.size(), submitted.size());

  // The same request_id sent to the three replicas at once makes one job.
  std::vector<std::future<std::string>> racing;
  for (auto* stub : {on_a.get(), on_b.get(), on_c.get(), on_a.get(), on_b.get(), on_c.get()}) {
    racing.push_back(std::async(std::launch::async, [stub] {
      v1::Job raced;
      EXPECT_TRUE(Submit(*stub, TextJob(1), &raced, "same-request").ok());
      return raced.name();
    }));
  }
  std::set<std::string> names;
  for (auto& r : racing) names.insert(r.get());
  EXPECT_EQ(names.size(), 1u);
}

TEST_F(ReplicasTest, TwoReplicasStartingTogetherOnAnEmptyDatabaseMigrateOnce) {
  std::unique_ptr<ServerProcess> a, b;
  std::thread start_a([&] { a = Replica("a"); });
  std::thread start_b([&] { b = Replica("b"); });
  start_a.join();
  start_b.join();
  ASSERT_TRUE(a->ok() && b->ok());
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM attattr_schema"), "1");
  const std::string logs = ReadFile(dir_ + "/a.log") + ReadFile(dir_ + "/b.log");
  size_t created = 0;
  for (size_t at = logs.find("created version"); at != std::string::npos;
       at = logs.find("created version", at + 1)) {
    ++created;
  }
  EXPECT_EQ(created, 1u) << logs;
  for (auto* replica : {a.get(), b.get()}) {
    auto stub = Connect(replica->address());
    v1::Job job;
    ASSERT_TRUE(Submit(*stub, TextJob(1), &job).ok());
    EXPECT_EQ(WaitDone(*stub, job.name()).state(), v1::SUCCEEDED);
  }
}

// kill -9 of the replica running a job: another takes it over once the lease lapses (within
// lease + heartbeat of the kill), runs it again from the start, and the result is the
// single-replica one, stored once.
TEST_F(ReplicasTest, KilledReplicasJobIsTakenOverWithinTheLease) {
  auto a = Replica("a");
  auto b = Replica("b");
  ASSERT_TRUE(a->ok() && b->ok());
  auto on_a = Connect(a->address());
  const v1::JobSpec spec = TextJob(24, 8);
  v1::Job job;
  ASSERT_TRUE(Submit(*on_a, spec, &job).ok());
  const std::string first = WaitForHolder(job.name(), "");
  ASSERT_FALSE(first.empty());
  ServerProcess& victim = first == "a" ? *a : *b;
  ServerProcess& survivor = first == "a" ? *b : *a;
  const auto killed = Clock::now();
  victim.Kill();
  const std::string second = WaitForHolder(job.name(), first);
  const double takeover = SecondsSince(killed);
  EXPECT_NE(second, first);
  EXPECT_LE(takeover, kLeaseSeconds + kHeartbeatSeconds + 2.0) << "took over after " << takeover;
  std::cout << "[ measured ] takeover after kill -9: " << takeover << " s (lease " << kLeaseSeconds
            << " s, heartbeat " << kHeartbeatSeconds << " s)\n";
  auto on_survivor = Connect(survivor.address());
  EXPECT_EQ(WaitDone(*on_survivor, job.name(), 300).state(), v1::SUCCEEDED);
  EXPECT_EQ(Attempts(job.name()), 2);
  auto result = ReadResult(*on_survivor, job.name());
  ASSERT_TRUE(result.status.ok());
  EXPECT_TRUE(result.bytes == SingleReplicaResult(spec));
}

// SIGSTOP past the lease: the job is taken over and finished elsewhere; after SIGCONT the frozen
// replica's writes (progress, result, finish) are refused by the lease token and change nothing.
TEST_F(ReplicasTest, FrozenReplicaIsFencedOffAfterItsJobIsTakenOver) {
  auto a = Replica("a");
  auto b = Replica("b");
  ASSERT_TRUE(a->ok() && b->ok());
  auto on_a = Connect(a->address());
  const v1::JobSpec spec = TextJob(12, 8);
  v1::Job job;
  ASSERT_TRUE(Submit(*on_a, spec, &job).ok());
  const std::string first = WaitForHolder(job.name(), "");
  ServerProcess& frozen = first == "a" ? *a : *b;
  ServerProcess& other = first == "a" ? *b : *a;
  ASSERT_EQ(kill(frozen.pid(), SIGSTOP), 0);
  WaitForHolder(job.name(), first);
  auto on_other = Connect(other.address());
  ASSERT_EQ(WaitDone(*on_other, job.name(), 300).state(), v1::SUCCEEDED);
  const std::string bytes = ReadResult(*on_other, job.name()).bytes;
  ASSERT_EQ(kill(frozen.pid(), SIGCONT), 0);
  // The thawed replica goes on with its run until its next write or heartbeat is refused.
  std::this_thread::sleep_for(std::chrono::seconds(kHeartbeatSeconds * 3));
  v1::Job after = ::attattr::testing::Get(*on_other, job.name());
  EXPECT_EQ(after.state(), v1::SUCCEEDED);
  EXPECT_EQ(Attempts(job.name()), 2);
  EXPECT_TRUE(ReadResult(*on_other, job.name()).bytes == bytes);
  EXPECT_TRUE(bytes == SingleReplicaResult(spec));
  // Its run stops at a refused write or renewal, or finishes and has its result refused.
  std::string log;
  const auto until = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < until) {
    log = ReadFile(dir_ + "/" + first + ".log");
    if (log.find("no longer holds it") != std::string::npos ||
        log.find("no longer this run's") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(log.find("no longer holds it") != std::string::npos ||
              log.find("no longer this run's") != std::string::npos)
      << log;
  EXPECT_EQ(::attattr::testing::Get(*on_other, job.name()).state(), v1::SUCCEEDED);
  EXPECT_TRUE(ReadResult(*on_other, job.name()).bytes == bytes);
}

// SIGTERM: the draining replica hands its running job back at once (no waiting for the lease,
// which is a minute here) and another replica runs it.
TEST_F(ReplicasTest, SigtermReleasesRunningJobsAtOnce) {
  auto a = Replica("a", {"--lease-seconds=60", "--grace-seconds=0"});
  auto b = Replica("b", {"--lease-seconds=60", "--grace-seconds=0"});
  ASSERT_TRUE(a->ok() && b->ok());
  auto on_a = Connect(a->address());
  v1::Job job;
  ASSERT_TRUE(Submit(*on_a, TextJob(24, 8), &job).ok());
  const std::string first = WaitForHolder(job.name(), "");
  ServerProcess& leaving = first == "a" ? *a : *b;
  ServerProcess& staying = first == "a" ? *b : *a;
  const auto terminated = Clock::now();
  EXPECT_EQ(leaving.Stop(), 0);
  WaitForHolder(job.name(), first, 20);
  const double handover = SecondsSince(terminated);
  EXPECT_LE(handover, 10.0);
  std::cout << "[ measured ] handover after SIGTERM: " << handover << " s (lease 60 s)\n";
  auto on_staying = Connect(staying.address());
  EXPECT_EQ(WaitDone(*on_staying, job.name(), 300).state(), v1::SUCCEEDED);
}

// A cancel sent to one replica stops the run on another at once: that replica's only runner is
// free for the next job long before the cancelled job could have finished.
TEST_F(ReplicasTest, CancelOnOneReplicaStopsTheRunOnAnother) {
  auto a = Replica("a");
  auto b = Replica("b");
  ASSERT_TRUE(a->ok() && b->ok());
  auto on_a = Connect(a->address());
  auto on_b = Connect(b->address());
  v1::Job first, second;
  ASSERT_TRUE(Submit(*on_a, TextJob(400, 16), &first).ok());
  const std::string first_holder = WaitForHolder(first.name(), "");
  ASSERT_TRUE(Submit(*on_a, TextJob(400, 16), &second).ok());
  WaitForHolder(second.name(), first_holder);           // both replicas busy now
  auto& elsewhere = first_holder == "a" ? on_b : on_a;  // the replica not running `first`
  const auto cancelled = Clock::now();
  ASSERT_TRUE(::attattr::testing::Cancel(*elsewhere, first.name()).ok());
  v1::Job next;
  ASSERT_TRUE(Submit(*elsewhere, TextJob(1), &next).ok());
  EXPECT_EQ(WaitForHolder(next.name(), ""), first_holder);
  const double freed = SecondsSince(cancelled);
  EXPECT_LE(freed, 5.0);
  std::cout << "[ measured ] runner freed after a cancel on another replica: " << freed << " s\n";
  EXPECT_EQ(WaitDone(*elsewhere, next.name()).state(), v1::SUCCEEDED);
  EXPECT_EQ(::attattr::testing::Get(*elsewhere, second.name()).state(), v1::RUNNING);
  ASSERT_TRUE(::attattr::testing::Cancel(*elsewhere, second.name()).ok());
}

// PostgreSQL restarts mid-job: the replicas turn unready but stay alive (submissions UNAVAILABLE)
// while it is down, reconnect by themselves, and every acknowledged job completes.
TEST_F(ReplicasTest, PostgresRestartLosesNoAcknowledgedJob) {
  auto a = Replica("a");
  auto b = Replica("b");
  ASSERT_TRUE(a->ok() && b->ok());
  auto on_a = Connect(a->address());
  std::vector<std::string> names;
  for (int i = 0; i < 4; ++i) {
    v1::Job job;
    ASSERT_TRUE(Submit(*on_a, TextJob(i == 0 ? 24 : 2, 8), &job).ok());
    names.push_back(job.name());
  }
  WaitForHolder(names[0], "");
  ASSERT_TRUE(pg_->Stop().ok());
  v1::Job refused;
  grpc::Status down = Submit(*on_a, TextJob(1), &refused);
  EXPECT_EQ(down.error_code(), grpc::StatusCode::UNAVAILABLE) << down.error_message();
  // Unready (out of the Service) but alive (not restarted), within the every-second store check.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(::attattr::testing::HealthStatus(a->address(), "attattr.v1.Attattr"), 2);
  EXPECT_EQ(::attattr::testing::HealthStatus(a->address(), ""), 1);
  ASSERT_TRUE(pg_->Restart().ok()) << pg_->Log();
  for (const std::string& name : names) {
    EXPECT_EQ(WaitDone(*on_a, name, 300).state(), v1::SUCCEEDED) << name;
  }
  // Ready again at the next store check.
  int ready = 0;
  for (int i = 0; i < 50 && ready != 1; ++i) {
    ready = ::attattr::testing::HealthStatus(a->address(), "attattr.v1.Attattr");
    if (ready != 1) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(ready, 1);
}

// A dataset job split into shards (--shard-examples 10): the three replicas each run some, the
// merged result is the single replica's byte for byte, and every shard succeeded once.
TEST_F(ReplicasTest, DatasetJobIsShardedAcrossReplicasWithTheSingleReplicaResult) {
  ShardedRun run = StartShardedJob();
  ASSERT_FALSE(run.job.name().empty());
  const auto started = Clock::now();  // just after the submission
  const v1::Job& job = run.job;
  const v1::JobSpec& spec = run.spec;
  const std::string& data = run.data;
  auto on_b = Connect(run.replicas[1]->address());
  const v1::Job done = WaitDone(*on_b, job.name(), 600);
  const double sharded_seconds = SecondsSince(started);
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error_message();
  const std::string where = "FROM attattr_shards WHERE job_id = '" + job.name() + "'";
  EXPECT_EQ(Sql("SELECT COUNT(*) " + where + " AND state = 'SUCCEEDED'"), "12");
  EXPECT_EQ(Sql("SELECT MAX(attempts) " + where), "1");
  const int holders = std::stoi(Sql("SELECT COUNT(DISTINCT lease_holder) " + where));
  EXPECT_GE(holders, 2) << "shards ran on " << holders << " replica(s)";
  auto result = ReadResult(*on_b, job.name());
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.result.attribution().examples_size(), 120);
  EXPECT_TRUE(result.bytes == SingleReplicaResult(spec, {"--data-root=" + data}));
  std::cout << "[ measured ] 120 examples in 12 shards on 3 replicas: " << sharded_seconds
            << " s, shards on " << holders << " replicas\n";
}

// kill -9 of a replica running shards of a job: its shards run again elsewhere once their leases
// lapse, the job completes with the single replica's result, and each shard is merged once.
TEST_F(ReplicasTest, KilledReplicasShardsRunAgainAndTheResultIsUnchanged) {
  ShardedRun run = StartShardedJob();
  ASSERT_FALSE(run.job.name().empty());
  const v1::Job& job = run.job;
  const v1::JobSpec& spec = run.spec;
  const std::string& data = run.data;
  ServerProcess* c = run.replicas[2].get();
  const std::string where = "FROM attattr_shards WHERE job_id = '" + job.name() + "'";
  // Wait until replica c runs a shard, then kill it.
  const auto until = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < until &&
         Sql("SELECT COUNT(*) " + where + " AND state = 'RUNNING' AND lease_holder = 'c'") == "0") {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string killed_shard =
      Sql("SELECT MIN(shard) " + where + " AND state = 'RUNNING' AND lease_holder = 'c'");
  c->Kill();
  ASSERT_FALSE(killed_shard.empty());
  auto on_b = Connect(run.replicas[1]->address());
  const v1::Job done = WaitDone(*on_b, job.name(), 600);
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error_message();
  EXPECT_EQ(Sql("SELECT COUNT(*) " + where + " AND state = 'SUCCEEDED'"), "12");
  EXPECT_EQ(Sql("SELECT MAX(attempts) " + where), "2");  // the killed replica's shard, again
  const std::string killed = where + " AND shard = " + killed_shard;
  EXPECT_EQ(Sql("SELECT attempts " + killed), "2");
  EXPECT_NE(Sql("SELECT lease_holder " + killed), "c");
  auto result = ReadResult(*on_b, job.name());
  ASSERT_TRUE(result.status.ok());
  EXPECT_EQ(result.result.attribution().examples_size(), 120);
  EXPECT_TRUE(result.bytes == SingleReplicaResult(spec, {"--data-root=" + data}));
}

// A head-importance study in two sharded stages (rankings over 28 items in 4 shards, then pruning
// curves over 40 in 5), a replica killed while it runs a pruning-curve shard: the study equals
// the single process's within float rounding, and the merging replica wrote the pruned export.
TEST_F(ReplicasTest, HeadImportanceStudyIsShardedInTwoStagesWithTheSingleReplicaNumbers) {
  const v1::JobSpec spec = StudyJob();
  const v1::JobResult sharded = RunShardedAndKill(spec, 4, 5, /*kill_in_stage=*/1);
  ASSERT_TRUE(sharded.has_head_importance());
  EXPECT_TRUE(std::ifstream(dir_ + "/exports/pruned/config.json").good());
  const v1::JobResult whole = WholeResult(spec);
  ExpectSameStudy(sharded.head_importance(), whole.head_importance());
}

// A trigger search in two sharded stages (mining 20 reviews in 3 shards, evaluating on 40 in 5),
// a replica killed while it mines: the same patterns and exactly the same accuracies as the
// single process.
TEST_F(ReplicasTest, TriggerSearchIsShardedInTwoStagesWithTheSingleReplicaNumbers) {
  const v1::JobSpec spec = SearchJob();
  const v1::JobResult sharded = RunShardedAndKill(spec, 3, 5, /*kill_in_stage=*/0);
  ASSERT_TRUE(sharded.has_trigger_search());
  ASSERT_GT(sharded.trigger_search().patterns_size(), 0);
  const v1::JobResult whole = WholeResult(spec);
  ExpectSameSearch(sharded.trigger_search(), whole.trigger_search());
}

}  // namespace
