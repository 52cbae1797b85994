// WorkerPool (see worker_pool.h).
#include "attattr/base/worker_pool.h"

#include <utility>

namespace attattr {

WorkerPool::WorkerPool(int threads, int max_queued, int max_queued_per_key)
    : max_queued_(max_queued),
      max_queued_per_key_(max_queued_per_key > 0 ? max_queued_per_key : max_queued) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkerPool::~WorkerPool() { Stop(); }

bool WorkerPool::TrySchedule(std::function<void()> task, const std::string& key) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || queued_ >= max_queued_) return false;
  auto& queue = queues_[key];
  if (static_cast<int>(queue.size()) >= max_queued_per_key_) return false;
  if (queue.empty()) turns_.push_back(key);
  queue.push_back(std::move(task));
  ++queued_;
  return true;
}

int WorkerPool::Queued() const {
  absl::MutexLock lock(&mu_);
  return queued_;
}

void WorkerPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkerPool::Loop() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkerPool* p)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) { return p->stopping_ || p->queued_ > 0; },
          this));
      if (queued_ == 0) return;  // stopping, and nothing left to run
      // The key whose turn it is gives its oldest task and goes to the back of the turns.
      const std::string key = std::move(turns_.front());
      turns_.pop_front();
      auto it = queues_.find(key);
      task = std::move(it->second.front());
      it->second.pop_front();
      --queued_;
      if (it->second.empty()) {
        queues_.erase(it);
      } else {
        turns_.push_back(key);
      }
    }
    task();
  }
}

}  // namespace attattr
