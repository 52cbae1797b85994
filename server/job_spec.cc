// SubmitJob's validation (see job_spec.h). Dataset files are read here, with the relative path as
// the name in parse errors, so that no message shows where --data-root lives on the server.
#include "server/job_spec.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attattr/engine/dataset.h"
#include "server/proto_convert.h"

namespace attattr::server {
namespace {

namespace fs = std::filesystem;

constexpr int kMinPriority = -10;
constexpr int kMaxPriority = 10;
constexpr int kMaxTopK = 10000;
constexpr int64_t kBytesPerConnection = 24;  // a serialized Connection, roughly
constexpr int64_t kBytesPerLayer = 64;       // LayerAttribution scalars and tensor headers
constexpr int64_t kBytesPerExample = 64;     // prediction and message headers
constexpr int64_t kBytesPerToken = 16;       // token text, input id, token type id

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// `status` with its code kept and `field: ` in front of its message.
absl::Status Prefixed(const absl::Status& status, const std::string& field) {
  return absl::Status(status.code(), absl::StrCat(field, ": ", status.message()));
}

std::string Mib(int64_t bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

// Where example `i` of `source` is, for messages.
std::string ExampleField(const v1::ExampleSource& source, const std::string& field, size_t i) {
  if (source.has_inline_()) return absl::StrCat(field, ".inline.examples[", i, "]");
  return absl::StrCat(field, ".dataset.path: examples[", i, "]");
}

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
  auto path = ResolveDataPath(config.data_root, ref.path(), field + ".path");
  if (!path.ok()) return path.status();
  std::ifstream in(*path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  if (!in || in.bad()) return Prefixed(absl::InternalError("cannot be read"), field + ".path");
  // One example past the server limit is enough to refuse the job; the rest is not parsed.
  int limit = config.max_job_examples + 1;
  if (ref.limit() > 0) limit = std::min(limit, ref.limit());
  auto dataset = engine::ParseDataset(contents.str(), ref.path(), limit);
  if (!dataset.ok()) return Prefixed(dataset.status(), field + ".path");
  return std::move(dataset->examples);
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
    return Invalid(field, absl::StrCat("more than ", config.max_job_examples,
                                       " examples (server limit --max-job-examples); split the "
                                       "job or set dataset.limit"));
  }
  for (size_t i = 0; i < examples.size(); ++i) {
    if (examples[i].text.empty()) return Invalid(ExampleField(source, field, i) + ".text", "empty");
    if (examples[i].text_pair && examples[i].text_pair->empty()) {
      return Invalid(ExampleField(source, field, i) + ".text_pair", "empty");
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
    return Invalid(field, absl::StrCat("'", path, "' is absolute; give a path under ", flag));
  }
  for (const auto& part : relative) {
    if (part == "..") return Invalid(field, absl::StrCat("'", path, "' has a '..' component"));
  }
  std::error_code ec;
  const fs::path root = fs::canonical(root_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": the server's ", flag, " is unusable: ", ec.message()));
  }
  const fs::path full = fs::weakly_canonical(root / relative, ec);
  if (ec) return Invalid(field, absl::StrCat("'", path, "': ", ec.message()));
  const auto root_end = std::mismatch(root.begin(), root.end(), full.begin(), full.end()).first;
  if (root_end != root.end() || full == root) {
    return Invalid(field, absl::StrCat("'", path, "' resolves outside ", flag, " (symlink)"));
  }
  return full;
}

}  // namespace

absl::StatusOr<std::string> ResolveDataPath(const std::string& data_root, const std::string& path,
                                            const std::string& field) {
  if (data_root.empty()) {
    return Invalid(field, "dataset files are refused: no --data-root configured on this server");
  }
  auto full = ResolveUnderRoot(data_root, "--data-root", path, field);
  if (!full.ok()) return full.status();
  std::error_code ec;
  const fs::file_status status = fs::status(*full, ec);
  if (!fs::exists(status)) {
    return absl::NotFoundError(
        absl::StrCat(field, ": '", path, "' does not exist under --data-root"));
  }
  if (!fs::is_regular_file(status)) {
    return Invalid(field, absl::StrCat("'", path, "' is not a regular file"));
  }
  return full->string();
}

