// JobScheduler: the job runners of one server process. Jobs and their queue live in the
// JobStore, which several replicas may share: each of `runners` threads claims the next QUEUED
// job from the store (JobStore::Claim: priority, owners in turns, submission order; owners at
// max_running_per_owner passed over), holding a lease it renews every heartbeat, hands it to the
// JobExecutor (the job kinds' one executor, jobs/job_kinds.h), stores the result and finishes it,
// every write fenced by the lease token. On a shared store a runner also runs shards of jobs split
// across replicas: whichever ranks first, the next shard or the next job (ShardStore::ClaimShard),
// so a split job's shards never wait behind queued jobs of its priority or lower. Runners wake when
// this process submits a job, when another process changes one (OnStoreChange), and every poll
// interval at the latest. The heartbeat also gives jobs whose lease lapsed (their replica died or
// froze) back to the queue — once this process has reached the store without error for a whole
// lease, so that after an outage every replica first renews its own leases. A store that does not
// answer (a failover, a broken connection) is no fault of the job's: a run that computed its result
// keeps trying to store it while it holds the job, and one that cannot split or merge hands the job
// back. Submissions are bounded overall and per owner (a full queue is ResourceExhausted with a
// retry hint), checked by the store where it stores the job, so concurrent ones never overshoot a
// bound and a refused job is never stored. Every change is
// published on JobEvents, and every lifecycle event is one log line with an `audit` field
// (job.submitted, job.started, job.succeeded/failed, job.cancelled, job.deleted, job.requeued)
// and the principal. Cancel and Delete reach a job running here through its JobContext (checked
// by the executor between batches), one running elsewhere through the store (its replica's
// OnStoreChange or heartbeat stops it). Drain stops taking jobs, lets running ones finish within
// a grace period, then stops them and releases them to the queue at once (any replica may take
// them). Thread-safe; Start/Drain/destructor from one owner thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "event_log.h"
#include "jobs/job_events.h"
#include "store/job_store.h"
#include "store/shard_store.h"

namespace attattr::server {

// Why a running job is asked to stop.
enum class StopReason { kNone = 0, kCancelled, kDeleted, kDraining, kLeaseLost };

// What an executor sees of its job: whether to stop, and where to report progress.
class JobContext {
 public:
  // `shard`: the run is of one shard of job `id` (its progress is its completion, not reported
  // here), `lease_token` the shard's.
  JobContext(store::JobStore& store, JobEvents& events, std::string id, int64_t lease_token,
             bool shard = false)
      : store_(store),
        events_(events),
        id_(std::move(id)),
        lease_token_(lease_token),
        shard_(shard) {}
  const std::string& id() const { return id_; }
  // The fencing token of this run (store::JobRecord::lease_token).
  int64_t lease_token() const { return lease_token_; }
  // Now on the store's clock, which stamped the job's times (store::JobStore::NowMs).
  int64_t NowMs() const { return store_.NowMs(); }
  bool ShouldStop() const { return reason_.load() != StopReason::kNone; }
  StopReason reason() const { return reason_.load(); }
  void RequestStop(StopReason reason) {
    auto none = StopReason::kNone;
    reason_.compare_exchange_strong(none, reason);
  }
  // Stores and publishes progress (stage, items done of total). Progress is advisory: a store
  // error is ignored, except that a refused write (the job was cancelled, or its lease lost)
  // asks the run to stop. The record is read back (with its spec) only for local watchers.
  void ReportProgress(const std::string& stage, int64_t done, int64_t total);

