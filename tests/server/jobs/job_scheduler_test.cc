// JobScheduler with the real SQLite store: priority order (FIFO within a priority), the bounded
// queue and idempotent submit, cancellation and failure of running jobs, the drain re-queueing a
// running job, and recovery of queued and interrupted jobs by the next scheduler on the same file;
// and, through a store that fails on purpose (faulty_job_store.h), store outages: a result kept
// through one longer than the lease, a job handed back rather than failed when the store stays
// down, hand-backs tried again, other replicas' lapsed leases left alone until this one has been
// connected for a lease, and progress that reads no spec nobody watches. Executors here are small
// test functions: the scheduler is generic over job kinds.
#include "jobs/job_scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "faulty_job_store.h"
#include "store/sqlite_job_store.h"
#include "support/null_event_log.h"
#include "support/test_paths.h"

namespace attattr::server {
namespace {

using store::JobRecord;
using store::JobState;

EventLog NullLog() { return ::attattr::testing::NullEventLog(); }

// Options with `runners` runners and room for `max_queued` queued jobs, the rest defaults.
JobScheduler::Options Opts(int runners, int max_queued) {
  JobScheduler::Options options;
  options.runners = runners;
  options.max_queued = max_queued;
  return options;
}

class JobSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::attattr::testing::MakeTempDir("attattr-sched");
    store_ = OpenStore();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<store::SqliteJobStore> OpenStore() {
    store::SqliteJobStoreOptions o;
    o.path = dir_ + "/jobs.db";
    auto s = store::SqliteJobStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(*s);
  }

  static JobRecord Job(int priority, const std::string& spec, const std::string& request_id = "") {
    JobRecord r;
    r.kind = "ATTRIBUTION";
    r.model = "m";
    r.priority = priority;
    r.spec = spec;
    r.request_id = request_id;
    return r;
  }

  // Polls the store until the job reaches `state` (or 10 s pass).
  JobRecord WaitFor(store::JobStore& s, const std::string& id, JobState state) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      auto r = s.Get(id);
      if (r.ok() && r->state == state) return *r;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    auto r = s.Get(id);
    ADD_FAILURE() << id << " never reached " << store::JobStateName(state) << "; now "
                  << (r.ok() ? store::JobStateName(r->state) : "missing");
    return r.ok() ? *r : JobRecord{};
  }

  std::string dir_;
  std::unique_ptr<store::SqliteJobStore> store_;
  JobEvents events_;
};

// An executor that blocks every job whose spec is "block" until released or stopped.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  std::vector<std::string> order;  // specs in the order they ran
  int stopped = 0;                 // runs that ended because they were asked to stop
  JobExecutor Executor() {
    return [this](const JobRecord& job, JobContext& ctx) -> absl::StatusOr<std::string> {
      std::unique_lock<std::mutex> lock(mu);
      order.push_back(job.spec);
      if (job.spec == "fail") return absl::InvalidArgumentError("spec: bad on purpose");
      if (job.spec == "block") {
        while (!open && !ctx.ShouldStop()) cv.wait_for(lock, std::chrono::milliseconds(5));
        if (ctx.ShouldStop()) {
          ++stopped;
          return absl::CancelledError("stopped");
        }
      }
      ctx.ReportProgress("work", 1, 1);
      return "result of " + job.spec;
    };
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
};

TEST_F(JobSchedulerTest, RunsByPriorityThenFifo) {
  Gate gate;
  JobScheduler s(*store_, events_, gate.Executor(), Opts(1, 16), {}, NullLog());
  s.Start();
  auto first = s.Submit(Job(0, "block"));
  ASSERT_TRUE(first.ok()) << first.status();
  WaitFor(*store_, first->record.id, JobState::kRunning);
  std::vector<std::string> ids;
  for (auto [p, spec] : std::vector<std::pair<int, std::string>>{
           {0, "low-a"}, {5, "high"}, {0, "low-b"}, {2, "mid"}}) {
    auto r = s.Submit(Job(p, spec));
    ASSERT_TRUE(r.ok()) << r.status();
    ids.push_back(r->record.id);
  }
  EXPECT_EQ(s.QueueDepth(), 4);
  gate.Open();
  for (const auto& id : ids) WaitFor(*store_, id, JobState::kSucceeded);
  EXPECT_EQ(gate.order, (std::vector<std::string>{"block", "high", "mid", "low-a", "low-b"}));
  std::string result;
  ASSERT_TRUE(store_
                  ->ReadResult(ids[1],
                               [&](const std::string& c) {
                                 result += c;
                                 return absl::OkStatus();
                               })
                  .ok());
  EXPECT_EQ(result, "result of high");
}

