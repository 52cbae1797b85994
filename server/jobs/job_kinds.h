// The job kinds the service runs, registered in one table, and the one executor the scheduler
// calls for every job: parse the stored spec, prepare it with its kind (validation again, as
// models, files and the export root may have changed since submission), run it under a JobRun
// and serialize the result. Adding a kind is a JobKind in its own file and one line in the table
// (job_kinds.cc). Thread-safe once built; borrows the server parts it is given.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/v1/job.pb.h"
#include "attribution_batcher.h"
#include "jobs/job_kind.h"
#include "jobs/job_run.h"
#include "jobs/job_scheduler.h"
#include "model_registry.h"
#include "server_config.h"
#include "service_metrics.h"

namespace attattr::server {

// What the kinds borrow; the owner (Server) outlives the table.
struct JobKindDeps {
  const ModelRegistry& models;
  const ServerConfig& config;
  AttributionBatcher& batcher;
  ServiceMetrics& metrics;
};

class JobKinds {
 public:
  explicit JobKinds(const JobKindDeps& deps);
  JobKinds(const JobKinds&) = delete;
  JobKinds& operator=(const JobKinds&) = delete;

  // What every kind shares (CheckJobCommon: spec.model served, spec.priority, spec.timeout_ms,
  // spec.kind set), then the kind's own Prepare (`job_id`: see JobKind::Prepare).
  absl::StatusOr<std::unique_ptr<PreparedJob>> Prepare(const v1::JobSpec& spec,
                                                       const std::string& job_id = "") const;

  // The scheduler's executor for every kind; borrows this table, which must outlive it.
  JobExecutor Executor() const;

  // How jobs split across replicas, in shards of --shard-examples examples, when a stage of the
  // job has more than twice that: an ATTRIBUTION job in one stage (the merge joins the shards'
  // examples in order: the same bytes as a whole run); a HEAD_IMPORTANCE study and a
  // TRIGGER_SEARCH in two (head_importance_shards.h, trigger_search_shards.h). Every shard and
  // merge prepares the job again (its data is re-read and re-tokenized). Borrows this table.
  JobSharding Sharding() const;

 private:
  // One shard of the job `run` runs, of whatever kind.
  absl::StatusOr<std::string> RunShard(JobRun& run, const store::ShardRecord& shard) const;

  const ModelRegistry& models_;
  const ServerConfig& config_;
  AttributionBatcher& batcher_;
  ServiceMetrics& metrics_;
  const int64_t max_run_ms_;  // --max-job-seconds
  std::vector<std::unique_ptr<JobKind>> kinds_;
};

}  // namespace attattr::server
