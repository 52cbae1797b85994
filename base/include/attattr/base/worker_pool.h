// WorkerPool: a fixed set of threads running queued tasks in order, with a bound on the tasks
// waiting, so a burst is refused at once instead of queued without limit. SubmitJob's validation
// (reading dataset files under --data-root, tokenizing up to --max-job-examples examples) runs
// here, never on a gRPC reaction thread, and so do the HTTP port's requests
// (metrics/http_listener.h). Hand-written: Abseil and gRPC 1.51 ship no public thread pool, and
// this is a mutex, a queue and a few threads. Thread-safe; Stop from one owner thread.
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace attattr {

class WorkerPool {
 public:
  // `threads` >= 1 workers; at most `max_queued` tasks wait for one.
  WorkerPool(int threads, int max_queued);
  // Stop().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false (task dropped, not run) when max_queued tasks wait or the pool stopped.
  bool TrySchedule(std::function<void()> task);

  // Tasks waiting for a worker (not those running).
  int Queued() const;

  // Refuses new tasks, runs the ones already queued, and joins the workers. Idempotent.
  void Stop();

 private:
  void Loop();

  const int max_queued_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;  // touched only by the constructor and Stop
};

}  // namespace attattr
