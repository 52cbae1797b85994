// JobScheduler (see job_scheduler.h).
#include "jobs/job_scheduler.h"

#include <algorithm>
#include <exception>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "attattr/base/status_macros.h"
#include "store/job_store_rules.h"

namespace attattr::server {
namespace {

using Clock = std::chrono::steady_clock;

// Runs a store write again while the store is unreachable, for at most `budget` (a lease: after
// that the work is another replica's).
template <typename Write>
auto RetryWhileUnavailable(std::chrono::milliseconds budget, Write&& write) -> decltype(write()) {
  const auto until = Clock::now() + budget;
  for (;;) {
    auto result = write();
    if (!absl::IsUnavailable(StatusOf(result)) || Clock::now() >= until) return result;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// Runs a store write again while the store is unreachable and `context`'s run has not been asked
// to stop, however long that takes: the heartbeat renews the run's lease meanwhile (a lapsed one
// too, while nobody took it) and stops the run once the lease is lost; a drain, a cancel or a
// delete stop it as well. What the run computed is kept through an outage of any length, and
// never written over another run's work (every such write is fenced by the lease token).
template <typename Write>
auto RetryWhileHeld(const JobContext& context, Write&& write) -> decltype(write()) {
  for (;;) {
    auto result = write();
    if (!absl::IsUnavailable(StatusOf(result)) || context.ShouldStop()) return result;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

double Seconds(int64_t from_ms, int64_t to_ms) {
  return from_ms > 0 && to_ms >= from_ms ? (to_ms - from_ms) / 1000.0 : 0.0;
}

}  // namespace

void JobContext::ReportProgress(const std::string& stage, int64_t done, int64_t total) {
  if (shard_) return;  // a shard's progress is its completion (ShardStore::CompleteShard)
  absl::Status stored =
      store_.UpdateProgress(id_, store::JobProgress{stage, done, total}, lease_token_);
  if (absl::IsFailedPrecondition(stored)) RequestStop(StopReason::kLeaseLost);
  if (!stored.ok()) return;
  // Only watchers here need the record back, and they get it whole (their answers show the
  // spec); without one nothing is read — a spec can be megabytes, and progress comes several
  // times a second from every running job.
  if (!events_.HasSubscribers(id_)) return;
  auto record = store_.Get(id_);
  if (record.ok()) events_.Publish(*record);
}

JobScheduler::JobScheduler(store::JobStore& store, JobEvents& events, JobExecutor executor,
                           const Options& options, JobObserver observer, EventLog log)
    : store_(store),
      events_(events),
      executor_(std::move(executor)),
      options_(options),
      observer_(std::move(observer)),
      log_(std::move(log)) {}

JobScheduler::~JobScheduler() { Drain(std::chrono::milliseconds(0)); }

absl::Status JobScheduler::Recover() {
  // Other replicas may be alive, and this one has only just reached the store: the heartbeat
  // takes their lapsed leases over once it has been connected for a lease (ConnectedForALease).
  if (store_.Shared()) return absl::OkStatus();
  ATTATTR_ASSIGN_OR_RETURN(auto changed, store_.RequeueInterrupted(options_.max_attempts));
  for (const store::JobRecord& job : changed) {
    if (job.state == store::JobState::kQueued) {
      log_.Warn("job was running when the server stopped; re-queued", {{"audit", "job.requeued"},
                                                                       {"principal", job.owner},
                                                                       {"job_id", job.id},
                                                                       {"attempt", job.attempts}});
      continue;
    }
    // A poison job: every start so far ended with the process dying under it.
    log_.Error("job failed: the server stopped under it every time it ran",
               {{"audit", "job.failed"},
                {"principal", job.owner},
                {"job_id", job.id},
                {"attempts", job.attempts}});
    if (observer_.on_finish) observer_.on_finish(job.kind, job.state, 0.0);
  }
  return absl::OkStatus();
}

absl::Status JobScheduler::RecoverLapsed() {
  ATTATTR_ASSIGN_OR_RETURN(auto changed, store_.RecoverExpiredLeases(options_.max_attempts));
  for (const store::JobRecord& job : changed) {
    if (observer_.on_lease_takeover) observer_.on_lease_takeover();
    if (job.state == store::JobState::kQueued) {
      log_.Warn("job's lease lapsed (its replica stopped renewing it); re-queued",
                {{"audit", "job.requeued"},
                 {"principal", job.owner},
                 {"job_id", job.id},
                 {"attempt", job.attempts}});
    } else {
      log_.Error("job failed: its replica stopped under it every time it ran",
                 {{"audit", "job.failed"},
                  {"principal", job.owner},
                  {"job_id", job.id},
                  {"attempts", job.attempts}});
      if (observer_.on_finish) observer_.on_finish(job.kind, job.state, 0.0);
    }
    events_.Publish(job);
  }
  bool requeued_shards = false;
  if (store_.shards() != nullptr) {
    ATTATTR_ASSIGN_OR_RETURN(auto shards,
                             store_.shards()->RecoverExpiredShardLeases(options_.max_attempts));
    for (const store::ShardRecord& shard : shards) {
      if (observer_.on_lease_takeover) observer_.on_lease_takeover();
      log_.Warn(shard.state == store::ShardState::kQueued
                    ? "shard's lease lapsed (its replica stopped renewing it); re-queued"
                    : "shard failed: its replica stopped under it every time; the job fails",
                {{"job_id", shard.job_id}, {"shard", shard.index}, {"attempt", shard.attempts}});
      requeued_shards = requeued_shards || shard.state == store::ShardState::kQueued;
      if (shard.state == store::ShardState::kFailed) PublishJob(shard.job_id);
    }
  }
  if (!changed.empty() || requeued_shards) Wake();
  return absl::OkStatus();
}

void JobScheduler::PublishJob(const std::string& id) {
  // The spec only for watchers here (see JobContext::ReportProgress).
  absl::StatusOr<store::JobRecord> job = store_.Get(id, events_.HasSubscribers(id));
  if (!job.ok()) return;
  events_.Publish(*job);
  if (store::IsTerminal(job->state) && observer_.on_finish) {
    observer_.on_finish(job->kind, job->state, Seconds(job->start_time_ms, job->end_time_ms));
  }
}

void JobScheduler::RenewLeases() {
  std::vector<store::HeldLease> jobs;
  std::vector<store::HeldShard> shards;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, run] : running_) {
      if (run.shard.has_value()) {
        shards.push_back(*run.shard);
      } else {
        jobs.push_back({run.job_id, run.context->lease_token()});
      }
    }
  }
  std::vector<std::string> lost_keys;
  absl::StatusOr<std::vector<std::string>> lost =
      store_.RenewLeases(options_.holder, jobs, options_.lease.count());
  NoteStoreCall(lost.status());
  if (!lost.ok()) {
    log_.Warn("cannot renew job leases", {{"error", lost.status().message()}});
  } else {
    lost_keys = *lost;
  }
  if (!shards.empty() && store_.shards() != nullptr) {
    absl::StatusOr<std::vector<store::HeldShard>> lost_shards =
        store_.shards()->RenewShardLeases(options_.holder, shards, options_.lease.count());
    NoteStoreCall(lost_shards.status());
    if (!lost_shards.ok()) {
      log_.Warn("cannot renew shard leases", {{"error", lost_shards.status().message()}});
    } else {
      for (const store::HeldShard& s : *lost_shards) {
        lost_keys.push_back(absl::StrCat(s.job_id, "#", s.index));
      }
    }
  }
  absl::MutexLock lock(&mu_);
  for (const std::string& key : lost_keys) {
    auto it = running_.find(key);
    // Finished, cancelled or deleted elsewhere, or taken over after this process froze.
    if (it != running_.end()) it->second.context->RequestStop(StopReason::kLeaseLost);
  }
}

void JobScheduler::Track(const std::string& key, RunningJob run) {
  auto [it, inserted] = running_.try_emplace(key, run);
  if (inserted) return;
  // A run of the same job (or shard) is still here: the store gave this claim a newer lease, so
  // that one lost it (its writes are refused); it is asked to stop and no longer tracked.
  it->second.context->RequestStop(StopReason::kLeaseLost);
  it->second = std::move(run);
}

void JobScheduler::Untrack(const std::string& key, const std::shared_ptr<JobContext>& context) {
  auto it = running_.find(key);
  if (it != running_.end() && it->second.context == context) running_.erase(it);
}

void JobScheduler::Start() {
  for (int i = 0; i < options_.runners; ++i) runners_.emplace_back([this] { Loop(); });
  heartbeat_ = std::thread([this] { Heartbeat(); });
}

void JobScheduler::Wake() {
  absl::MutexLock lock(&mu_);
  ++wakes_;
}

void JobScheduler::OnStoreChange(const std::string& id,
                                 const std::optional<store::JobRecord>& record) {
  if (record.has_value() && record->state == store::JobState::kQueued) Wake();
  absl::MutexLock lock(&mu_);
  for (auto& [key, run] : running_) {
    if (run.job_id != id) continue;
    JobContext& context = *run.context;
    if (!record.has_value()) {
      context.RequestStop(StopReason::kDeleted);
    } else if (store::IsTerminal(record->state)) {
      // Cancelled under this run's lease: a cancel. Ended any other way, or under a newer lease
      // (finished by the replica that took the job over, failed after lapsed leases): this run
      // no longer holds it — it must not count the job as cancelled, and it says so in its log.
      const bool cancel = run.shard.has_value() || (record->state == store::JobState::kCancelled &&
                                                    record->lease_token <= context.lease_token());
      context.RequestStop(cancel ? StopReason::kCancelled : StopReason::kLeaseLost);
    } else if (!run.shard.has_value() && record->lease_token > context.lease_token()) {
      // Claimed again since (tokens only grow): a record read before this run's own claim
      // (older token) is no reason to stop.
      context.RequestStop(StopReason::kLeaseLost);
    }
  }
}

namespace {

// "12.5 MiB".
std::string FormatBytes(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

}  // namespace

absl::StatusOr<store::CreateResult> JobScheduler::Submit(const store::JobRecord& record) {
  {
    absl::MutexLock lock(&mu_);
    if (draining_) {
      return absl::UnavailableError("the server is draining (shutting down); submit elsewhere");
    }
  }
  // The store checks the limits in the transaction that stores the job: a refused job is never
  // stored (no replica can claim it, no retry finds it), and submissions racing on several
  // replicas cannot overshoot them. A retry of a stored submission is answered whatever they say.
  store::AdmissionLimits limits;
  limits.max_queued = options_.max_queued;
  limits.max_queued_per_owner = options_.max_queued_per_owner;
  limits.max_stored_bytes_per_owner = options_.max_stored_bytes_per_owner;
  auto created = store_.Create(record, limits);
  if (!created.ok()) return created.status();
  switch (created->refused) {
    case store::Refusal::kNone:
      break;
    case store::Refusal::kQueueFull:
      return absl::ResourceExhaustedError(absl::StrCat(
          "the job queue is full (", options_.max_queued, " jobs waiting, --max-queued-jobs)"));
    case store::Refusal::kOwnerQueueFull: {
      absl::Status over = absl::ResourceExhaustedError(
          absl::StrCat("principal '", record.owner, "' has ", created->counts.owner_queued,
                       " jobs waiting to run (--max-queued-jobs-per-principal ",
                       options_.max_queued_per_owner, ")"));
      over.SetPayload(kOwnerQuotaPayload, absl::Cord("queued_jobs"));
      return over;
    }
    case store::Refusal::kOwnerStorageFull: {
      absl::Status over = absl::ResourceExhaustedError(absl::StrCat(
          "principal '", record.owner, "' would store ", FormatBytes(created->owner_stored_bytes),
          " of jobs (specs, results and the result estimates of unfinished jobs), above "
          "--max-stored-mib-per-principal (",
          FormatBytes(options_.max_stored_bytes_per_owner),
          "); delete finished or cancelled jobs (DeleteJob) to make room"));
      over.SetPayload(kQuotaPayload, absl::Cord());
      over.SetPayload(kOwnerQuotaPayload, absl::Cord("stored_bytes"));
      return over;
    }
  }
  if (!created->created) return created;  // the same request_id: the existing job
  Wake();
  log_.Info("job submitted", {{"audit", "job.submitted"},
                              {"principal", record.owner},
                              {"job_id", created->record.id},
                              {"kind", created->record.kind},
                              {"model", created->record.model},
                              {"priority", int64_t{created->record.priority}}});
  return created;
}

absl::StatusOr<store::JobRecord> JobScheduler::Cancel(const std::string& id,
                                                      const std::string& by) {
  auto record = store_.Cancel(id);
  if (!record.ok()) return record;
  bool ran_here = false;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, run] : running_) {
      if (run.job_id != id) continue;  // the job, or a shard of it
      run.context->RequestStop(StopReason::kCancelled);
      ran_here = ran_here || !run.shard.has_value();
    }
  }
  // A job that was queued ends here; a running one ends in its runner's Finish (this process's
  // or another replica's, which counts it there).
  const bool was_queued = !ran_here && record->lease_holder.empty();
  if (was_queued && observer_.on_finish) {
    observer_.on_finish(record->kind, store::JobState::kCancelled, 0.0);
  }
  log_.Info("job cancelled", {{"audit", "job.cancelled"},
                              {"principal", by.empty() ? record->owner : by},
                              {"owner", record->owner},
                              {"job_id", id}});
  events_.Publish(*record);
  return record;
}

