// SubmitJob's validation (see job_spec.h). Dataset files are read here, with the relative path as
// the name in parse errors, so that no message shows where --data-root lives on the server.
#include "jobs/job_spec.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "attattr/base/field_error.h"
#include "attattr/base/quote.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/attribution_convert.h"
#include "attattr/engine/dataset.h"
#include "attattr/engine/gold_label.h"
#include "attattr/engine/pruned_export.h"
#include "jobs/job_priority.h"
#include "proto_convert.h"

namespace attattr::server {
namespace {

namespace fs = std::filesystem;

absl::Status Invalid(const std::string& field, const std::string& what) {
  return InvalidSpec(field, what);
}

// `status` with its code kept and `field: ` in front of its message.
absl::Status Prefixed(const absl::Status& status, const std::string& field) {
  return absl::Status(status.code(), absl::StrCat(field, ": ", status.message()));
}

std::string Mib(int64_t bytes) { return FormatMib(bytes); }

// Where example `i` of `source` is, for messages.
engine::Example FromProto(const v1::Example& p) {
  engine::Example e;
  e.text = p.text();
  if (p.has_text_pair()) e.text_pair = p.text_pair();
  e.label = p.label();
  return e;
}

absl::StatusOr<std::vector<engine::Example>> ReadDatasetRef(const v1::DatasetRef& ref,
                                                            const ServerConfig& config,
                                                            const std::string& field) {
  if (ref.limit() < 0) return Invalid(field + ".limit", "must be >= 0 (0 = all)");
  ATTATTR_ASSIGN_OR_RETURN(auto path,
                           ResolveDataPath(config.data_root, ref.path(), field + ".path"));
  // One example past the server limit is enough to refuse the job; the rest is not read.
  int limit = config.max_job_examples + 1;
  if (ref.limit() > 0) limit = std::min(limit, ref.limit());
  // Messages name the file as the caller wrote it, quoted and cut ("a////…b.tsv" resolves too).
  auto dataset =
      engine::ReadDatasetPrefix(path, limit, config.max_dataset_bytes, QuoteInput(ref.path()));
  if (dataset.status().code() == absl::StatusCode::kOutOfRange) {
    return Invalid(field + ".path", absl::StrCat(dataset.status().message(),
                                                 " (--max-dataset-mib); set dataset.limit"));
  }
  if (!dataset.ok()) return Prefixed(dataset.status(), field + ".path");
  return std::move(dataset->examples);
}

absl::Status TooManyExamples(const std::string& field, const ServerConfig& config) {
  return Invalid(field, absl::StrCat("more than ", config.max_job_examples,
                                     " examples (server limit --max-job-examples); split the "
                                     "job or set dataset.limit"));
}

// Empty texts and the example count, for either source.
absl::Status CheckExamples(const std::vector<engine::Example>& examples,
                           const v1::ExampleSource& source, const ServerConfig& config,
                           const std::string& field) {
  if (examples.empty()) {
    return source.has_inline_() ? Invalid(field + ".inline.examples", "at least one is required")
                                : Invalid(field + ".dataset.path", "holds no examples");
  }
  if (static_cast<int64_t>(examples.size()) > config.max_job_examples) {
    return TooManyExamples(field, config);
  }
  for (size_t i = 0; i < examples.size(); ++i) {
    if (examples[i].text.empty()) return Invalid(ExampleField(source, field, i) + ".text", "empty");
    if (examples[i].text_pair && examples[i].text_pair->empty()) {
      return Invalid(ExampleField(source, field, i) + ".text_pair", "empty");
    }
    ATTATTR_RETURN_IF_ERROR(
        CheckTextBytes(examples[i].text, config, ExampleField(source, field, i) + ".text"));
    if (examples[i].text_pair) {
      ATTATTR_RETURN_IF_ERROR(CheckTextBytes(*examples[i].text_pair, config,
                                             ExampleField(source, field, i) + ".text_pair"));
    }
  }
  return absl::OkStatus();
}

// `path` under `root` (flag `flag`), with escapes refused; the file need not exist.
absl::StatusOr<fs::path> ResolveUnderRoot(const std::string& root_dir, const std::string& flag,
                                          const std::string& path, const std::string& field) {
  if (path.empty()) return Invalid(field, "empty");
  const fs::path relative(path);
  if (relative.has_root_name() || relative.has_root_directory()) {
    return Invalid(field, absl::StrCat(QuoteInput(path), " is absolute; give a path under ", flag));
  }
  for (const auto& part : relative) {
    if (part == "..")
      return Invalid(field, absl::StrCat(QuoteInput(path), " has a '..' component"));
  }
  std::error_code ec;
  const fs::path root = fs::canonical(root_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": the server's ", flag, " is unusable: ", ec.message()));
  }
  const fs::path full = fs::weakly_canonical(root / relative, ec);
  if (ec) return Invalid(field, absl::StrCat(QuoteInput(path), ": ", ec.message()));
  const auto root_end = std::mismatch(root.begin(), root.end(), full.begin(), full.end()).first;
  if (root_end != root.end() || full == root) {
    return Invalid(field, absl::StrCat(QuoteInput(path), " resolves outside ", flag, " (symlink)"));
  }
  return full;
}

}  // namespace

