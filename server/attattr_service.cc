// gRPC handlers of the unary RPCs (see attattr_service.h); the streaming ones and WaitJob live in
// job_streams.cc. Every RPC ends through FinishRpc / RecordRpc, which write the one access-log
// line (method, code, latency, request id, job id) and record the RPC metrics.
#include "attattr_service.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "attattr/base/quote.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/attribution_convert.h"
#include "attattr/engine/attention_attribution.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "jobs/attribution_job.h"
#include "jobs/job_convert.h"
#include "jobs/job_priority.h"
#include "jobs/job_spec.h"
#include "proto_convert.h"
#include "status_convert.h"
#include "store/job_store_rules.h"

namespace attattr::server {
namespace {

constexpr char kValidationFull[] =
    "too many calls waiting for validation (--max-pending-validations; with authentication one "
    "principal may hold a quarter of the places); retry later";

using Clock = std::chrono::steady_clock;

// The client's x-request-id metadata, or "" (the log shows "-").
std::string RequestId(const grpc::CallbackServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("x-request-id");
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

// ListJobs: the most a page carries before it ends early (FULL view), and the longest page token
// (the store's tokens are far shorter).
constexpr size_t kListResponseBudgetBytes = size_t{4} << 20;
constexpr size_t kMaxPageTokenBytes = 1024;
// The pushback on an Explain refused for want of a waiting place for the engine: about what a
// typical call takes (a sentence, all layers, m = 20: 0.1–3 s on 2 cores).
constexpr int64_t kExplainRetryMs = 1000;

// Whether `spec` holds, at any depth, an ExampleSource naming a dataset file (ForEachExampleSource:
// a dataset field added to any job kind later is covered).
bool NamesDataset(const v1::JobSpec& spec) {
  bool names = false;
  ForEachExampleSource(spec, "spec", [&names](const v1::ExampleSource& source, const std::string&) {
    names = names || source.has_dataset();
  });
  return names;
}

// RESOURCE_EXHAUSTED with gRPC's retry pushback (proposal A6; clients with a retry policy honour
// it) and the wait in the message.
grpc::Status RetryLater(grpc::CallbackServerContext* ctx, absl::string_view message,
                        int64_t retry_ms) {
  ctx->AddTrailingMetadata("grpc-retry-pushback-ms", std::to_string(retry_ms));
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      absl::StrCat(message, "; retry in about ", retry_ms, " ms"));
}

grpc::Status Draining(const char* method) {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      absl::StrCat(method,
                                   ": the server is draining (shutting down); retry on "
                                   "another replica or after the restart"));
}

}  // namespace

void AttattrService::RecordRpc(const char* method, grpc::CallbackServerContext* ctx,
                               Clock::time_point start, const grpc::Status& status,
                               const std::string& job_id, const std::string& principal) {
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const std::string code = GrpcCodeName(status.error_code());
  d_.metrics.RecordRpc(method, code, seconds);
  d_.log.Info("rpc", {{"method", method},
                      {"code", code},
                      {"latency_ms", seconds * 1e3},
                      {"principal", principal},
                      {"request_id", RequestId(ctx)},
                      {"job_id", job_id},
                      {"peer", ctx->peer()},
                      {"error", status.error_message()}});
  const auto c = status.error_code();
  if (c == grpc::StatusCode::PERMISSION_DENIED || c == grpc::StatusCode::RESOURCE_EXHAUSTED) {
    d_.log.Warn("call denied", {{"audit", "call.denied"},
                                {"principal", principal},
                                {"method", method},
                                {"code", code},
                                {"job_id", job_id},
                                {"peer", ctx->peer()},
                                {"error", status.error_message()}});
  }
}

void AttattrService::FinishRpc(const char* method, grpc::CallbackServerContext* ctx,
                               Clock::time_point start, grpc::ServerUnaryReactor* reactor,
                               const grpc::Status& status, const std::string& job_id,
                               const std::string& principal) {
  RecordRpc(method, ctx, start, status, job_id, principal);
  reactor->Finish(status);
}