absl::Status JobScheduler::Delete(const std::string& id, const std::string& by) {
  // The owner for the audit line; watchers of a deleted job need no spec either.
  ATTATTR_ASSIGN_OR_RETURN(auto record, store_.Get(id, /*include_spec=*/false));
  // Gone from the store first, then the runs here stop: a delete the store refuses (an outage)
  // leaves the job running and held, not abandoned to lapse and run again (regression,
  // durability review). A run writing meanwhile finds the job gone (NotFound) and stops there.
  ATTATTR_RETURN_IF_ERROR(store_.Delete(id));
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, run] : running_) {
      if (run.job_id == id) run.context->RequestStop(StopReason::kDeleted);
    }
  }
  log_.Info("job deleted", {{"audit", "job.deleted"},
                            {"principal", by.empty() ? record.owner : by},
                            {"owner", record.owner},
                            {"job_id", id}});
  events_.Publish(record, JobEvents::Kind::kDeleted);
  return absl::OkStatus();
}

int JobScheduler::QueueDepth() const {
  absl::StatusOr<store::QueueCounts> counts = store_.CountQueued("");
  absl::MutexLock lock(&mu_);
  if (counts.ok()) last_queue_depth_ = static_cast<int>(counts->queued);
  return last_queue_depth_;
}