absl::StatusOr<std::string> ResolveDataPath(const std::string& data_root, const std::string& path,
                                            const std::string& field) {
  if (data_root.empty()) {
    return Invalid(field, "dataset files are refused: no --data-root configured on this server");
  }
  ATTATTR_ASSIGN_OR_RETURN(auto full, ResolveUnderRoot(data_root, "--data-root", path, field));
  std::error_code ec;
  const fs::file_status status = fs::status(full, ec);
  if (!fs::exists(status)) {
    return absl::NotFoundError(
        absl::StrCat(field, ": ", QuoteInput(path), " does not exist under --data-root"));
  }
  if (!fs::is_regular_file(status)) {
    return Invalid(field, absl::StrCat(QuoteInput(path), " is not a regular file"));
  }
  return full.string();
}

absl::StatusOr<std::string> ResolveExportPath(const std::string& export_root,
                                              const std::string& path, const std::string& field,
                                              const std::string& owner) {
  if (export_root.empty()) {
    return Invalid(field, "exports are refused: no --export-root configured on this server");
  }
  ATTATTR_ASSIGN_OR_RETURN(auto full, ResolveUnderRoot(export_root, "--export-root", path, field));
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(full, ec);
  if (fs::exists(status)) {
    const bool ours = !owner.empty() && fs::is_directory(status) &&
                      engine::PrunedExportOwner(full.string()) == owner;
    if (!ours && (!fs::is_directory(status) || !fs::is_empty(full, ec))) {
      return absl::AlreadyExistsError(
          absl::StrCat(field, ": ", QuoteInput(path),
                       " already exists under --export-root and is not an empty directory"));
    }
  }
  return full.string();
}

void ForEachExampleSource(
    const google::protobuf::Message& message, const std::string& path,
    const std::function<void(const v1::ExampleSource&, const std::string&)>& visit) {
  if (const auto* source = dynamic_cast<const v1::ExampleSource*>(&message)) {
    visit(*source, path);
  }
  const auto* reflection = message.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const auto* field : fields) {
    if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->message_type() == v1::Example::descriptor()) continue;  // texts only: no sources
    const std::string name = absl::StrCat(path, ".", field->name());
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
        ForEachExampleSource(reflection->GetRepeatedMessage(message, field, i),
                             absl::StrCat(name, "[", i, "]"), visit);
      }
    } else {
      ForEachExampleSource(reflection->GetMessage(message, field), name, visit);
    }
  }
}