 private:
  store::JobStore& store_;
  JobEvents& events_;
  const std::string id_;
  const int64_t lease_token_;
  const bool shard_;
  std::atomic<StopReason> reason_{StopReason::kNone};
};

// Runs one job of one kind; returns the serialized result (JobResult bytes) or the job's error
// (CancelledError when the context asked it to stop).
using JobExecutor =
    std::function<absl::StatusOr<std::string>(const store::JobRecord& job, JobContext& context)>;

// How job kinds split a job across replicas (store/shard_store.h). Without `plan`, or on a store
// of one process, nothing is split.
// A job runs in one or more stages (a study's rankings, then its pruning curves); each stage's
// items are split into shards, and the merge of a stage's results gives the job's result or the
// next stage (with the input its shards need: the rankings, the patterns).
struct StageMerge {
  std::optional<store::ShardStage> next;  // set: split this stage next
  std::string result;                     // else: the job's serialized result
};
struct JobSharding {
  // The first stage of `job`; fewer than two ranges: the job runs whole. Called by the runner
  // that claimed the job.
  std::function<absl::StatusOr<store::ShardStage>(const store::JobRecord& job)> plan;
  // Runs one shard of `job` (shard.stage and shard.input say of what); its serialized partial
  // result (CancelledError when asked to stop). DeadlineExceeded (the job's deadline, counted from
  // its creation or start, not the shard's) fails the job at once: a retry cannot meet it.
  std::function<absl::StatusOr<std::string>(const store::JobRecord& job,
                                            const store::ShardRecord& shard, JobContext& context)>
      run_shard;
  // Merges the results of every shard of stage `stage` (in shard order; `input` is the stage's):
  // the job's result, or its next stage (numbered stage + 1, with at least one range).
  std::function<absl::StatusOr<StageMerge>(const store::JobRecord& job, int32_t stage,
                                           const std::string& input,
                                           const std::vector<std::string>& shard_results)>
      merge;
};

// Metric hooks (all optional): a job left the queue after `seconds`; a job finished in `state`
// after running `seconds`.
struct JobObserver {
  std::function<void(const std::string& kind, double seconds)> on_start;
  std::function<void(const std::string& kind, store::JobState state, double seconds)> on_finish;
  // This process gave a job back to the queue (or failed it) because its holder's lease lapsed.
  std::function<void()> on_lease_takeover;
};

class JobScheduler {
 public:
  struct Options {
    int runners = 2;       // jobs running at once
    int max_queued = 256;  // QUEUED jobs before Submit refuses new ones (0 = no limit)
    // A job found RUNNING at start-up (the process died under it) that has been started this many
    // times already fails instead of running again, so a job that kills the server cannot
    // crash-loop it.
    int max_attempts = 3;
    // What one owner's stored jobs (specs and results) may occupy; a new job that takes its owner
    // past it is refused (0 = no limit).
    int64_t max_stored_bytes_per_owner = 0;
    // QUEUED jobs of one owner before Submit refuses its new ones (0 = no limit but max_queued).
    int max_queued_per_owner = 0;
    // Jobs of one owner running at once, on all replicas (0 = no limit but runners).
    int max_running_per_owner = 0;
    // This process's name in the leases it holds (unique among the replicas of a store).
    std::string holder = "local";
    // A claimed job's lease lasts this long unless renewed; a replica that stops renewing (dead,
    // frozen, cut off from the store) loses its jobs to the others after it.
    std::chrono::milliseconds lease{30000};
    // How often leases are renewed and lapsed ones recovered (well under `lease`).
    std::chrono::milliseconds heartbeat{10000};
    // Idle runners look for work at least this often (a fallback: submissions and other
    // processes' changes wake them at once).
    std::chrono::milliseconds poll{2000};
    // Splitting jobs into shards that every replica's idle runners run (a shared store only).
    JobSharding sharding;
  };

  // Set on the ResourceExhausted of an owner over its stored-bytes quota: waiting does not help
  // (deleting jobs does), so no retry pushback goes with it.
  static constexpr char kQuotaPayload[] = "type.attattr.dev/attattr.StoredBytesQuota";
  // Set on every ResourceExhausted of an owner over one of its own quotas (not the server's
  // capacity); the payload is the quota's name: "queued_jobs" or "stored_bytes".
  static constexpr char kOwnerQuotaPayload[] = "type.attattr.dev/attattr.OwnerQuota";

  JobScheduler(store::JobStore& store, JobEvents& events, JobExecutor executor,
               const Options& options, JobObserver observer, EventLog log);
  ~JobScheduler();
  JobScheduler(const JobScheduler&) = delete;
  JobScheduler& operator=(const JobScheduler&) = delete;

  // At start-up, before Start: on a store of this process alone, RUNNING jobs left by a crash go
  // back to QUEUED — or, once started max_attempts times, end FAILED (INTERNAL, saying so). On a
  // shared store nothing here: the heartbeat recovers the jobs whose lease lapsed once this
  // process has been connected to the store for a lease (the others run on live replicas).
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

  // Another process changed job `id` (now `record`; nullopt when it was deleted): a job running
  // here that was cancelled, deleted or taken over stops; a newly queued one wakes the runners.
  void OnStoreChange(const std::string& id, const std::optional<store::JobRecord>& record);
  // Wakes idle runners to claim (after changes may have been missed).
  void Wake();

  // QUEUED jobs in the store (all replicas'); the last known count when the store is unreachable.
  int QueueDepth() const;
  // Jobs running in this process.
  int Running() const;
  // A hint for clients refused with ResourceExhausted: about how long until a queue slot frees.
  int64_t RetryAfterMs() const;

  // Stops taking queued jobs; running ones get `grace` to finish, then are stopped and re-queued
  // in the store. Joins the runners. Idempotent.
  void Drain(std::chrono::milliseconds grace);

