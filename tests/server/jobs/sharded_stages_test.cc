// JobScheduler on a real PostgreSQL store with a job that runs in two sharded stages (a test
// sharding: stage 0 sums its items, its merge hands the total to stage 1, whose shards add it to
// their items' hundreds): two schedulers (replicas) share the shards of both stages and the
// result is the one arithmetic gives; a job whose merging replica died after the last shard of
// stage 0 is taken over, resumed from that stage's stored results (not run again) and finished;
// a split job's shards run before queued jobs of lower priority, and one past its deadline fails
// at once; and, through a store that fails on purpose (faulty_job_store.h), store errors while
// splitting, merging or storing a shard are ridden out or hand the job back, never fail it.
// Skips with a message without PostgreSQL.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "faulty_job_store.h"
#include "jobs/job_scheduler.h"
#include "store/postgres_job_store.h"
#include "store/shard_store.h"
#include "support/null_event_log.h"
#include "support/postgres_server.h"

namespace attattr::server {
namespace {

using store::JobRecord;
using store::JobState;

EventLog NullLog() { return ::attattr::testing::NullEventLog(); }

int64_t Number(const std::string& text) {
  int64_t n = 0;
  EXPECT_TRUE(absl::SimpleAtoi(text, &n)) << text;
  return n;
}

// Jobs with the spec "two stages": stage 0, items 0..9 in shards of 3, each the sum of its items
// (total 45); stage 1, items 0..3 in shards of 2, each the total plus 100 × the sum of its items
// (145, 545). Result: "690". A job with the spec "past deadline" is split the same way, and its
// shards fail as a run past its job's deadline does; "bad ranges" is split into ranges the store
// refuses. Any other job runs whole. `shard_runs` (when given) counts the shard runs.
JobSharding TwoStageSums(std::atomic<int>* shard_runs = nullptr) {
  JobSharding sharding;
  sharding.plan = [](const JobRecord& job) -> absl::StatusOr<store::ShardStage> {
    if (job.spec == "bad ranges") return store::ShardStage{0, "sums", {{0, 5}, {6, 9}}, ""};
    if (job.spec != "two stages" && job.spec != "past deadline") {
      return store::ShardStage{0, "", {{0, 1}}, ""};
    }
    return store::ShardStage{0, "sums", store::SplitItems(10, 3), ""};
  };
  sharding.run_shard = [shard_runs](const JobRecord& job, const store::ShardRecord& shard,
                                    JobContext&) -> absl::StatusOr<std::string> {
    if (shard_runs != nullptr) ++*shard_runs;
    if (job.spec == "past deadline") {
      return absl::DeadlineExceededError("the job did not finish within spec.timeout_ms = 1");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // room for both replicas
    int64_t sum = 0;
    for (int64_t i = shard.items.begin; i < shard.items.end; ++i) sum += i;
    if (shard.stage == 0) return absl::StrCat(sum);
    return absl::StrCat(Number(shard.input) + 100 * sum);
  };
  sharding.merge = [](const JobRecord&, int32_t stage, const std::string& input,
                      const std::vector<std::string>& results) -> absl::StatusOr<StageMerge> {
    int64_t total = 0;
    for (const std::string& r : results) total += Number(r);
    StageMerge merged;
    if (stage == 0) {
      EXPECT_TRUE(input.empty());
      merged.next = store::ShardStage{1, "hundreds", store::SplitItems(4, 2), absl::StrCat(total)};
    } else {
      merged.result = absl::StrCat(total);
    }
    return merged;
  };
  return sharding;
}

class ShardedStagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SHARED_POSTGRES_OR_SKIP(pg_);
    auto uri = pg_->CreateDatabase();
    ASSERT_TRUE(uri.ok()) << uri.status();
    uri_ = *uri;
    database_ = uri_.substr(uri_.rfind('/') + 1);
  }

