// `attattr explain` (see explain_command.h).
#include "explain_command.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/attribution_convert.h"
#include "attattr/engine/attribution_tree.h"
#include "attattr/engine/dataset.h"
#include "attattr/engine/model.h"
#include "attattr/engine/runtime.h"
#include "attattr/report/attribution_tree_render.h"
#include "command_support.h"
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

bool WantsTree(const ExplainFlags& flags) {
  return flags.tree || !flags.tree_dot.empty() || !flags.tree_svg.empty();
}

// A tree needs every layer attributed.
absl::Status CheckTreeLayers(const ExplainFlags& flags, const engine::AttributionOptions& options,
                             int num_layers) {
  if (!WantsTree(flags) || options.layers.empty() ||
      static_cast<int>(options.layers.size()) == num_layers) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--layers: an attribution tree needs every layer attributed; leave --layers out or list all ",
      num_layers));
}

// Writes the DOT/SVG renderings the flags ask for, for example `index` of `count`.
absl::Status WriteTreeFiles(const ExplainFlags& flags, const engine::AttributionTree& tree,
                            size_t index, size_t count) {
  if (!flags.tree_dot.empty()) {
    ATTATTR_RETURN_IF_ERROR(WriteFlagFile("--tree-dot",
                                          NumberedTreePath(flags.tree_dot, index, count),
                                          report::AttributionTreeToDot(tree)));
  }
  if (!flags.tree_svg.empty()) {
    return WriteFlagFile("--tree-svg", NumberedTreePath(flags.tree_svg, index, count),
                         report::AttributionTreeSvgDocument(tree));
  }
  return absl::OkStatus();
}

using PrintFn = std::function<absl::Status(const engine::ExampleAttribution&, const RenderContext&,
                                           const engine::AttributionTree*, size_t)>;

// --server mode: one Explain call per example; the server validates and reports field errors.
// `precision` is what the requests ask for (UNSPECIFIED: the server's default).
absl::Status RunRemote(const ExplainFlags& flags, const std::vector<engine::Example>& examples,
                       engine::AttributionOptions options, v1::Precision precision,
                       const PrintFn& print, std::ostream& out) {
  RemoteRunner runner(flags.server, flags.security, flags.deadline);
  // A served model is named by its directory name: `--model models/x` and `--model x` both mean x.
  const std::string name = ServedModelName(flags.model);
  auto model = runner.GetModel(name);
  if (!model.ok()) {
    return absl::Status(model.status().code() == absl::StatusCode::kInvalidArgument
                            ? absl::StatusCode::kFailedPrecondition
                            : model.status().code(),
                        model.status().message());
  }
  ATTATTR_ASSIGN_OR_RETURN(auto target, ParseTarget(flags.target, model->info.labels));
  options.target = target;
  ATTATTR_RETURN_IF_ERROR(CheckTreeLayers(flags, options, model->info.num_layers));
  RenderContext ctx{flags.model, flags.target, flags.rule, flags.steps, model->info.labels};
  const bool want_tree = WantsTree(flags);
  v1::AttributionOptions requested;
  convert::AttributionOptionsToProto(options, &requested);
  requested.set_precision(precision);
  for (size_t i = 0; i < examples.size(); ++i) {
    engine::AttributionTree tree;
    auto r = runner.Explain(name, examples[i], requested, flags.tau, want_tree ? &tree : nullptr);
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
    ATTATTR_RETURN_IF_ERROR(print(*r, ctx, want_tree ? &tree : nullptr, i));
    out.flush();
  }
  return absl::OkStatus();
}

}  // namespace

std::string NumberedTreePath(const std::string& path, size_t index, size_t count) {
  if (count <= 1) return path;
  const std::filesystem::path p(path);
  std::filesystem::path numbered = p.parent_path() / p.stem();
  numbered += absl::StrCat(".", index + 1);
  numbered += p.extension();
  return numbered.string();
}

