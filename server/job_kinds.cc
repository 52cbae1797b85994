// Job kinds (see job_kinds.h).
#include "server/job_kinds.h"

#include "absl/strings/str_cat.h"
#include "server/attribution_job.h"
#include "server/head_importance_job.h"
#include "server/job_convert.h"
#include "server/job_spec.h"
#include "server/trigger_search_job.h"

namespace attattr::server {

absl::Status ValidateJobSpec(const v1::JobSpec& spec, const ModelRegistry& models,
                             const ServerConfig& config) {
  switch (spec.kind_case()) {
    case v1::JobSpec::kAttribution:
      return PrepareAttributionJob(spec, models, config).status();
    case v1::JobSpec::kHeadImportance:
      return PrepareHeadImportanceJob(spec, models, config).status();
    case v1::JobSpec::kTriggerSearch:
      return PrepareTriggerSearchJob(spec, models, config).status();
    case v1::JobSpec::KIND_NOT_SET:
      break;
  }
  return CheckJobCommon(spec, models).status();
}

JobExecutor MakeJobExecutor(const ModelRegistry& models, const ServerConfig& config,
                            AttributionBatcher& batcher, ServiceMetrics& metrics) {
  AttributionJobExecutor attribution(models, config, batcher, metrics);
  HeadImportanceJobExecutor head_importance(models, config);
  TriggerSearchJobExecutor trigger_search(models, config);
  return [attribution, head_importance, trigger_search](
             const store::JobRecord& job, JobContext& context) -> absl::StatusOr<std::string> {
    if (job.kind == JobKindName(v1::ATTRIBUTION)) return attribution(job, context);
    if (job.kind == JobKindName(v1::HEAD_IMPORTANCE)) return head_importance(job, context);
    if (job.kind == JobKindName(v1::TRIGGER_SEARCH)) return trigger_search(job, context);
    return absl::UnimplementedError(absl::StrCat("job kind ", job.kind, " is not implemented"));
  };
}

}  // namespace attattr::server
