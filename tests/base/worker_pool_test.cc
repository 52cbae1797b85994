// WorkerPool (base/include/attattr/base/worker_pool.h): tasks run on the workers, a full queue
// refuses at once instead of growing, and Stop runs what was queued, then refuses.
#include "attattr/base/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace attattr {
namespace {

TEST(WorkerPoolTest, RunsTasksOffTheCallingThread) {
  WorkerPool pool(2, 8);
  std::atomic<int> ran{0};
  std::atomic<bool> on_caller{false};
  const auto caller = std::this_thread::get_id();
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(pool.TrySchedule([&] {
      if (std::this_thread::get_id() == caller) on_caller = true;
      ++ran;
    }));
  }
  pool.Stop();
  EXPECT_EQ(ran.load(), 8);
  EXPECT_FALSE(on_caller.load());
}

TEST(WorkerPoolTest, AFullQueueRefusesAndStopRunsWhatWasQueued) {
  WorkerPool pool(1, 2);
  absl::Notification started, release;
  ASSERT_TRUE(pool.TrySchedule([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  started.WaitForNotification();  // the one worker is busy
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.TrySchedule([&] { ++ran; }));
  EXPECT_TRUE(pool.TrySchedule([&] { ++ran; }));
  EXPECT_EQ(pool.Queued(), 2);
  EXPECT_FALSE(pool.TrySchedule([&] { ++ran; })) << "a third waiting task is over the bound";
  std::thread stopper([&] { pool.Stop(); });
  release.Notify();
  stopper.join();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_FALSE(pool.TrySchedule([&] { ++ran; })) << "a stopped pool takes nothing";
  EXPECT_EQ(ran.load(), 2);
}

// Regression (security review): one principal's flood of SubmitJob validations filled the shared
// queue and every other tenant's call waited behind it or was refused. Keys now take turns, and
// one key holds at most its share of the waiting places.
TEST(WorkerPoolTest, KeysTakeTurnsAndOneKeyCannotFillTheQueue) {
  WorkerPool pool(1, 8, 3);
  absl::Notification started, release;
  ASSERT_TRUE(pool.TrySchedule([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  started.WaitForNotification();
  absl::Mutex mu;
  std::vector<std::string> order;
  auto task = [&](std::string name) {
    return [&, name] {
      absl::MutexLock lock(&mu);
      order.push_back(name);
    };
  };
  EXPECT_TRUE(pool.TrySchedule(task("alice1"), "alice"));
  EXPECT_TRUE(pool.TrySchedule(task("alice2"), "alice"));
  EXPECT_TRUE(pool.TrySchedule(task("alice3"), "alice"));
  EXPECT_FALSE(pool.TrySchedule(task("alice4"), "alice")) << "alice holds her 3 places";
  EXPECT_TRUE(pool.TrySchedule(task("bob1"), "bob"));
  EXPECT_TRUE(pool.TrySchedule(task("bob2"), "bob"));
  EXPECT_TRUE(pool.TrySchedule(task("carol1"), "carol"));
  EXPECT_EQ(pool.Queued(), 6);
  release.Notify();
  pool.Stop();
  EXPECT_EQ(order,
            (std::vector<std::string>{"alice1", "bob1", "carol1", "alice2", "bob2", "alice3"}));
}

}  // namespace
}  // namespace attattr
