// JobScheduler: the job queue and the job runners. Jobs live in the JobStore (so nothing submitted
// is lost); the scheduler keeps an in-memory priority queue of the QUEUED ones (higher priority
// first; within a priority, owners take turns — fair queueing by rounds, so one principal's
// thousand jobs do not starve another's one — then FIFO), bounded for new submissions, overall
// and per owner (a full queue is ResourceExhausted with a retry hint), and `runners` threads that
// each take the next job, mark it RUNNING, hand it to the JobExecutor (the job kinds' one executor,
// jobs/job_kinds.h), store the result and finish it. Every change is published on JobEvents, and
// every lifecycle event is one log line with an `audit` field (job.submitted, job.started,
// job.succeeded/failed, job.cancelled, job.deleted, job.requeued) and the principal. A runner skips
// jobs whose owner already runs max_running_per_owner. Cancel and Delete reach a running job
// through its JobContext (checked by the executor between batches). Drain stops taking jobs, lets
// running ones finish within a grace period, then stops them and puts them back in the queue
// (QUEUED in the store) for the next start. Thread-safe; Start/Drain/destructor from one owner
// thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "event_log.h"
#include "jobs/job_events.h"
#include "store/job_store.h"

namespace attattr::server {

// Why a running job is asked to stop.
enum class StopReason { kNone = 0, kCancelled, kDeleted, kDraining };

// What an executor sees of its job: whether to stop, and where to report progress.
class JobContext {
 public:
  JobContext(store::JobStore& store, JobEvents& events, std::string id)
      : store_(store), events_(events), id_(std::move(id)) {}
  const std::string& id() const { return id_; }
  bool ShouldStop() const { return reason_.load() != StopReason::kNone; }
  StopReason reason() const { return reason_.load(); }
  void RequestStop(StopReason reason) {
    auto none = StopReason::kNone;
    reason_.compare_exchange_strong(none, reason);
  }
  // Stores and publishes progress (stage, items done of total). Store errors are logged by the
  // caller's next step, not here: progress is advisory.
  void ReportProgress(const std::string& stage, int64_t done, int64_t total);

 private:
  store::JobStore& store_;
  JobEvents& events_;
  const std::string id_;
  std::atomic<StopReason> reason_{StopReason::kNone};
};

// Runs one job of one kind; returns the serialized result (JobResult bytes) or the job's error
// (CancelledError when the context asked it to stop).
using JobExecutor =
    std::function<absl::StatusOr<std::string>(const store::JobRecord& job, JobContext& context)>;

// Metric hooks (all optional): a job left the queue after `seconds`; a job finished in `state`
// after running `seconds`.
struct JobObserver {
  std::function<void(const std::string& kind, double seconds)> on_start;
  std::function<void(const std::string& kind, store::JobState state, double seconds)> on_finish;
};

class JobScheduler {
 public:
  struct Options {
    int runners = 2;       // jobs running at once
    int max_queued = 256;  // QUEUED jobs before Submit refuses new ones
    // A job found RUNNING at start-up (the process died under it) that has been started this many
    // times already fails instead of running again, so a job that kills the server cannot
    // crash-loop it.
    int max_attempts = 3;
    // What one owner's stored jobs (specs and results) may occupy; a new job that takes its owner
    // past it is refused (0 = no limit).
    int64_t max_stored_bytes_per_owner = 0;
    // QUEUED jobs of one owner before Submit refuses its new ones (0 = no limit but max_queued).
    int max_queued_per_owner = 0;
    // Jobs of one owner running at once (0 = no limit but runners).
    int max_running_per_owner = 0;
  };

  // Set on the ResourceExhausted of an owner over its stored-bytes quota: waiting does not help
  // (deleting jobs does), so no retry pushback goes with it.
  static constexpr char kQuotaPayload[] = "type.attattr.dev/attattr.StoredBytesQuota";

