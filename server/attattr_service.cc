// gRPC handlers (see attattr_service.h). Every RPC ends through FinishRpc, which writes the one
// access-log line (method, code, latency, request id) and finishes the reactor.
#include "server/attattr_service.h"

#include <chrono>

#include "attattr/engine/attention_attribution.h"
#include "server/proto_convert.h"
#include "server/status_convert.h"

namespace attattr::server {
namespace {

using Clock = std::chrono::steady_clock;

// The client's x-request-id metadata, or "-".
std::string RequestId(const grpc::CallbackServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("x-request-id");
  return it == md.end() ? "-" : std::string(it->second.data(), it->second.size());
}

}  // namespace

void AttattrService::FinishRpc(const char* method, grpc::CallbackServerContext* ctx,
                               Clock::time_point start, grpc::ServerUnaryReactor* reactor,
                               const grpc::Status& status) {
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const std::string code = GrpcCodeName(status.error_code());
  metrics_.RecordRpc(method, code, seconds);
  log_->info("rpc method={} code={} latency_ms={:.2f} request_id={} peer={}{}{}", method, code,
             seconds * 1e3, RequestId(ctx), ctx->peer(), status.ok() ? "" : " error=",
             status.error_message());
  reactor->Finish(status);
}

grpc::ServerUnaryReactor* AttattrService::ListModels(grpc::CallbackServerContext* ctx,
                                                     const v1::ListModelsRequest*,
                                                     v1::ListModelsResponse* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  for (const auto& name : models_.Names()) {
    ModelToProto(name, (*models_.Find(name))->info(), response->add_models());
  }
  FinishRpc("ListModels", ctx, start, reactor, grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AttattrService::GetModel(grpc::CallbackServerContext* ctx,
                                                   const v1::GetModelRequest* request,
                                                   v1::Model* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto model = models_.Find(request->name());
  if (model.ok()) ModelToProto(request->name(), (*model)->info(), response);
  FinishRpc("GetModel", ctx, start, reactor, ToGrpcStatus(model.status()));
  return reactor;
}

grpc::ServerUnaryReactor* AttattrService::Explain(grpc::CallbackServerContext* ctx,
                                                  const v1::ExplainRequest* request,
                                                  v1::ExplainResponse* response) {
  const auto start = Clock::now();
  auto* reactor = ctx->DefaultReactor();
  auto model = models_.Find(request->model());
  if (!model.ok()) {
    FinishRpc("Explain", ctx, start, reactor, ToGrpcStatus(model.status()));
    return reactor;
  }
  auto call = ExplainFromProto(*request, **model, config_);
  if (!call.ok()) {
    FinishRpc("Explain", ctx, start, reactor, ToGrpcStatus(call.status()));
    return reactor;
  }
  // The call (and `response`) stay alive until reactor->Finish; the task owns its inputs.
  auto task = [this, ctx, start, reactor, response, call = std::move(*call)]() mutable {
    engine::RunControl control;
    // gRPC marks the call cancelled when the client goes away or its deadline passes.
    control.should_stop = [ctx] { return ctx->IsCancelled(); };
    auto result = engine::AttributeEncodings(*call.model, {call.encoding}, call.options, control);
    grpc::Status status;
    if (result.ok()) {
      AttributionToProto((*result)[0], call.result, call.model->info().labels,
                         response->mutable_attribution());
      metrics_.RecordAttribution("explain", (*result)[0], call.options.steps);
    } else if (result.status().code() == absl::StatusCode::kCancelled &&
               ctx->deadline() <= std::chrono::system_clock::now()) {
      status = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                            "Explain: deadline passed before the attribution finished");
    } else {
      status = ToGrpcStatus(result.status());
    }
    FinishRpc("Explain", ctx, start, reactor, status);
  };
  if (!workers_.TrySubmit(std::move(task))) {
    FinishRpc("Explain", ctx, start, reactor,
              grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           "Explain: too many calls waiting (--max-pending-explains); retry later"));
  }
  return reactor;
}

}  // namespace attattr::server
