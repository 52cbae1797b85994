// HEAD_IMPORTANCE jobs (see head_importance_job.h).
#include "jobs/head_importance_job.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attattr/base/quote.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/head_importance_convert.h"
#include "attattr/engine/gold_label.h"
#include "attattr/engine/pruned_export.h"
#include "jobs/job_spec.h"
#include "proto_convert.h"

namespace attattr::server {
namespace {

constexpr const char* kField = "spec.head_importance";

absl::Status Invalid(const std::string& field, const std::string& what) {
  return InvalidSpec(absl::StrCat(kField, ".", field), what);
}

// One labelled example set: loaded, labels checked, tokenized.
absl::Status LoadSet(const v1::ExampleSource& source, const engine::Model& model,
                     const ServerConfig& config, const std::string& name,
                     std::vector<engine::Encoding>* encodings, std::vector<int>* labels) {
  const std::string field = absl::StrCat(kField, ".", name);
  ATTATTR_ASSIGN_OR_RETURN(auto examples, LoadExamples(source, config, field));
  ATTATTR_RETURN_IF_ERROR(CheckExampleLabels(model.info(), examples, source, field));
  ATTATTR_ASSIGN_OR_RETURN(auto encoded, EncodeExamples(model, examples, source, field));
  *encodings = std::move(encoded);
  *labels = engine::GoldLabels(examples);
  return absl::OkStatus();
}

absl::Status ParseMethods(const v1::HeadImportanceSpec& spec,
                          std::vector<engine::HeadRanking>* methods) {
  methods->clear();
  if (spec.methods_size() == 0) {
    *methods = engine::DefaultHeadRankings();
    return absl::OkStatus();
  }
  for (int i = 0; i < spec.methods_size(); ++i) {
    const auto ranking = convert::HeadRankingFromProto(spec.methods(i));
    const std::string field = absl::StrCat("methods[", i, "]");
    if (!ranking) {
      return Invalid(field, absl::StrCat("unknown method ", static_cast<int>(spec.methods(i)),
                                         " (ATTRIBUTION, ATTENTION, TAYLOR or RANDOM)"));
    }
    for (auto m : *methods) {
      if (m == *ranking)
        return Invalid(field,
                       absl::StrCat(v1::ImportanceMethod_Name(spec.methods(i)), " is given twice"));
    }
    methods->push_back(*ranking);
  }
  return absl::OkStatus();
}

absl::Status ParseRatios(const v1::HeadImportanceSpec& spec, std::vector<double>* ratios) {
  ratios->clear();
  if (spec.ratios_size() == 0) {
    *ratios = engine::DefaultPruningRatios();
    return absl::OkStatus();
  }
  if (spec.ratios_size() > engine::kMaxPruningRatios) {
    return Invalid(
        "ratios", absl::StrCat(spec.ratios_size(), " values, at most ", engine::kMaxPruningRatios));
  }
  for (int i = 0; i < spec.ratios_size(); ++i) {
    const double r = spec.ratios(i);
    if (!(r >= 0 && r <= 100)) {
      return Invalid(absl::StrCat("ratios[", i, "]"), absl::StrCat(r, " is not in [0, 100]"));
    }
    ratios->push_back(r);
  }
  return absl::OkStatus();
}

}  // namespace

int64_t HeadImportanceJob::result_bytes() const {
  const auto& info = model->info();
  const auto methods = static_cast<int64_t>(options.methods.size());
  const auto ratios = static_cast<int64_t>(options.ratios_percent.size());
  // A packed double is 8 bytes; a curve point and a correlation under 48 with their tags.
  const int64_t per_method = int64_t{info.num_layers} * info.num_heads * 8 + ratios * 48 + 64;
  return methods * per_method + methods * methods * 48 + 512 +
         static_cast<int64_t>(export_path.size());
}

absl::StatusOr<HeadImportanceJob> PrepareHeadImportanceJob(const v1::JobSpec& spec,
                                                           const ModelRegistry& models,
                                                           const ServerConfig& config,
                                                           const std::string& job_id) {
  ATTATTR_ASSIGN_OR_RETURN(auto model, CheckClassifierJob(spec, models, "head importance"));
  const engine::ModelInfo& info = model->info();
  const v1::HeadImportanceSpec& h = spec.head_importance();
  HeadImportanceJob job;
  job.model = model;
  ATTATTR_RETURN_IF_ERROR(ParseMethods(h, &job.options.methods));
  ATTATTR_RETURN_IF_ERROR(ParseRatios(h, &job.options.ratios_percent));
  const auto& a = h.attribution();
  if (a.has_target()) {
    return Invalid("attribution.target",
                   "must be unset: head importance always uses the gold label's probability");
  }
  if (a.layers_size() > 0)
    return Invalid("attribution.layers", "must be empty: every layer is ranked");
  ATTATTR_ASSIGN_OR_RETURN(
      auto options,
      AttributionOptionsFromProto(a, *model, config, absl::StrCat(kField, ".attribution")));
  job.options.importance.attribution = std::move(options);
  job.options.importance.seed = h.seed();
  ATTATTR_RETURN_IF_ERROR(LoadSet(h.importance_set(), *model, config, "importance_set",
                                  &job.importance_set, &job.importance_labels));
  ATTATTR_RETURN_IF_ERROR(LoadSet(h.evaluation_set(), *model, config, "evaluation_set",
                                  &job.evaluation_set, &job.evaluation_labels));
  if (h.has_agreement_set()) {
    ATTATTR_RETURN_IF_ERROR(LoadSet(h.agreement_set(), *model, config, "agreement_set",
                                    &job.agreement_set, &job.agreement_labels));
  }
  // The whole study's work: the ATTRIBUTION ranking's integration points, and the forward passes
  // of the other rankings (ATTENTION one per example, TAYLOR a forward and a backward) and of the
  // pruning curves (each method's ranking at each ratio over the evaluation set).
  const int64_t ranked = static_cast<int64_t>(job.importance_set.size() + job.agreement_set.size());
  int64_t attributed = 0;
  int64_t passes = static_cast<int64_t>(job.options.methods.size()) *
                   static_cast<int64_t>(job.options.ratios_percent.size()) *
                   static_cast<int64_t>(job.evaluation_set.size());
  for (auto m : job.options.methods) {
    if (m == engine::HeadRanking::kAttribution) attributed = ranked;
    if (m == engine::HeadRanking::kAttention) passes += ranked;
    if (m == engine::HeadRanking::kTaylor) passes += 2 * ranked;
  }
  ATTATTR_RETURN_IF_ERROR(
      CheckJobWork(attributed, job.options.importance.attribution, info, config, kField, passes));
  // An ATTRIBUTION point and a TAYLOR example (forward and backward through every layer, one
  // example at a time) need the same activations: each example must fit the budget alone. The
  // other passes batch within the budget (memory_plan.h).
  const bool backward =
      std::any_of(job.options.methods.begin(), job.options.methods.end(), [](auto m) {
        return m == engine::HeadRanking::kAttribution || m == engine::HeadRanking::kTaylor;
      });
  if (backward) {
    ATTATTR_RETURN_IF_ERROR(CheckAttributionMemory(
        info, job.importance_set, job.options.importance.attribution, 0, h.importance_set(), config,
        absl::StrCat(kField, ".importance_set")));
    ATTATTR_RETURN_IF_ERROR(
        CheckAttributionMemory(info, job.agreement_set, job.options.importance.attribution, 0,
                               h.agreement_set(), config, absl::StrCat(kField, ".agreement_set")));
  }
  if (!(h.export_ratio() >= 0 && h.export_ratio() <= 100)) {
    return Invalid("export_ratio", absl::StrCat(h.export_ratio(), " is not in [0, 100]"));
  }
  if (h.export_path().empty()) {
    if (h.export_ratio() != 0) return Invalid("export_ratio", "set without export_path");
    return job;
  }
  if (auto s = engine::CheckPrunedExportSupported(info); !s.ok()) {
    return Invalid("export_path", absl::StrCat("model '", spec.model(), "': ", s.message()));
  }
  for (size_t l = 0; l < info.heads_per_layer.size(); ++l) {
    if (info.heads_per_layer[l] != info.num_heads) {
      return Invalid(
          "export_path",
          absl::StrCat("model '", spec.model(), "' is already pruned; export from the full model"));
    }
  }
  ATTATTR_ASSIGN_OR_RETURN(auto dir,
                           ResolveExportPath(config.export_root, h.export_path(),
                                             absl::StrCat(kField, ".export_path"), job_id));
  job.options.export_dir = dir;
  job.options.export_owner = job_id;
  job.options.export_ratio_percent = h.export_ratio();
  job.export_path = h.export_path();
  return job;
}

absl::StatusOr<v1::JobResult> RunHeadImportanceJob(HeadImportanceJob& job, JobRun& run) {
  engine::HeadImportanceStudyOptions options = job.options;
  options.agreement_set = job.agreement_set;
  options.agreement_labels = job.agreement_labels;
  engine::RunControl control = run.Control();
  return HeadImportanceResult(
      job,
      engine::RunHeadImportanceStudy(*job.model, job.importance_set, job.importance_labels,
                                     job.evaluation_set, job.evaluation_labels, options, control));
}

absl::StatusOr<v1::JobResult> HeadImportanceResult(
    const HeadImportanceJob& job, const absl::StatusOr<engine::HeadImportanceStudy>& study) {
  if (!study.ok()) {
    if (study.status().code() == absl::StatusCode::kFailedPrecondition ||
        study.status().code() == absl::StatusCode::kAlreadyExists) {
      // The export directory changed since submission.
      return absl::Status(study.status().code(),
                          absl::StrCat(kField, ".export_path: ", QuoteInput(job.export_path), ": ",
                                       study.status().message()));
    }
    return study.status();
  }
  v1::JobResult result;
  convert::HeadImportanceStudyToProto(*study, job.export_path, result.mutable_head_importance());
  return result;
}

}  // namespace attattr::server
