// WorkerPool: a fixed set of threads running queued tasks, with a bound on the tasks waiting, so a
// burst is refused at once instead of queued without limit. SubmitJob's and Explain's validation
// (reading dataset files under --data-root, tokenizing up to --max-job-examples examples) runs
// here, never on a gRPC reaction thread, and so do the HTTP port's requests
// (metrics/http_listener.h). Tasks may carry a key (the calling principal): keys take turns (round
// robin, each key's tasks in order) and one key may hold at most `max_queued_per_key` of the
// waiting places, so one tenant's flood neither fills the queue nor delays another tenant's call
// by more than one task per busy key. Hand-written: Abseil and gRPC 1.51 ship no public thread
// pool, and this is a mutex, a few queues and a few threads. Thread-safe; Stop from one owner
// thread.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace attattr {

class WorkerPool {
 public:
  // `threads` >= 1 workers; at most `max_queued` tasks wait for one, at most
  // `max_queued_per_key` of them (0 = max_queued) with one key.
  WorkerPool(int threads, int max_queued, int max_queued_per_key = 0);
  // Stop().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task` under `key`; false (task dropped, not run) when max_queued tasks wait, `key`
  // has max_queued_per_key waiting, or the pool stopped.
  bool TrySchedule(std::function<void()> task, const std::string& key = "");

  // Tasks waiting for a worker (not those running).
  int Queued() const;

  // Refuses new tasks, runs the ones already queued, and joins the workers. Idempotent.
  void Stop();

 private:
  void Loop();

  const int max_queued_;
  const int max_queued_per_key_;
  mutable absl::Mutex mu_;
  // Each key's waiting tasks, and the keys with waiting tasks in the order they take turns.
  std::unordered_map<std::string, std::deque<std::function<void()>>> queues_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> turns_ ABSL_GUARDED_BY(mu_);
  int queued_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;  // touched only by the constructor and Stop
};

}  // namespace attattr
