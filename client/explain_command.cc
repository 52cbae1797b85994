// `attattr explain` (see explain_command.h).
#include "explain_command.h"

#include <cstdlib>
#include <filesystem>
#include <functional>

#include "absl/strings/str_cat.h"
#include "attattr/engine/dataset.h"
#include "attattr/engine/model.h"
#include "attattr/engine/runtime.h"
#include "remote_runner.h"
#include "render.h"

namespace attattr::client {
namespace {

// Examples to explain, from --text or --input.
absl::StatusOr<std::vector<engine::Example>> CollectExamples(const ExplainFlags& flags) {
  if (!flags.input.empty()) {
    if (!flags.text.empty()) {
      return absl::InvalidArgumentError("--input: give either --text or --input, not both");
    }
    auto ds = engine::ReadDataset(flags.input);
    if (!ds.ok()) return absl::Status(absl::StatusCode::kNotFound, ds.status().message());
    if (ds->examples.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--input: ", flags.input, " has no examples"));
    }
    return std::move(ds->examples);
  }
  if (flags.text.empty()) return absl::InvalidArgumentError("--text: required (or --input FILE)");
  engine::Example e;
  e.text = flags.text;
  if (!flags.text_pair.empty()) e.text_pair = flags.text_pair;
  return std::vector<engine::Example>{e};
}

// --server mode: one Explain call per example; the server validates and reports field errors.
absl::Status RunRemote(
    const ExplainFlags& flags, const std::vector<engine::Example>& examples,
    engine::AttributionOptions options,
    const std::function<void(const engine::ExampleAttribution&, const RenderContext&)>& print,
    std::ostream& out) {
  RemoteRunner runner(flags.server, flags.deadline);
  // A served model is named by its directory name: `--model models/x` and `--model x` both mean x.
  const std::string name = std::filesystem::path(flags.model).filename().string();
  auto model = runner.GetModel(name);
  if (!model.ok()) {
    return absl::Status(model.status().code() == absl::StatusCode::kInvalidArgument
                            ? absl::StatusCode::kFailedPrecondition
                            : model.status().code(),
                        model.status().message());
  }
  auto target = ParseTarget(flags.target, model->labels);
  if (!target.ok()) return target.status();
  options.target = *target;
  RenderContext ctx{flags.model, flags.target, flags.rule, flags.steps, model->labels};
  for (size_t i = 0; i < examples.size(); ++i) {
    auto r = runner.Explain(name, examples[i], options);
    if (!r.ok()) {
      if (!flags.input.empty()) {
        return absl::Status(
            r.status().code() == absl::StatusCode::kInvalidArgument
                ? absl::StatusCode::kFailedPrecondition
                : r.status().code(),
            absl::StrCat(flags.input, " (example ", i + 1, "): ", r.status().message()));
      }
      return r.status();
    }
    print(*r, ctx);
    out.flush();
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunExplain(const ExplainFlags& flags, std::ostream& out) {
  if (flags.format != "json" && flags.format != "text") {
    return absl::InvalidArgumentError(
        absl::StrCat("--format: '", flags.format, "' is not json or text"));
  }
  if (flags.batch < 1) return absl::InvalidArgumentError("--batch: must be at least 1");
  auto rule = engine::ParseQuadratureRule(flags.rule);
  if (!rule.ok()) return absl::InvalidArgumentError(absl::StrCat("--", rule.status().message()));
  auto layers = ParseLayers(flags.layers);
  if (!layers.ok()) return layers.status();
  auto examples = CollectExamples(flags);
  if (!examples.ok()) return examples.status();

  engine::AttributionOptions options;
  options.rule = *rule;
  options.steps = flags.steps;
  options.layers = *layers;
  options.max_batch_examples = flags.batch;
  options.keep_attention = false;
  auto print = [&](const engine::ExampleAttribution& r, const RenderContext& ctx) {
    if (flags.format == "json") {
      out << AttributionToJson(r, ctx).dump() << "\n";
    } else {
      out << AttributionToText(r, ctx, flags.top_k) << "\n";
    }
  };
  if (!flags.server.empty()) return RunRemote(flags, *examples, options, print, out);

  engine::RuntimeOptions runtime;
  runtime.intra_op_threads = flags.threads;
  if (auto s = engine::ConfigureRuntime(runtime); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--threads: ", s.message()));
  }
  auto model = engine::Model::Load(flags.model);
  if (!model.ok()) {
    // A model that cannot be loaded is not a usage error.
    return absl::Status(absl::StatusCode::kFailedPrecondition, model.status().message());
  }
  const auto& info = (*model)->info();
  auto target = ParseTarget(flags.target, info.labels);
  if (!target.ok()) return target.status();
  options.target = *target;
  if (auto s = engine::ValidateAttributionOptions(**model, options); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", s.message()));
  }
  RenderContext ctx{flags.model, flags.target, flags.rule, flags.steps, info.labels};
  // Stream results in slices so memory stays bounded for long input files.
  constexpr size_t kSlice = 64;
  for (size_t start = 0; start < examples->size(); start += kSlice) {
    std::vector<engine::Example> slice(
        examples->begin() + start, examples->begin() + std::min(examples->size(), start + kSlice));
    auto results = engine::AttributeExamples(**model, slice, options);
    if (!results.ok()) {
      if (results.status().code() == absl::StatusCode::kInvalidArgument && flags.input.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("--text: ", results.status().message()));
      }
      if (results.status().code() == absl::StatusCode::kInvalidArgument) {
        // Report the lines of the input file, not the slice index.
        return absl::Status(absl::StatusCode::kFailedPrecondition,
                            absl::StrCat(flags.input, " (examples ", start + 1, "..",
                                         start + slice.size(), "): ", results.status().message()));
      }
      return results.status();
    }
    for (const auto& r : *results) print(r, ctx);
    out.flush();
  }
  return absl::OkStatus();
}

}  // namespace attattr::client
