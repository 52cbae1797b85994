// The job RPCs that wait or stream (see attattr_service.h): WaitJob, WatchJob and GetJobResult.
// None of them blocks a reaction thread: each starts (Begin: authenticate, read the job) on the
// store pool; WaitJob and WatchJob then subscribe to JobEvents (and WaitJob sets a TimerQueue
// timeout); the write reactors keep exactly one write in flight, and GetJobResult reads each next
// chunk on the store pool. Each reactor owns itself: it is deleted by the last of gRPC (OnDone)
// and its Begin task to let go (Holds), after it has unsubscribed and cancelled its timer (both
// synchronous, so no callback can reach a deleted reactor).
#include <chrono>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "attattr_service.h"
#include "jobs/job_convert.h"
#include "pool_retry.h"
#include "published_job_messages.h"
#include "status_convert.h"

namespace attattr::server {
namespace {

using Clock = std::chrono::steady_clock;
using EventKind = JobEvents::Kind;

grpc::Status StoppingStatus() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "the server is draining (shutting down); call again after the restart");
}

grpc::Status StorePoolFullStatus(const char* method) {
  return grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      absl::StrCat(method, ": too many calls waiting for the job store; retry later"));
}

// The two parties that use a reactor started on the store pool: gRPC (until OnDone) and the pool
// task running its Begin (until Begin returns; gRPC may be done first, when the client cancels
// meanwhile). Release says whether the caller was the last one, who then deletes the reactor.
class Holds {
 public:
  // One more hold (work handed to another thread), taken while the call is not yet answered.
  void Acquire() {
    absl::MutexLock lock(&mu_);
    ++count_;
  }
  bool Release() {
    absl::MutexLock lock(&mu_);
    return --count_ == 0;
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 2;
};

grpc::Status StreamsFullStatus(const char* method, int max) {
  return grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      absl::StrCat(method, ": ", max,
                   " WaitJob/WatchJob/GetJobResult calls of this caller are open "
                   "already (--max-streams-per-principal); close one or retry later"));
}

// Starts a stream reactor R: authenticates in the handler (in memory; the call's context is gRPC's
// until OnDone, so nothing on the pool touches it), takes one of the caller's stream slots (held
// until the reactor is deleted), then runs R::Begin on the store pool in the caller's turn; an
// authentication failure, no free slot or a full pool ends the call at once (R::Fail). Either way
// the start then lets go of its hold, and deletes the reactor (R::Destroy) when gRPC already has.
template <typename R>
void StartOnStorePool(R* r, const char* method) {
  auto caller = r->service_.Authenticate(r->ctx_, method);
  if (!caller.ok()) {
    r->Fail(ToGrpcStatus(caller.status()));
  } else {
    r->caller_ = std::move(*caller);
    r->principal_ = r->caller_.name;
    r->key_ = r->service_.CallerKey(r->ctx_, r->principal_);
    r->slot_ = r->d_.streams.TryAcquire(r->key_);
    if (!r->slot_.held()) {
      r->d_.metrics.RecordQuotaRefusal("streams");
      r->Fail(StreamsFullStatus(method, r->d_.streams.max_per_key()));
    } else if (r->d_.store_pool.TrySchedule(
                   [r] {
                     r->Begin();
                     if (r->holds_.Release()) r->Destroy();
                   },
                   r->key_)) {
      return;
    } else {
      r->Fail(StorePoolFullStatus(method));
    }
  }
  if (r->holds_.Release()) r->Destroy();
}

grpc::Status DeletedStatus(const std::string& id) {
  return grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("job ", id, " was deleted"));
}

// WaitJob: answers when the job is terminal, or when timeout_ms passes (with the job as it is).
class WaitJobReactor final : public grpc::ServerUnaryReactor {
 public:
  WaitJobReactor(AttattrService& service, grpc::CallbackServerContext* ctx,
                 const v1::WaitJobRequest& request, v1::Job* response)
      : service_(service),
        d_(service.deps()),
        ctx_(ctx),
        name_(request.name()),
        timeout_ms_(request.timeout_ms()),
        response_(response) {}

