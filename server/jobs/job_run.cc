// The common frame of a job executor (see job_run.h).
#include "jobs/job_run.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "jobs/job_convert.h"
#include "jobs/job_spec.h"

namespace attattr::server {

absl::Status JobRun::Begin() {
  if (!spec_.ParseFromString(job_.spec)) {
    return absl::DataLossError(absl::StrCat("job ", job_.id, ": stored spec does not parse"));
  }
  // Submission bounds timeout_ms (kMaxJobTimeoutMs); a stored spec is clamped all the same, so
  // the sum cannot overflow and wrap past the server's own bound below.
  const int64_t timeout = std::min(spec_.timeout_ms(), kMaxJobTimeoutMs);
  deadline_ms_ = timeout > 0 ? job_.create_time_ms + timeout : 0;
  // The server's own bound on one run, whatever the spec asks: counted from this start.
  if (max_run_ms_ > 0) {
    const int64_t started = job_.start_time_ms > 0 ? job_.start_time_ms : context_.NowMs();
    const int64_t server_deadline = started + max_run_ms_;
    if (deadline_ms_ == 0 || server_deadline < deadline_ms_) {
      deadline_ms_ = server_deadline;
      server_bound_ = true;
    }
  }
  if (PastDeadline()) return DeadlineError();
  context_.ReportProgress("loading examples", 0, 0);
  return absl::OkStatus();
}

// The store's clock stamped the job's creation and start: with several replicas that is the
// database's, so a replica whose own clock is off neither fails jobs early nor runs them late.
bool JobRun::PastDeadline() const { return deadline_ms_ > 0 && context_.NowMs() >= deadline_ms_; }

absl::Status JobRun::DeadlineError() const {
  if (server_bound_) {
    return absl::DeadlineExceededError(absl::StrCat("the job ran longer than the server allows (",
                                                    max_run_ms_ / 1000, " s, --max-job-seconds)"));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("the job did not finish within spec.timeout_ms = ", spec_.timeout_ms()));
}

engine::RunControl JobRun::Control() {
  engine::RunControl control;
  control.should_stop = [this] { return ShouldStop(); };
  control.on_progress = [this](const engine::Progress& p) {
    ReportProgress(p.stage, p.done, p.total);
  };
  return control;
}

void JobRun::ReportProgress(const std::string& stage, int64_t done, int64_t total) {
  {
    absl::MutexLock lock(&progress_mu_);
    const auto now = std::chrono::steady_clock::now();
    if (stage == last_stage_ && done < total &&
        now - last_report_ < std::chrono::milliseconds(250)) {
      return;
    }
    last_stage_ = stage;
    last_report_ = now;
  }
  context_.ReportProgress(stage, done, total);
}

absl::Status JobRun::EngineError(const absl::Status& status) const {
  if (status.code() == absl::StatusCode::kCancelled && PastDeadline()) return DeadlineError();
  return status;
}

absl::StatusOr<std::string> JobRun::Finish(const v1::JobResult& result, int64_t items) {
  context_.ReportProgress("storing result", items, items);
  std::string bytes;
  if (!result.SerializeToString(&bytes)) {
    return absl::InternalError("the result does not serialize (over 2 GiB?)");
  }
  return bytes;
}

}  // namespace attattr::server