absl::StatusOr<std::string> ResolveExportPath(const std::string& export_root,
                                              const std::string& path, const std::string& field) {
  if (export_root.empty()) {
    return Invalid(field, "exports are refused: no --export-root configured on this server");
  }
  auto full = ResolveUnderRoot(export_root, "--export-root", path, field);
  if (!full.ok()) return full.status();
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(*full, ec);
  if (fs::exists(status)) {
    if (!fs::is_directory(status) || !fs::is_empty(*full, ec)) {
      return absl::AlreadyExistsError(absl::StrCat(
          field, ": '", path, "' already exists under --export-root and is not an empty directory"));
    }
  }
  return full->string();
}

absl::StatusOr<std::vector<engine::Example>> LoadExamples(const v1::ExampleSource& source,
                                                          const ServerConfig& config,
                                                          const std::string& field) {
  std::vector<engine::Example> examples;
  if (source.has_inline_()) {
    examples.reserve(source.inline_().examples_size());
    for (const auto& e : source.inline_().examples()) examples.push_back(FromProto(e));
  } else if (source.has_dataset()) {
    auto read = ReadDatasetRef(source.dataset(), config, field + ".dataset");
    if (!read.ok()) return read.status();
    examples = std::move(*read);
  } else {
    return Invalid(field, "inline or dataset is required");
  }
  if (auto s = CheckExamples(examples, source, config, field); !s.ok()) return s;
  return examples;
}

absl::StatusOr<const engine::Model*> CheckJobCommon(const v1::JobSpec& spec,
                                                 const ModelRegistry& models) {
  if (spec.model().empty()) return Invalid("spec.model", "required (ListModels)");
  auto model = models.Find(spec.model());
  if (!model.ok()) {
    return absl::NotFoundError(
        absl::StrCat("spec.model: '", spec.model(), "' is not served (ListModels)"));
  }
  if (spec.priority() < kMinPriority || spec.priority() > kMaxPriority) {
    return Invalid("spec.priority", absl::StrCat(spec.priority(), " is not in [", kMinPriority,
                                                 ", ", kMaxPriority, "]"));
  }
  if (spec.timeout_ms() < 0) return Invalid("spec.timeout_ms", "must be >= 0 (0 = no limit)");
  if (spec.kind_case() == v1::JobSpec::KIND_NOT_SET) {
    return Invalid("spec.kind", "one of attribution, head_importance or trigger_search is required");
  }
  return model;
}

absl::StatusOr<const engine::Model*> CheckClassifierJob(const v1::JobSpec& spec,
                                                        const ModelRegistry& models,
                                                        const std::string& job) {
  auto model = CheckJobCommon(spec, models);
  if (!model.ok()) return model.status();
  if (!(*model)->info().has_classifier) {
    return Invalid("spec.model",
                   absl::StrCat("'", spec.model(), "' is encoder-only; ", job, " needs a classifier"));
  }
  return model;
}

