// The job-kind table and the one executor (see job_kinds.h).
#include "jobs/job_kinds.h"

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "jobs/attribution_job.h"
#include "jobs/head_importance_job.h"
#include "jobs/job_convert.h"
#include "jobs/job_spec.h"
#include "jobs/trigger_search_job.h"

namespace attattr::server {

JobKinds::JobKinds(const JobKindDeps& deps) : models_(deps.models) {
  kinds_.push_back(std::make_unique<AttributionJobKind>(deps.models, deps.config, deps.batcher,
                                                        deps.metrics));
  kinds_.push_back(std::make_unique<HeadImportanceJobKind>(deps.models, deps.config));
  kinds_.push_back(std::make_unique<TriggerSearchJobKind>(deps.models, deps.config));
}

absl::StatusOr<std::unique_ptr<PreparedJob>> JobKinds::Prepare(const v1::JobSpec& spec) const {
  ATTATTR_RETURN_IF_ERROR(CheckJobCommon(spec, models_).status());
  const v1::JobKind kind = JobKindOf(spec);
  for (const auto& k : kinds_) {
    if (k->kind() == kind) return k->Prepare(spec);
  }
  return absl::UnimplementedError(
      absl::StrCat("spec.kind: ", JobKindName(kind), " jobs are not served by this server"));
}

JobExecutor JobKinds::Executor() const {
  return [this](const store::JobRecord& job, JobContext& context) -> absl::StatusOr<std::string> {
    JobRun run(job, context);
    ATTATTR_RETURN_IF_ERROR(run.Begin());
    ATTATTR_ASSIGN_OR_RETURN(std::unique_ptr<PreparedJob> prepared, Prepare(run.spec()));
    auto result = prepared->Run(run);
    if (!result.ok()) return run.EngineError(result.status());
    return run.Finish(*result, prepared->items());
  };
}

}  // namespace attattr::server
