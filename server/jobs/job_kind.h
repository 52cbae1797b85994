// The seam every job kind plugs into (ATTRIBUTION, HEAD_IMPORTANCE, TRIGGER_SEARCH; decoders and
// other uses next): a JobKind validates a spec of its kind into a PreparedJob — everything that
// can be checked before the job waits in the queue, done again when it runs, as models, files and
// export directories may have changed — and a PreparedJob runs the engine under a JobRun
// (cancellation, deadline, progress) and renders its result as a JobResult. A kind is usually two
// functions given to MakeJobKind (its file declares them); the kinds are registered in one table
// (job_kinds.cc), and the scheduler's one executor drives them all.
// Thread-safety: a JobKind is immutable and shared by every caller; a PreparedJob belongs to one
// thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "attattr/v1/job.pb.h"
#include "jobs/job_run.h"

namespace attattr::server {

// A validated job of one kind, holding its examples (loaded and tokenized), engine options and
// borrowed model, ready to run.
class PreparedJob {
 public:
  virtual ~PreparedJob() = default;

  // Runs the engine work, checking run.ShouldStop() between batches and reporting progress
  // through run, and renders the result. A stop surfaces as CancelledError (the executor turns
  // one past the deadline into DEADLINE_EXCEEDED); other errors name the spec field at fault.
  virtual absl::StatusOr<v1::JobResult> Run(JobRun& run) = 0;

  // Items the job works through (examples of an attribution job; 1 for a study or a search), for
  // the final progress report.
  virtual int64_t items() const = 0;

  // Estimated serialized size of the JobResult, held against the owner's stored-bytes quota while
  // the job waits and runs (store::JobRecord::reserved_result_bytes).
  virtual int64_t result_bytes() const = 0;
};

class JobKind {
 public:
  virtual ~JobKind() = default;

  // The kind of spec this validates (JobSpec.kind's case, as a v1::JobKind).
  virtual v1::JobKind kind() const = 0;

  // Validates `spec` (whose kind() is this one's) against the served models and the server's
  // limits: InvalidArgument / NotFound / AlreadyExists naming the field ("spec.<kind>.<field>:
  // ...") and, for a server limit, its flag. Reads dataset files under --data-root and tokenizes,
  // so SubmitJob calls it off the gRPC reaction threads. `job_id`: the job about to run ("" at
  // submission), for what a run again may find of its own earlier run (an export).
  virtual absl::StatusOr<std::unique_ptr<PreparedJob>> Prepare(const v1::JobSpec& spec,
                                                               const std::string& job_id) const = 0;
};

// A JobKind from its steps, for a kind whose validated job is a value `Job` (with
// `int64_t items() const` and `int64_t result_bytes() const`): `prepare` validates a spec into a
// Job, `run` runs it under a JobRun and renders its JobResult. Both may capture what they borrow
// from the server (models, config, the batcher), which must outlive the kind and every job it
// prepares.
template <typename Job>
std::unique_ptr<JobKind> MakeJobKind(
    v1::JobKind kind,
    std::function<absl::StatusOr<Job>(const v1::JobSpec&, const std::string&)> prepare,
    std::function<absl::StatusOr<v1::JobResult>(Job&, JobRun&)> run) {
  class Prepared final : public PreparedJob {
   public:
    Prepared(Job job, const std::function<absl::StatusOr<v1::JobResult>(Job&, JobRun&)>& run)
        : job_(std::move(job)), run_(run) {}
    absl::StatusOr<v1::JobResult> Run(JobRun& run) override { return run_(job_, run); }
    int64_t items() const override { return job_.items(); }
    int64_t result_bytes() const override { return job_.result_bytes(); }

   private:
    Job job_;
    const std::function<absl::StatusOr<v1::JobResult>(Job&, JobRun&)>& run_;  // the kind's
  };
  class Kind final : public JobKind {
   public:
    Kind(v1::JobKind kind,
         std::function<absl::StatusOr<Job>(const v1::JobSpec&, const std::string&)> prepare,
         std::function<absl::StatusOr<v1::JobResult>(Job&, JobRun&)> run)
        : kind_(kind), prepare_(std::move(prepare)), run_(std::move(run)) {}
    v1::JobKind kind() const override { return kind_; }
    absl::StatusOr<std::unique_ptr<PreparedJob>> Prepare(const v1::JobSpec& spec,
                                                         const std::string& job_id) const override {
      absl::StatusOr<Job> job = prepare_(spec, job_id);
      if (!job.ok()) return job.status();
      return std::make_unique<Prepared>(std::move(*job), run_);
    }

   private:
    const v1::JobKind kind_;
    const std::function<absl::StatusOr<Job>(const v1::JobSpec&, const std::string&)> prepare_;
    const std::function<absl::StatusOr<v1::JobResult>(Job&, JobRun&)> run_;
  };
  return std::make_unique<Kind>(kind, std::move(prepare), std::move(run));
}

}  // namespace attattr::server