int JobScheduler::Running() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(running_.size());
}

int64_t JobScheduler::RetryAfterMs() const {
  absl::MutexLock lock(&mu_);
  // One queue slot frees when one of the runners finishes its job.
  const double seconds = mean_run_seconds_ / std::max(1, options_.runners);
  return std::clamp<int64_t>(static_cast<int64_t>(seconds * 1000), 100, 600000);
}

std::optional<store::ShardRecord> JobScheduler::ClaimShard(const store::ClaimRequest& request,
                                                           absl::Status* error) {
  absl::StatusOr<std::optional<store::ShardRecord>> shard = store_.shards()->ClaimShard(request);
  NoteStoreCall(shard.status());
  if (!shard.ok()) {
    if (error->ok()) *error = shard.status();
    return std::nullopt;
  }
  return *std::move(shard);
}

void JobScheduler::Loop() {
  const bool shards = store_.shards() != nullptr && static_cast<bool>(options_.sharding.run_shard);
  const store::ClaimRequest request{options_.holder, options_.lease.count(),
                                    options_.max_running_per_owner};
  bool claim_failed_before = false;
  while (true) {
    uint64_t seen = 0;
    {
      absl::MutexLock lock(&mu_);
      if (draining_) return;
      seen = wakes_;
    }
    // Whichever ranks first: a shard of a split job unless a queued job outranks it (the store
    // declines the shard then), else the next job — or, when no job came, a shard after all (the
    // job that outranked it went to another runner meanwhile).
    absl::Status claim_error;
    std::optional<store::ShardRecord> shard;
    std::optional<store::JobRecord> claimed;
    if (shards) shard = ClaimShard(request, &claim_error);
    if (!shard.has_value()) {
      absl::StatusOr<std::optional<store::JobRecord>> job = store_.Claim(request);
      NoteStoreCall(job.status());
      if (job.ok()) {
        claimed = *std::move(job);
        if (!claimed.has_value() && shards) shard = ClaimShard(request, &claim_error);
      } else if (claim_error.ok()) {
        claim_error = job.status();
      }
    }
    if (!claim_error.ok() && !claim_failed_before) {
      log_.Warn("cannot claim jobs from the store; retrying", {{"error", claim_error.message()}});
    }
    claim_failed_before = !claim_error.ok();
    if (shard.has_value()) {
      if (RunShard(*shard)) continue;
    } else if (claimed.has_value()) {
      const store::JobRecord job = *std::move(claimed);
      auto context = std::make_shared<JobContext>(store_, events_, job.id, job.lease_token);
      {
        absl::MutexLock lock(&mu_);
        if (!draining_) Track(job.id, RunningJob{context, job.owner, job.id, std::nullopt});
      }
      if (context.use_count() == 1) {  // claimed as the drain began: back to the queue at once
        (void)HandBack(job.id, job.lease_token);
        return;
      }
      // A Cancel between the claim and Track found no run to stop: the store tells (Cancel
      // writes the store before it looks for runs, this reads it after tracking the run).
      if (auto now = store_.Get(job.id, /*include_spec=*/false);
          now.ok() &&
          (now->state != store::JobState::kRunning || now->lease_token != job.lease_token)) {
        context->RequestStop(now->state == store::JobState::kCancelled ? StopReason::kCancelled
                                                                       : StopReason::kLeaseLost);
      }
      RunJob(job, context);
      absl::MutexLock lock(&mu_);
      Untrack(job.id, context);  // Drain waits for running_ to empty
      continue;
    }
    absl::MutexLock lock(&mu_);
    const auto woken = [this, seen]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // under mu_ (Await)
      return draining_ || wakes_ != seen;
    };
    mu_.AwaitWithTimeout(absl::Condition(&woken), absl::FromChrono(options_.poll));
  }
}

