// WorkerPool (base/include/attattr/base/worker_pool.h): tasks run on the workers, a full queue
// refuses at once instead of growing, and Stop runs what was queued, then refuses.
#include "attattr/base/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

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

}  // namespace
}  // namespace attattr