absl::Status CheckInlineExampleCounts(const v1::JobSpec& spec, const ServerConfig& config) {
  absl::Status status;
  ForEachExampleSource(spec, "spec",
                       [&](const v1::ExampleSource& source, const std::string& field) {
                         if (status.ok() && source.has_inline_() &&
                             source.inline_().examples_size() > config.max_job_examples) {
                           status = TooManyExamples(field, config);
                         }
                       });
  return status;
}

absl::StatusOr<std::vector<engine::Example>> LoadExamples(const v1::ExampleSource& source,
                                                          const ServerConfig& config,
                                                          const std::string& field) {
  std::vector<engine::Example> examples;
  if (source.has_inline_()) {
    // Counted before anything is copied.
    if (source.inline_().examples_size() > config.max_job_examples) {
      return TooManyExamples(field, config);
    }
    examples.reserve(source.inline_().examples_size());
    for (const auto& e : source.inline_().examples()) examples.push_back(FromProto(e));
  } else if (source.has_dataset()) {
    ATTATTR_ASSIGN_OR_RETURN(auto read,
                             ReadDatasetRef(source.dataset(), config, field + ".dataset"));
    examples = std::move(read);
  } else {
    return Invalid(field, "inline or dataset is required");
  }
  ATTATTR_RETURN_IF_ERROR(CheckExamples(examples, source, config, field));
  return examples;
}

absl::StatusOr<const engine::Model*> CheckJobCommon(const v1::JobSpec& spec,
                                                    const ModelRegistry& models) {
  if (spec.model().empty()) return Invalid("spec.model", "required (ListModels)");
  auto model = models.Find(spec.model());
  if (!model.ok()) {
    return absl::NotFoundError(
        absl::StrCat("spec.model: ", QuoteInput(spec.model()), " is not served (ListModels)"));
  }
  if (spec.priority() < kMinJobPriority || spec.priority() > kMaxJobPriority) {
    return Invalid("spec.priority", absl::StrCat(spec.priority(), " is not in [", kMinJobPriority,
                                                 ", ", kMaxJobPriority, "]"));
  }
  if (spec.timeout_ms() < 0 || spec.timeout_ms() > kMaxJobTimeoutMs) {
    return Invalid("spec.timeout_ms", absl::StrCat(spec.timeout_ms(), " is not in [0, ",
                                                   kMaxJobTimeoutMs, "] (0 = no limit)"));
  }
  if (spec.kind_case() == v1::JobSpec::KIND_NOT_SET) {
    return Invalid("spec.kind",
                   "one of attribution, head_importance or trigger_search is required");
  }
  return model;
}

absl::StatusOr<const engine::Model*> CheckClassifierJob(const v1::JobSpec& spec,
                                                        const ModelRegistry& models,
                                                        const std::string& job) {
  ATTATTR_ASSIGN_OR_RETURN(auto model, CheckJobCommon(spec, models));
  if (auto s = engine::RequireClassifier(model->info(), job); !s.ok()) {
    return Invalid("spec.model", absl::StrCat("'", spec.model(),
                                              "': ", absl::StripPrefix(s.message(), "model: ")));
  }
  return model;
}

absl::Status CheckAttributionMemory(const engine::ModelInfo& info,
                                    const std::vector<engine::Encoding>& encodings,
                                    const engine::AttributionOptions& options, int extra_tokens,
                                    const v1::ExampleSource& source, const ServerConfig& config,
                                    const std::string& field) {
  for (size_t i = 0; i < encodings.size(); ++i) {
    ATTATTR_RETURN_IF_ERROR(CheckPointMemory(info, static_cast<int>(encodings[i].size()), options,
                                             extra_tokens, config, ExampleField(source, field, i)));
  }
  return absl::OkStatus();
}

