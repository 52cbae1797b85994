// HEAD_IMPORTANCE jobs (see head_importance_job.h).
#include "server/head_importance_job.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/head_importance_convert.h"
#include "server/job_convert.h"
#include "server/job_run.h"
#include "server/job_spec.h"
#include "server/proto_convert.h"

namespace attattr::server {
namespace {

constexpr int kMaxRatios = 101;
constexpr const char* kField = "spec.head_importance";

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(kField, ".", field, ": ", what));
}

// One labelled example set: loaded, labels checked, tokenized.
absl::Status LoadSet(const v1::ExampleSource& source, const engine::Model& model,
                     const ServerConfig& config, const std::string& name,
                     std::vector<engine::Encoding>* encodings, std::vector<int>* labels) {
  const std::string field = absl::StrCat(kField, ".", name);
  auto examples = LoadExamples(source, config, field);
  if (!examples.ok()) return examples.status();
  if (auto s = CheckExampleLabels(model.info(), *examples, source, field); !s.ok()) return s;
  auto encoded = EncodeExamples(model, *examples, source, field);
  if (!encoded.ok()) return encoded.status();
  *encodings = std::move(*encoded);
  labels->clear();
  for (const auto& e : *examples) labels->push_back(e.label);
  return absl::OkStatus();
}

absl::Status ParseMethods(const v1::HeadImportanceSpec& spec,
                          std::vector<engine::HeadRanking>* methods) {
  methods->clear();
  if (spec.methods_size() == 0) {
    *methods = {engine::HeadRanking::kAttribution, engine::HeadRanking::kAttention,
                engine::HeadRanking::kTaylor, engine::HeadRanking::kRandom};
    return absl::OkStatus();
  }
  for (int i = 0; i < spec.methods_size(); ++i) {
    const auto ranking = HeadRankingFromProto(spec.methods(i));
    const std::string field = absl::StrCat("methods[", i, "]");
    if (!ranking) {
      return Invalid(field, absl::StrCat("unknown method ", static_cast<int>(spec.methods(i)),
                                         " (ATTRIBUTION, ATTENTION, TAYLOR or RANDOM)"));
    }
    for (auto m : *methods) {
      if (m == *ranking) return Invalid(field, absl::StrCat(v1::ImportanceMethod_Name(spec.methods(i)), " is given twice"));
    }
    methods->push_back(*ranking);
  }
  return absl::OkStatus();
}

absl::Status ParseRatios(const v1::HeadImportanceSpec& spec, std::vector<double>* ratios) {
  ratios->clear();
  if (spec.ratios_size() == 0) {
    for (int p = 0; p <= 100; p += 10) ratios->push_back(p);
    return absl::OkStatus();
  }
  if (spec.ratios_size() > kMaxRatios) {
    return Invalid("ratios", absl::StrCat(spec.ratios_size(), " values, at most ", kMaxRatios));
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

absl::StatusOr<HeadImportanceJob> PrepareHeadImportanceJob(const v1::JobSpec& spec,
                                                           const ModelRegistry& models,
                                                           const ServerConfig& config) {
  auto model = CheckClassifierJob(spec, models, "head importance");
  if (!model.ok()) return model.status();
  const engine::ModelInfo& info = (*model)->info();
  const v1::HeadImportanceSpec& h = spec.head_importance();
  HeadImportanceJob job;
  job.model = *model;
  if (auto s = ParseMethods(h, &job.options.methods); !s.ok()) return s;
  if (auto s = ParseRatios(h, &job.options.ratios_percent); !s.ok()) return s;
  const auto& a = h.attribution();
  if (a.has_target()) {
    return Invalid("attribution.target",
                   "must be unset: head importance always uses the gold label's probability");
  }
  if (a.layers_size() > 0) return Invalid("attribution.layers", "must be empty: every layer is ranked");
  auto options = AttributionOptionsFromProto(a, **model, config, absl::StrCat(kField, ".attribution"));
  if (!options.ok()) return options.status();
  job.options.importance.attribution = std::move(*options);
  job.options.importance.seed = h.seed();
  if (auto s = LoadSet(h.importance_set(), **model, config, "importance_set", &job.importance_set,
                       &job.importance_labels);
      !s.ok()) {
    return s;
  }
  if (auto s = LoadSet(h.evaluation_set(), **model, config, "evaluation_set", &job.evaluation_set,
                       &job.evaluation_labels);
      !s.ok()) {
    return s;
  }
  if (h.has_agreement_set()) {
    if (auto s = LoadSet(h.agreement_set(), **model, config, "agreement_set", &job.agreement_set,
                         &job.agreement_labels);
        !s.ok()) {
      return s;
    }
  }
  for (auto m : job.options.methods) {
    if (m != engine::HeadRanking::kAttribution) continue;
    if (auto s = CheckAttributionMemory(info, job.importance_set, job.options.importance.attribution,
                                        h.importance_set(), config,
                                        absl::StrCat(kField, ".importance_set"));
        !s.ok()) {
      return s;
    }
    if (auto s = CheckAttributionMemory(info, job.agreement_set, job.options.importance.attribution,
                                        h.agreement_set(), config,
                                        absl::StrCat(kField, ".agreement_set"));
        !s.ok()) {
      return s;
    }
  }
  if (!(h.export_ratio() >= 0 && h.export_ratio() <= 100)) {
    return Invalid("export_ratio", absl::StrCat(h.export_ratio(), " is not in [0, 100]"));
  }
  if (h.export_path().empty()) {
    if (h.export_ratio() != 0) return Invalid("export_ratio", "set without export_path");
    return job;
  }
  for (size_t l = 0; l < info.heads_per_layer.size(); ++l) {
    if (info.heads_per_layer[l] != info.num_heads) {
      return Invalid("export_path", absl::StrCat("model '", spec.model(),
                                                 "' is already pruned; export from the full model"));
    }
  }
  auto dir = ResolveExportPath(config.export_root, h.export_path(),
                               absl::StrCat(kField, ".export_path"));
  if (!dir.ok()) return dir.status();
  job.options.export_dir = *dir;
  job.options.export_ratio_percent = h.export_ratio();
  job.export_path = h.export_path();
  return job;
}

absl::StatusOr<std::string> HeadImportanceJobExecutor::operator()(const store::JobRecord& job,
                                                                  JobContext& context) const {
  JobRun run(job, context);
  if (auto s = run.Begin(); !s.ok()) return s;
  const v1::JobSpec& spec = run.spec();
  auto prepared = PrepareHeadImportanceJob(spec, models_, config_);
  if (!prepared.ok()) return prepared.status();
  const HeadImportanceJob& work = *prepared;

  engine::HeadImportanceStudyOptions options = work.options;
  options.agreement_set = work.agreement_set;
  options.agreement_labels = work.agreement_labels;
  engine::RunControl control = run.Control();
  auto study = engine::RunHeadImportanceStudy(*work.model, work.importance_set,
                                              work.importance_labels, work.evaluation_set,
                                              work.evaluation_labels, options, control);
  if (!study.ok()) {
    if (study.status().code() == absl::StatusCode::kCancelled) return run.EngineError(study.status());
    if (study.status().code() == absl::StatusCode::kFailedPrecondition ||
        study.status().code() == absl::StatusCode::kAlreadyExists) {
      // The export directory changed since submission.
      return absl::Status(study.status().code(),
                          absl::StrCat("spec.head_importance.export_path: ", study.status().message()));
    }
    return study.status();
  }
  v1::JobResult result;
  HeadImportanceStudyToProto(*study, work.export_path, result.mutable_head_importance());
  return run.Finish(result, 1);
}

}  // namespace attattr::server
