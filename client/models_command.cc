// `attattr models` (see models_command.h).
#include "models_command.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "attattr/engine/precision.h"
#include "nlohmann/json.hpp"
#include "remote_runner.h"
#include "render.h"

namespace attattr::client {

absl::Status RunModels(const ModelsFlags& flags, std::ostream& out) {
  if (flags.server.empty()) return absl::InvalidArgumentError("--server: required");
  if (flags.format != "json" && flags.format != "text") {
    return absl::InvalidArgumentError(
        absl::StrCat("--format: '", flags.format, "' is not json or text"));
  }
  RemoteRunner runner(flags.server, flags.security, flags.deadline);
  auto models = runner.ListModels();
  if (!models.ok()) {
    // A server's refusal here is never a usage error of this command.
    return absl::Status(models.status().code() == absl::StatusCode::kInvalidArgument
                            ? absl::StatusCode::kFailedPrecondition
                            : models.status().code(),
                        models.status().message());
  }
  if (flags.format == "json") {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& m : *models) {
      list.push_back({{"name", m.name},
                      {"family", m.info.family},
                      {"tokenizer", m.info.tokenizer},
                      {"decoder", m.info.decoder},
                      {"architecture", m.info.architecture},
                      {"num_layers", m.info.num_layers},
                      {"num_heads", m.info.num_heads},
                      {"num_key_value_heads", m.info.num_key_value_heads},
                      {"hidden_size", m.info.hidden_size},
                      {"max_length", m.info.max_length},
                      {"has_classifier", m.info.has_classifier},
                      {"language_model", m.info.language_model},
                      {"num_classes", m.info.num_classes},
                      {"problem_type", m.info.problem_type},
                      {"heads_per_layer", m.info.heads_per_layer},
                      {"labels", m.info.labels},
                      {"weights", std::string(engine::PrecisionName(m.info.weights))},
                      {"weight_bytes", m.info.weight_bytes}});
    }
    out << JsonText(nlohmann::json{{"models", list}}) << "\n";
    return absl::OkStatus();
  }
  // Rows of any length (a classifier with a hundred labels): a fixed buffer would cut them.
  out << absl::StrFormat("%-28s %-30s %8s %7s %8s %13s  %s\n", "NAME", "ARCHITECTURE", "LAYERSxH",
                         "HIDDEN", "MAX_LEN", "WEIGHTS", "LABELS");
  for (const auto& m : *models) {
    const std::string shape = absl::StrCat(m.info.num_layers, "x", m.info.num_heads);
    const std::string labels =
        m.info.language_model    ? absl::StrCat("(language model, ", m.info.num_classes, " tokens)")
        : !m.info.has_classifier ? std::string("(encoder-only)")
        : m.info.problem_type == "regression"
            ? absl::StrCat("(regression, ", m.info.num_classes,
                           m.info.num_classes == 1 ? " output)" : " outputs)")
        : m.info.problem_type == "multi_label_classification"
            ? absl::StrCat("(multi-label) ", absl::StrJoin(m.info.labels, ","))
            : absl::StrJoin(m.info.labels, ",");
    // "bf16 942M": the storage and its MiB.
    const std::string weights = absl::StrCat(std::string(engine::PrecisionName(m.info.weights)),
                                             " ", m.info.weight_bytes >> 20, "M");
    out << absl::StrFormat("%-28s %-30s %8s %7d %8d %13s  %s\n", m.name, m.info.architecture, shape,
                           m.info.hidden_size, m.info.max_length, weights, labels);
  }
  return absl::OkStatus();
}

}  // namespace attattr::client
