// PoolRetry (see pool_retry.h).
#include "pool_retry.h"

#include <algorithm>
#include <utility>

namespace attattr::server {

PoolRetry::PoolRetry(WorkerPool& pool, TimerQueue& timers, Options options)
    : pool_(pool), timers_(timers), options_(options) {}

PoolRetry::~PoolRetry() {
  TimerQueue::Id timer;
  {
    absl::MutexLock lock(&mu_);
    timer = timer_;
  }
  if (timer != 0) timers_.Cancel(timer);
}

void PoolRetry::Start(std::string key, std::function<void()> task, std::function<void()> give_up,
                      std::function<bool()> stopped) {
  {
    absl::MutexLock lock(&mu_);
    key_ = std::move(key);
    task_ = std::move(task);
    give_up_ = std::move(give_up);
    stopped_ = std::move(stopped);
    started_ = Clock::now();
    pause_ = options_.first_pause;
  }
  Try();
}

void PoolRetry::Try() {
  std::function<void()> task;
  std::function<bool()> stopped;
  std::string key;
  {
    absl::MutexLock lock(&mu_);
    task = task_;
    stopped = stopped_;
    key = key_;
  }
  // The callbacks run without mu_ (they lock their owner, may finish its call and destroy this).
  const bool stop = stopped();
  if (!stop && pool_.TrySchedule(std::move(task), key)) return;
  std::function<void()> give_up;
  {
    absl::MutexLock lock(&mu_);
    if (!stop && Clock::now() - started_ < options_.max_wait) {
      const auto pause = pause_;
      pause_ = std::min(2 * pause_, options_.max_pause);
      timer_ = timers_.Schedule(Clock::now() + pause, [this] { Try(); });
      return;
    }
    give_up = std::move(give_up_);
  }
  give_up();
}

}  // namespace attattr::server
