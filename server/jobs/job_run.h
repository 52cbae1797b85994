// What every job executor does around its engine work: parse the stored spec, keep the job's
// deadline (spec.timeout_ms counted from creation, and the server's bound on a run), answer "should
// this stop?" for cancellation, shutdown and the deadline together, hand the engine a RunControl
// whose progress reaches the store at most every 250 ms within a stage (always on a stage change
// and at a stage's end), turn an engine stop past the deadline into DEADLINE_EXCEEDED, and
// serialize the result.
#pragma once

#include <chrono>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "attattr/engine/run_control.h"
#include "attattr/v1/job.pb.h"
#include "jobs/job_scheduler.h"
#include "store/job_store.h"

namespace attattr::server {

class JobRun {
 public:
  // Borrows both for its lifetime. `max_run_ms` > 0 bounds this run whatever the spec's
  // timeout_ms says (the server's --max-job-seconds), counted from the job's start. A shard's run
  // keeps its job's deadline: both bounds count from the job (its creation, its start), not from
  // the shard's start, so the time a split job's shards wait counts too.
  JobRun(const store::JobRecord& job, JobContext& context, int64_t max_run_ms = 0)
      : job_(job), context_(context), max_run_ms_(max_run_ms) {}
  JobRun(const JobRun&) = delete;
  JobRun& operator=(const JobRun&) = delete;

  // Parses the stored spec (DATA_LOSS when it does not), refuses a job already past its deadline
  // and reports the "loading examples" stage.
  absl::Status Begin();
  const v1::JobSpec& spec() const { return spec_; }

  bool PastDeadline() const;
  absl::Status DeadlineError() const;
  // Cancelled, shutting down, or past the deadline.
  bool ShouldStop() const { return StopRequested() || PastDeadline(); }
  // Cancelled or shutting down (a stop someone asked for, not the deadline).
  bool StopRequested() const { return context_.ShouldStop(); }
  // Stores and publishes progress: a new stage and a stage's last item at once, otherwise at most
  // every 250 ms (each report is a store write, a change notification to every replica and a
  // record read). The engine's progress (Control()) comes through here too. Thread-safe.
  void ReportProgress(const std::string& stage, int64_t done, int64_t total);
  // For the engine; borrows this JobRun, which must outlive it.
  engine::RunControl Control();
  // An engine error as the job's error: a stop past the deadline becomes DeadlineError().
  absl::Status EngineError(const absl::Status& status) const;
  // Reports "storing result" and returns the serialized result.
  absl::StatusOr<std::string> Finish(const v1::JobResult& result, int64_t items);

 private:
  const store::JobRecord& job_;
  JobContext& context_;
  v1::JobSpec spec_;
  const int64_t max_run_ms_;
  int64_t deadline_ms_ = 0;    // 0 = none
  bool server_bound_ = false;  // deadline_ms_ is the server's bound, not the spec's
  absl::Mutex progress_mu_;
  std::string last_stage_ ABSL_GUARDED_BY(progress_mu_);
  std::chrono::steady_clock::time_point last_report_ ABSL_GUARDED_BY(progress_mu_){};
};

}  // namespace attattr::server