  JobScheduler(store::JobStore& store, JobEvents& events, JobExecutor executor,
               const Options& options, JobObserver observer, EventLog log);
  ~JobScheduler();
  JobScheduler(const JobScheduler&) = delete;
  JobScheduler& operator=(const JobScheduler&) = delete;

  // At start-up, before Start: RUNNING jobs left by a crash go back to QUEUED — or, once started
  // max_attempts times, end FAILED (INTERNAL, saying so) — and every QUEUED job in the store joins
  // the queue (not bounded by max_queued: they were admitted before).
  absl::Status Recover();
  void Start();

  // Stores a new job and queues it. Idempotent on record.request_id (the existing job comes back
  // with created = false, even when the queue is full or the owner over its quota).
  // ResourceExhausted when max_queued jobs wait or record.owner has max_queued_per_owner
  // waiting, or (with kQuotaPayload) when the new job takes
  // record.owner past max_stored_bytes_per_owner; Unavailable while draining.
  absl::StatusOr<store::CreateResult> Submit(const store::JobRecord& record);
  // QUEUED/RUNNING -> CANCELLED; a running job stops at its next batch boundary. `by` is the
  // principal asking (for the audit line).
  absl::StatusOr<store::JobRecord> Cancel(const std::string& id, const std::string& by = "");
  // Cancels the job if needed, then removes it and its result.
  absl::Status Delete(const std::string& id, const std::string& by = "");

  int QueueDepth() const;
  int Running() const;
  // A hint for clients refused with ResourceExhausted: about how long until a queue slot frees.
  int64_t RetryAfterMs() const;

  // Stops taking queued jobs; running ones get `grace` to finish, then are stopped and re-queued
  // in the store. Joins the runners. Idempotent.
  void Drain(std::chrono::milliseconds grace);

 private:
  // Queue order: priority descending, then the owner's round (its n-th waiting job is in round
  // n, counted from the round being served when it arrived), then arrival.
  using QueueKey =
      std::tuple<int32_t, int64_t, int64_t, std::string>;  // (-priority, round, seq, id)
  struct Queued {
    QueueKey key;
    std::string owner;
  };
  void Enqueue(const store::JobRecord& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes `id` out of the queue; false when it was not queued.
  bool Dequeue(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first queued job whose owner may start another one; queue_.end() when none.
  std::set<QueueKey>::iterator NextRunnable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Loop();
  void RunJob(const std::string& id);
  void Finish(const store::JobRecord& running, const absl::StatusOr<std::string>& result,
              StopReason reason);
  void Publish(const std::string& id);

  store::JobStore& store_;
  JobEvents& events_;
  const JobExecutor executor_;
  const Options options_;
  const JobObserver observer_;
  const EventLog log_;

  mutable absl::Mutex mu_;
  std::set<QueueKey> queue_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Queued> queued_ ABSL_GUARDED_BY(mu_);  // id -> its key in queue_
  struct RunningJob {
    std::shared_ptr<JobContext> context;
    std::string owner;
  };
  std::map<std::string, RunningJob> running_ ABSL_GUARDED_BY(mu_);  // id -> context
  // Per owner: jobs queued, jobs running, and the round of its last queued job (entries go when
  // an owner has nothing queued or running).
  struct OwnerLoad {
    int queued = 0;
    int running = 0;
    int64_t last_round = 0;
  };
  std::map<std::string, OwnerLoad> owners_ ABSL_GUARDED_BY(mu_);
  int64_t serving_round_ ABSL_GUARDED_BY(mu_) = 0;  // the round of the job started last
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int reserved_ ABSL_GUARDED_BY(mu_) = 0;  // Submit calls between the queue check and Enqueue
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  double mean_run_seconds_ ABSL_GUARDED_BY(mu_) = 1.0;  // moving average, for RetryAfterMs
  // Started by Start, joined by Drain; both from the owner thread.
  std::vector<std::thread> threads_;
};

}  // namespace attattr::server
