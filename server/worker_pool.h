// A fixed set of worker threads draining a bounded FIFO of tasks, so RPC handlers never run engine
// work on gRPC's reaction threads (STYLE.md §2.11). TrySubmit refuses (returns false) when the queue
// is full instead of growing it. Thread-safe; the destructor finishes queued tasks and joins.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace attattr::server {

class WorkerPool {
 public:
  // `threads` workers; at most `capacity` tasks waiting (running tasks do not count).
  WorkerPool(int threads, int capacity);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false when `capacity` tasks are already waiting or the pool is stopping.
  bool TrySubmit(std::function<void()> task);
  // Tasks waiting (not yet started).
  int Pending() const;

 private:
  void Loop();
  const int capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace attattr::server