void AttattrService::OnStorePool(const char* method, grpc::CallbackServerContext* ctx,
                                 Clock::time_point start, grpc::ServerUnaryReactor* reactor,
                                 const std::string& job_id, const std::string& principal,
                                 std::function<void()> work) {
  if (d_.store_pool.TrySchedule(std::move(work), CallerKey(ctx, principal))) return;
  FinishRpc(
      method, ctx, start, reactor,
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                   absl::StrCat(method, ": too many calls waiting for the job store; retry later")),
      job_id, principal);
}

std::optional<Principal> AttattrService::CallerOrFinish(const char* method,
                                                        grpc::CallbackServerContext* ctx,
                                                        Clock::time_point start,
                                                        grpc::ServerUnaryReactor* reactor,
                                                        const std::string& job_id) {
  auto caller = Authenticate(ctx, method);
  if (caller.ok()) return std::move(*caller);
  FinishRpc(method, ctx, start, reactor, ToGrpcStatus(caller.status()), job_id);
  return std::nullopt;
}

absl::StatusOr<Principal> AttattrService::Authenticate(grpc::CallbackServerContext* ctx,
                                                       const char* method) {
  Credentials credentials;
  const auto& md = ctx->client_metadata();
  if (auto it = md.find("authorization"); it != md.end()) {
    credentials.authorization = absl::string_view(it->second.data(), it->second.size());
  }
  std::string identity;
  if (auto auth = ctx->auth_context(); auth != nullptr && auth->IsPeerAuthenticated()) {
    const auto names = auth->GetPeerIdentity();
    if (!names.empty()) identity.assign(names.front().data(), names.front().size());
  }
  credentials.certificate_identity = identity;
  auto caller = d_.auth.Authenticate(credentials);
  if (!caller.ok()) {
    d_.log.Warn("call denied", {{"audit", "call.denied"},
                                {"method", method},
                                {"code", "UNAUTHENTICATED"},
                                {"peer", ctx->peer()},
                                {"error", caller.status().message()}});
  }
  return caller;
}

std::string AttattrService::CallerKey(grpc::CallbackServerContext* ctx,
                                      const std::string& principal) const {
  if (d_.auth.enabled()) return principal;
  // Without authentication every caller is the anonymous principal: callers take turns by
  // address ("ipv4:10.0.0.7:51234" without its port).
  const std::string peer = ctx->peer();
  return peer.substr(0, peer.rfind(':'));
}

absl::StatusOr<store::JobRecord> AttattrService::OwnedJob(const Principal& caller,
                                                          const std::string& name,
                                                          const char* method, bool include_spec) {
  ATTATTR_RETURN_IF_ERROR(CheckJobName(name));
  ATTATTR_ASSIGN_OR_RETURN(auto record, d_.store.Get(name, /*include_spec=*/false));
  if (!caller.admin && record.owner != caller.name) {
    d_.log.Warn("call denied", {{"audit", "call.denied"},
                                {"principal", caller.name},
                                {"method", method},
                                {"code", "NOT_FOUND"},
                                {"job_id", name},
                                {"owner", record.owner},
                                {"error", "another principal's job"}});
    return store::JobNotFound(name);
  }
  if (include_spec) return d_.store.Get(name);
  return record;
}

