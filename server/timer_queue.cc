// TimerQueue (see timer_queue.h).
#include "timer_queue.h"

namespace attattr::server {

TimerQueue::TimerQueue() : thread_([this] { Loop(); }) {}

TimerQueue::~TimerQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

TimerQueue::Id TimerQueue::Schedule(Clock::time_point deadline, std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  const Id id = next_++;
  timers_.emplace(deadline, std::make_pair(id, std::move(callback)));
  deadlines_[id] = deadline;
  cv_.notify_all();
  return id;
}

void TimerQueue::Cancel(Id id) {
  std::unique_lock<std::mutex> lock(mu_);
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
  cv_.wait(lock, [&] { return running_ != id; });
}

void TimerQueue::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  timer_thread_ = std::this_thread::get_id();
  while (!stopping_) {
    if (timers_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto first = timers_.begin();
    if (first->first > Clock::now()) {
      cv_.wait_until(lock, first->first);
      continue;
    }
    auto [id, callback] = std::move(first->second);
    timers_.erase(first);
    deadlines_.erase(id);
    running_ = id;
    lock.unlock();
    callback();
    lock.lock();
    running_ = 0;
    cv_.notify_all();
  }
}

}  // namespace attattr::server