void JobScheduler::NoteStoreCall(const absl::Status& status) {
  if (status.ok()) return;
  absl::MutexLock lock(&mu_);
  store_error_at_ = Clock::now();
}

bool JobScheduler::ConnectedForALease() const {
  absl::MutexLock lock(&mu_);
  return Clock::now() - store_error_at_ >= options_.lease;
}

void JobScheduler::Heartbeat() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const auto stopped = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopped_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopped), absl::FromChrono(options_.heartbeat));
      if (stopped_) return;
    }
    RenewLeases();
    if (!ConnectedForALease()) {
      // Just back from an outage (or just started): other replicas cut off with this one may be
      // renewing their lapsed leases right now, so none is taken over yet. A cheap read keeps
      // watching the store meanwhile (renewals make no call when nothing runs here).
      NoteStoreCall(store_.CountQueued("").status());
      continue;
    }
    absl::Status recovered = RecoverLapsed();
    NoteStoreCall(recovered);
    if (!recovered.ok()) {
      log_.Warn("cannot recover jobs whose lease lapsed", {{"error", recovered.message()}});
    }
  }
}

void JobScheduler::RunJob(const store::JobRecord& job, const std::shared_ptr<JobContext>& context) {
  if (observer_.on_start) {
    observer_.on_start(job.kind, Seconds(job.create_time_ms, job.start_time_ms));
  }
  log_.Info("job started", {{"audit", "job.started"},
                            {"principal", job.owner},
                            {"job_id", job.id},
                            {"kind", job.kind},
                            {"model", job.model},
                            {"attempt", int64_t{job.attempts}}});
  events_.Publish(job);
  if (SplitJob(job, context)) return;
  absl::StatusOr<std::string> result = absl::InternalError("executor did not run");
  try {
    result = executor_(job, *context);
  } catch (const std::exception& e) {
    result = absl::InternalError(absl::StrCat("job failed: ", e.what()));
  }
  Finish(job, result, *context);
}

