// gRPC handlers of the unary RPCs (see attattr_service.h); the streaming ones and WaitJob live in
// job_streams.cc. Every RPC ends through FinishRpc / RecordRpc, which write the one access-log
// line (method, code, latency, request id, job id) and record the RPC metrics.
#include "attattr_service.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "attattr/base/quote.h"
#include "attattr/convert/attribution_convert.h"
#include "attattr/engine/attention_attribution.h"
#include "jobs/job_convert.h"
#include "proto_convert.h"
#include "status_convert.h"

namespace attattr::server {
namespace {

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

grpc::Status Draining(const char* method) {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      absl::StrCat(method,
                                   ": the server is draining (shutting down); retry on "
                                   "another replica or after the restart"));
}

}  // namespace

void AttattrService::RecordRpc(const char* method, grpc::CallbackServerContext* ctx,
                               Clock::time_point start, const grpc::Status& status,
                               const std::string& job_id) {
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const std::string code = GrpcCodeName(status.error_code());
  d_.metrics.RecordRpc(method, code, seconds);
  d_.log.Info("rpc", {{"method", method},
                      {"code", code},
                      {"latency_ms", seconds * 1e3},
                      {"request_id", RequestId(ctx)},
                      {"job_id", job_id},
                      {"peer", ctx->peer()},
                      {"error", status.error_message()}});
}

void AttattrService::FinishRpc(const char* method, grpc::CallbackServerContext* ctx,
                               Clock::time_point start, grpc::ServerUnaryReactor* reactor,
                               const grpc::Status& status, const std::string& job_id) {
  RecordRpc(method, ctx, start, status, job_id);
  reactor->Finish(status);
}

grpc::ServerUnaryReactor* AttattrService::ListModels(grpc::CallbackServerContext* ctx,
                                                     const v1::ListModelsRequest*,
                                                     v1::ListModelsResponse* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  for (const auto& name : d_.models.Names()) {
    convert::ModelToProto(name, (*d_.models.Find(name))->info(), response->add_models());
  }
  FinishRpc("ListModels", ctx, start, reactor, grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AttattrService::GetModel(grpc::CallbackServerContext* ctx,
                                                   const v1::GetModelRequest* request,
                                                   v1::Model* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto model = d_.models.Find(request->name());
  if (model.ok()) convert::ModelToProto(request->name(), (*model)->info(), response);
  FinishRpc("GetModel", ctx, start, reactor, ToGrpcStatus(model.status()));
  return reactor;
}

grpc::ServerUnaryReactor* AttattrService::Explain(grpc::CallbackServerContext* ctx,
                                                  const v1::ExplainRequest* request,
                                                  v1::ExplainResponse* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  if (draining_) {
    FinishRpc("Explain", ctx, start, reactor, Draining("Explain"));
    return reactor;
  }
  // Tokenizing runs on the validation pool: a reaction thread only queues the call.
  const bool queued =
      d_.validation_pool.TrySchedule([this, ctx, request, response, reactor, start] {
        CompleteExplain(ctx, request, response, reactor, start);
      });
  if (!queued) {
    FinishRpc("Explain", ctx, start, reactor,
              grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           "Explain: too many calls waiting for validation "
                           "(--max-pending-validations); retry later"));
  }
  return reactor;
}

void AttattrService::CompleteExplain(grpc::CallbackServerContext* ctx,
                                     const v1::ExplainRequest* request,
                                     v1::ExplainResponse* response,
                                     grpc::ServerUnaryReactor* reactor, Clock::time_point start) {
  if (ctx->IsCancelled()) {
    return FinishRpc("Explain", ctx, start, reactor,
                     grpc::Status(grpc::StatusCode::CANCELLED, "Explain: cancelled by the client"));
  }
  auto model = d_.models.Find(request->model());
  if (!model.ok()) return FinishRpc("Explain", ctx, start, reactor, ToGrpcStatus(model.status()));
  auto call = ExplainFromProto(*request, **model, d_.config);
  if (!call.ok()) return FinishRpc("Explain", ctx, start, reactor, ToGrpcStatus(call.status()));
  AttributionItem item;
  item.model = call->model;
  item.options = call->options;
  item.options.keep_attention = call->result.attention();
  item.encoding = call->encoding;
  // gRPC marks the call cancelled when the client goes away or its deadline passes.
  item.should_stop = [ctx] { return ctx->IsCancelled(); };
  item.done = [this, ctx, start, reactor, response, result_options = call->result,
               steps = call->options.steps,
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
    FinishRpc("Explain", ctx, start, reactor, status);
  };
  if (!d_.batcher.TrySubmit(std::move(item))) {
    FinishRpc(
        "Explain", ctx, start, reactor,
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     "Explain: too many calls waiting (--max-pending-explains); retry later"));
  }
}

grpc::ServerUnaryReactor* AttattrService::SubmitJob(grpc::CallbackServerContext* ctx,
                                                    const v1::SubmitJobRequest* request,
                                                    v1::Job* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto finish = [&](const grpc::Status& status) {
    FinishRpc("SubmitJob", ctx, start, reactor, status);
    return reactor;
  };
  if (draining_) return finish(Draining("SubmitJob"));
  if (request->request_id().size() > 128) {
    return finish(ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
        "request_id: ", request->request_id().size(), " characters, at most 128 allowed"))));
  }
  if (!request->has_spec()) {
    return finish(ToGrpcStatus(absl::InvalidArgumentError("spec: required")));
  }
  // Validation reads dataset files and tokenizes every example: not on a reaction thread.
  const bool queued =
      d_.validation_pool.TrySchedule([this, ctx, request, response, reactor, start] {
        CompleteSubmitJob(ctx, request, response, reactor, start);
      });
  if (!queued) {
    return finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               "SubmitJob: too many submissions waiting for validation "
                               "(--max-pending-validations); retry later"));
  }
  return reactor;
}

