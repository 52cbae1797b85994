// TRIGGER_SEARCH jobs (see trigger_search_job.h).
#include "jobs/trigger_search_job.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/trigger_search_convert.h"
#include "attattr/engine/gold_label.h"
#include "jobs/job_spec.h"
#include "proto_convert.h"

namespace attattr::server {
namespace {

constexpr const char* kField = "spec.trigger_search";

absl::Status Invalid(const std::string& field, const std::string& what) {
  return InvalidSpec(absl::StrCat(kField, ".", field), what);
}

}  // namespace

int64_t TriggerSearchJob::result_bytes() const {
  // A pattern: its tokens, segments and positions (a pattern is a few tokens: 1 KiB is ample),
  // then clean, attacked and control accuracies per class (the label and two numbers).
  size_t label = 0;
  for (const std::string& name : model->info().labels) label = std::max(label, name.size());
  const int64_t per_pattern =
      1024 + 3 * int64_t{model->info().num_classes} * (32 + static_cast<int64_t>(label));
  return int64_t{options.top_k} * per_pattern + 64;
}

absl::StatusOr<TriggerSearchJob> PrepareTriggerSearchJob(const v1::JobSpec& spec,
                                                         const ModelRegistry& models,
                                                         const ServerConfig& config) {
  ATTATTR_ASSIGN_OR_RETURN(auto model, CheckClassifierJob(spec, models, "trigger search"));
  const engine::ModelInfo& info = model->info();
  const v1::TriggerSearchSpec& t = spec.trigger_search();
  TriggerSearchJob job;
  job.model = model;
  if (t.top_k() < 0 || t.top_k() > engine::kMaxTriggerTopK) {
    return Invalid("top_k", absl::StrCat(t.top_k(), " is not in [1, ", engine::kMaxTriggerTopK,
                                         "] (0 = ", engine::kDefaultTriggerTopK, ")"));
  }
  job.options.top_k = t.top_k() == 0 ? engine::kDefaultTriggerTopK : t.top_k();
  if (!std::isfinite(t.threshold()) || t.threshold() < 0) {
    return Invalid("threshold", absl::StrCat(t.threshold(), " must be finite and >= 0 (0 = ",
                                             engine::kDefaultTriggerThreshold, ")"));
  }
  job.options.threshold = t.threshold() == 0 ? engine::kDefaultTriggerThreshold : t.threshold();
  job.options.seed = t.seed();
  const auto& a = t.attribution();
  if (a.has_target()) {
    return Invalid("attribution.target",
                   "must be unset: trigger search always uses the predicted class's probability");
  }
  if (a.layers_size() > 0) {
    return Invalid("attribution.layers",
                   "must be empty: the strongest head of every layer is mined");
  }
  ATTATTR_ASSIGN_OR_RETURN(
      auto options,
      AttributionOptionsFromProto(a, *model, config, absl::StrCat(kField, ".attribution")));
  job.options.attribution = std::move(options);

  // Mining set: the first 500 of a dataset unless a limit is given; labels are not used.
  // (A dataset reference is copied to set it; inline examples are not copied.)
  v1::ExampleSource limited;
  const v1::ExampleSource* mining_source = &t.mining_set();
  if (mining_source->has_dataset() && mining_source->dataset().limit() == 0) {
    *limited.mutable_dataset() = mining_source->dataset();
    limited.mutable_dataset()->set_limit(engine::kDefaultMiningExamples);
    mining_source = &limited;
  }
  const std::string mining_field = absl::StrCat(kField, ".mining_set");
  ATTATTR_ASSIGN_OR_RETURN(auto mining, LoadExamples(*mining_source, config, mining_field));
  ATTATTR_RETURN_IF_ERROR(CheckJobWork(static_cast<int64_t>(mining.size()), job.options.attribution,
                                       info, config, kField));
  ATTATTR_ASSIGN_OR_RETURN(auto mining_encoded,
                           EncodeExamples(*model, mining, *mining_source, mining_field));
  job.mining_set = std::move(mining_encoded);
  ATTATTR_RETURN_IF_ERROR(CheckAttributionMemory(info, job.mining_set, job.options.attribution, 0,
                                                 *mining_source, config, mining_field));

  const std::string eval_field = absl::StrCat(kField, ".evaluation_set");
  ATTATTR_ASSIGN_OR_RETURN(auto evaluation, LoadExamples(t.evaluation_set(), config, eval_field));
  ATTATTR_RETURN_IF_ERROR(CheckExampleLabels(info, evaluation, t.evaluation_set(), eval_field));
  ATTATTR_ASSIGN_OR_RETURN(auto eval_encoded,
                           EncodeExamples(*model, evaluation, t.evaluation_set(), eval_field));
  job.evaluation_set = std::move(eval_encoded);
  job.evaluation_labels = engine::GoldLabels(evaluation);
  // Mining's integration points and the evaluation's forward passes together: the clean accuracy,
  // then per kept pattern (top_k at most) the pattern inserted and random tokens in its place.
  ATTATTR_RETURN_IF_ERROR(CheckJobWork(
      static_cast<int64_t>(job.mining_set.size()), job.options.attribution, info, config, kField,
      static_cast<int64_t>(job.evaluation_set.size()) * (1 + 2 * int64_t{job.options.top_k})));

  if (auto i = engine::FirstUnplaceableExample(mining, evaluation)) {
    return Invalid("evaluation_set", engine::UnplaceableExampleMessage(*i, "mining_set"));
  }
  if (auto s = engine::ValidateTriggerSearchOptions(*model, job.options); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(kField, ".", s.message()));
  }
  return job;
}

absl::StatusOr<v1::JobResult> RunTriggerSearchJob(TriggerSearchJob& job, JobRun& run) {
  engine::RunControl control = run.Control();
  ATTATTR_ASSIGN_OR_RETURN(engine::TriggerSearchReport report,
                           engine::RunTriggerSearch(*job.model, job.mining_set, job.evaluation_set,
                                                    job.evaluation_labels, job.options, control));
  v1::JobResult result;
  convert::TriggerSearchReportToProto(report, result.mutable_trigger_search());
  return result;
}

}  // namespace attattr::server