bool JobScheduler::SplitJob(const store::JobRecord& job,
                            const std::shared_ptr<JobContext>& context) {
  if (store_.shards() == nullptr || !options_.sharding.plan) return false;
  absl::StatusOr<std::vector<store::ShardRecord>> existing =
      RetryWhileUnavailable(options_.lease, [&] { return store_.shards()->ListShards(job.id); });
  if (absl::IsUnavailable(existing.status())) {
    GiveBack(job, *context, existing.status(), "reading its shards");
    return true;
  }
  if (!existing.ok()) {
    Finish(job, existing.status(), *context);
    return true;
  }
  if (!existing->empty()) {
    // Split by an earlier run whose merge did not finish: on from its latest stage.
    RunStages(job, context, {existing->back().stage, "", {}, ""});
    return true;
  }
  absl::StatusOr<store::ShardStage> plan = options_.sharding.plan(job);
  if (plan.ok() && plan->ranges.size() < 2) return false;
  if (!plan.ok()) {
    Finish(job, plan.status(), *context);
    return true;
  }
  RunStages(job, context, *std::move(plan));
  return true;
}

void JobScheduler::RunStages(const store::JobRecord& job,
                             const std::shared_ptr<JobContext>& context, store::ShardStage stage) {
  for (;;) {
    // Splitting a stage again gives the shards the first split made, so a retry is safe.
    absl::StatusOr<std::vector<store::ShardRecord>> shards = RetryWhileUnavailable(
        options_.lease,
        [&] { return store_.shards()->SplitJob(job.id, context->lease_token(), stage); });
    if (!shards.ok()) {
      if (absl::IsFailedPrecondition(shards.status()) || absl::IsNotFound(shards.status())) {
        return;  // cancelled, deleted or taken over meanwhile
      }
      if (absl::IsUnavailable(shards.status())) {
        GiveBack(job, *context, shards.status(), "splitting it");
        return;
      }
      Finish(job, shards.status(), *context);  // the stage itself is wrong: the job's error
      return;
    }
    const bool all_done = std::all_of(shards->begin(), shards->end(), [](const auto& shard) {
      return shard.state == store::ShardState::kSucceeded;
    });
    if (!all_done) {
      log_.Info("job split into shards that every replica runs",
                {{"job_id", job.id},
                 {"stage", int64_t{stage.stage}},
                 {"shards", shards->size()},
                 {"items", shards->back().items.end}});
      PublishJob(job.id);
      Wake();
      return;
    }
    absl::StatusOr<std::vector<std::string>> results = ShardResults(*shards);
    if (absl::IsUnavailable(results.status())) {
      GiveBack(job, *context, results.status(), "reading its shards' results");
      return;
    }
    absl::StatusOr<StageMerge> merged = results.ok() ? MergeStage(job, *shards, *results)
                                                     : absl::StatusOr<StageMerge>(results.status());
    if (!merged.ok() || !merged->next.has_value()) {
      Finish(job,
             merged.ok() ? absl::StatusOr<std::string>(std::move(merged->result)) : merged.status(),
             *context);
      return;
    }
    if (context->ShouldStop()) {
      Finish(job, absl::CancelledError("stopped between stages"), *context);
      return;
    }
    stage = *std::move(merged->next);
  }
}