// Within a priority owners take turns (whoever started a job least recently goes first): alice's
// many queued jobs do not starve bob's, whatever the arrival order; per-owner limits refuse a
// fifth queued job.
TEST_F(JobSchedulerTest, OwnersTakeTurnsWithinAPriorityAndHaveTheirOwnLimits) {
  Gate gate;
  JobScheduler::Options options;
  options.runners = 1;
  options.max_queued = 64;
  options.max_queued_per_owner = 4;
  JobScheduler s(*store_, events_, gate.Executor(), options, {}, NullLog());
  s.Start();
  auto owned = [](const std::string& owner, const std::string& spec, int priority = 0) {
    JobRecord r = Job(priority, spec);
    r.owner = owner;
    return r;
  };
  auto first = s.Submit(owned("alice", "block"));
  ASSERT_TRUE(first.ok());
  WaitFor(*store_, first->record.id, JobState::kRunning);
  std::vector<std::string> ids;
  for (const auto& [owner, spec] :
       std::vector<std::pair<std::string, std::string>>{{"alice", "a1"},
                                                        {"alice", "a2"},
                                                        {"alice", "a3"},
                                                        {"alice", "a4"},
                                                        {"bob", "b1"},
                                                        {"bob", "b2"},
                                                        {"carol", "c1"}}) {
    auto r = s.Submit(owned(owner, spec));
    ASSERT_TRUE(r.ok()) << r.status();
    ids.push_back(r->record.id);
  }
  auto over = s.Submit(owned("alice", "a5"));
  ASSERT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(over.status().message().find("--max-queued-jobs-per-principal"), std::string::npos);
  EXPECT_TRUE(s.Submit(owned("dave", "d1", 1)).ok());  // others are still served
  gate.Open();
  for (const auto& id : ids) WaitFor(*store_, id, JobState::kSucceeded);
  EXPECT_EQ(gate.order,
            (std::vector<std::string>{"block", "d1", "b1", "c1", "a1", "b2", "a2", "a3", "a4"}));
}

TEST_F(JobSchedulerTest, AnOwnersRunningJobsAreBounded) {
  Gate gate;
  JobScheduler::Options options;
  options.runners = 2;
  options.max_running_per_owner = 1;
  JobScheduler s(*store_, events_, gate.Executor(), options, {}, NullLog());
  s.Start();
  JobRecord a1 = Job(0, "block");
  a1.owner = "alice";
  JobRecord a2 = a1;
  JobRecord b1 = a1;
  b1.owner = "bob";
  auto first = s.Submit(a1);
  auto second = s.Submit(a2);
  auto bobs = s.Submit(b1);
  ASSERT_TRUE(first.ok() && second.ok() && bobs.ok());
  WaitFor(*store_, first->record.id, JobState::kRunning);
  WaitFor(*store_, bobs->record.id, JobState::kRunning);  // the second runner takes bob's
  EXPECT_EQ(store_->Get(second->record.id)->state, JobState::kQueued);
  gate.Open();
  WaitFor(*store_, second->record.id, JobState::kSucceeded);
}

TEST_F(JobSchedulerTest, FullQueueRefusesNewJobsButHonoursKnownRequestIds) {
  Gate gate;
  JobScheduler s(*store_, events_, gate.Executor(), Opts(1, 2), {}, NullLog());
  s.Start();
  auto running = s.Submit(Job(0, "block"));
  ASSERT_TRUE(running.ok());
  WaitFor(*store_, running->record.id, JobState::kRunning);
  ASSERT_TRUE(s.Submit(Job(0, "a", "req-a")).ok());
  ASSERT_TRUE(s.Submit(Job(0, "b")).ok());
  auto refused = s.Submit(Job(0, "c"));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("--max-queued-jobs"), std::string::npos);
  EXPECT_GE(s.RetryAfterMs(), 100);
  auto again = s.Submit(Job(0, "a", "req-a"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created);
  auto stats = store_->Stats();
  EXPECT_EQ(stats->Count(JobState::kQueued), 2);  // the refused job left nothing behind
  gate.Open();
}