  // On the store pool, as caller_.
  void Begin() {
    if (auto s = CheckJobName(name_); !s.ok()) return Complete(ToGrpcStatus(s));
    if (timeout_ms_ < 0 || timeout_ms_ > 600000) {
      return Complete(ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrCat("timeout_ms: ", timeout_ms_, " is not in [0, 600000]"))));
    }
    // Whose job it is first (that never changes); then subscribe before reading again, so a
    // change in between is not missed.
    if (auto owned = service_.OwnedJob(caller_, name_, "WaitJob"); !owned.ok()) {
      return Complete(ToGrpcStatus(owned.status()));
    }
    token_ = d_.events.Subscribe(name_, [this](EventKind kind, const store::JobRecord& record,
                                               uint64_t) { OnEvent(kind, record); });
    auto record = d_.store.Get(name_);
    if (!record.ok()) return Complete(ToGrpcStatus(record.status()));
    if (store::IsTerminal(record->state) || timeout_ms_ == 0) return Complete(*record);
    absl::MutexLock lock(&mu_);
    if (done_) return;
    timer_ = d_.timers.Schedule(Clock::now() + std::chrono::milliseconds(timeout_ms_),
                                [this] { OnTimeout(); });
  }

  // On the timer thread, which serves every deadline, health check and reload: the store read
  // (a whole record, its spec parsed) goes to the store pool, holding the reactor until done.
  // Never here: when the pool is full the call is answered RESOURCE_EXHAUSTED (the job goes on).
  void OnTimeout() {
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;  // answered already: OnDone may be deleting the reactor
      holds_.Acquire();   // not answered: OnDone's hold is still out, the reactor lives
    }
    const auto read = [this] {
      auto now = d_.store.Get(name_);
      if (now.ok()) {
        Complete(*now);
      } else {
        Complete(ToGrpcStatus(now.status()));
      }
      if (holds_.Release()) Destroy();
    };
    if (d_.store_pool.TrySchedule(read, key_)) return;
    Complete(StorePoolFullStatus("WaitJob"));
    if (holds_.Release()) Destroy();
  }

  void Start() { StartOnStorePool(this, "WaitJob"); }

  void OnCancel() override {
    Complete(grpc::Status(grpc::StatusCode::CANCELLED, "WaitJob: cancelled by the client"));
  }
  void OnDone() override {
    if (holds_.Release()) Destroy();
  }

 private:
  template <typename R>
  friend void StartOnStorePool(R* r, const char* method);
  void Fail(const grpc::Status& status) { Complete(status); }
  void Destroy() {
    d_.events.Unsubscribe(token_);
    TimerQueue::Id timer;
    {
      absl::MutexLock lock(&mu_);
      timer = timer_;
    }
    if (timer != 0) d_.timers.Cancel(timer);
    delete this;
  }
  void OnEvent(EventKind kind, const store::JobRecord& record) {
    if (kind == EventKind::kDeleted) return Complete(DeletedStatus(name_));
    if (kind == EventKind::kServerStopping) return Complete(StoppingStatus());
    if (store::IsTerminal(record.state)) Complete(record);
  }
  void Complete(const store::JobRecord& record) {
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      done_ = true;
      JobToProto(record, d_.store.NowMs(), response_);
    }
    Send(grpc::Status::OK);
  }
  void Complete(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      done_ = true;
    }
    Send(status);
  }
  void Send(const grpc::Status& status) {
    service_.RecordRpc("WaitJob", ctx_, start_, status, name_, principal_);
    Finish(status);
  }

  AttattrService& service_;
  const ServiceDeps& d_;
  grpc::CallbackServerContext* const ctx_;
  const std::string name_;
  const int64_t timeout_ms_;
  v1::Job* const response_;
  const Clock::time_point start_ = Clock::now();
  Principal caller_;            // set by Start, before Begin
  std::string principal_;       // its name, for the access log
  std::string key_;             // CallerKey: its turn on the store pool, its stream slots
  StreamSlots::Slot slot_;      // held until the reactor is deleted
  JobEvents::Token token_ = 0;  // set by Begin, read by Destroy (after Begin)
  Holds holds_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  TimerQueue::Id timer_ ABSL_GUARDED_BY(mu_) = 0;
};

