// The job-kind table and the one executor (see job_kinds.h).
#include "jobs/job_kinds.h"

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "jobs/attribution_job.h"
#include "jobs/head_importance_job.h"
#include "jobs/head_importance_shards.h"
#include "jobs/job_convert.h"
#include "jobs/job_spec.h"
#include "jobs/trigger_search_job.h"
#include "jobs/trigger_search_shards.h"

namespace attattr::server {

JobKinds::JobKinds(const JobKindDeps& deps)
    : models_(deps.models),
      config_(deps.config),
      batcher_(deps.batcher),
      metrics_(deps.metrics),
      max_run_ms_(deps.config.max_job_seconds * 1000) {
  const ModelRegistry& models = deps.models;
  const ServerConfig& config = deps.config;
  AttributionBatcher& batcher = deps.batcher;
  ServiceMetrics& metrics = deps.metrics;
  // The table: one entry per kind, its validation and its run.
  kinds_.push_back(MakeJobKind<AttributionJob>(
      v1::ATTRIBUTION,
      [&models, &config](const v1::JobSpec& spec, const std::string&) {
        return PrepareAttributionJob(spec, models, config);
      },
      [&config, &batcher, &metrics](AttributionJob& job, JobRun& run) {
        return RunAttributionJob(job, run, config, batcher, metrics);
      }));
  kinds_.push_back(MakeJobKind<HeadImportanceJob>(
      v1::HEAD_IMPORTANCE,
      [&models, &config](const v1::JobSpec& spec, const std::string& job_id) {
        return PrepareHeadImportanceJob(spec, models, config, job_id);
      },
      RunHeadImportanceJob));
  kinds_.push_back(MakeJobKind<TriggerSearchJob>(
      v1::TRIGGER_SEARCH,
      [&models, &config](const v1::JobSpec& spec, const std::string&) {
        return PrepareTriggerSearchJob(spec, models, config);
      },
      RunTriggerSearchJob));
}

absl::StatusOr<std::unique_ptr<PreparedJob>> JobKinds::Prepare(const v1::JobSpec& spec,
                                                               const std::string& job_id) const {
  ATTATTR_RETURN_IF_ERROR(CheckJobCommon(spec, models_).status());
  const v1::JobKind kind = JobKindOf(spec);
  for (const auto& k : kinds_) {
    if (k->kind() == kind) return k->Prepare(spec, job_id);
  }
  return absl::UnimplementedError(
      absl::StrCat("spec.kind: ", JobKindName(kind), " jobs are not served by this server"));
}

JobExecutor JobKinds::Executor() const {
  return [this](const store::JobRecord& job, JobContext& context) -> absl::StatusOr<std::string> {
    JobRun run(job, context, max_run_ms_);
    ATTATTR_RETURN_IF_ERROR(run.Begin());
    ATTATTR_ASSIGN_OR_RETURN(std::unique_ptr<PreparedJob> prepared, Prepare(run.spec(), job.id));
    auto result = prepared->Run(run);
    if (!result.ok()) return run.EngineError(result.status());
    return run.Finish(*result, prepared->items());
  };
}

JobSharding JobKinds::Sharding() const {
  JobSharding sharding;
  const int64_t size = config_.shard_examples;
  sharding.plan = [this, size](const store::JobRecord& job) -> absl::StatusOr<store::ShardStage> {
    store::ShardStage whole;  // no ranges: the job runs whole
    v1::JobSpec spec;
    if (size <= 0 || !spec.ParseFromString(job.spec)) return whole;
    switch (JobKindOf(spec)) {
      case v1::ATTRIBUTION: {
        // Too few examples to split, known without loading them: the job runs whole.
        const v1::ExampleSource& source = spec.attribution().examples();
        const int64_t known = source.has_inline_() ? source.inline_().examples_size()
                              : source.has_dataset() && source.dataset().limit() > 0
                                  ? source.dataset().limit()
                                  : -1;
        if (known >= 0 && known <= 2 * size) return whole;
        ATTATTR_ASSIGN_OR_RETURN(AttributionJob prepared,
                                 PrepareAttributionJob(spec, models_, config_));
        if (prepared.items() <= 2 * size) return whole;
        return store::ShardStage{0, "attribution (shards)",
                                 store::SplitItems(prepared.items(), size), ""};
      }
      case v1::HEAD_IMPORTANCE: {
        ATTATTR_ASSIGN_OR_RETURN(HeadImportanceJob prepared,
                                 PrepareHeadImportanceJob(spec, models_, config_, job.id));
        return PlanHeadImportanceShards(prepared, size);
      }
      case v1::TRIGGER_SEARCH: {
        ATTATTR_ASSIGN_OR_RETURN(TriggerSearchJob prepared,
                                 PrepareTriggerSearchJob(spec, models_, config_));
        return PlanTriggerSearchShards(prepared, size);
      }
      default:
        return whole;
    }
  };
  sharding.run_shard = [this](const store::JobRecord& job, const store::ShardRecord& shard,
                              JobContext& context) -> absl::StatusOr<std::string> {
    JobRun run(job, context, max_run_ms_);
    ATTATTR_RETURN_IF_ERROR(run.Begin());
    absl::StatusOr<std::string> result = RunShard(run, shard);
    if (!result.ok()) return run.EngineError(result.status());
    return result;
  };
  sharding.merge = [this, size](
                       const store::JobRecord& job, int32_t stage, const std::string& input,
                       const std::vector<std::string>& shards) -> absl::StatusOr<StageMerge> {
    v1::JobSpec spec;
    if (!spec.ParseFromString(job.spec)) {
      return absl::DataLossError(absl::StrCat("job ", job.id, ": stored spec does not parse"));
    }
    switch (JobKindOf(spec)) {
      case v1::ATTRIBUTION: {
        ATTATTR_ASSIGN_OR_RETURN(v1::JobResult merged, MergeAttributionResults(shards));
        StageMerge out;
        if (!merged.SerializeToString(&out.result)) {
          return absl::InternalError("the result does not serialize (over 2 GiB?)");
        }
        return out;
      }
      case v1::HEAD_IMPORTANCE: {
        ATTATTR_ASSIGN_OR_RETURN(HeadImportanceJob prepared,
                                 PrepareHeadImportanceJob(spec, models_, config_, job.id));
        return MergeHeadImportanceStage(prepared, stage, input, shards, size);
      }
      case v1::TRIGGER_SEARCH: {
        ATTATTR_ASSIGN_OR_RETURN(TriggerSearchJob prepared,
                                 PrepareTriggerSearchJob(spec, models_, config_));
        return MergeTriggerSearchStage(prepared, stage, input, shards, size);
      }
      default:
        return absl::InternalError(
            absl::StrCat(JobKindName(JobKindOf(spec)), " jobs are not split into shards"));
    }
  };
  return sharding;
}

absl::StatusOr<std::string> JobKinds::RunShard(JobRun& run, const store::ShardRecord& shard) const {
  const v1::JobSpec& spec = run.spec();
  switch (JobKindOf(spec)) {
    case v1::ATTRIBUTION: {
      ATTATTR_ASSIGN_OR_RETURN(AttributionJob prepared,
                               PrepareAttributionJob(spec, models_, config_));
      ATTATTR_RETURN_IF_ERROR(SliceAttributionJob(prepared, shard.items.begin, shard.items.end));
      ATTATTR_ASSIGN_OR_RETURN(v1::JobResult result,
                               RunAttributionJob(prepared, run, config_, batcher_, metrics_));
      std::string bytes;
      if (!result.SerializeToString(&bytes)) return absl::InternalError("shard result too large");
      return bytes;
    }
    case v1::HEAD_IMPORTANCE: {
      ATTATTR_ASSIGN_OR_RETURN(HeadImportanceJob prepared,
                               PrepareHeadImportanceJob(spec, models_, config_, shard.job_id));
      return RunHeadImportanceShard(prepared, shard, run);
    }
    case v1::TRIGGER_SEARCH: {
      ATTATTR_ASSIGN_OR_RETURN(TriggerSearchJob prepared,
                               PrepareTriggerSearchJob(spec, models_, config_));
      return RunTriggerSearchShard(prepared, shard, run);
    }
    default:
      return absl::InternalError(
          absl::StrCat(JobKindName(JobKindOf(spec)), " jobs are not split into shards"));
  }
}

}  // namespace attattr::server