absl::Status RunExplain(const ExplainFlags& flags, std::ostream& out, std::ostream& err) {
  if (flags.format != "json" && flags.format != "text") {
    return absl::InvalidArgumentError(
        absl::StrCat("--format: '", flags.format, "' is not json or text"));
  }
  if (flags.batch < 1) return absl::InvalidArgumentError("--batch: must be at least 1");
  auto rule = engine::ParseQuadratureRule(flags.rule);
  if (!rule.ok()) return absl::InvalidArgumentError(absl::StrCat("--", rule.status().message()));
  ATTATTR_ASSIGN_OR_RETURN(auto layers, ParseLayers(flags.layers));
  ATTATTR_ASSIGN_OR_RETURN(const auto precision, ParsePrecisionFlag(flags.precision));
  ATTATTR_ASSIGN_OR_RETURN(const auto weights, ParseWeightsFlag(flags.weights, flags.server));
  ATTATTR_RETURN_IF_ERROR(engine::ValidateTreeTau(flags.tau, "--tau"));
  ATTATTR_ASSIGN_OR_RETURN(auto examples, CollectExamples(flags));

  engine::AttributionOptions options;
  options.rule = *rule;
  options.steps = flags.steps;
  options.layers = layers;
  options.max_batch_examples = flags.batch;
  options.keep_attention = false;
  options.precision = LocalPrecision(precision, weights);
  const size_t count = examples.size();
  auto print = [&](const engine::ExampleAttribution& r, const RenderContext& ctx,
                   const engine::AttributionTree* tree, size_t index) -> absl::Status {
    if (tree != nullptr) {
      ATTATTR_RETURN_IF_ERROR(WriteTreeFiles(flags, *tree, index, count));
    }
    // --tree-dot/--tree-svg alone write files; --tree puts the tree in the output too.
    const engine::AttributionTree* shown = flags.tree ? tree : nullptr;
    if (flags.format == "json") {
      out << JsonText(AttributionToJson(r, ctx, shown)) << "\n";
    } else {
      out << AttributionToText(r, ctx, flags.top_k, shown) << "\n";
    }
    return absl::OkStatus();
  };
  if (!flags.server.empty()) {
    return RunRemote(flags, examples, options, PrecisionFlagToProto(precision), print, out);
  }

  WarnIfEmulatedBf16(options.precision, weights, err);
  engine::RuntimeOptions runtime;
  runtime.intra_op_threads = flags.threads;
  if (auto s = engine::ConfigureRuntime(runtime); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--threads: ", s.message()));
  }
  engine::LoadOptions load;
  load.weights = weights;
  auto model = engine::Model::Load(flags.model, load);
  if (!model.ok()) {
    // A model that cannot be loaded is not a usage error.
    return absl::Status(absl::StatusCode::kFailedPrecondition, model.status().message());
  }
  const auto& info = (*model)->info();
  ATTATTR_ASSIGN_OR_RETURN(auto target, ParseTarget(flags.target, info.labels));
  options.target = target;
  ATTATTR_RETURN_IF_ERROR(
      NameOptionsFieldByFlag(engine::ValidateAttributionOptions(**model, options)));
  ATTATTR_RETURN_IF_ERROR(CheckTreeLayers(flags, options, info.num_layers));
  RenderContext ctx{flags.model, flags.target, flags.rule, flags.steps, info.labels};
  // Stream results in slices so memory stays bounded for long input files.
  constexpr size_t kSlice = 64;
  for (size_t start = 0; start < examples.size(); start += kSlice) {
    std::vector<engine::Example> slice(
        examples.begin() + start, examples.begin() + std::min(examples.size(), start + kSlice));
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
    for (size_t k = 0; k < results->size(); ++k) {
      const auto& r = (*results)[k];
      engine::AttributionTree tree;
      if (WantsTree(flags)) {
        auto built = engine::BuildAttributionTree(r, info.num_layers, flags.tau);
        if (!built.ok()) return absl::InternalError(built.status().message());
        tree = std::move(*built);
      }
      ATTATTR_RETURN_IF_ERROR(print(r, ctx, WantsTree(flags) ? &tree : nullptr, start + k));
    }
    out.flush();
  }
  return absl::OkStatus();
}

}  // namespace attattr::client