  std::unique_ptr<store::JobStore> OpenStore() {
    store::PostgresJobStoreOptions options;
    options.uri = uri_;
    auto store = store::PostgresJobStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // A scheduler named `holder` on `store` with `runners` runners; a job it runs whole goes to
  // `whole` (by default its result is "whole").
  std::unique_ptr<JobScheduler> Replica(store::JobStore& store, const std::string& holder,
                                        int runners = 2, JobExecutor whole = nullptr,
                                        JobSharding sharding = TwoStageSums()) {
    JobScheduler::Options options;
    options.runners = runners;
    options.holder = holder;
    options.lease = std::chrono::milliseconds(1500);
    options.heartbeat = std::chrono::milliseconds(100);
    options.poll = std::chrono::milliseconds(100);
    options.sharding = std::move(sharding);
    if (!whole) {
      whole = [](const JobRecord&, JobContext&) -> absl::StatusOr<std::string> { return "whole"; };
    }
    auto scheduler = std::make_unique<JobScheduler>(store, events_, std::move(whole), options,
                                                    JobObserver{}, NullLog());
    EXPECT_TRUE(scheduler->Recover().ok());
    scheduler->Start();
    return scheduler;
  }

  static JobRecord Job(const std::string& spec = "two stages", int32_t priority = 0) {
    JobRecord job;
    job.kind = "ATTRIBUTION";
    job.model = "m";
    job.spec = spec;
    job.priority = priority;
    return job;
  }

  // Waits (30 s at most) for job `id` to end, expecting `state`.
  JobRecord WaitDone(store::JobStore& store, const std::string& id,
                     JobState state = JobState::kSucceeded) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    absl::StatusOr<JobRecord> job = store.Get(id);
    while (std::chrono::steady_clock::now() < until && job.ok() && !store::IsTerminal(job->state)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      job = store.Get(id);
    }
    EXPECT_TRUE(job.ok() && job->state == state)
        << (job.ok() ? store::JobStateName(job->state) : job.status().ToString()) << " "
        << (job.ok() ? job->error_message : "");
    return job.ok() ? *job : JobRecord{};
  }

  static std::string Result(store::JobStore& store, const std::string& id) {
    std::string bytes;
    EXPECT_TRUE(store
                    .ReadResult(id,
                                [&bytes](const std::string& chunk) {
                                  bytes += chunk;
                                  return absl::OkStatus();
                                })
                    .ok());
    return bytes;
  }

  std::string Sql(const std::string& sql) {
    auto value = pg_->Query(database_, sql);
    EXPECT_TRUE(value.ok()) << value.status();
    return value.value_or("");
  }

  ::attattr::testing::PostgresServer* pg_ = nullptr;
  std::string uri_;
  std::string database_;
  JobEvents events_;
};

TEST_F(ShardedStagesTest, TwoReplicasRunBothStagesAndTheMergesChain) {
  auto store_a = OpenStore();
  auto store_b = OpenStore();
  ASSERT_TRUE(store_a && store_b);
  auto a = Replica(*store_a, "a");
  auto b = Replica(*store_b, "b");
  auto created = a->Submit(Job());
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string id = created->record.id;
  WaitDone(*store_b, id);
  EXPECT_EQ(Result(*store_b, id), "690");
  const std::string where = "FROM attattr_shards WHERE job_id = '" + id + "'";
  EXPECT_EQ(Sql("SELECT COUNT(*) " + where + " AND stage = 0 AND state = 'SUCCEEDED'"), "4");
  EXPECT_EQ(Sql("SELECT COUNT(*) " + where + " AND stage = 1 AND state = 'SUCCEEDED'"), "2");
  EXPECT_EQ(
      Sql("SELECT string_agg(DISTINCT encode(input, 'escape'), ',') " + where + " AND stage = 1"),
      "45");
  EXPECT_EQ(Sql("SELECT MAX(attempts) " + where), "1");
  EXPECT_EQ(Sql("SELECT MIN(shard) " + where + " AND stage = 1"), "4");  // after stage 0's
  EXPECT_EQ(Sql("SELECT COUNT(DISTINCT lease_holder) " + where), "2");
}

// The replica that completed stage 0's last shard (and so holds the job to merge it) dies before
// merging: its job lease lapses, another replica claims the job, merges stage 0 from the stored
// shard results without running them again, and runs stage 1.
TEST_F(ShardedStagesTest, AJobWhoseMergerDiedResumesFromItsLatestStage) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto created = store->Create(Job());
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string id = created->record.id;
  const JobRecord held = **store->Claim({"dead", 60000, 0});
  auto split =
      store->shards()->SplitJob(id, held.lease_token, {0, "sums", store::SplitItems(10, 3), ""});
  ASSERT_TRUE(split.ok()) << split.status();
  bool complete = false;
  for (int k = 0; k < 4; ++k) {
    const store::ShardRecord shard = **store->shards()->ClaimShard({"dead", 60000, 0});
    int64_t sum = 0;
    for (int64_t i = shard.items.begin; i < shard.items.end; ++i) sum += i;
    auto done = store->shards()->CompleteShard({id, shard.index, shard.lease_token},
                                               absl::StrCat(sum), "dead", /*job_lease_ms=*/200);
    ASSERT_TRUE(done.ok()) << done.status();
    complete = done->job_complete;
  }
  ASSERT_TRUE(complete);  // "dead" holds the job to merge it, and never will