absl::Status AttattrService::CheckSpecPermissions(const Principal& caller,
                                                  const v1::JobSpec& spec) const {
  // (A priority outside the proto's range is the spec's validation's INVALID_ARGUMENT.)
  if (spec.priority() > caller.max_priority && spec.priority() <= kMaxJobPriority) {
    return absl::PermissionDeniedError(absl::StrCat(
        "spec.priority: ", spec.priority(), " is above ", caller.max_priority,
        ", the highest principal '", caller.name, "' may ask for (--max-user-priority)"));
  }
  if (spec.has_head_importance() && !spec.head_importance().export_path().empty() &&
      !caller.may_export) {
    return absl::PermissionDeniedError(
        absl::StrCat("spec.head_importance.export_path: principal '", caller.name,
                     "' may not write checkpoints (--export-principals)"));
  }
  if (!caller.may_read_datasets && NamesDataset(spec)) {
    return absl::PermissionDeniedError(
        absl::StrCat("dataset: principal '", caller.name,
                     "' may not read datasets under --data-root (--dataset-principals)"));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* AttattrService::ListModels(grpc::CallbackServerContext* ctx,
                                                     const v1::ListModelsRequest*,
                                                     v1::ListModelsResponse* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto caller = CallerOrFinish("ListModels", ctx, start, reactor);
  if (!caller.has_value()) return reactor;
  for (const auto& name : d_.models.Names()) {
    convert::ModelToProto(name, (*d_.models.Find(name))->info(), response->add_models());
  }
  FinishRpc("ListModels", ctx, start, reactor, grpc::Status::OK, "", caller->name);
  return reactor;
}

grpc::ServerUnaryReactor* AttattrService::GetModel(grpc::CallbackServerContext* ctx,
                                                   const v1::GetModelRequest* request,
                                                   v1::Model* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto caller = CallerOrFinish("GetModel", ctx, start, reactor);
  if (!caller.has_value()) return reactor;
  auto model = d_.models.Find(request->name());
  if (model.ok()) convert::ModelToProto(request->name(), (*model)->info(), response);
  // GetModelRequest names the model in `name` (Find's message says "model:", as other requests'
  // field is called).
  const absl::Status status =
      model.ok() ? absl::OkStatus()
                 : absl::Status(
                       model.status().code(),
                       absl::StrCat("name", absl::StripPrefix(model.status().message(), "model")));
  FinishRpc("GetModel", ctx, start, reactor, ToGrpcStatus(status), "", caller->name);
  return reactor;
}

grpc::ServerUnaryReactor* AttattrService::Explain(grpc::CallbackServerContext* ctx,
                                                  const v1::ExplainRequest* request,
                                                  v1::ExplainResponse* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto caller = CallerOrFinish("Explain", ctx, start, reactor);
  if (!caller.has_value()) return reactor;
  if (draining_) {
    FinishRpc("Explain", ctx, start, reactor, Draining("Explain"), "", caller->name);
    return reactor;
  }
  if (const int64_t wait_ms = d_.explain_limiter.TryAcquire(caller->name); wait_ms > 0) {
    d_.metrics.RecordQuotaRefusal("explain_rate");
    FinishRpc("Explain", ctx, start, reactor,
              RetryLater(ctx,
                         absl::StrCat("Explain: principal '", caller->name,
                                      "' is over its call rate (--explain-rate-per-principal)"),
                         wait_ms),
              "", caller->name);
    return reactor;
  }
  // Tokenizing runs on the validation pool: a reaction thread only queues the call.
  const bool queued = d_.validation_pool.TrySchedule(
      [this, ctx, request, response, reactor, start, caller = *caller] {
        CompleteExplain(ctx, request, response, reactor, start, caller);
      },
      CallerKey(ctx, caller->name));
  if (!queued) {
    FinishRpc("Explain", ctx, start, reactor,
              grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           absl::StrCat("Explain: ", kValidationFull)),
              "", caller->name);
  }
  return reactor;
}

void AttattrService::CompleteExplain(grpc::CallbackServerContext* ctx,
                                     const v1::ExplainRequest* request,
                                     v1::ExplainResponse* response,
                                     grpc::ServerUnaryReactor* reactor, Clock::time_point start,
                                     const Principal& caller) {
  auto finish = [&](const grpc::Status& status) {
    FinishRpc("Explain", ctx, start, reactor, status, "", caller.name);
  };
  if (ctx->IsCancelled()) {
    return finish(grpc::Status(grpc::StatusCode::CANCELLED, "Explain: cancelled by the client"));
  }
  auto model = d_.models.Find(request->model());
  if (!model.ok()) return finish(ToGrpcStatus(model.status()));
  auto call = ExplainFromProto(*request, **model, d_.config);
  if (!call.ok()) return finish(ToGrpcStatus(call.status()));
  if (absl::Status cost = CheckExplainCost(*call, d_.config); !cost.ok()) {
    return finish(ToGrpcStatus(cost));
  }
  AttributionItem item;
  item.model = call->model;
  item.options = call->options;
  item.options.keep_attention = call->result.attention();
  item.encoding = call->encoding;
  // gRPC marks the call cancelled when the client goes away or its deadline passes.
  item.should_stop = [ctx] { return ctx->IsCancelled(); };
  item.done = [this, ctx, start, reactor, response, result_options = call->result,
               steps = call->options.steps, principal = caller.name,
               labels = &call->model->info().labels](absl::StatusOr<engine::ExampleAttribution> r) {
    grpc::Status status;
    if (r.ok()) {
      convert::AttributionToProto(*r, result_options, *labels, response->mutable_attribution());
      d_.metrics.RecordAttribution("explain", *r, steps);
    } else if (r.status().code() == absl::StatusCode::kCancelled &&
               ctx->deadline() <= std::chrono::system_clock::now()) {
      status = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                            "Explain: deadline passed before the attribution finished");
    } else {
      status = ToGrpcStatus(r.status());
    }
    FinishRpc("Explain", ctx, start, reactor, status, "", principal);
  };
  item.owner = CallerKey(ctx, caller.name);
  switch (d_.batcher.TrySubmit(std::move(item))) {
    case AttributionBatcher::Admission::kQueued:
      return;
    case AttributionBatcher::Admission::kOwnerFull:
      // The caller's own share (with authentication): its flood does not refuse the others.
      d_.metrics.RecordQuotaRefusal("explains");
      return finish(RetryLater(ctx,
                               absl::StrCat("Explain: principal '", caller.name,
                                            "' has its share of --max-pending-explains (a "
                                            "quarter) waiting for the engine"),
                               kExplainRetryMs));
    case AttributionBatcher::Admission::kFull:
      return finish(RetryLater(ctx, "Explain: too many calls waiting (--max-pending-explains)",
                               kExplainRetryMs));
    case AttributionBatcher::Admission::kStopping:
      return finish(Draining("Explain"));
  }
}

