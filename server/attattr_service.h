// The attattr.v1.Attattr gRPC service (callback API). Handlers do constant-time checks and hand
// work on: Explain calls and job specs to the validation pool (which validates, reads datasets and
// tokenizes, then gives Explain items to the dynamic batcher and stores and queues jobs), and
// GetJob/ListJobs/CancelJob/DeleteJob, the streams' first reads and GetJobResult's chunks to the
// store pool; they never run the engine, read files, tokenize or wait on the job store on a
// reaction thread. WaitJob and WatchJob
// subscribe to JobEvents instead of blocking; streams keep one write in flight. Every call ends
// with one access-log line and the RPC metrics (RecordRpc). Every call first authenticates
// (Authenticate: the bearer token or client certificate, auth/authenticator.h) and sees only its
// principal's jobs (OwnedJob; an administrator sees all); another principal's job is NOT_FOUND,
// worded exactly as a missing one. Denied calls get an `audit` log line with the principal.
// Thread-safe: one instance serves every call.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "attattr/base/worker_pool.h"
#include "attattr/v1/attattr_service.grpc.pb.h"
#include "attribution_batcher.h"
#include "auth/authenticator.h"
#include "auth/rate_limiter.h"
#include "event_log.h"
#include "jobs/job_events.h"
#include "jobs/job_kinds.h"
#include "jobs/job_scheduler.h"
#include "model_registry.h"
#include "published_job_messages.h"
#include "server_config.h"
#include "service_metrics.h"
#include "store/job_store.h"
#include "stream_slots.h"
#include "timer_queue.h"

namespace attattr::server {

// What the handlers use; all borrowed from the Server, which outlives the service.
struct ServiceDeps {
  const ServerConfig& config;
  const ModelRegistry& models;
  AttributionBatcher& batcher;
  const JobKinds& job_kinds;
  WorkerPool& validation_pool;  // Explain's and SubmitJob's validation, off the reaction threads
  WorkerPool& store_pool;       // every job RPC's store calls, off the reaction threads
  JobScheduler& scheduler;
  store::JobStore& store;
  JobEvents& events;
  TimerQueue& timers;
  ServiceMetrics& metrics;
  const EventLog& log;
  const Authenticator& auth;
  PrincipalRateLimiter& explain_limiter;  // --explain-rate-per-principal
  StreamSlots& streams;                   // --max-streams-per-principal
};

class AttattrService final : public v1::Attattr::CallbackService {
 public:
  explicit AttattrService(ServiceDeps deps) : d_(std::move(deps)) {}

  // From now on Explain and SubmitJob answer UNAVAILABLE (the server is draining).
  void BeginDrain() { draining_ = true; }

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx,
                                     const v1::GetModelRequest* request,
                                     v1::Model* response) override;
  grpc::ServerUnaryReactor* Explain(grpc::CallbackServerContext* ctx,
                                    const v1::ExplainRequest* request,
                                    v1::ExplainResponse* response) override;
  grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* ctx,
                                      const v1::SubmitJobRequest* request,
                                      v1::Job* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx,
                                   const v1::GetJobRequest* request, v1::Job* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* WaitJob(grpc::CallbackServerContext* ctx,
                                    const v1::WaitJobRequest* request, v1::Job* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const v1::CancelJobRequest* request,
                                      v1::Job* response) override;
  grpc::ServerUnaryReactor* DeleteJob(grpc::CallbackServerContext* ctx,
                                      const v1::DeleteJobRequest* request,
                                      v1::DeleteJobResponse* response) override;
  grpc::ServerWriteReactor<v1::Job>* WatchJob(grpc::CallbackServerContext* ctx,
                                              const v1::WatchJobRequest* request) override;
  grpc::ServerWriteReactor<v1::ResultChunk>* GetJobResult(
      grpc::CallbackServerContext* ctx, const v1::GetJobResultRequest* request) override;