// Regression (hardening review): submit-then-cancel bypassed the queue bound, and cancelled jobs
// stayed stored for the retention period (40 calls grew the store from 4.5 to 144 MiB). An owner's
// stored bytes are bounded: cancelling frees nothing, deleting does, other owners are unaffected.
TEST_F(JobSchedulerTest, AnOwnersStoredBytesAreBoundedAndCancellingDoesNotFreeThem) {
  Gate gate;
  JobScheduler::Options options = Opts(1, 16);
  options.max_stored_bytes_per_owner = 100;
  JobScheduler s(*store_, events_, gate.Executor(), options, {}, NullLog());
  auto job = [](const std::string& owner, const std::string& request_id = "") {
    JobRecord r = Job(0, std::string(60, 'x'), request_id);
    r.owner = owner;
    return r;
  };
  auto first = s.Submit(job("alice", "req-1"));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(s.Cancel(first->record.id).ok());
  auto second = s.Submit(job("alice"));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(second.status().message().find("principal 'alice'"), std::string::npos)
      << second.status();
  EXPECT_NE(second.status().message().find("--max-stored-mib-per-principal"), std::string::npos);
  EXPECT_TRUE(second.status().GetPayload(JobScheduler::kQuotaPayload).has_value());
  EXPECT_EQ(*store_->StoredBytes("alice"), 60);  // the refused job left nothing behind
  // A retry of an accepted submission is answered whatever the quota.
  auto retry = s.Submit(job("alice", "req-1"));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_FALSE(retry->created);
  // Another owner has its own room; deleting frees the first owner's.
  EXPECT_TRUE(s.Submit(job("bob")).ok());
  ASSERT_TRUE(store_->Delete(first->record.id).ok());
  EXPECT_TRUE(s.Submit(job("alice")).ok());
  gate.Open();
}