  auto b = Replica(*store, "b");
  const JobRecord finished = WaitDone(*store, id);
  EXPECT_EQ(Result(*store, id), "690");
  EXPECT_EQ(finished.attempts, 2);
  const std::string where = "FROM attattr_shards WHERE job_id = '" + id + "'";
  EXPECT_EQ(Sql("SELECT COUNT(*) " + where +
                " AND stage = 0 AND lease_holder = 'dead' AND "
                "attempts = 1"),
            "4");  // stage 0 not run again
  EXPECT_EQ(Sql("SELECT COUNT(*) " + where + " AND stage = 1 AND lease_holder = 'b'"), "2");
}

// Regression (review): a runner looked for shards only when it found no job to claim, and a split
// job stays RUNNING (its shards carry its lease), so under a stream of queued jobs of lower
// priority its shards never ran and it showed RUNNING forever. Here the only runner would be
// blocked by any low-priority job it took: the split job's shards go first, both stages.
TEST_F(ShardedStagesTest, AHigherPriorityJobsShardsRunBeforeQueuedJobs) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::vector<std::string> low;
  for (int i = 0; i < 3; ++i) {
    auto queued = store->Create(Job("low", 0));
    ASSERT_TRUE(queued.ok()) << queued.status();
    low.push_back(queued->record.id);
  }
  auto split = store->Create(Job("two stages", 10));
  ASSERT_TRUE(split.ok()) << split.status();
  std::atomic<bool> released{false};
  JobExecutor blocking = [&released](const JobRecord&,
                                     JobContext& context) -> absl::StatusOr<std::string> {
    while (!released && !context.ShouldStop()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return "low";
  };
  auto a = Replica(*store, "a", /*runners=*/1, blocking);
  const JobRecord done = WaitDone(*store, split->record.id);
  EXPECT_EQ(Result(*store, split->record.id), "690");
  for (const std::string& id : low) {  // none started before the split job ended
    const JobRecord queued = *store->Get(id);
    EXPECT_TRUE(queued.start_time_ms == 0 || queued.start_time_ms >= done.end_time_ms)
        << store::JobStateName(queued.state) << " since " << queued.start_time_ms;
  }
  released = true;
  for (const std::string& id : low) WaitDone(*store, id);
}

// A shard that stops at its job's deadline (counted from the job's creation or start, so the time
// its shards waited counts) fails the job at once: running it again cannot meet the deadline.
TEST_F(ShardedStagesTest, AShardPastItsJobsDeadlineFailsTheJobAtOnce) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::atomic<int> shard_runs{0};
  auto a = Replica(*store, "a", /*runners=*/1, nullptr, TwoStageSums(&shard_runs));
  auto created = a->Submit(Job("past deadline"));
  ASSERT_TRUE(created.ok()) << created.status();
  const JobRecord failed = WaitDone(*store, created->record.id, JobState::kFailed);
  EXPECT_EQ(failed.error_code, static_cast<int32_t>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_NE(failed.error_message.find("spec.timeout_ms"), std::string::npos)
      << failed.error_message;
  EXPECT_EQ(shard_runs.load(), 1);
}

// Regression (review): a store error while reading a job's shards, splitting it or reading its
// shards' results for the merge failed the job for good; a shard whose result the store did not
// take within a lease was left to lapse, and ran again. Failures the store recovers from within a
// lease are retried (the stored shard result within the run's lease, however long); the job
// succeeds, every shard ran once and the job started once. A real error of the job (ranges the
// store refuses) still fails it.
TEST_F(ShardedStagesTest, TransientStoreErrorsWhileSplittingMergingAndStoringAreRiddenOut) {
  auto real = OpenStore();
  ASSERT_TRUE(real);
  ::attattr::testing::FaultyJobStore store(*real);
  const absl::Status down = absl::UnavailableError("server closed the connection (test)");
  store.FailNext("list_shards", down, 2);
  store.FailNext("split", down, 2);
  store.FailNext("get_shard_result", down, 2);
  store.FailNext("complete_shard", down, 4);  // 2 s of tries: past the 1.5 s lease
  auto a = Replica(store, "a");
  auto created = a->Submit(Job());
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string id = created->record.id;
  const JobRecord done = WaitDone(*real, id);
  EXPECT_EQ(Result(*real, id), "690");
  EXPECT_EQ(done.attempts, 1);
  EXPECT_EQ(Sql("SELECT MAX(attempts) FROM attattr_shards WHERE job_id = '" + id + "'"), "1");
  for (const char* op : {"list_shards", "split", "get_shard_result"}) {
    EXPECT_EQ(store.Failures(op), 2) << op;
  }
  EXPECT_EQ(store.Failures("complete_shard"), 4);

  auto bad = a->Submit(Job("bad ranges"));
  ASSERT_TRUE(bad.ok()) << bad.status();
  const JobRecord refused = WaitDone(*real, bad->record.id, JobState::kFailed);
  EXPECT_EQ(refused.error_code, static_cast<int32_t>(absl::StatusCode::kInvalidArgument));
}

