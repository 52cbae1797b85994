// gRPC client side of `attattr explain --server` (see remote_runner.h). Converts engine options to
// the request proto and the reply proto back to engine::ExampleAttribution.
#include "remote_runner.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/attribution_convert.h"
#include "attattr/v1/attattr_service.grpc.pb.h"
#include "attribution_request.h"
#include "grpc_call.h"

namespace attattr::client {
namespace {

absl::Status FromGrpc(const grpc::Status& s, const std::string& server) {
  if (s.ok()) return absl::OkStatus();
  std::string message = s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    message = absl::StrCat("server ", server, " unavailable: ", message);
  } else if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    message = absl::StrCat("deadline exceeded (--deadline-seconds): ", message);
  } else if (std::string denied = AccessDeniedMessage(s); !denied.empty()) {
    message = std::move(denied);
  }
  // gRPC's and absl's canonical codes share their numbers.
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), message);
}

RemoteModel FromProto(const v1::Model& model) {
  return RemoteModel{model.name(), convert::ModelInfoFromProto(model)};
}

}  // namespace

struct RemoteRunner::Impl {
  std::string server;
  double deadline_seconds = 0;
  std::unique_ptr<v1::Attattr::Stub> stub;

  void SetDeadline(grpc::ClientContext* ctx) const { SetCallDeadline(ctx, deadline_seconds); }
};

RemoteRunner::RemoteRunner(const std::string& server, const ChannelSecurity& security,
                           double deadline_seconds)
    : impl_(std::make_unique<Impl>()) {
  impl_->server = server;
  impl_->deadline_seconds = deadline_seconds;
  impl_->stub = NewAttattrStub(server, security);
}

RemoteRunner::~RemoteRunner() = default;

absl::StatusOr<RemoteModel> RemoteRunner::GetModel(const std::string& name) {
  grpc::ClientContext ctx;
  impl_->SetDeadline(&ctx);
  v1::GetModelRequest req;
  req.set_name(name);
  v1::Model model;
  ATTATTR_RETURN_IF_ERROR(FromGrpc(impl_->stub->GetModel(&ctx, req, &model), impl_->server));
  return FromProto(model);
}

absl::StatusOr<std::vector<RemoteModel>> RemoteRunner::ListModels() {
  grpc::ClientContext ctx;
  impl_->SetDeadline(&ctx);
  v1::ListModelsResponse list;
  ATTATTR_RETURN_IF_ERROR(FromGrpc(impl_->stub->ListModels(&ctx, {}, &list), impl_->server));
  std::vector<RemoteModel> out;
  for (const auto& m : list.models()) out.push_back(FromProto(m));
  return out;
}

absl::StatusOr<engine::ExampleAttribution> RemoteRunner::Explain(
    const std::string& model, const engine::Example& example, const v1::AttributionOptions& options,
    double tree_tau, engine::AttributionTree* tree) {
  v1::ExplainRequest req;
  req.set_model(model);
  req.mutable_example()->set_text(example.text);
  if (example.text_pair) req.mutable_example()->set_text_pair(*example.text_pair);
  *req.mutable_options() = options;
  req.mutable_result()->set_full_matrices(true);
  req.mutable_result()->set_top_k(0);
  if (tree != nullptr) {
    req.mutable_result()->set_tree(true);
    req.mutable_result()->set_tree_tau(tree_tau);
  }
  grpc::ClientContext ctx;
  impl_->SetDeadline(&ctx);
  v1::ExplainResponse resp;
  ATTATTR_RETURN_IF_ERROR(FromGrpc(impl_->stub->Explain(&ctx, req, &resp), impl_->server));
  // The server sent what was asked (full fp32 matrices); a malformed reply is the server's fault.
  auto r = convert::AttributionFromProto(resp.attribution());
  if (!r.ok())
    return absl::InternalError(absl::StrCat("malformed Explain reply: ", r.status().message()));
  if (tree != nullptr) {
    if (!resp.attribution().has_tree()) {
      return absl::InternalError("malformed Explain reply: no attribution tree (old server?)");
    }
    auto read = convert::TreeFromProto(resp.attribution());
    if (!read.ok()) {
      return absl::InternalError(
          absl::StrCat("malformed Explain reply: ", read.status().message()));
    }
    *tree = *std::move(read);
  }
  return r;
}

}  // namespace attattr::client
