// JobScheduler (see job_scheduler.h).
#include "jobs/job_scheduler.h"

#include <algorithm>
#include <exception>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "attattr/base/status_macros.h"

namespace attattr::server {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(int64_t from_ms, int64_t to_ms) {
  return from_ms > 0 && to_ms >= from_ms ? (to_ms - from_ms) / 1000.0 : 0.0;
}

}  // namespace

void JobContext::ReportProgress(const std::string& stage, int64_t done, int64_t total) {
  if (!store_.UpdateProgress(id_, store::JobProgress{stage, done, total}).ok()) return;
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
  ATTATTR_ASSIGN_OR_RETURN(auto requeued, store_.RequeueInterrupted());
  for (const auto& id : requeued) {
    ATTATTR_ASSIGN_OR_RETURN(const store::JobRecord job, store_.Get(id));
    if (job.attempts < options_.max_attempts) {
      log_.Warn("job was running when the server stopped; re-queued", {{"audit", "job.requeued"},
                                                                       {"principal", job.owner},
                                                                       {"job_id", id},
                                                                       {"attempt", job.attempts}});
      continue;
    }
    // A poison job: every start so far ended with the process dying under it.
    ATTATTR_ASSIGN_OR_RETURN(
        const store::JobRecord failed,
        store_.Finish(id, store::JobState::kFailed,
                      static_cast<int32_t>(absl::StatusCode::kInternal),
                      absl::StrCat("the server stopped while running this job ", job.attempts,
                                   " times (--max-job-attempts ", options_.max_attempts,
                                   "); it is not run again")));
    log_.Error("job failed: the server stopped under it every time it ran",
               {{"audit", "job.failed"},
                {"principal", job.owner},
                {"job_id", id},
                {"attempts", job.attempts}});
    if (observer_.on_finish) observer_.on_finish(failed.kind, failed.state, 0.0);
  }
  ATTATTR_ASSIGN_OR_RETURN(auto queued, store_.ListQueued());
  absl::MutexLock lock(&mu_);
  for (const auto& job : queued) Enqueue(job);
  if (!queued.empty()) log_.Info("recovered queued jobs from the store", {{"jobs", queued.size()}});
  return absl::OkStatus();
}

void JobScheduler::Start() {
  for (int i = 0; i < options_.runners; ++i) threads_.emplace_back([this] { Loop(); });
}

void JobScheduler::Enqueue(const store::JobRecord& job) {
  OwnerLoad& load = owners_[job.owner];
  load.last_round = std::max(load.last_round, serving_round_) + 1;
  ++load.queued;
  QueueKey key{-job.priority, load.last_round, next_seq_++, job.id};
  queue_.insert(key);
  queued_[job.id] = Queued{key, job.owner};
}

bool JobScheduler::Dequeue(const std::string& id) {
  auto it = queued_.find(id);
  if (it == queued_.end()) return false;
  queue_.erase(it->second.key);
  auto owner = owners_.find(it->second.owner);
  if (owner != owners_.end() && --owner->second.queued == 0 && owner->second.running == 0) {
    owners_.erase(owner);
  }
  queued_.erase(it);
  return true;
}

std::set<JobScheduler::QueueKey>::iterator JobScheduler::NextRunnable() {
  if (options_.max_running_per_owner <= 0) return queue_.begin();
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    const std::string& owner = queued_.at(std::get<3>(*it)).owner;
    auto load = owners_.find(owner);
    if (load == owners_.end() || load->second.running < options_.max_running_per_owner) return it;
  }
  return queue_.end();
}

namespace {

// "12.5 MiB".
std::string FormatBytes(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

}  // namespace

absl::StatusOr<store::CreateResult> JobScheduler::Submit(const store::JobRecord& record) {
  bool full = false;
  {
    absl::MutexLock lock(&mu_);
    if (draining_) {
      return absl::UnavailableError("the server is draining (shutting down); submit elsewhere");
    }
    full = static_cast<int>(queued_.size()) + reserved_ >= options_.max_queued;
    if (!full) ++reserved_;
  }
  auto created = store_.Create(record);
  absl::MutexLock lock(&mu_);
  if (!full) --reserved_;
  if (!created.ok()) return created.status();
  if (!created->created) return created;  // the same request_id: the existing job
  if (!full && options_.max_queued_per_owner > 0) {
    auto load = owners_.find(record.owner);
    if (load != owners_.end() && load->second.queued >= options_.max_queued_per_owner) {
      (void)store_.Delete(created->record.id);
      return absl::ResourceExhaustedError(
          absl::StrCat("principal '", record.owner, "' has ", load->second.queued,
                       " jobs waiting to run (--max-queued-jobs-per-principal ",
                       options_.max_queued_per_owner, ")"));
    }
  }
  if (full) {
    // Created only to honour idempotency above; a new job does not fit the queue.
    (void)store_.Delete(created->record.id);
    return absl::ResourceExhaustedError(absl::StrCat("the job queue is full (", options_.max_queued,
                                                     " jobs waiting, --max-queued-jobs)"));
  }
  if (options_.max_stored_bytes_per_owner > 0) {
    // Checked after the job is stored (so the check counts it, and idempotent retries above are
    // answered whatever the quota); concurrent submissions can overshoot by what they add at once.
    absl::StatusOr<int64_t> stored = store_.StoredBytes(record.owner);
    if (!stored.ok()) {
      (void)store_.Delete(created->record.id);
      return stored.status();
    }
    if (*stored > options_.max_stored_bytes_per_owner) {
      (void)store_.Delete(created->record.id);
      absl::Status over = absl::ResourceExhaustedError(
          absl::StrCat("principal '", record.owner, "' would store ", FormatBytes(*stored),
                       " of jobs (specs and results), above --max-stored-mib-per-principal (",
                       FormatBytes(options_.max_stored_bytes_per_owner),
                       "); delete finished or cancelled jobs (DeleteJob) to make room"));
      over.SetPayload(kQuotaPayload, absl::Cord());
      return over;
    }
  }
  Enqueue(created->record);
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
  bool was_queued = false;
  {
    absl::MutexLock lock(&mu_);
    was_queued = Dequeue(id);
    if (auto it = running_.find(id); it != running_.end()) {
      it->second.context->RequestStop(StopReason::kCancelled);
    }
  }
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
  ATTATTR_ASSIGN_OR_RETURN(auto record, store_.Get(id));
  {
    absl::MutexLock lock(&mu_);
    Dequeue(id);
    if (auto it = running_.find(id); it != running_.end()) {
      it->second.context->RequestStop(StopReason::kDeleted);
    }
  }
  ATTATTR_RETURN_IF_ERROR(store_.Delete(id));
  log_.Info("job deleted", {{"audit", "job.deleted"},
                            {"principal", by.empty() ? record.owner : by},
                            {"owner", record.owner},
                            {"job_id", id}});
  events_.Publish(record, JobEvents::Kind::kDeleted);
  return absl::OkStatus();
}

int JobScheduler::QueueDepth() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queued_.size());
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