TEST_F(JobSchedulerTest, CancelStopsARunningJobAndFailureIsRecorded) {
  Gate gate;
  std::atomic<int> finished_cancelled{0};
  JobObserver observer;
  observer.on_finish = [&](const std::string&, JobState state, double) {
    if (state == JobState::kCancelled) ++finished_cancelled;
  };
  JobScheduler s(*store_, events_, gate.Executor(), Opts(1, 16), observer, NullLog());
  std::vector<JobState> seen;
  std::mutex mu;
  auto running = s.Submit(Job(0, "block"));
  ASSERT_TRUE(running.ok());
  events_.Subscribe(running->record.id, [&](JobEvents::Kind, const JobRecord& r, uint64_t) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(r.state);
  });
  s.Start();
  WaitFor(*store_, running->record.id, JobState::kRunning);
  // The executor has started (the store says RUNNING from the claim on, before the run is
  // tracked and announced): the cancel stops a run in progress.
  for (int i = 0; i < 2000; ++i) {
    {
      std::lock_guard<std::mutex> lock(gate.mu);
      if (!gate.order.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto cancelled = s.Cancel(running->record.id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state, JobState::kCancelled);
  auto failing = s.Submit(Job(0, "fail"));
  ASSERT_TRUE(failing.ok());
  auto failed = WaitFor(*store_, failing->record.id, JobState::kFailed);
  EXPECT_EQ(failed.error_code, static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(failed.error_message, "spec: bad on purpose");
  // Cancelling a terminal job is refused, naming its state.
  auto twice = s.Cancel(running->record.id);
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Get(running->record.id)->state, JobState::kCancelled);
  EXPECT_EQ(finished_cancelled.load(), 1);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.front(), JobState::kRunning);
  EXPECT_EQ(seen.back(), JobState::kCancelled);
}

TEST_F(JobSchedulerTest, DrainRequeuesRunningJobsAndTheNextStartRunsEverything) {
  std::string running_id, queued_id;
  {
    Gate gate;
    JobScheduler s(*store_, events_, gate.Executor(), Opts(1, 16), {}, NullLog());
    s.Start();
    auto running = s.Submit(Job(0, "block"));
    auto queued = s.Submit(Job(0, "later"));
    ASSERT_TRUE(running.ok() && queued.ok());
    running_id = running->record.id;
    queued_id = queued->record.id;
    WaitFor(*store_, running_id, JobState::kRunning);
    s.Drain(std::chrono::milliseconds(50));
    EXPECT_EQ(s.Submit(Job(0, "x")).status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(store_->Get(running_id)->state, JobState::kQueued);
    EXPECT_EQ(store_->Get(queued_id)->state, JobState::kQueued);
  }
  // A crash in the middle of a job leaves it RUNNING in the store.
  auto crashed = store_->Create(Job(0, "crashed"));
  ASSERT_TRUE(crashed.ok());
  ASSERT_TRUE(store_->MarkRunning(crashed->record.id).ok());
  store_.reset();

  auto reopened = OpenStore();
  Gate gate;
  gate.Open();
  JobScheduler s(*reopened, events_, gate.Executor(), Opts(1, 16), {}, NullLog());
  ASSERT_TRUE(s.Recover().ok());
  EXPECT_EQ(s.QueueDepth(), 3);
  s.Start();
  for (const auto& id : {running_id, queued_id, crashed->record.id}) {
    auto done = WaitFor(*reopened, id, JobState::kSucceeded);
    EXPECT_GE(done.attempts, 1);
  }
  // The drain handed its start back (only starts a process died under count); the crash did not.
  EXPECT_EQ(reopened->Get(running_id)->attempts, 1);
  EXPECT_EQ(reopened->Get(crashed->record.id)->attempts, 2);
}

TEST_F(JobSchedulerTest, DeleteRemovesQueuedJobsAndTellsSubscribers) {
  Gate gate;
  JobScheduler s(*store_, events_, gate.Executor(), Opts(1, 16), {}, NullLog());
  auto queued = s.Submit(Job(0, "never"));
  ASSERT_TRUE(queued.ok());
  bool deleted = false;
  events_.Subscribe(queued->record.id, [&](JobEvents::Kind kind, const JobRecord&, uint64_t) {
    deleted = kind == JobEvents::Kind::kDeleted;
  });
  ASSERT_TRUE(s.Delete(queued->record.id).ok());
  EXPECT_TRUE(deleted);
  EXPECT_EQ(s.QueueDepth(), 0);
  EXPECT_EQ(store_->Get(queued->record.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.Delete(queued->record.id).code(), absl::StatusCode::kNotFound);
}

// Regression (CI, replicas_test): a change notification read before this replica's own claim
// (the job's record with an older lease token) stopped the run it had just claimed, leaving the
// job held by nobody until its lease lapsed. A newer claim does stop the run, and a run stopped
// while the store still says it holds the job hands the job back at once.
TEST_F(JobSchedulerTest, AStaleChangeDoesNotStopARunButANewerClaimDoes) {
  Gate gate;
  JobScheduler s(*store_, events_, gate.Executor(), Opts(1, 16), {}, NullLog());
  s.Start();
  auto submitted = s.Submit(Job(0, "block"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const JobRecord running = WaitFor(*store_, submitted->record.id, JobState::kRunning);
  JobRecord stale = running;
  stale.state = JobState::kQueued;
  stale.lease_token = running.lease_token - 1;
  s.OnStoreChange(running.id, stale);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(store_->Get(running.id)->lease_token, running.lease_token);  // still this run's
  EXPECT_EQ(store_->Get(running.id)->attempts, 1);
  JobRecord newer = running;
  newer.lease_token = running.lease_token + 1;
  s.OnStoreChange(running.id, newer);
  // Stopped and handed back (the store still said this run held it; the hand-back advances the
  // token and does not count the start): claimed again at once.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store_->Get(running.id)->lease_token < running.lease_token + 2 &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(store_->Get(running.id)->lease_token, running.lease_token + 2);
  EXPECT_EQ(store_->Get(running.id)->attempts, 1);
  gate.Open();
  WaitFor(*store_, running.id, JobState::kSucceeded);
}

// Regression (review): a job re-queued under a run of this process (its lease recovered after
// the process froze) and claimed again by another runner here before the change notification
// came. The newer claim must stop the old run at once, and the old run's end must not untrack
// the new one: it would no longer be renewed, lapse, and be run again until max attempts.
TEST_F(JobSchedulerTest, ANewerClaimOfTheSameJobStopsTheOldRunWhichThenLeavesTheNewOneTracked) {
  Gate gate;
  JobScheduler::Options options = Opts(2, 16);
  options.poll = std::chrono::milliseconds(10);
  JobScheduler s(*store_, events_, gate.Executor(), options, {}, NullLog());
  s.Start();
  auto submitted = s.Submit(Job(0, "block"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const JobRecord first = WaitFor(*store_, submitted->record.id, JobState::kRunning);
  // What lease recovery does (without the notification): back to the queue, token advanced.
  ASSERT_TRUE(store_->Requeue(first.id, first.lease_token).ok());
  // The idle runner claims it again; the old run is stopped (its end is the gate's "stopped").
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    {
      std::lock_guard<std::mutex> lock(gate.mu);
      if (gate.order.size() == 2 && gate.stopped == 1) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  {
    std::lock_guard<std::mutex> lock(gate.mu);
    EXPECT_EQ(gate.order.size(), 2u);
    EXPECT_EQ(gate.stopped, 1);
  }
  const JobRecord second = *store_->Get(first.id);
  EXPECT_EQ(second.state, JobState::kRunning);
  EXPECT_EQ(second.lease_token, first.lease_token + 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the old run's Finish and untrack
  EXPECT_EQ(s.Running(), 1);  // the new run is still tracked (renewed, stoppable)
  gate.Open();
  const JobRecord done = WaitFor(*store_, first.id, JobState::kSucceeded);
  EXPECT_EQ(done.lease_token, second.lease_token);
  EXPECT_EQ(s.Running(), 0);
}

// The store outage options: short leases and heartbeats, so that an outage outlasts a lease.
JobScheduler::Options OutageOpts() {
  JobScheduler::Options options = Opts(1, 16);
  options.lease = std::chrono::milliseconds(300);
  options.heartbeat = std::chrono::milliseconds(50);
  options.poll = std::chrono::milliseconds(20);
  return options;
}

absl::Status Down() { return absl::UnavailableError("the job store is unreachable (test)"); }

// Regression (review): a store that did not take the result for one lease (a failover, a broken
// connection) failed the job for good, "storing the result: ...", throwing the computed result
// away. The run keeps trying while it holds the job (its lease renewed meanwhile), and so does
// the final write.
TEST_F(JobSchedulerTest, AResultIsKeptThroughAStoreOutageLongerThanTheLease) {
  Gate gate;
  gate.Open();
  ::attattr::testing::FaultyJobStore faulty(*store_);
  faulty.FailNext("put_result", Down(), 4);  // 4 tries, 500 ms apart: well past the 300 ms lease
  faulty.FailNext("finish", Down(), 2);
  JobScheduler s(faulty, events_, gate.Executor(), OutageOpts(), {}, NullLog());
  s.Start();
  auto submitted = s.Submit(Job(0, "kept"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const JobRecord done = WaitFor(*store_, submitted->record.id, JobState::kSucceeded);
  EXPECT_EQ(done.attempts, 1);  // not run again
  EXPECT_EQ(faulty.Failures("put_result"), 4);
  EXPECT_EQ(faulty.Failures("finish"), 2);
  std::string result;
  ASSERT_TRUE(store_
                  ->ReadResult(done.id,
                               [&](const std::string& c) {
                                 result += c;
                                 return absl::OkStatus();
                               })
                  .ok());
  EXPECT_EQ(result, "result of kept");
}

// Regression (durability review): Delete stopped the job's local run before the store deleted
// the job, so a delete the store refused left the job RUNNING, held by nobody, to lapse and run
// again. The run now stops only once the job is gone.
TEST_F(JobSchedulerTest, ADeleteTheStoreRefusesLeavesTheRunGoing) {
  Gate gate;
  ::attattr::testing::FaultyJobStore faulty(*store_);
  JobScheduler s(faulty, events_, gate.Executor(), Opts(1, 16), {}, NullLog());
  s.Start();
  auto running = s.Submit(Job(0, "block"));
  ASSERT_TRUE(running.ok());
  const std::string id = running->record.id;
  WaitFor(*store_, id, JobState::kRunning);
  faulty.FailNext("delete", Down());
  EXPECT_TRUE(absl::IsUnavailable(s.Delete(id)));
  gate.Open();
  const JobRecord done = WaitFor(*store_, id, JobState::kSucceeded);
  EXPECT_EQ(done.attempts, 1);
  {
    std::lock_guard<std::mutex> lock(gate.mu);
    EXPECT_EQ(gate.stopped, 0);
  }
  ASSERT_TRUE(s.Delete(id).ok());  // now it goes
  EXPECT_TRUE(absl::IsNotFound(store_->Get(id).status()));
}

// Regression (durability review): a Finish the store refused outright (not an outage, not a lost
// lease) left the job RUNNING until its lease lapsed and it ran again for nothing; it now fails
// with the store's error.
TEST_F(JobSchedulerTest, AFinishTheStoreRefusesFailsTheJobWithTheStoresError) {
  Gate gate;
  gate.Open();
  ::attattr::testing::FaultyJobStore faulty(*store_);
  faulty.FailNext("finish", absl::InternalError("disk I/O error (test)"));
  JobScheduler s(faulty, events_, gate.Executor(), Opts(1, 16), {}, NullLog());
  s.Start();
  auto submitted = s.Submit(Job(0, "refused"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const JobRecord failed = WaitFor(*store_, submitted->record.id, JobState::kFailed);
  EXPECT_EQ(failed.error_code, static_cast<int32_t>(absl::StatusCode::kInternal));
  EXPECT_EQ(failed.error_message, "finishing the job: disk I/O error (test)");
  EXPECT_EQ(faulty.Calls("finish"), 2);
}

// Regression (store review): a Finish that committed SUCCEEDED but whose answer was lost (the
// connection broke after COMMIT) is tried again and refused ("job is SUCCEEDED"); the run then
// returned without publishing, and watchers of the job on this replica waited on.
TEST_F(JobSchedulerTest, AFinishThatCommittedButLostItsAnswerIsStillPublished) {
  Gate gate;
  ::attattr::testing::FaultyJobStore faulty(*store_);
  faulty.FailNextFinishAfterItsWork(Down());
  JobScheduler s(faulty, events_, gate.Executor(), OutageOpts(), {}, NullLog());
  s.Start();
  auto submitted = s.Submit(Job(0, "block"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const std::string id = submitted->record.id;
  absl::Mutex mu;
  std::vector<JobState> seen;
  const JobEvents::Token token =
      events_.Subscribe(id, [&](JobEvents::Kind, const JobRecord& record, uint64_t) {
        absl::MutexLock lock(&mu);
        seen.push_back(record.state);
      });
  gate.Open();
  WaitFor(*store_, id, JobState::kSucceeded);
  const auto published = [&seen] { return !seen.empty() && seen.back() == JobState::kSucceeded; };
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&published), absl::Seconds(10)))
        << "SUCCEEDED was never published";
  }
  events_.Unsubscribe(token);
  EXPECT_EQ(faulty.Calls("finish"), 2);
}

// Regression (review): the same, with a store that stays down until the run is stopped (here by
// a drain): the job goes back to the queue, its start not counted, instead of FAILED.
TEST_F(JobSchedulerTest, AStoreThatStaysDownHandsTheJobBackRatherThanFailingIt) {
  Gate gate;
  gate.Open();
  ::attattr::testing::FaultyJobStore faulty(*store_);
  faulty.FailAlways("put_result", Down());
  JobScheduler s(faulty, events_, gate.Executor(), OutageOpts(), {}, NullLog());
  s.Start();
  auto submitted = s.Submit(Job(0, "computed"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (faulty.Failures("put_result") < 3 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(store_->Get(submitted->record.id)->state, JobState::kRunning);  // still trying
  s.Drain(std::chrono::milliseconds(100));
  const JobRecord after = *store_->Get(submitted->record.id);
  EXPECT_EQ(after.state, JobState::kQueued);
  EXPECT_EQ(after.attempts, 0);
  EXPECT_EQ(after.error_code, 0);
}

// Regression (review): a drain's hand-back was tried once; a store that missed it left the job
// RUNNING under a lease nobody renewed, to be recovered a lease later with a start counted.
TEST_F(JobSchedulerTest, ADrainsHandBackIsTriedAgainWhileTheStoreDoesNotAnswer) {
  Gate gate;
  ::attattr::testing::FaultyJobStore faulty(*store_);
  JobScheduler s(faulty, events_, gate.Executor(), Opts(1, 16), {}, NullLog());
  s.Start();
  auto submitted = s.Submit(Job(0, "block"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  WaitFor(*store_, submitted->record.id, JobState::kRunning);
  faulty.FailNext("requeue", Down(), 2);
  s.Drain(std::chrono::milliseconds(50));
  EXPECT_EQ(faulty.Failures("requeue"), 2);
  const JobRecord after = *store_->Get(submitted->record.id);
  EXPECT_EQ(after.state, JobState::kQueued);
  EXPECT_EQ(after.attempts, 0);
}

// Regression (review): every progress report read the whole job back, spec included (megabytes
// at times, several times a second per running job), to publish it to no one. It is read only
// for a local watcher, who gets the whole record.
TEST_F(JobSchedulerTest, ProgressReportsReadTheSpecOnlyForLocalWatchers) {
  ::attattr::testing::FaultyJobStore faulty(*store_);
  JobExecutor reporting = [](const JobRecord& job, JobContext& ctx) -> absl::StatusOr<std::string> {
    for (int i = 1; i <= 5; ++i) ctx.ReportProgress("work", i, 5);
    return job.spec;
  };
  JobScheduler s(faulty, events_, reporting, Opts(1, 16), {}, NullLog());
  auto unwatched = s.Submit(Job(0, "unwatched spec"));
  auto watched = s.Submit(Job(0, "watched spec"));
  ASSERT_TRUE(unwatched.ok() && watched.ok());
  std::mutex mu;
  std::vector<JobRecord> seen;
  events_.Subscribe(watched->record.id, [&](JobEvents::Kind, const JobRecord& r, uint64_t) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(r);
  });
  s.Start();
  WaitFor(*store_, unwatched->record.id, JobState::kSucceeded);
  WaitFor(*store_, watched->record.id, JobState::kSucceeded);
  EXPECT_EQ(faulty.Calls("get+spec"), 5);  // one per report of the watched job, none otherwise
  std::lock_guard<std::mutex> lock(mu);
  bool progress_with_spec = false;
  for (const JobRecord& r : seen) {
    progress_with_spec = progress_with_spec || (r.progress.done > 0 && r.spec == "watched spec");
  }
  EXPECT_TRUE(progress_with_spec);
}

// Regression (review): after a store outage longer than the lease, the first replica back renewed
// its own leases and then took every other replica's over (they had lapsed in the outage too),
// counting a start each time: three outages failed jobs no server had stopped. A replica takes
// lapsed leases over only once it has reached the store without error for a whole lease; the
// others renew theirs meanwhile (a lapsed lease nobody took is still theirs). A replica that
// does not come back still loses its jobs.
TEST_F(JobSchedulerTest, AReplicaBackFromAnOutageLeavesOtherReplicasLeasesToThem) {
  Gate gate;
  gate.Open();
  ::attattr::testing::FaultyJobStore faulty(*store_);
  JobScheduler::Options options = OutageOpts();
  options.holder = "me";
  options.lease = std::chrono::milliseconds(2000);
  faulty.FailAlways("*", Down());
  JobScheduler s(faulty, events_, gate.Executor(), options, {}, NullLog());
  s.Start();
  // Two other replicas' jobs, whose leases lapse during the outage.
  auto theirs = store_->Create(Job(0, "theirs"));
  auto gone = store_->Create(Job(0, "gone"));
  ASSERT_TRUE(theirs.ok() && gone.ok());
  const JobRecord held = **store_->Claim({"other", 200, 0});
  const JobRecord lost = **store_->Claim({"dead", 200, 0});
  ASSERT_EQ(held.id, theirs->record.id);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  faulty.Heal("*");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // back for half a lease
  JobRecord now = *store_->Get(held.id);
  EXPECT_EQ(now.state, JobState::kRunning);
  EXPECT_EQ(now.lease_holder, "other");
  EXPECT_EQ(now.lease_token, held.lease_token);
  // "other" is back too: its lapsed lease, which nobody took, is renewed.
  auto renewed = store_->RenewLeases("other", {{held.id, held.lease_token}}, 60000);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_TRUE(renewed->empty());
  // "dead" never comes back: once this replica has been connected for a lease, its job is
  // recovered (and run here); "other"'s is left alone.
  WaitFor(*store_, lost.id, JobState::kSucceeded);
  now = *store_->Get(held.id);
  EXPECT_EQ(now.state, JobState::kRunning);
  EXPECT_EQ(now.lease_holder, "other");
  EXPECT_EQ(now.lease_token, held.lease_token);
  EXPECT_EQ(now.attempts, 1);
}

}  // namespace
}  // namespace attattr::server