  // One finished RPC: the access-log line (method, code, latency, request and job ids) and the
  // RPC metrics. Public for the reactors in job_streams.cc.
  void RecordRpc(const char* method, grpc::CallbackServerContext* ctx,
                 std::chrono::steady_clock::time_point start, const grpc::Status& status,
                 const std::string& job_id = "", const std::string& principal = "");
  const ServiceDeps& deps() const { return d_; }
  // The watched jobs' changes as messages, converted once for all WatchJob streams of a job.
  PublishedJobMessages& published_messages() { return published_messages_; }

  // The caller of `ctx` (its bearer token or verified client certificate), or Unauthenticated;
  // a refusal gets an audit line naming `method`.
  absl::StatusOr<Principal> Authenticate(grpc::CallbackServerContext* ctx, const char* method);
  // Whose turn a call takes on the validation and store pools, and whose streams it counts
  // against (ServiceDeps::streams): the principal named `principal`, or without authentication the
  // caller's address.
  std::string CallerKey(grpc::CallbackServerContext* ctx, const std::string& principal) const;
  // Job `name` when `caller` may see it: a well-formed name, stored, and the caller's own (or the
  // caller an admin). Another principal's job is the store's NotFound, word for word, with an
  // audit line. Ownership is read without the spec, so another principal's job costs what a
  // missing one does; the spec is read after it when `include_spec`.
  absl::StatusOr<store::JobRecord> OwnedJob(const Principal& caller, const std::string& name,
                                            const char* method, bool include_spec = false);

 private:
  // Explain's work on the validation pool: the model, the request's validation and tokenizing,
  // then the batcher; finishes the call on failure (the batcher finishes it otherwise).
  void CompleteExplain(grpc::CallbackServerContext* ctx, const v1::ExplainRequest* request,
                       v1::ExplainResponse* response, grpc::ServerUnaryReactor* reactor,
                       std::chrono::steady_clock::time_point start, const Principal& caller);
  // SubmitJob's work on the validation pool: validation (the job kind's Prepare), then store and
  // queue; finishes the call.
  void CompleteSubmitJob(grpc::CallbackServerContext* ctx, const v1::SubmitJobRequest* request,
                         v1::Job* response, grpc::ServerUnaryReactor* reactor,
                         std::chrono::steady_clock::time_point start, const Principal& caller);
  // A unary call's caller (Authenticate), or nullopt with the call finished UNAUTHENTICATED.
  std::optional<Principal> CallerOrFinish(const char* method, grpc::CallbackServerContext* ctx,
                                          std::chrono::steady_clock::time_point start,
                                          grpc::ServerUnaryReactor* reactor,
                                          const std::string& job_id = "");
  // RecordRpc, then reactor->Finish(status).
  void FinishRpc(const char* method, grpc::CallbackServerContext* ctx,
                 std::chrono::steady_clock::time_point start, grpc::ServerUnaryReactor* reactor,
                 const grpc::Status& status, const std::string& job_id = "",
                 const std::string& principal = "");
  // Runs `work` (which finishes the call) on the store pool, in the caller's turn (CallerKey);
  // when the pool's queue, or the caller's share of it, is full, finishes the call with
  // RESOURCE_EXHAUSTED instead.
  void OnStorePool(const char* method, grpc::CallbackServerContext* ctx,
                   std::chrono::steady_clock::time_point start, grpc::ServerUnaryReactor* reactor,
                   const std::string& job_id, const std::string& principal,
                   std::function<void()> work);
  // ListJobs' page for `caller` (its own jobs unless an admin), within the response budget.
  absl::Status ListJobsPage(const Principal& caller, const v1::ListJobsRequest& request,
                            v1::ListJobsResponse* response);
  // What `caller`'s roles forbid in `spec` (a priority above its maximum, an export, a dataset),
  // as PermissionDenied naming the field; OK otherwise.
  absl::Status CheckSpecPermissions(const Principal& caller, const v1::JobSpec& spec) const;

  ServiceDeps d_;
  std::atomic<bool> draining_{false};
  PublishedJobMessages published_messages_;
};

}  // namespace attattr::server