// A server stream with one write in flight; subclasses say what to write next. Finish happens at
// most once, never while a write is outstanding. The helpers marked ABSL_UNLOCK_FUNCTION are called
// with mu_ held and release it on every path (before StartWrite or Finish).
template <typename Message>
class OneWriteReactor : public grpc::ServerWriteReactor<Message> {
 public:
  OneWriteReactor(AttattrService& service, grpc::CallbackServerContext* ctx, const char* method,
                  std::string name)
      : service_(service), d_(service.deps()), ctx_(ctx), method_(method), name_(std::move(name)) {}

  void Start() { StartOnStorePool(this, method_); }

  // A cancellation does not end a write in flight: the stream finishes once its OnWriteDone has
  // come (finishing earlier lets gRPC free the call while the write is still being started: a
  // use-after-free that ASan caught under load in
  // StreamsCancelledWhileStartingLeaveTheServerServing).
  void OnCancel() override {
    End(grpc::Status(grpc::StatusCode::CANCELLED,
                     absl::StrCat(method_, ": cancelled by the client")));
  }
  void OnDone() override {
    if (holds_.Release()) Destroy();
  }
  void OnWriteDone(bool ok) override {
    mu_.Lock();
    in_flight_ = false;
    if (!ok) {
      // A cancellation seen meanwhile says more than a failed write.
      return EndLocked(final_status_.value_or(grpc::Status(
          grpc::StatusCode::CANCELLED, absl::StrCat(method_, ": the client went away"))));
    }
    AfterWrite();
  }

 protected:
  template <typename R>
  friend void StartOnStorePool(R* r, const char* method);
  // Reads the job as caller_ (on the store pool); may end the stream.
  virtual void Begin() = 0;
  void Fail(const grpc::Status& status) { End(status); }
  // After each completed write: start the next write (WriteLocked), end the stream (EndLocked),
  // or release mu_ and wait for more.
  virtual void AfterWrite() ABSL_UNLOCK_FUNCTION(mu_) = 0;
  // Frees what Begin acquired, then deletes the reactor (gRPC and Begin are both done with it).
  virtual void Destroy() { delete this; }

  // Starts writing `message`, which must stay alive and unchanged until AfterWrite.
  void WriteLocked(const Message* message) ABSL_UNLOCK_FUNCTION(mu_) {
    in_flight_ = true;
    mu_.Unlock();
    this->StartWrite(message);
  }
  // Ends the stream now if no write or read is in flight, else after it (the status is kept).
  void EndLocked(const grpc::Status& status) ABSL_UNLOCK_FUNCTION(mu_) {
    if (finished_ || in_flight_ || reading_) {
      if (!finished_ && !final_status_) final_status_ = status;
      mu_.Unlock();
      return;
    }
    finished_ = true;
    mu_.Unlock();
    service_.RecordRpc(method_, ctx_, start_, status, name_, principal_);
    this->Finish(status);
  }
  // Ends the stream (after the write or read in flight, if any).
  void End(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_) {
    mu_.Lock();
    EndLocked(status);
  }

  AttattrService& service_;
  const ServiceDeps& d_;
  grpc::CallbackServerContext* const ctx_;
  const char* const method_;
  const std::string name_;
  const Clock::time_point start_ = Clock::now();
  Principal caller_;        // set by Start, before Begin
  std::string principal_;   // its name, for the access log
  std::string key_;         // CallerKey: its turn on the store pool, its stream slots
  StreamSlots::Slot slot_;  // held until the reactor is deleted
  Holds holds_;
  absl::Mutex mu_;
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;  // a store read for the next message is queued
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // To send once the write in flight completes.
  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);
};

// WatchJob: the job now, then each change (coalesced to the latest while a write is in flight),
// until the job is terminal; in the view asked for (BASIC: no spec contents, nothing parsed). Each
// change is converted on the thread that publishes it, never on a reaction thread, once for all
// the job's watchers of that view (PublishedJobMessages: they share the message, immutable, and
// AfterWrite only moves a pointer).
class WatchJobReactor final : public OneWriteReactor<v1::Job> {
 public:
  WatchJobReactor(AttattrService& service, grpc::CallbackServerContext* ctx,
                  const v1::WatchJobRequest& request)
      : OneWriteReactor(service, ctx, "WatchJob", request.name()),
        view_(request.view()),
        full_(request.view() != v1::JOB_VIEW_BASIC) {}