absl::Status CheckAttributionMemory(const engine::ModelInfo& info,
                                    const std::vector<engine::Encoding>& encodings,
                                    const engine::AttributionOptions& options,
                                    const v1::ExampleSource& source, const ServerConfig& config,
                                    const std::string& field) {
  for (size_t i = 0; i < encodings.size(); ++i) {
    const int n = static_cast<int>(encodings[i].size());
    const int64_t need = engine::AttributionBytesPerPoint(info, n, options);
    if (need > config.memory_budget_bytes) {
      return Invalid(ExampleField(source, field, i),
                     absl::StrCat(n, " word pieces need ", Mib(need),
                                  " of activations per integration point, above the server's "
                                  "memory budget of ",
                                  Mib(config.memory_budget_bytes),
                                  " (--memory-budget-mib); shorten the text or attribute fewer "
                                  "layers"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<engine::Encoding>> EncodeExamples(
    const engine::Model& model, const std::vector<engine::Example>& examples,
    const v1::ExampleSource& source, const std::string& field) {
  std::vector<engine::Encoding> encodings;
  encodings.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    auto encoding = model.Encode(examples[i]);
    if (!encoding.ok()) return Prefixed(encoding.status(), ExampleField(source, field, i));
    encodings.push_back(std::move(*encoding));
  }
  return encodings;
}

absl::Status CheckExampleLabels(const engine::ModelInfo& info,
                                const std::vector<engine::Example>& examples,
                                const v1::ExampleSource& source, const std::string& field) {
  const int classes = static_cast<int>(info.labels.size());
  if (classes == 0) return Invalid("spec.model", "has no classifier; this job needs one");
  for (size_t i = 0; i < examples.size(); ++i) {
    const int label = examples[i].label;
    if (label >= 0 && label < classes) continue;
    std::string names;
    for (int c = 0; c < classes; ++c) absl::StrAppend(&names, c ? ", " : "", c, " = ", info.labels[c]);
    return Invalid(ExampleField(source, field, i) + ".label",
                   label < 0 ? absl::StrCat("missing; every example needs a gold label (", names, ")")
                             : absl::StrCat(label, " is not one of the model's classes (", names,
                                            "); is this dataset for another task?"));
  }
  return absl::OkStatus();
}

int64_t EstimateAttributionResultBytes(const engine::ModelInfo& info,
                                       const std::vector<engine::Encoding>& encodings,
                                       const engine::AttributionOptions& options,
                                       const v1::ResultOptions& result) {
  std::vector<int> layers = options.layers;
  if (layers.empty()) {
    for (int l = 0; l < info.num_layers; ++l) layers.push_back(l);
  }
  const int64_t value_bytes = result.fp16() ? 2 : 4;
  int64_t total = 0;
  for (const auto& encoding : encodings) {
    const int64_t n = static_cast<int64_t>(encoding.size());
    total += kBytesPerExample + kBytesPerToken * n;
    if (result.tree()) total += 2 * kBytesPerConnection * n;  // a node and an edge per token
    for (int l : layers) {
      const int64_t heads = l < static_cast<int>(info.heads_per_layer.size())
                                ? info.heads_per_layer[l]
                                : info.num_heads;
      const int64_t cells = heads * n * n;
      total += kBytesPerLayer;
      if (result.full_matrices()) total += cells * value_bytes;
      if (result.head_summed()) total += n * n * value_bytes;
      if (result.attention()) total += cells * value_bytes;
      total += std::min<int64_t>(result.top_k(), cells) * kBytesPerConnection;
    }
  }
  return total;
}

absl::StatusOr<AttributionJob> PrepareAttributionJob(const v1::JobSpec& spec,
                                                     const ModelRegistry& models,
                                                     const ServerConfig& config) {
  auto model = CheckJobCommon(spec, models);
  if (!model.ok()) return model.status();
  if (!spec.has_attribution()) return Invalid("spec.attribution", "required");
  const engine::ModelInfo& info = (*model)->info();
  const auto& attribution = spec.attribution();
  const std::string examples_field = "spec.attribution.examples";
  auto examples = LoadExamples(attribution.examples(), config, examples_field);
  if (!examples.ok()) return examples.status();
  AttributionJob job;
  job.model = *model;
  auto options = AttributionOptionsFromProto(attribution.options(), **model, config,
                                             "spec.attribution.options");
  if (!options.ok()) return options.status();
  job.options = std::move(*options);
  auto result = ResultOptionsFromProto(attribution.result(), attribution.has_result(), kMaxTopK,
                                       "spec.attribution.result");
  if (!result.ok()) return result.status();
  job.result = std::move(*result);
  if (auto s = CheckTreeLayers(job.options, job.result, info, "spec.attribution.options.layers");
      !s.ok()) {
    return s;
  }
  auto encodings = EncodeExamples(**model, *examples, attribution.examples(), examples_field);
  if (!encodings.ok()) return encodings.status();
  job.encodings = std::move(*encodings);
  if (auto s = CheckAttributionMemory(info, job.encodings, job.options, attribution.examples(),
                                      config, examples_field);
      !s.ok()) {
    return s;
  }
  job.result_bytes_estimate =
      EstimateAttributionResultBytes(info, job.encodings, job.options, job.result);
  if (job.result_bytes_estimate > config.max_result_bytes) {
    return Invalid("spec.attribution.result",
                   absl::StrCat("the result would be about ", Mib(job.result_bytes_estimate),
                                ", above the server's limit of ", Mib(config.max_result_bytes),
                                " (--max-result-mib); ask for fp16, head_summed or top_k instead "
                                "of full matrices, fewer layers, or fewer examples per job"));
  }
  return job;
}

}  // namespace attattr::server
