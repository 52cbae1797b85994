// TimerQueue: one thread that runs callbacks at deadlines — WaitJob's timeout and the periodic
// result-retention sweep. Written here rather than using grpc::Alarm because the callers need a
// synchronous Cancel: when Cancel returns, the callback is not running and will never run, so a
// reactor can be deleted right after. Thread-safe; callbacks run on the timer thread and must not
// block (they may call Schedule and Cancel).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace attattr::server {

class TimerQueue {
 public:
  using Clock = std::chrono::steady_clock;
  using Id = uint64_t;

  TimerQueue();
  // Stops the thread; pending callbacks never run.
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `callback` once at `deadline` (at once if it has passed).
  Id Schedule(Clock::time_point deadline, std::function<void()> callback);
  // After return, the callback of `id` is neither running nor going to run (unless this is
  // called from that callback itself). Unknown or fired ids are ignored.
  void Cancel(Id id);

 private:
  void Loop();

  absl::Mutex mu_;
  std::multimap<Clock::time_point, std::pair<Id, std::function<void()>>> timers_
      ABSL_GUARDED_BY(mu_);
  std::map<Id, Clock::time_point> deadlines_ ABSL_GUARDED_BY(mu_);
  Id next_ ABSL_GUARDED_BY(mu_) = 1;
  Id running_ ABSL_GUARDED_BY(mu_) = 0;  // the id whose callback is running now
  std::thread::id timer_thread_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace attattr::server
