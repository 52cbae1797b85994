// JobScheduler on a real PostgreSQL store with a job that runs in two sharded stages (a test
// sharding: stage 0 sums its items, its merge hands the total to stage 1, whose shards add it to
// their items' hundreds): two schedulers (replicas) share the shards of both stages and the
// result is the one arithmetic gives; and a job whose merging replica died after the last shard of
// stage 0 is taken over, resumed from that stage's stored results (not run again) and finished.
// Skips with a message without PostgreSQL.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

// Stage 0: items 0..9 in shards of 3, each the sum of its items (total 45). Stage 1: items 0..3
// in shards of 2, each the total plus 100 × the sum of its items (145, 545). Result: "690".
JobSharding TwoStageSums() {
  JobSharding sharding;
  sharding.plan = [](const JobRecord&) -> absl::StatusOr<store::ShardStage> {
    return store::ShardStage{0, "sums", store::SplitItems(10, 3), ""};
  };
  sharding.run_shard = [](const JobRecord&, const store::ShardRecord& shard,
                          JobContext&) -> absl::StatusOr<std::string> {
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
    std::string why_not;
    pg_ = ::attattr::testing::SharedPostgres(&why_not);
    if (pg_ == nullptr) GTEST_SKIP() << "no PostgreSQL server: " << why_not;
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

  // A scheduler named `holder` on `store`; a job it ran whole would have the result "whole".
  std::unique_ptr<JobScheduler> Replica(store::JobStore& store, const std::string& holder) {
    JobScheduler::Options options;
    options.runners = 2;
    options.holder = holder;
    options.lease = std::chrono::milliseconds(1500);
    options.heartbeat = std::chrono::milliseconds(100);
    options.poll = std::chrono::milliseconds(100);
    options.sharding = TwoStageSums();
    auto scheduler = std::make_unique<JobScheduler>(
        store, events_,
        [](const JobRecord&, JobContext&) -> absl::StatusOr<std::string> { return "whole"; },
        options, JobObserver{}, NullLog());
    EXPECT_TRUE(scheduler->Recover().ok());
    scheduler->Start();
    return scheduler;
  }

  static JobRecord Job() {
    JobRecord job;
    job.kind = "ATTRIBUTION";
    job.model = "m";
    job.spec = "two stages";
    return job;
  }

  JobRecord WaitDone(store::JobStore& store, const std::string& id) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    absl::StatusOr<JobRecord> job = store.Get(id);
    while (std::chrono::steady_clock::now() < until && job.ok() && !store::IsTerminal(job->state)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      job = store.Get(id);
    }
    EXPECT_TRUE(job.ok() && job->state == JobState::kSucceeded)
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

}  // namespace
}  // namespace attattr::server