 private:
  // A run of this process: a job, or one shard of a job (running_ keys them "<id>" and
  // "<id>#<shard>").
  struct RunningJob {
    std::shared_ptr<JobContext> context;
    std::string owner;
    std::string job_id;
    std::optional<store::HeldShard> shard;
  };
  // Adds `run` to running_ under `key`, replacing (and stopping) an older run of the same key.
  void Track(const std::string& key, RunningJob run) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `key` from running_ if it is still `context`'s run (a newer run may have replaced it).
  void Untrack(const std::string& key, const std::shared_ptr<JobContext>& context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Loop();
  // A shard of a split job for a runner of this process, unless a queued job ranks first (see
  // ShardStore::ClaimShard); a store error goes to `error` (when it holds none yet).
  std::optional<store::ShardRecord> ClaimShard(const store::ClaimRequest& request,
                                               absl::Status* error);
  void Heartbeat();
  // Gives jobs whose lease lapsed back to the queue (or fails them), logging and publishing.
  absl::Status RecoverLapsed();
  // Records a store error seen by the heartbeat or a claim (a success changes nothing).
  void NoteStoreCall(const absl::Status& status);
  // True once no heartbeat or claim has seen a store error for a whole lease (nor since this
  // scheduler was made): only then are other holders' lapsed leases recovered. After an outage
  // longer than the lease every lease has lapsed; the replicas that come back renew their own
  // within a heartbeat, and only those of replicas that did not are taken over.
  bool ConnectedForALease() const;
  void RunJob(const store::JobRecord& job, const std::shared_ptr<JobContext>& context);
  // Splits `job` when its kind says so, or goes on with the stages an earlier run split; true
  // when its shards run it from now on, or it ended. False: run it whole.
  bool SplitJob(const store::JobRecord& job, const std::shared_ptr<JobContext>& context);
  // Stage `stage` of `job` (held by this runner under `context`) split, or found split; while
  // every shard of the stage is done, merges it into the job's result (finishing the job) or
  // into its next stage, split in turn.
  void RunStages(const store::JobRecord& job, const std::shared_ptr<JobContext>& context,
                 store::ShardStage stage);
  // The stored results of `shards` (one stage's, all done), read again while the store is
  // unreachable, for a lease at most.
  absl::StatusOr<std::vector<std::string>> ShardResults(
      const std::vector<store::ShardRecord>& shards);
  // The results of `shards` (one stage's, all done) merged.
  absl::StatusOr<StageMerge> MergeStage(const store::JobRecord& job,
                                        const std::vector<store::ShardRecord>& shards,
                                        const std::vector<std::string>& results);
  // Runs a claimed shard. False when the store failed before it could start (the shard was
  // handed back): the runner then waits a poll interval before it claims again.
  bool RunShard(const store::ShardRecord& shard);
  // `held` of stage `stage` ran to `result` under `context`: stored, retried or failed; the
  // runner completing a stage's last shard merges the stage (RunStages).
  void FinishShard(const store::JobRecord& job, const store::HeldShard& held, int32_t stage,
                   const absl::StatusOr<std::string>& result, JobContext& context);
  // Hands a held job back to the queue at once (fenced by `lease_token`; the start not counted),
  // trying again for a heartbeat while the store is unreachable. False when it could not: the
  // lease then lapses and recovery re-queues the job (its start counted).
  bool HandBack(const std::string& id, int64_t lease_token);
  // The same for a held shard.
  bool HandBackShard(const store::HeldShard& held);
  // `job`, held by `context`'s run, could not be split, merged or finished (`what`) because the
  // store did not answer (for a lease, or until the run was stopped): handed back (or left to its
  // lease), never failed for it.
  void GiveBack(const store::JobRecord& job, const JobContext& context, const absl::Status& error,
                const char* what);
  // Publishes job `id` as the store has it now (and counts it when it ended: a shard failed it).
  void PublishJob(const std::string& id);
  // Renews this process's job and shard leases, stopping the runs whose lease is gone.
  void RenewLeases();
  // Ends `context`'s run of `running` with `result`: stored and finished (a write the store does
  // not take is tried again while the run holds the job), failed, handed back or left alone,
  // by what stopped it.
  void Finish(const store::JobRecord& running, const absl::StatusOr<std::string>& result,
              JobContext& context);

  store::JobStore& store_;
  JobEvents& events_;
  const JobExecutor executor_;
  const Options options_;
  const JobObserver observer_;
  const EventLog log_;

  mutable absl::Mutex mu_;
  std::map<std::string, RunningJob> running_ ABSL_GUARDED_BY(mu_);  // id -> its run
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // the heartbeat's end (after the runners')
  uint64_t wakes_ ABSL_GUARDED_BY(mu_) = 0;    // bumped by Wake: idle runners claim again
  mutable int last_queue_depth_ ABSL_GUARDED_BY(mu_) = 0;
  double mean_run_seconds_ ABSL_GUARDED_BY(mu_) = 1.0;  // moving average, for RetryAfterMs
  // When a heartbeat or claim last saw the store fail (at first: when this scheduler was made,
  // as nothing says yet how long it has been connected).
  std::chrono::steady_clock::time_point store_error_at_ ABSL_GUARDED_BY(mu_) =
      std::chrono::steady_clock::now();
  // Started by Start, joined by Drain; both from the owner thread.
  std::vector<std::thread> runners_;
  std::thread heartbeat_;
};

}  // namespace attattr::server