grpc::ServerUnaryReactor* AttattrService::SubmitJob(grpc::CallbackServerContext* ctx,
                                                    const v1::SubmitJobRequest* request,
                                                    v1::Job* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto caller = CallerOrFinish("SubmitJob", ctx, start, reactor);
  if (!caller.has_value()) return reactor;
  auto finish = [&](const grpc::Status& status) {
    FinishRpc("SubmitJob", ctx, start, reactor, status, "", caller->name);
    return reactor;
  };
  if (draining_) return finish(Draining("SubmitJob"));
  if (request->request_id().size() > 128) {
    return finish(ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
        "request_id: ", request->request_id().size(), " bytes, at most 128 allowed"))));
  }
  if (!request->has_spec()) {
    return finish(ToGrpcStatus(absl::InvalidArgumentError("spec: required")));
  }
  // Counted before the request waits for validation, which copies the examples.
  if (auto s = CheckInlineExampleCounts(request->spec(), d_.config); !s.ok()) {
    return finish(ToGrpcStatus(s));
  }
  // Validation reads dataset files and tokenizes every example: not on a reaction thread.
  const bool queued = d_.validation_pool.TrySchedule(
      [this, ctx, request, response, reactor, start, caller = *caller] {
        CompleteSubmitJob(ctx, request, response, reactor, start, caller);
      },
      CallerKey(ctx, caller->name));
  if (!queued) {
    return finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               absl::StrCat("SubmitJob: ", kValidationFull)));
  }
  return reactor;
}