void JobScheduler::Loop() {
  while (true) {
    std::string id;
    {
      absl::MutexLock lock(&mu_);
      const auto ready = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // under mu_ (Await)
        return draining_ || NextRunnable() != queue_.end();
      };
      mu_.Await(absl::Condition(&ready));
      if (draining_) return;
      const QueueKey key = *NextRunnable();
      id = std::get<3>(key);
      serving_round_ = std::max(serving_round_, std::get<1>(key));
      const std::string owner = queued_.at(id).owner;
      Dequeue(id);
      ++owners_[owner].running;
      running_[id] = RunningJob{std::make_shared<JobContext>(store_, events_, id), owner};
    }
    RunJob(id);
    absl::MutexLock lock(&mu_);
    // Drain waits for running_ to empty.
    auto it = running_.find(id);
    auto owner = owners_.find(it->second.owner);
    if (owner != owners_.end() && --owner->second.running == 0 && owner->second.queued == 0) {
      owners_.erase(owner);
    }
    running_.erase(it);
  }
}

void JobScheduler::RunJob(const std::string& id) {
  std::shared_ptr<JobContext> context;
  {
    absl::MutexLock lock(&mu_);
    context = running_.at(id).context;
  }
  auto running = store_.MarkRunning(id);
  if (!running.ok()) {
    // Cancelled or deleted between leaving the queue and starting: nothing to run.
    log_.Debug("job not started", {{"job_id", id}, {"error", running.status().message()}});
    return;
  }
  if (observer_.on_start) {
    observer_.on_start(running->kind, Seconds(running->create_time_ms, running->start_time_ms));
  }
  log_.Info("job started", {{"audit", "job.started"},
                            {"principal", running->owner},
                            {"job_id", id},
                            {"kind", running->kind},
                            {"model", running->model},
                            {"attempt", int64_t{running->attempts}}});
  events_.Publish(*running);
  absl::StatusOr<std::string> result = absl::InternalError("executor did not run");
  try {
    result = executor_(*running, *context);
  } catch (const std::exception& e) {
    result = absl::InternalError(absl::StrCat("job failed: ", e.what()));
  }
  Finish(*running, result, context->reason());
}

void JobScheduler::Finish(const store::JobRecord& running,
                          const absl::StatusOr<std::string>& result, StopReason reason) {
  const std::string& id = running.id;
  const bool stopped = !result.ok() && result.status().code() == absl::StatusCode::kCancelled;
  if (stopped && reason == StopReason::kDraining) {
    auto requeued = store_.Requeue(id);
    log_.Info("job stopped by the drain; re-queued for the next start",
              {{"audit", "job.requeued"}, {"principal", running.owner}, {"job_id", id}});
    if (requeued.ok()) events_.Publish(*requeued);
    return;
  }
  if (stopped && (reason == StopReason::kCancelled || reason == StopReason::kDeleted)) {
    if (observer_.on_finish && reason == StopReason::kCancelled) {
      auto now = store_.Get(id);
      observer_.on_finish(running.kind, store::JobState::kCancelled,
                          now.ok() ? Seconds(running.start_time_ms, now->end_time_ms) : 0.0);
    }
    return;  // the store already says CANCELLED (or the job is gone); Cancel/Delete published it
  }
  absl::StatusOr<store::JobRecord> finished;
  if (result.ok()) {
    if (auto s = store_.PutResult(id, *result); !s.ok()) {
      if (s.code() == absl::StatusCode::kFailedPrecondition ||
          s.code() == absl::StatusCode::kNotFound) {
        return;  // cancelled or deleted while the result was being written
      }
      finished = store_.Finish(id, store::JobState::kFailed, static_cast<int32_t>(s.code()),
                               absl::StrCat("storing the result: ", s.message()));
    } else {
      finished = store_.Finish(id, store::JobState::kSucceeded, 0, "");
    }
  } else {
    finished =
        store_.Finish(id, store::JobState::kFailed, static_cast<int32_t>(result.status().code()),
                      std::string(result.status().message()));
  }
  if (!finished.ok()) {
    log_.Warn("job could not be finished",
              {{"job_id", id}, {"error", finished.status().message()}});
    return;
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
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace attattr::server
