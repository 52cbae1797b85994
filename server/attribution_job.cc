// ATTRIBUTION job executor (see attribution_job.h).
#include "server/attribution_job.h"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/job_spec.h"
#include "server/proto_convert.h"

namespace attattr::server {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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
  v1::JobSpec spec;
  if (!spec.ParseFromString(job.spec)) {
    return absl::DataLossError(absl::StrCat("job ", job.id, ": stored spec does not parse"));
  }
  const int64_t deadline_ms = spec.timeout_ms() > 0 ? job.create_time_ms + spec.timeout_ms() : 0;
  auto past_deadline = [deadline_ms] { return deadline_ms > 0 && NowMs() >= deadline_ms; };
  auto deadline_error = [&spec] {
    return absl::DeadlineExceededError(
        absl::StrCat("the job did not finish within spec.timeout_ms = ", spec.timeout_ms()));
  };
  if (past_deadline()) return deadline_error();
  context.ReportProgress("loading examples", 0, 0);
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
  auto should_stop = [&context, past_deadline] { return context.ShouldStop() || past_deadline(); };
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
    if (past_deadline()) return deadline_error();
    if (failure.code() == absl::StatusCode::kCancelled && !context.ShouldStop()) {
      return absl::InternalError(absl::StrCat("attribution stopped unexpectedly: ", failure.message()));
    }
    return failure;
  }
  context.ReportProgress("storing result", total, total);
  std::string bytes;
  if (!result.SerializeToString(&bytes)) {
    return absl::InternalError("the result does not serialize (over 2 GiB?)");
  }
  return bytes;
}

}  // namespace attattr::server
