// The job kinds the service runs, in one place: SubmitJob's validation of a spec of any kind, and
// the executor the scheduler calls, which hands each job to its kind's executor. Adding a kind
// means a Prepare… function and an executor class in its own file, and one case in each here.
#pragma once

#include "absl/status/status.h"
#include "attattr/v1/job.pb.h"
#include "server/attribution_batcher.h"
#include "server/job_scheduler.h"
#include "server/model_registry.h"
#include "server/server_config.h"
#include "server/service_metrics.h"

namespace attattr::server {

// Everything that can be checked before the job waits in the queue (model, examples, options,
// admission control). InvalidArgument / NotFound naming the field; see job_spec.h and each kind.
absl::Status ValidateJobSpec(const v1::JobSpec& spec, const ModelRegistry& models,
                             const ServerConfig& config);

// Borrows everything; the owner outlives the executor.
JobExecutor MakeJobExecutor(const ModelRegistry& models, const ServerConfig& config,
                            AttributionBatcher& batcher, ServiceMetrics& metrics);

}  // namespace attattr::server