absl::StatusOr<std::vector<std::string>> JobScheduler::ShardResults(
    const std::vector<store::ShardRecord>& shards) {
  std::vector<std::string> results;
  results.reserve(shards.size());
  for (const store::ShardRecord& shard : shards) {
    ATTATTR_ASSIGN_OR_RETURN(std::string result, RetryWhileUnavailable(options_.lease, [&] {
                               return store_.shards()->GetShardResult(shard.job_id, shard.index);
                             }));
    results.push_back(std::move(result));
  }
  return results;
}

absl::StatusOr<StageMerge> JobScheduler::MergeStage(const store::JobRecord& job,
                                                    const std::vector<store::ShardRecord>& shards,
                                                    const std::vector<std::string>& results) {
  const int32_t stage = shards.empty() ? 0 : shards.front().stage;
  ATTATTR_ASSIGN_OR_RETURN(
      StageMerge merged,
      options_.sharding.merge(job, stage, shards.empty() ? "" : shards.front().input, results));
  if (merged.next.has_value() && (merged.next->stage != stage + 1 || merged.next->ranges.empty())) {
    return absl::InternalError(absl::StrCat("merging stage ", stage, " gave no valid next stage"));
  }
  return merged;
}

bool JobScheduler::RunShard(const store::ShardRecord& shard) {
  const store::HeldShard held{shard.job_id, shard.index, shard.lease_token};
  absl::StatusOr<store::JobRecord> job =
      RetryWhileUnavailable(options_.heartbeat, [&] { return store_.Get(shard.job_id); });
  if (absl::IsNotFound(job.status())) return true;  // deleted meanwhile: the shard went with it
  if (!job.ok()) {
    // Back to the queue now (its start not counted), rather than held unrenewed until its lease
    // lapses and counted as a start a replica died under.
    const bool released = HandBackShard(held);
    log_.Warn("shard handed back: its job could not be read from the store",
              {{"job_id", shard.job_id},
               {"shard", shard.index},
               {"error", job.status().message()},
               {"released", released}});
    return false;
  }
  auto context =
      std::make_shared<JobContext>(store_, events_, job->id, shard.lease_token, /*shard=*/true);
  bool draining = false;
  {
    absl::MutexLock lock(&mu_);
    draining = draining_;
    if (!draining) {
      Track(absl::StrCat(shard.job_id, "#", shard.index),
            RunningJob{context, job->owner, job->id, held});
    }
  }
  if (draining) {
    (void)HandBackShard(held);
    return true;
  }
  log_.Debug("shard started", {{"job_id", job->id},
                               {"shard", shard.index},
                               {"items", absl::StrCat(shard.items.begin, "..", shard.items.end)},
                               {"attempt", shard.attempts}});
  absl::StatusOr<std::string> result = absl::InternalError("shard did not run");
  try {
    result = options_.sharding.run_shard(*job, shard, *context);
  } catch (const std::exception& e) {
    result = absl::InternalError(absl::StrCat("shard failed: ", e.what()));
  }
  FinishShard(*job, held, shard.stage, result, *context);
  absl::MutexLock lock(&mu_);
  Untrack(absl::StrCat(shard.job_id, "#", shard.index), context);
  return true;
}