absl::Status CheckPointMemory(const engine::ModelInfo& info, int tokens,
                              const engine::AttributionOptions& options, int extra_tokens,
                              const ServerConfig& config, const std::string& field) {
  const int n = tokens + extra_tokens;
  // A sequence target's head is read at each of its extra_tokens positions.
  const int64_t need =
      engine::AttributionBytesPerPoint(info, n, options, std::max(extra_tokens, 1));
  if (need <= config.memory_budget_bytes) return absl::OkStatus();
  return Invalid(field, absl::StrCat(n, " word pieces need ", Mib(need),
                                     " of activations per integration point, above the server's "
                                     "memory budget of ",
                                     Mib(config.memory_budget_bytes),
                                     " (--memory-budget-mib); shorten the text or attribute fewer "
                                     "layers"));
}

absl::StatusOr<std::vector<engine::Encoding>> EncodeExamples(
    const engine::Model& model, const std::vector<engine::Example>& examples,
    const v1::ExampleSource& source, const std::string& field) {
  auto encodings = model.EncodeAll(examples);
  if (encodings.ok()) return encodings;
  const auto error = GetFieldError(encodings.status());
  if (!error) return encodings.status();
  return absl::Status(
      encodings.status().code(),
      absl::StrCat(ExampleField(source, field, error->field.index), ": ", error->what));
}

absl::Status CheckExampleLabels(const engine::ModelInfo& info,
                                const std::vector<engine::Example>& examples,
                                const v1::ExampleSource& source, const std::string& field) {
  if (!info.has_classifier) return Invalid("spec.model", "has no classifier; this job needs one");
  for (size_t i = 0; i < examples.size(); ++i) {
    if (auto s = engine::CheckGoldLabel(info, examples[i].label); !s.ok()) {
      return Invalid(ExampleField(source, field, i) + ".label", std::string(s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckJobWork(int64_t examples, const engine::AttributionOptions& options,
                          const engine::ModelInfo& info, const ServerConfig& config,
                          const std::string& field, int64_t forward_passes) {
  const int64_t layers =
      options.layers.empty() ? info.num_layers : static_cast<int64_t>(options.layers.size());
  const int64_t attribution = examples * options.steps * layers;
  const int64_t passes = forward_passes * info.num_layers;
  const int64_t work = attribution + passes;
  if (work <= config.max_job_work) return absl::OkStatus();
  std::string what = absl::StrCat(examples, " examples x ", options.steps, " steps x ", layers,
                                  " layers = ", attribution, " integration points");
  if (forward_passes > 0) {
    what = absl::StrCat(examples > 0 ? what + " + " : "", forward_passes,
                        " example forward passes (evaluation, curves, rankings) x ",
                        info.num_layers, " layers = ", work);
  }
  return Invalid(
      field,
      absl::StrCat(
          what, ", above the server's limit of ", config.max_job_work,
          " (--max-job-work); split the job, or use fewer steps or "
          "layers",
          forward_passes > 0 ? " (or fewer evaluation examples, ratios, methods or top_k)" : ""));
}

std::string ExampleField(const v1::ExampleSource& source, const std::string& field, size_t i) {
  if (source.has_inline_()) return absl::StrCat(field, ".inline.examples[", i, "]");
  return absl::StrCat(field, ".dataset.path: examples[", i, "]");
}

absl::Status InvalidSpec(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

std::string FormatMib(int64_t bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

v1::JobSpec PinDefaultPrecision(const v1::JobSpec& spec, const ServerConfig& config) {
  v1::JobSpec out = spec;
  v1::AttributionOptions* options = nullptr;
  if (out.has_attribution()) options = out.mutable_attribution()->mutable_options();
  if (out.has_head_importance()) options = out.mutable_head_importance()->mutable_attribution();
  if (out.has_trigger_search()) options = out.mutable_trigger_search()->mutable_attribution();
  if (options != nullptr && options->precision() == v1::PRECISION_UNSPECIFIED) {
    options->set_precision(convert::PrecisionToProto(config.default_precision));
  }
  return out;
}

}  // namespace attattr::server