// Regression (durability review): a shard result the store refused outright (here INTERNAL, as
// for one too large for the database) was logged as "no longer this run's" and left RUNNING: its
// lease lapsed, it ran again, and the job failed blaming a dead replica. The shard now fails with
// the store's error, is tried again, and the job goes on.
TEST_F(ShardedStagesTest, AShardResultTheStoreRefusesFailsTheShardWithTheStoresError) {
  auto real = OpenStore();
  ASSERT_TRUE(real);
  ::attattr::testing::FaultyJobStore store(*real);
  store.FailNext("complete_shard", absl::InternalError("out of memory (test)"));
  auto a = Replica(store, "a");
  auto created = a->Submit(Job());
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string id = created->record.id;
  const JobRecord done = WaitDone(*real, id);
  EXPECT_EQ(Result(*real, id), "690");
  // Queued again by its runner with the store's error, not recovered from a lapsed lease.
  EXPECT_EQ(
      Sql("SELECT error_message FROM attattr_shards WHERE job_id = '" + id + "' AND attempts = 2"),
      "storing the shard result: out of memory (test)");
  EXPECT_EQ(done.attempts, 1);
  EXPECT_EQ(store.Failures("complete_shard"), 1);
  EXPECT_EQ(Sql("SELECT MAX(attempts) FROM attattr_shards WHERE job_id = '" + id + "'"), "2");
  // Refused every time: the job fails with the store's own words.
  store.FailAlways("complete_shard", absl::InternalError("out of memory (test)"));
  auto doomed = a->Submit(Job());
  ASSERT_TRUE(doomed.ok()) << doomed.status();
  const JobRecord failed = WaitDone(*real, doomed->record.id, JobState::kFailed);
  EXPECT_NE(failed.error_message.find("storing the shard result: out of memory (test)"),
            std::string::npos)
      << failed.error_message;
  store.Heal("complete_shard");
}

// Regression (review): the store that does not answer for longer than a lease while the job is
// split: the job goes back to the queue (its start not counted) instead of FAILED, and the next
// claim splits and finishes it.
TEST_F(ShardedStagesTest, AStoreDownForALeaseWhileSplittingHandsTheJobBack) {
  auto real = OpenStore();
  ASSERT_TRUE(real);
  ::attattr::testing::FaultyJobStore store(*real);
  store.FailNext("split", absl::UnavailableError("the database is restarting (test)"), 6);
  auto a = Replica(store, "a", /*runners=*/1);
  auto created = a->Submit(Job());
  ASSERT_TRUE(created.ok()) << created.status();
  const JobRecord done = WaitDone(*real, created->record.id);
  EXPECT_EQ(Result(*real, created->record.id), "690");
  EXPECT_EQ(store.Failures("split"), 6);
  EXPECT_GE(store.Calls("requeue"), 1);  // handed back
  EXPECT_EQ(done.attempts, 1);           // and the hand-backs were not counted
}

// Regression (review): a shard whose job could not be read when it started (a store error other
// than NotFound) was left RUNNING, unrenewed: it ran again a lease later, with a start counted.
// A read the store misses is tried again; one that fails otherwise hands the shard back at once.
TEST_F(ShardedStagesTest, AShardWhoseJobCannotBeReadIsHandedBackAtOnce) {
  auto real = OpenStore();
  ASSERT_TRUE(real);
  auto created = real->Create(Job());
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string id = created->record.id;
  const JobRecord held = **real->Claim({"splitter", 60000, 0});
  ASSERT_TRUE(real->shards()
                  ->SplitJob(id, held.lease_token, {0, "sums", store::SplitItems(10, 3), ""})
                  .ok());
  ::attattr::testing::FaultyJobStore store(*real);
  store.FailNext("get", absl::UnavailableError("connection reset (test)"));
  store.FailNext("get", absl::InternalError("could not read the row (test)"));
  auto b = Replica(store, "b", /*runners=*/1);
  WaitDone(*real, id);
  EXPECT_EQ(Result(*real, id), "690");
  EXPECT_EQ(store.Failures("get"), 2);
  EXPECT_GE(store.Calls("release_shard"), 1);
  EXPECT_EQ(Sql("SELECT MAX(attempts) FROM attattr_shards WHERE job_id = '" + id + "'"), "1");
}

}  // namespace
}  // namespace attattr::server
