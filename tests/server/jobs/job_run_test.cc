// JobRun's deadlines (server/jobs/job_run.h) count on the store's clock — the one that stamped the
// job's creation and start — not on this host's. Regression (durability review): they compared the
// host's clock with times another replica stamped, so a replica whose clock was off failed jobs
// early or ran them past their timeout. Here the store's clock reads 1970: on the host's clock
// every deadline below would long have passed.
#include "jobs/job_run.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "attattr/v1/job.pb.h"
#include "jobs/job_events.h"
#include "jobs/job_scheduler.h"
#include "store/sqlite_job_store.h"
#include "support/test_paths.h"

namespace attattr::server {
namespace {

class JobRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteJobStoreOptions options;
    options.path = dir_.path() + "/jobs.db";
    options.clock = [this] { return now_.load(); };
    auto opened = store::SqliteJobStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
  }

  // A RUNNING job created at 1 s and started at 6 s (store time), whose spec asks for timeout_ms.
  store::JobRecord StartJob(int64_t timeout_ms) {
    v1::JobSpec spec;
    spec.set_model("m");
    spec.set_timeout_ms(timeout_ms);
    store::JobRecord record;
    record.kind = "ATTRIBUTION";
    record.model = "m";
    record.spec = spec.SerializeAsString();
    now_ = 1000;
    auto created = store_->Create(record);
    EXPECT_TRUE(created.ok()) << created.status();
    now_ = 6000;
    auto running = store_->MarkRunning(created->record.id);
    EXPECT_TRUE(running.ok()) << running.status();
    return *running;
  }

  ::attattr::testing::TempDir dir_{"attattr-job-run"};
  std::atomic<int64_t> now_{1000};
  std::unique_ptr<store::SqliteJobStore> store_;
  JobEvents events_;
};

TEST_F(JobRunTest, TheSpecsTimeoutCountsFromCreationOnTheStoresClock) {
  const store::JobRecord job = StartJob(10000);  // deadline: 11 s
  JobContext context(*store_, events_, job.id, job.lease_token);
  JobRun run(job, context);
  ASSERT_TRUE(run.Begin().ok());
  EXPECT_FALSE(run.PastDeadline());
  now_ = 10999;
  EXPECT_FALSE(run.ShouldStop());
  now_ = 11000;
  EXPECT_TRUE(run.ShouldStop());
  EXPECT_EQ(run.DeadlineError().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(run.DeadlineError().message().find("spec.timeout_ms = 10000"), std::string::npos);
  // A run that begins past the deadline is refused at once.
  JobRun late(job, context);
  EXPECT_EQ(late.Begin().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(JobRunTest, TheServersBoundCountsFromTheStartOnTheStoresClock) {
  const store::JobRecord job = StartJob(0);  // no timeout of its own
  JobContext context(*store_, events_, job.id, job.lease_token);
  JobRun run(job, context, /*max_run_ms=*/2000);  // started at 6 s: until 8 s
  now_ = 7000;
  ASSERT_TRUE(run.Begin().ok());
  now_ = 7999;
  EXPECT_FALSE(run.PastDeadline());
  now_ = 8000;
  EXPECT_TRUE(run.PastDeadline());
  EXPECT_NE(run.DeadlineError().message().find("--max-job-seconds"), std::string::npos);
}

}  // namespace
}  // namespace attattr::server