void AttattrService::CompleteSubmitJob(grpc::CallbackServerContext* ctx,
                                       const v1::SubmitJobRequest* request, v1::Job* response,
                                       grpc::ServerUnaryReactor* reactor, Clock::time_point start) {
  auto finish = [&](const grpc::Status& status, const std::string& job_id = "") {
    FinishRpc("SubmitJob", ctx, start, reactor, status, job_id);
  };
  if (ctx->IsCancelled())
    return finish(grpc::Status(grpc::StatusCode::CANCELLED, "SubmitJob: cancelled by the client"));
  const v1::JobSpec& spec = request->spec();
  // Validates everything that can be checked now (model, examples, options, admission control),
  // so a bad spec fails here rather than after it waited in the queue.
  if (auto prepared = d_.job_kinds.Prepare(spec); !prepared.ok()) {
    return finish(ToGrpcStatus(prepared.status()));
  }
  store::JobRecord record;
  record.request_id = request->request_id();
  record.kind = JobKindName(JobKindOf(spec));
  record.model = spec.model();
  record.priority = spec.priority();
  // Callers do not authenticate yet: every job belongs to the one principal "anonymous".
  record.owner = kAnonymousPrincipal;
  spec.SerializeToString(&record.spec);
  auto submitted = d_.scheduler.Submit(record);
  if (!submitted.ok()) {
    if (submitted.status().code() == absl::StatusCode::kResourceExhausted &&
        !submitted.status().GetPayload(JobScheduler::kQuotaPayload).has_value()) {
      // gRPC's retry pushback (proposal A6): clients with a retry policy honour it.
      const int64_t retry_ms = d_.scheduler.RetryAfterMs();
      ctx->AddTrailingMetadata("grpc-retry-pushback-ms", std::to_string(retry_ms));
      return finish(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat(submitted.status().message(), "; retry in about ", retry_ms, " ms")));
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
  JobToProto(submitted->record, UnixNowMs(), response);
  finish(grpc::Status::OK, submitted->record.id);
}

grpc::ServerUnaryReactor* AttattrService::GetJob(grpc::CallbackServerContext* ctx,
                                                 const v1::GetJobRequest* request,
                                                 v1::Job* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  absl::Status status = CheckJobName(request->name());
  if (status.ok()) {
    auto record = d_.store.Get(request->name());
    if (record.ok()) JobToProto(*record, UnixNowMs(), response);
    status = record.status();
  }
  FinishRpc("GetJob", ctx, start, reactor, ToGrpcStatus(status), request->name());
  return reactor;
}

grpc::ServerUnaryReactor* AttattrService::ListJobs(grpc::CallbackServerContext* ctx,
                                                   const v1::ListJobsRequest* request,
                                                   v1::ListJobsResponse* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto finish = [&](const absl::Status& status) {
    FinishRpc("ListJobs", ctx, start, reactor, ToGrpcStatus(status));
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
  const bool full = request->view() == v1::JOB_VIEW_FULL;
  store::ListFilter filter;
  filter.state = StateFromProto(request->state());
  if (request->kind() != v1::JOB_KIND_UNSPECIFIED) filter.kind = JobKindName(request->kind());
  filter.page_size = request->page_size();  // 0: the store's default, kDefaultListPageSize
  filter.page_token = request->page_token();
  filter.include_spec = full;  // a summary never reads the (possibly large) specs
  auto page = d_.store.List(filter);
  if (!page.ok()) return finish(page.status());
  const int64_t now = UnixNowMs();
  size_t bytes = 0;
  for (size_t i = 0; i < page->records.size(); ++i) {
    v1::Job job;
    if (full) {
      JobToProto(page->records[i], now, &job);
    } else {
      JobSummaryToProto(page->records[i], now, &job);
    }
    bytes += job.ByteSizeLong();
    if (i > 0 && bytes > kListResponseBudgetBytes) {
      // Over the budget: end the page before this job; the token resumes at it.
      store::ListFilter upto = filter;
      upto.page_size = static_cast<int32_t>(i);
      auto shorter = d_.store.List(upto);
      if (!shorter.ok()) return finish(shorter.status());
      response->set_next_page_token(shorter->next_page_token);
      return finish(absl::OkStatus());
    }
    *response->add_jobs() = std::move(job);
  }
  response->set_next_page_token(page->next_page_token);
  return finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* AttattrService::CancelJob(grpc::CallbackServerContext* ctx,
                                                    const v1::CancelJobRequest* request,
                                                    v1::Job* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  absl::Status status = CheckJobName(request->name());
  if (status.ok()) {
    auto record = d_.scheduler.Cancel(request->name());
    if (record.ok()) JobToProto(*record, UnixNowMs(), response);
    status = record.status();
  }
  FinishRpc("CancelJob", ctx, start, reactor, ToGrpcStatus(status), request->name());
  return reactor;
}

grpc::ServerUnaryReactor* AttattrService::DeleteJob(grpc::CallbackServerContext* ctx,
                                                    const v1::DeleteJobRequest* request,
                                                    v1::DeleteJobResponse*) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  absl::Status status = CheckJobName(request->name());
  if (status.ok()) status = d_.scheduler.Delete(request->name());
  FinishRpc("DeleteJob", ctx, start, reactor, ToGrpcStatus(status), request->name());
  return reactor;
}

}  // namespace attattr::server
