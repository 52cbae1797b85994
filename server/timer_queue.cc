// TimerQueue (see timer_queue.h).
#include "timer_queue.h"

#include "absl/time/time.h"

namespace attattr::server {

TimerQueue::TimerQueue() : thread_([this] { Loop(); }) {}

TimerQueue::~TimerQueue() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

TimerQueue::Id TimerQueue::Schedule(Clock::time_point deadline, std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  const Id id = next_++;
  timers_.emplace(deadline, std::make_pair(id, std::move(callback)));
  deadlines_[id] = deadline;
  return id;
}

void TimerQueue::Cancel(Id id) {
  absl::MutexLock lock(&mu_);
  if (auto it = deadlines_.find(id); it != deadlines_.end()) {
    auto range = timers_.equal_range(it->second);
    for (auto t = range.first; t != range.second; ++t) {
      if (t->second.first == id) {
        timers_.erase(t);
        break;
      }
    }
    deadlines_.erase(it);
    return;
  }
  // Already taken by the timer thread: wait until its callback returns (not from itself).
  if (std::this_thread::get_id() == timer_thread_) return;
  const auto done = [this, id]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return running_ != id; };
  mu_.Await(absl::Condition(&done));
}

void TimerQueue::Loop() {
  absl::MutexLock lock(&mu_);
  timer_thread_ = std::this_thread::get_id();
  while (!stopping_) {
    if (timers_.empty()) {
      const auto wake = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return stopping_ || !timers_.empty();
      };
      mu_.Await(absl::Condition(&wake));
      continue;
    }
    auto first = timers_.begin();
    const Clock::time_point due = first->first;
    if (due > Clock::now()) {
      // Until it is due, a timer due earlier is scheduled, or the queue stops.
      const auto wake = [this, due]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return stopping_ || timers_.empty() || timers_.begin()->first < due;
      };
      mu_.AwaitWithTimeout(absl::Condition(&wake), absl::FromChrono(due - Clock::now()));
      continue;
    }
    auto [id, callback] = std::move(first->second);
    timers_.erase(first);
    deadlines_.erase(id);
    running_ = id;
    mu_.Unlock();
    callback();
    mu_.Lock();
    running_ = 0;
  }
}

}  // namespace attattr::server
