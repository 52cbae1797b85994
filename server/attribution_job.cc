// ATTRIBUTION job executor (see attribution_job.h).
#include "server/attribution_job.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/job_run.h"
#include "server/job_spec.h"
#include "server/proto_convert.h"

namespace attattr::server {
namespace {

// Results of the items in flight, shared with the batcher's done callbacks (which may outlive an
// early return of the executor only until `outstanding` reaches zero; the executor waits for that).
struct Window {
  std::mutex mu;
  std::condition_variable cv;
  int outstanding = 0;
  std::vector<std::optional<absl::StatusOr<engine::ExampleAttribution>>> results;
};

}  // namespace

absl::StatusOr<std::string> AttributionJobExecutor::operator()(const store::JobRecord& job,
                                                               JobContext& context) const {
  JobRun run(job, context);
  if (auto s = run.Begin(); !s.ok()) return s;
  const v1::JobSpec& spec = run.spec();
  auto prepared = PrepareAttributionJob(spec, models_, config_);
  if (!prepared.ok()) return prepared.status();
  AttributionJob& work = *prepared;
  // The clean attention is only kept when the result asks for it.
  work.options.keep_attention = work.result.attention();
  const int64_t total = static_cast<int64_t>(work.encodings.size());
  context.ReportProgress("attribution", 0, total);

  auto window = std::make_shared<Window>();
  window->results.resize(work.encodings.size());
  const int limit = 2 * config_.EffectiveBatchMaxExamples();  // keep the next batch waiting in the batcher
  auto should_stop = [&run] { return run.ShouldStop(); };
  v1::JobResult result;
  auto* out = result.mutable_attribution();
  int64_t next = 0, converted = 0;
  absl::Status failure;
  std::unique_lock<std::mutex> lock(window->mu);
  while (converted < total && failure.ok()) {
    // Fill the window.
    while (next < total && window->outstanding < limit && !should_stop()) {
      AttributionItem item;
      item.model = work.model;
      item.options = work.options;
      item.encoding = work.encodings[next];
      item.should_stop = should_stop;
      item.done = [window, index = next](absl::StatusOr<engine::ExampleAttribution> r) {
        std::lock_guard<std::mutex> guard(window->mu);
        window->results[index] = std::move(r);
        --window->outstanding;
        window->cv.notify_all();
      };
      ++window->outstanding;
      ++next;
      lock.unlock();
      const bool queued = batcher_.TrySubmit(std::move(item), /*force=*/true);
      lock.lock();
      if (!queued) {
        --window->outstanding;
        failure = absl::UnavailableError("the server is shutting down");
        break;
      }
    }
    if (!failure.ok()) break;
    if (should_stop() && window->outstanding == 0 && !window->results[converted].has_value()) {
      failure = absl::CancelledError("stopped");
      break;
    }
    window->cv.wait(lock, [&] {
      return window->results[converted].has_value() || window->outstanding == 0;
    });
    // Convert the finished prefix in order, freeing engine buffers as we go.
    const int64_t before = converted;
    while (converted < total && window->results[converted].has_value()) {
      auto& r = *window->results[converted];
      if (!r.ok()) {
        failure = r.status();
        break;
      }
      metrics_.RecordAttribution("attribution_job", *r, work.options.steps);
      lock.unlock();
      AttributionToProto(*r, work.result, work.model->info().labels, out->add_examples());
      lock.lock();
      window->results[converted].reset();
      ++converted;
    }
    if (converted > before && (converted == total || converted % config_.EffectiveBatchMaxExamples() == 0 ||
                               window->outstanding == 0)) {
      lock.unlock();
      context.ReportProgress("attribution", converted, total);
      lock.lock();
    }
  }
  // Never return while the batcher still holds callbacks into `window` with work pending.
  window->cv.wait(lock, [&] { return window->outstanding == 0; });
  lock.unlock();
  if (!failure.ok()) {
    if (run.PastDeadline()) return run.DeadlineError();
    if (failure.code() == absl::StatusCode::kCancelled && !context.ShouldStop()) {
      return absl::InternalError(absl::StrCat("attribution stopped unexpectedly: ", failure.message()));
    }
    return failure;
  }
  return run.Finish(result, total);
}

}  // namespace attattr::server
