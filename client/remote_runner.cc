// gRPC client side of `attattr explain --server` (see remote_runner.h). Converts engine options to
// the request proto and the reply proto back to engine::ExampleAttribution.
#include "remote_runner.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "attattr/v1/attattr_service.grpc.pb.h"

namespace attattr::client {
namespace {

absl::Status FromGrpc(const grpc::Status& s, const std::string& server) {
  if (s.ok()) return absl::OkStatus();
  std::string message = s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    message = absl::StrCat("server ", server, " unavailable: ", message);
  } else if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    message = absl::StrCat("deadline exceeded (--deadline): ", message);
  }
  // gRPC's and absl's canonical codes share their numbers.
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), message);
}

v1::QuadratureRule RuleToProto(engine::QuadratureRule r) {
  switch (r) {
    case engine::QuadratureRule::kLeftRiemann: return v1::LEFT_RIEMANN;
    case engine::QuadratureRule::kTrapezoid: return v1::TRAPEZOID;
    case engine::QuadratureRule::kGaussLegendre: return v1::GAUSS_LEGENDRE;
  }
  return v1::QUADRATURE_RULE_UNSPECIFIED;
}

v1::Target::Kind TargetToProto(engine::TargetKind k) {
  switch (k) {
    case engine::TargetKind::kPredictedClassProb: return v1::Target::PREDICTED_CLASS_PROB;
    case engine::TargetKind::kClassProb: return v1::Target::CLASS_PROB;
    case engine::TargetKind::kClassLogit: return v1::Target::CLASS_LOGIT;
    case engine::TargetKind::kEmbeddingSimilarity: return v1::Target::EMBEDDING_SIMILARITY;
  }
  return v1::Target::KIND_UNSPECIFIED;
}

RemoteModel FromProto(const v1::Model& model) {
  RemoteModel out;
  out.name = model.name();
  out.architecture = model.architecture();
  out.num_layers = model.num_layers();
  out.num_heads = model.num_heads();
  out.hidden_size = model.hidden_size();
  out.max_length = model.max_length();
  out.labels.assign(model.labels().begin(), model.labels().end());
  out.has_classifier = model.has_classifier();
  return out;
}

}  // namespace

struct RemoteRunner::Impl {
  std::string server;
  double deadline_seconds = 0;
  std::unique_ptr<v1::Attattr::Stub> stub;

  void SetDeadline(grpc::ClientContext* ctx) const {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(static_cast<int64_t>(deadline_seconds * 1000)));
  }
};

RemoteRunner::RemoteRunner(const std::string& server, double deadline_seconds)
    : impl_(std::make_unique<Impl>()) {
  impl_->server = server;
  impl_->deadline_seconds = deadline_seconds;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  impl_->stub = v1::Attattr::NewStub(
      grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args));
}

RemoteRunner::~RemoteRunner() = default;

absl::StatusOr<RemoteModel> RemoteRunner::GetModel(const std::string& name) {
  grpc::ClientContext ctx;
  impl_->SetDeadline(&ctx);
  v1::GetModelRequest req;
  req.set_name(name);
  v1::Model model;
  if (auto s = FromGrpc(impl_->stub->GetModel(&ctx, req, &model), impl_->server); !s.ok()) {
    return s;
  }
  return FromProto(model);
}

absl::StatusOr<std::vector<RemoteModel>> RemoteRunner::ListModels() {
  grpc::ClientContext ctx;
  impl_->SetDeadline(&ctx);
  v1::ListModelsResponse list;
  if (auto s = FromGrpc(impl_->stub->ListModels(&ctx, {}, &list), impl_->server); !s.ok()) {
    return s;
  }
  std::vector<RemoteModel> out;
  for (const auto& m : list.models()) out.push_back(FromProto(m));
  return out;
}

absl::StatusOr<engine::ExampleAttribution> RemoteRunner::Explain(
    const std::string& model, const engine::Example& example,
    const engine::AttributionOptions& options) {
  v1::ExplainRequest req;
  req.set_model(model);
  req.mutable_example()->set_text(example.text);
  if (example.text_pair) req.mutable_example()->set_text_pair(*example.text_pair);
  auto* o = req.mutable_options();
  o->set_rule(RuleToProto(options.rule));
  o->set_steps(options.steps);
  for (int l : options.layers) o->add_layers(l);
  o->mutable_target()->set_kind(TargetToProto(options.target.kind));
  o->mutable_target()->set_class_index(options.target.class_index);
  o->mutable_target()->set_reference_text(options.target.reference_text);
  req.mutable_result()->set_full_matrices(true);
  req.mutable_result()->set_top_k(0);
  grpc::ClientContext ctx;
  impl_->SetDeadline(&ctx);
  v1::ExplainResponse resp;
  if (auto s = FromGrpc(impl_->stub->Explain(&ctx, req, &resp), impl_->server); !s.ok()) return s;
  const auto& a = resp.attribution();
  engine::ExampleAttribution r;
  r.encoding.tokens.assign(a.tokens().begin(), a.tokens().end());
  r.encoding.input_ids.assign(a.input_ids().begin(), a.input_ids().end());
  r.encoding.token_type_ids.assign(a.token_type_ids().begin(), a.token_type_ids().end());
  r.prediction.predicted = a.prediction().predicted();
  r.prediction.probabilities.assign(a.prediction().probabilities().begin(),
                                    a.prediction().probabilities().end());
  r.prediction.logits.assign(a.prediction().logits().begin(), a.prediction().logits().end());
  r.target_class = a.target_class();
  for (const auto& pl : a.layers()) {
    engine::LayerAttribution l;
    l.layer = pl.layer();
    l.num_heads = pl.num_heads();
    l.target_at_full = pl.target_at_full();
    l.target_at_zero = pl.target_at_zero();
    l.attribution_sum = pl.attribution_sum();
    l.completeness_gap = pl.completeness_gap();
    const auto& values = pl.attribution().f32().values();
    l.attribution.assign(values.begin(), values.end());
    r.layers.push_back(std::move(l));
  }
  return r;
}

}  // namespace attattr::client