  void Begin() override {
    // As ListJobs: a view this server does not know is refused, not read as FULL.
    if (!v1::JobView_IsValid(view_)) {
      return End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              absl::StrCat("view: unknown value ", view_)));
    }
    // Whose job it is first (that never changes); then subscribe before reading again, so a
    // change in between is not missed.
    if (auto owned = service_.OwnedJob(caller_, name_, "WatchJob"); !owned.ok()) {
      return End(ToGrpcStatus(owned.status()));
    }
    token_ = d_.events.Subscribe(
        name_, [this](EventKind kind, const store::JobRecord& record, uint64_t publication) {
          OnEvent(kind, record, publication);
        });
    auto record = d_.store.Get(name_, /*include_spec=*/full_);
    if (!record.ok()) return End(ToGrpcStatus(record.status()));
    Offer(*record, /*publication=*/0);
  }
  void Destroy() override {
    d_.events.Unsubscribe(token_);
    delete this;
  }

 private:
  void OnEvent(EventKind kind, const store::JobRecord& record, uint64_t publication)
      ABSL_LOCKS_EXCLUDED(mu_) {
    if (kind == EventKind::kChanged) return Offer(record, publication);
    mu_.Lock();
    if (wrote_terminal_) {  // the stream ends OK once the terminal state is written
      mu_.Unlock();
      return;
    }
    EndLocked(kind == EventKind::kDeleted ? DeletedStatus(name_) : StoppingStatus());
  }
  // `record` from JobEvents' `publication`, or (0) as Begin read it for this stream alone.
  void Offer(const store::JobRecord& record, uint64_t publication) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || wrote_terminal_ || final_status_) return;
    }
    // Converted here, without mu_: the spec may be megabytes.
    const int64_t now_ms = d_.store.NowMs();
    std::shared_ptr<const v1::Job> job =
        publication == 0 ? ConvertJob(record, full_, now_ms)
                         : service_.published_messages().Get(publication, record, full_, now_ms);
    const bool terminal = store::IsTerminal(record.state);
    mu_.Lock();
    if (finished_ || wrote_terminal_ || final_status_) {
      mu_.Unlock();
      return;
    }
    if (in_flight_) {
      pending_ = std::move(job);
      pending_terminal_ = terminal;
      mu_.Unlock();
      return;
    }
    Write(std::move(job), terminal);
  }
  void Write(std::shared_ptr<const v1::Job> job, bool terminal) ABSL_UNLOCK_FUNCTION(mu_) {
    writing_ = std::move(job);
    wrote_terminal_ = terminal;
    WriteLocked(writing_.get());
  }
  void AfterWrite() override ABSL_UNLOCK_FUNCTION(mu_) {
    // Written: not held while the job waits for its next change (a FULL view carries the spec,
    // which may be megabytes, and the first message is this stream's own).
    writing_.reset();
    if (final_status_) return EndLocked(*final_status_);
    if (wrote_terminal_) return EndLocked(grpc::Status::OK);
    if (pending_) return Write(std::move(pending_), pending_terminal_);  // leaves pending_ empty
    mu_.Unlock();
  }

  const int view_;              // WatchJobRequest.view as sent
  const bool full_;             // FULL (the default) unless view_ is BASIC
  JobEvents::Token token_ = 0;  // set by Begin, read by Destroy (after Begin)
  // The message in flight (shared with the job's other watchers; released once written) and the
  // latest one waiting.
  std::shared_ptr<const v1::Job> writing_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const v1::Job> pending_ ABSL_GUARDED_BY(mu_);
  bool pending_terminal_ ABSL_GUARDED_BY(mu_) = false;
  bool wrote_terminal_ ABSL_GUARDED_BY(mu_) = false;
};

// GetJobResult: the stored result of a SUCCEEDED job, one stored chunk (< 1 MiB) per message.
class ResultReactor final : public OneWriteReactor<v1::ResultChunk> {
 public:
  ResultReactor(AttattrService& service, grpc::CallbackServerContext* ctx,
                const v1::GetJobResultRequest& request)
      : OneWriteReactor(service, ctx, "GetJobResult", request.name()) {}