void AttattrService::CompleteSubmitJob(grpc::CallbackServerContext* ctx,
                                       const v1::SubmitJobRequest* request, v1::Job* response,
                                       grpc::ServerUnaryReactor* reactor, Clock::time_point start,
                                       const Principal& caller) {
  auto finish = [&](const grpc::Status& status, const std::string& job_id = "") {
    FinishRpc("SubmitJob", ctx, start, reactor, status, job_id, caller.name);
  };
  if (ctx->IsCancelled())
    return finish(grpc::Status(grpc::StatusCode::CANCELLED, "SubmitJob: cancelled by the client"));
  const v1::JobSpec& spec = request->spec();
  if (auto s = CheckSpecPermissions(caller, spec); !s.ok()) return finish(ToGrpcStatus(s));
  // Validates everything that can be checked now (model, examples, options, admission control),
  // so a bad spec fails here rather than after it waited in the queue.
  auto prepared = d_.job_kinds.Prepare(spec);
  if (!prepared.ok()) return finish(ToGrpcStatus(prepared.status()));
  store::JobRecord record;
  record.reserved_result_bytes = (*prepared)->result_bytes();
  prepared->reset();  // its examples are not needed until a runner prepares the job again
  record.request_id = request->request_id();
  record.kind = JobKindName(JobKindOf(spec));
  record.model = spec.model();
  record.priority = spec.priority();
  record.owner = caller.name;
  PinDefaultPrecision(spec, d_.config).SerializeToString(&record.spec);
  auto submitted = d_.scheduler.Submit(record);
  if (!submitted.ok()) {
    if (auto quota = submitted.status().GetPayload(JobScheduler::kOwnerQuotaPayload)) {
      d_.metrics.RecordQuotaRefusal(std::string(*quota));
    }
    if (submitted.status().code() == absl::StatusCode::kResourceExhausted &&
        !submitted.status().GetPayload(JobScheduler::kQuotaPayload).has_value()) {
      return finish(RetryLater(ctx, submitted.status().message(), d_.scheduler.RetryAfterMs()));
    }
    return finish(ToGrpcStatus(submitted.status()));
  }
  if (!submitted->created &&
      (submitted->record.kind != record.kind || submitted->record.model != record.model ||
       submitted->record.spec != record.spec)) {
    return finish(grpc::Status(
        grpc::StatusCode::ALREADY_EXISTS,
        absl::StrCat("request_id: ", QuoteInput(record.request_id), " was already used for job ",
                     submitted->record.id, " with a different spec")));
  }
  JobToProto(submitted->record, d_.store.NowMs(), response);
  finish(grpc::Status::OK, submitted->record.id);
}

grpc::ServerUnaryReactor* AttattrService::GetJob(grpc::CallbackServerContext* ctx,
                                                 const v1::GetJobRequest* request,
                                                 v1::Job* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto caller = CallerOrFinish("GetJob", ctx, start, reactor, request->name());
  if (!caller.has_value()) return reactor;
  OnStorePool("GetJob", ctx, start, reactor, request->name(), caller->name,
              [this, ctx, request, response, reactor, start, caller = *caller] {
                auto record = OwnedJob(caller, request->name(), "GetJob", /*include_spec=*/true);
                if (record.ok()) JobToProto(*record, d_.store.NowMs(), response);
                FinishRpc("GetJob", ctx, start, reactor, ToGrpcStatus(record.status()),
                          request->name(), caller.name);
              });
  return reactor;
}

grpc::ServerUnaryReactor* AttattrService::ListJobs(grpc::CallbackServerContext* ctx,
                                                   const v1::ListJobsRequest* request,
                                                   v1::ListJobsResponse* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto caller = CallerOrFinish("ListJobs", ctx, start, reactor);
  if (!caller.has_value()) return reactor;
  auto finish = [&](const absl::Status& status) {
    FinishRpc("ListJobs", ctx, start, reactor, ToGrpcStatus(status), "", caller->name);
    return reactor;
  };
  if (request->page_size() < 0 || request->page_size() > store::kMaxListPageSize) {
    return finish(absl::InvalidArgumentError(absl::StrCat(
        "page_size: ", request->page_size(), " is not in [0, ", store::kMaxListPageSize, "]")));
  }
  if (!v1::JobState_IsValid(request->state())) {
    return finish(
        absl::InvalidArgumentError(absl::StrCat("state: unknown value ", request->state())));
  }
  if (!v1::JobKind_IsValid(request->kind())) {
    return finish(
        absl::InvalidArgumentError(absl::StrCat("kind: unknown value ", request->kind())));
  }
  if (!v1::JobView_IsValid(request->view())) {
    return finish(
        absl::InvalidArgumentError(absl::StrCat("view: unknown value ", request->view())));
  }
  if (request->page_token().size() > kMaxPageTokenBytes) {
    return finish(absl::InvalidArgumentError(
        absl::StrCat("page_token: ", request->page_token().size(), " characters, at most ",
                     kMaxPageTokenBytes, " (pass back a next_page_token as it came)")));
  }
  OnStorePool("ListJobs", ctx, start, reactor, "", caller->name,
              [this, ctx, request, response, reactor, start, caller = *caller] {
                FinishRpc("ListJobs", ctx, start, reactor,
                          ToGrpcStatus(ListJobsPage(caller, *request, response)), "", caller.name);
              });
  return reactor;
}