void JobScheduler::FinishShard(const store::JobRecord& job, const store::HeldShard& held,
                               int32_t stage, const absl::StatusOr<std::string>& result,
                               JobContext& context) {
  const StopReason reason = context.reason();
  const bool stopped = !result.ok() && result.status().code() == absl::StatusCode::kCancelled;
  if (stopped && (reason == StopReason::kDraining || reason == StopReason::kLeaseLost)) {
    (void)HandBackShard(held);  // fenced: only if this run still holds it
    return;
  }
  if (stopped && reason != StopReason::kNone) return;  // its job ended, or another run has it
  // The shard failed with `error`: queued again until it has run max_attempts times, then it
  // fails its job.
  const auto fail = [&](const absl::Status& error, int32_t max_attempts) {
    absl::StatusOr<store::ShardRecord> after = RetryWhileUnavailable(options_.lease, [&] {
      return store_.shards()->FailShard(held, static_cast<int32_t>(error.code()),
                                        std::string(error.message()), max_attempts);
    });
    if (after.ok() && after->state == store::ShardState::kFailed) {
      log_.Error("job failed: a shard failed every time it ran", {{"audit", "job.failed"},
                                                                  {"principal", job.owner},
                                                                  {"job_id", job.id},
                                                                  {"shard", held.index},
                                                                  {"error", error.message()}});
      PublishJob(job.id);
    } else if (after.ok()) {
      Wake();
    }
  };
  if (!result.ok()) {
    // A deadline does not move: running the shard again cannot meet it, so the job fails now.
    return fail(result.status(),
                absl::IsDeadlineExceeded(result.status()) ? 1 : options_.max_attempts);
  }
  // The shard's work is kept through a store outage: its lease is renewed meanwhile.
  absl::StatusOr<store::ShardCompletion> completion = RetryWhileHeld(context, [&] {
    return store_.shards()->CompleteShard(held, *result, options_.holder, options_.lease.count());
  });
  if (!completion.ok()) {
    const absl::Status& error = completion.status();
    const bool unreachable = absl::IsUnavailable(error);
    if (!unreachable && !absl::IsFailedPrecondition(error) && !absl::IsNotFound(error)) {
      // The store refused the result itself (too large for it, out of memory, an internal
      // error): the shard fails with that error, tried again up to max attempts, instead of
      // staying RUNNING until its lease lapses and the job fails blaming a dead replica
      // (regression, durability review).
      log_.Warn("shard result not stored: the store refused it",
                {{"job_id", job.id}, {"shard", held.index}, {"error", error.message()}});
      return fail(
          absl::Status(error.code(), absl::StrCat("storing the shard result: ", error.message())),
          options_.max_attempts);
    }
    // Stopped while the store still did not answer: handed back if it can be, else its lease
    // lapses.
    if (unreachable) (void)HandBackShard(held);
    log_.Info(unreachable
                  ? "shard result not stored: the store did not answer until the run stopped"
                  : "shard result not stored: the shard is no longer this run's",
              {{"job_id", job.id}, {"shard", held.index}, {"error", error.message()}});
    return;
  }
  PublishJob(job.id);
  if (!completion->job_complete) return;
  // The last shard: this runner merges the job, holding it like a claimed job.
  const store::JobRecord merging = completion->job;
  auto merge_context =
      std::make_shared<JobContext>(store_, events_, merging.id, merging.lease_token);
  {
    absl::MutexLock lock(&mu_);
    Track(merging.id, RunningJob{merge_context, merging.owner, merging.id, std::nullopt});
  }
  RunStages(merging, merge_context, {stage, "", {}, ""});
  absl::MutexLock lock(&mu_);
  Untrack(merging.id, merge_context);
}

bool JobScheduler::HandBack(const std::string& id, int64_t lease_token) {
  absl::StatusOr<store::JobRecord> requeued =
      RetryWhileUnavailable(options_.heartbeat, [&] { return store_.Requeue(id, lease_token); });
  if (!requeued.ok()) return false;
  events_.Publish(*requeued);
  Wake();
  return true;
}

bool JobScheduler::HandBackShard(const store::HeldShard& held) {
  return RetryWhileUnavailable(options_.heartbeat,
                               [&] { return store_.shards()->ReleaseShard(held); })
      .ok();
}

void JobScheduler::GiveBack(const store::JobRecord& job, const JobContext& context,
                            const absl::Status& error, const char* what) {
  const StopReason reason = context.reason();
  if (reason == StopReason::kCancelled || reason == StopReason::kDeleted) return;  // it ended
  if (HandBack(job.id, context.lease_token())) {
    log_.Warn("job handed back to the queue: the job store did not answer",
              {{"audit", "job.requeued"},
               {"principal", job.owner},
               {"job_id", job.id},
               {"while", what},
               {"error", error.message()}});
  } else {
    log_.Warn("job left to its lease: the job store did not answer, nor take it back",
              {{"principal", job.owner},
               {"job_id", job.id},
               {"while", what},
               {"error", error.message()}});
  }
}

