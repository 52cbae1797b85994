// Proto <-> engine conversion, in one file (STYLE.md §2.5): requests are validated and turned into
// native engine types as early as possible, with messages that name the field
// ("example.text: empty", "options.layers[1]: ..."); engine results become protos honouring the
// caller's ResultOptions (matrices, head sums, top-k, fp16). Pure functions, thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/half_float.h"
#include "attattr/engine/model.h"
#include "attattr/v1/attattr_service.pb.h"
#include "server/server_config.h"

namespace attattr::server {

// A validated Explain call.
struct ExplainCall {
  const engine::Model* model = nullptr;
  engine::Encoding encoding;
  engine::AttributionOptions options;
  v1::ResultOptions result;
};

// Validates `request` against `model` and the server limits. InvalidArgument naming the field.
absl::StatusOr<ExplainCall> ExplainFromProto(const v1::ExplainRequest& request,
                                             const engine::Model& model,
                                             const ServerConfig& config);

// Validates and converts AttributionOptions (field names are prefixed with `field`).
absl::StatusOr<engine::AttributionOptions> AttributionOptionsFromProto(
    const v1::AttributionOptions& options, const engine::Model& model, const ServerConfig& config,
    const std::string& field);

// ResultOptions with the defaults applied: an unset message (`has_result` false) means the top 10
// connections per layer and no matrices. InvalidArgument naming `field`.top_k when top_k is
// negative or above `max_top_k`.
absl::StatusOr<v1::ResultOptions> ResultOptionsFromProto(const v1::ResultOptions& result,
                                                         bool has_result, int max_top_k,
                                                         const std::string& field);

void ModelToProto(const std::string& name, const engine::ModelInfo& info, v1::Model* out);

void AttributionToProto(const engine::ExampleAttribution& result, const v1::ResultOptions& options,
                        const std::vector<std::string>& labels, v1::ExampleAttribution* out);

// The fp16 wire encoding (engine/half_float.h), under the names the server has always used.
using engine::FloatToHalf;
using engine::HalfToFloat;

}  // namespace attattr::server