  void Begin() override {
    auto record = service_.OwnedJob(caller_, name_, "GetJobResult");
    if (!record.ok()) return End(ToGrpcStatus(record.status()));
    if (record->state != store::JobState::kSucceeded) {
      return End(
          grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                       absl::StrCat("name: job ", name_, " is ", store::JobStateName(record->state),
                                    "; a result exists once it has SUCCEEDED")));
    }
    auto info = d_.store.GetResultInfo(name_);
    if (!info.ok()) return End(ToGrpcStatus(info.status()));
    mu_.Lock();
    empty_ = info->chunk_count == 0;
    count_ = std::max<int64_t>(info->chunk_count, 1);
    Next();
  }

 private:
  // Reads chunk `next_` from the store (one row by key, < 1 MiB; on the store pool) and writes it.
  // The read runs without mu_ (reading_ keeps the stream from finishing meanwhile), so a
  // cancellation arriving then is not held up behind the store.
  void Next() ABSL_UNLOCK_FUNCTION(mu_) {
    if (finished_ || final_status_) return EndLocked(final_status_.value_or(grpc::Status::OK));
    const int64_t index = next_;
    reading_ = true;
    mu_.Unlock();
    auto chunk = d_.store.GetResultChunk(name_, index);
    mu_.Lock();
    reading_ = false;
    if (final_status_) return EndLocked(*final_status_);
    message_.Clear();
    message_.set_index(static_cast<int32_t>(index));
    message_.set_count(static_cast<int32_t>(count_));
    if (chunk.ok()) {
      message_.set_data(std::move(*chunk));
    } else if (!empty_ || chunk.status().code() != absl::StatusCode::kNotFound) {
      // Also NotFound when the job was deleted since Begin (DeleteJob, any replica's retention
      // sweep): not an empty result (regression, store review: one empty chunk, then OK).
      return EndLocked(ToGrpcStatus(chunk.status()));
    }  // an empty result has no chunk 0: send one empty chunk
    next_ = index + 1;
    WriteLocked(&message_);
  }
  void AfterWrite() override ABSL_UNLOCK_FUNCTION(mu_) {
    if (final_status_) return EndLocked(*final_status_);
    if (next_ >= count_) return EndLocked(grpc::Status::OK);
    // The stream cannot finish (so gRPC cannot let go of the reactor) while reading_ is set.
    // The pool may be full for a moment: the read is retried for a while (PoolRetry) before the
    // stream ends RESOURCE_EXHAUSTED; a cancellation meanwhile ends it at the next try.
    reading_ = true;
    mu_.Unlock();
    retry_.Start(
        key_,
        [this] {
          mu_.Lock();
          reading_ = false;
          Next();
        },
        [this] {
          mu_.Lock();
          reading_ = false;
          EndLocked(final_status_.value_or(StorePoolFullStatus(method_)));
        },
        [this] {
          absl::MutexLock lock(&mu_);
          return final_status_.has_value();
        });
  }

  PoolRetry retry_{d_.store_pool, d_.timers, PoolRetry::Options{}};  // each next chunk's read
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  bool empty_ ABSL_GUARDED_BY(mu_) = false;  // the stored result has no chunk
  int64_t next_ ABSL_GUARDED_BY(mu_) = 0;
  // Written under mu_, then read by gRPC while the write is in flight.
  v1::ResultChunk message_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerUnaryReactor* AttattrService::WaitJob(grpc::CallbackServerContext* ctx,
                                                  const v1::WaitJobRequest* request,
                                                  v1::Job* response) {
  auto* reactor = new WaitJobReactor(*this, ctx, *request, response);
  reactor->Start();
  return reactor;
}

grpc::ServerWriteReactor<v1::Job>* AttattrService::WatchJob(grpc::CallbackServerContext* ctx,
                                                            const v1::WatchJobRequest* request) {
  auto* reactor = new WatchJobReactor(*this, ctx, *request);
  reactor->Start();
  return reactor;
}

grpc::ServerWriteReactor<v1::ResultChunk>* AttattrService::GetJobResult(
    grpc::CallbackServerContext* ctx, const v1::GetJobResultRequest* request) {
  auto* reactor = new ResultReactor(*this, ctx, *request);
  reactor->Start();
  return reactor;
}

}  // namespace attattr::server