absl::Status AttattrService::ListJobsPage(const Principal& caller,
                                          const v1::ListJobsRequest& request,
                                          v1::ListJobsResponse* response) {
  const bool full = request.view() == v1::JOB_VIEW_FULL;
  store::ListFilter filter;
  filter.state = StateFromProto(request.state());
  if (request.kind() != v1::JOB_KIND_UNSPECIFIED) filter.kind = JobKindName(request.kind());
  filter.page_size = request.page_size();  // 0: the store's default, kDefaultListPageSize
  filter.page_token = request.page_token();
  // The page is listed without specs (megabytes each, up to a whole page's worth); the full view
  // reads them one job at a time below, so at most one spec beyond the response's budget is held.
  filter.include_spec = false;
  if (!caller.admin) filter.owner = caller.name;  // only the caller's own jobs
  ATTATTR_ASSIGN_OR_RETURN(auto page, d_.store.List(filter));
  const int64_t now = d_.store.NowMs();
  size_t bytes = 0;
  for (size_t i = 0; i < page.records.size(); ++i) {
    v1::Job job;
    if (full) {
      absl::StatusOr<store::JobRecord> record = d_.store.Get(page.records[i].id);
      if (absl::IsNotFound(record.status())) continue;  // deleted since the listing
      ATTATTR_RETURN_IF_ERROR(record.status());
      JobToProto(*record, now, &job);
    } else {
      JobSummaryToProto(page.records[i], now, &job);
    }
    bytes += job.ByteSizeLong();
    if (i > 0 && bytes > kListResponseBudgetBytes) {
      // Over the budget: end the page before this job; the token resumes at it (a position, so
      // jobs deleted meanwhile neither shift nor end the listing).
      response->set_next_page_token(store::EncodePageToken(filter, page.records[i - 1]));
      return absl::OkStatus();
    }
    *response->add_jobs() = std::move(job);
  }
  response->set_next_page_token(page.next_page_token);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* AttattrService::CancelJob(grpc::CallbackServerContext* ctx,
                                                    const v1::CancelJobRequest* request,
                                                    v1::Job* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto caller = CallerOrFinish("CancelJob", ctx, start, reactor, request->name());
  if (!caller.has_value()) return reactor;
  OnStorePool("CancelJob", ctx, start, reactor, request->name(), caller->name,
              [this, ctx, request, response, reactor, start, caller = *caller] {
                absl::Status status = OwnedJob(caller, request->name(), "CancelJob").status();
                if (status.ok()) {
                  auto record = d_.scheduler.Cancel(request->name(), caller.name);
                  if (record.ok()) JobToProto(*record, d_.store.NowMs(), response);
                  status = record.status();
                }
                FinishRpc("CancelJob", ctx, start, reactor, ToGrpcStatus(status), request->name(),
                          caller.name);
              });
  return reactor;
}

grpc::ServerUnaryReactor* AttattrService::DeleteJob(grpc::CallbackServerContext* ctx,
                                                    const v1::DeleteJobRequest* request,
                                                    v1::DeleteJobResponse*) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto caller = CallerOrFinish("DeleteJob", ctx, start, reactor, request->name());
  if (!caller.has_value()) return reactor;
  OnStorePool("DeleteJob", ctx, start, reactor, request->name(), caller->name,
              [this, ctx, request, reactor, start, caller = *caller] {
                absl::Status status = OwnedJob(caller, request->name(), "DeleteJob").status();
                if (status.ok()) status = d_.scheduler.Delete(request->name(), caller.name);
                FinishRpc("DeleteJob", ctx, start, reactor, ToGrpcStatus(status), request->name(),
                          caller.name);
              });
  return reactor;
}

}  // namespace attattr::server
