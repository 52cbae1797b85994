// Remote mode of the CLI: runs `explain` against an attattr-server over gRPC and turns the reply
// back into the engine's plain result type, so local and remote output are rendered by the same
// code (and compare byte for byte). Owns one channel; not thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/attribution_tree.h"
#include "attattr/engine/model.h"
#include "attattr/v1/attribution.pb.h"
#include "grpc_call.h"

namespace attattr::client {

// A served model: its name and what the server says of it (convert::ModelInfoFromProto).
struct RemoteModel {
  std::string name;
  engine::ModelInfo info;
};
class RemoteRunner {
 public:
  // `server` is HOST:PORT; `deadline_seconds` bounds each call.
  RemoteRunner(const std::string& server, const ChannelSecurity& security, double deadline_seconds);
  ~RemoteRunner();

  // GetModel; NotFound naming the model when the server does not serve it.
  absl::StatusOr<RemoteModel> GetModel(const std::string& name);
  // ListModels.
  absl::StatusOr<std::vector<RemoteModel>> ListModels();

  // Explain one example with full fp32 matrices. Errors carry the server's status code and message.
  // With `tree` non-null, also asks for the attribution tree with threshold `tree_tau` and stores
  // it there.
  absl::StatusOr<engine::ExampleAttribution> Explain(const std::string& model,
                                                     const engine::Example& example,
                                                     const v1::AttributionOptions& options,
                                                     double tree_tau = 0,
                                                     engine::AttributionTree* tree = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attattr::client
