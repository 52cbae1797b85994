// PoolRetry: runs a task on a WorkerPool in a caller's turn, and when the pool's queue (or the
// caller's share of it) is full, tries again after a pause on the TimerQueue — pauses doubling from
// `first_pause` to `max_pause` — until `max_wait` has passed since Start, when it gives up. Used
// by GetJobResult for each next chunk, so a download in progress is not cut off by a moment of
// load; a refusal stays the answer for a flood that lasts. One Start at a time. Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "attattr/base/worker_pool.h"
#include "timer_queue.h"

namespace attattr::server {

class PoolRetry {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::chrono::milliseconds first_pause{20};
    std::chrono::milliseconds max_pause{500};
    std::chrono::milliseconds max_wait{30000};
  };

  PoolRetry(WorkerPool& pool, TimerQueue& timers, Options options);
  // Cancels a retry still waiting (synchronously: TimerQueue::Cancel); neither callback runs
  // after that (unless this is destroyed from one of them).
  ~PoolRetry();
  PoolRetry(const PoolRetry&) = delete;
  PoolRetry& operator=(const PoolRetry&) = delete;

  // Queues `task` under `key` (WorkerPool::TrySchedule); exactly one of `task` (on the pool) and
  // `give_up` (on this thread or the timer thread, when max_wait has passed or `stopped` says true
  // before a try) runs, once.
  void Start(std::string key, std::function<void()> task, std::function<void()> give_up,
             std::function<bool()> stopped);

 private:
  void Try() ABSL_LOCKS_EXCLUDED(mu_);

  WorkerPool& pool_;
  TimerQueue& timers_;
  const Options options_;
  absl::Mutex mu_;
  std::string key_ ABSL_GUARDED_BY(mu_);
  std::function<void()> task_ ABSL_GUARDED_BY(mu_);
  std::function<void()> give_up_ ABSL_GUARDED_BY(mu_);
  std::function<bool()> stopped_ ABSL_GUARDED_BY(mu_);
  Clock::time_point started_ ABSL_GUARDED_BY(mu_);
  std::chrono::milliseconds pause_ ABSL_GUARDED_BY(mu_){0};
  TimerQueue::Id timer_ ABSL_GUARDED_BY(mu_) = 0;  // the last retry scheduled
};

}  // namespace attattr::server