void JobScheduler::Finish(const store::JobRecord& running,
                          const absl::StatusOr<std::string>& result, JobContext& context) {
  const std::string& id = running.id;
  const StopReason reason = context.reason();
  const int64_t lease_token = context.lease_token();
  const bool stopped = !result.ok() && result.status().code() == absl::StatusCode::kCancelled;
  if (stopped && reason == StopReason::kDraining) {
    const bool released = HandBack(id, lease_token);
    log_.Info("job stopped by the drain; released to the queue", {{"audit", "job.requeued"},
                                                                  {"principal", running.owner},
                                                                  {"job_id", id},
                                                                  {"released", released}});
    return;
  }
  if (stopped && reason == StopReason::kLeaseLost) {
    // Should the store still say this run holds the job, hand it back at once rather than let the
    // lease lapse (fenced: refused when another run has it).
    const bool released = HandBack(id, lease_token);
    log_.Warn(
        "job stopped: this replica no longer holds it (finished, cancelled or taken over "
        "elsewhere)",
        {{"principal", running.owner}, {"job_id", id}, {"released", released}});
    return;
  }
  if (stopped && (reason == StopReason::kCancelled || reason == StopReason::kDeleted)) {
    if (observer_.on_finish && reason == StopReason::kCancelled) {
      auto now = store_.Get(id, /*include_spec=*/false);
      observer_.on_finish(running.kind, store::JobState::kCancelled,
                          now.ok() ? Seconds(running.start_time_ms, now->end_time_ms) : 0.0);
    }
    return;  // the store already says CANCELLED (or the job is gone); Cancel/Delete published it
  }
  // Every write below is tried again while the store does not answer and this run still holds
  // the job: an outage, however long, does not fail the job nor throw its result away.
  absl::StatusOr<store::JobRecord> finished;
  store::JobState asked = store::JobState::kFailed;  // the state the last finish asked for
  const auto finish = [&](store::JobState state, int32_t code, const std::string& message) {
    asked = state;
    absl::Status written = RetryWhileHeld(context, [&] {
      finished = store_.Finish(id, state, code, message, lease_token);
      return finished.status();
    });
    (void)written;
  };
  if (result.ok()) {
    absl::Status s =
        RetryWhileHeld(context, [&] { return store_.PutResult(id, *result, lease_token); });
    if (s.code() == absl::StatusCode::kFailedPrecondition ||
        s.code() == absl::StatusCode::kNotFound) {
      // Cancelled, deleted or taken over while the result was being written.
      log_.Info("job result not stored: the job is no longer this run's",
                {{"job_id", id}, {"error", s.message()}});
      return;
    }
    if (absl::IsUnavailable(s)) {
      // The run was stopped (a drain, a lost lease) before the store answered again.
      GiveBack(running, context, s, "storing its result");
      return;
    }
    if (!s.ok()) {
      finish(store::JobState::kFailed, static_cast<int32_t>(s.code()),
             absl::StrCat("storing the result: ", s.message()));
    } else {
      finish(store::JobState::kSucceeded, 0, "");
    }
  } else {
    finish(store::JobState::kFailed, static_cast<int32_t>(result.status().code()),
           std::string(result.status().message()));
  }
  if (!finished.ok()) {
    if (absl::IsUnavailable(finished.status())) {
      GiveBack(running, context, finished.status(), "finishing it");
      return;
    }
    const absl::Status error = finished.status();
    if (!absl::IsFailedPrecondition(error) && !absl::IsNotFound(error) && result.ok()) {
      // The store refused to finish the job SUCCEEDED (not a lost lease, not a deleted job):
      // it fails with that error rather than staying RUNNING until its lease lapses and it runs
      // again for nothing (regression, durability review).
      finish(store::JobState::kFailed, static_cast<int32_t>(error.code()),
             absl::StrCat("finishing the job: ", error.message()));
    }
    if (!finished.ok() && absl::IsFailedPrecondition(finished.status())) {
      // A Finish that committed but whose answer was lost (the connection broke after COMMIT)
      // reads "job is <state>" when tried again: the job did finish as this run asked, under its
      // lease, and nobody else publishes it (regression, store review: watchers waited on).
      auto now = store_.Get(id, events_.HasSubscribers(id));
      if (now.ok() && now->state == asked && now->lease_token == lease_token) finished = *now;
    }
    if (!finished.ok()) {
      log_.Warn("job could not be finished",
                {{"job_id", id}, {"error", finished.status().message()}});
      return;
    }
  }
  const double seconds = Seconds(finished->start_time_ms, finished->end_time_ms);
  {
    absl::MutexLock lock(&mu_);
    mean_run_seconds_ = 0.8 * mean_run_seconds_ + 0.2 * seconds;
  }
  if (observer_.on_finish) observer_.on_finish(finished->kind, finished->state, seconds);
  log_.Info(
      "job finished",
      {{"audit", finished->state == store::JobState::kSucceeded ? "job.succeeded" : "job.failed"},
       {"principal", finished->owner},
       {"job_id", id},
       {"state", store::JobStateName(finished->state)},
       {"run_seconds", seconds},
       {"error", finished->error_message}});
  events_.Publish(*finished);
}

void JobScheduler::Drain(std::chrono::milliseconds grace) {
  {
    absl::MutexLock lock(&mu_);
    if (!draining_) {
      draining_ = true;
      if (!running_.empty()) {
        log_.Info("drain: waiting for running jobs",
                  {{"grace_ms", int64_t{grace.count()}}, {"running", running_.size()}});
      }
      const auto idle = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return running_.empty(); };
      mu_.AwaitWithTimeout(absl::Condition(&idle), absl::FromChrono(grace));
      for (auto& [id, running] : running_) running.context->RequestStop(StopReason::kDraining);
    }
  }
  for (auto& t : runners_) t.join();
  runners_.clear();
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }
  if (heartbeat_.joinable()) heartbeat_.join();
}

}  // namespace attattr::server
