// ChooseEngineParallelism (server/engine_parallelism.h): with both flags at 0 a CPU host gets one
// single-threaded worker per usable core, bounded by memory and by the most workers; a flag that is
// set is kept and the other fills the cores; CUDA keeps one worker with every core for host work.
#include "engine_parallelism.h"

#include <gtest/gtest.h>

namespace attattr::server {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

TEST(EngineParallelismTest, CpuAutoIsOneThreadPerWorkerPerCore) {
  EngineParallelism p = ChooseEngineParallelism(0, 0, false, {2, 24 * kGiB}, kGiB);
  EXPECT_EQ(p.workers, 2);
  EXPECT_EQ(p.intra_op_threads, 1);
  EXPECT_EQ(p.reason, "cpu: 2 usable CPUs / 1 thread each");
  p = ChooseEngineParallelism(0, 0, false, {1, 24 * kGiB}, kGiB);
  EXPECT_EQ(p.workers, 1);
  EXPECT_EQ(p.intra_op_threads, 1);
}

TEST(EngineParallelismTest, MemoryBoundsTheWorkers) {
  // 64 cores but 8 GiB: half of it holds four 1 GiB batches.
  EngineParallelism p = ChooseEngineParallelism(0, 0, false, {64, 8 * kGiB}, kGiB);
  EXPECT_EQ(p.workers, 4);
  EXPECT_EQ(p.intra_op_threads, 1);
  EXPECT_NE(p.reason.find("bounded by memory (8192 MiB usable"), std::string::npos) << p.reason;
  // Less memory than one budget still gets one worker.
  p = ChooseEngineParallelism(0, 0, false, {64, kGiB / 4}, kGiB);
  EXPECT_EQ(p.workers, 1);
}

TEST(EngineParallelismTest, MostWorkersBound) {
  EngineParallelism p = ChooseEngineParallelism(0, 0, false, {256, 1024 * kGiB}, kGiB, 64);
  EXPECT_EQ(p.workers, 64);
  EXPECT_NE(p.reason.find("at most 64 workers"), std::string::npos) << p.reason;
}

TEST(EngineParallelismTest, ConfiguredThreadsDivideTheCores) {
  EngineParallelism p = ChooseEngineParallelism(0, 4, false, {16, 64 * kGiB}, kGiB);
  EXPECT_EQ(p.workers, 4);
  EXPECT_EQ(p.intra_op_threads, 4);
  p = ChooseEngineParallelism(0, 8, false, {2, 64 * kGiB}, kGiB);  // more threads than cores
  EXPECT_EQ(p.workers, 1);
  EXPECT_EQ(p.intra_op_threads, 8);
}

TEST(EngineParallelismTest, ConfiguredWorkersShareTheCores) {
  EngineParallelism p = ChooseEngineParallelism(1, 0, false, {2, 24 * kGiB}, kGiB);
  EXPECT_EQ(p.workers, 1);
  EXPECT_EQ(p.intra_op_threads, 2);  // the old default: one worker with every core
  p = ChooseEngineParallelism(4, 0, false, {2, 24 * kGiB}, kGiB);
  EXPECT_EQ(p.workers, 4);
  EXPECT_EQ(p.intra_op_threads, 1);
  p = ChooseEngineParallelism(3, 5, false, {2, kGiB}, kGiB);  // both set: kept as they are
  EXPECT_EQ(p.workers, 3);
  EXPECT_EQ(p.intra_op_threads, 5);
  EXPECT_EQ(p.reason, "cpu: workers and threads as configured");
}

TEST(EngineParallelismTest, CudaKeepsOneWorkerAndEveryCore) {
  EngineParallelism p = ChooseEngineParallelism(0, 0, true, {16, 128 * kGiB}, kGiB);
  EXPECT_EQ(p.workers, 1);
  EXPECT_EQ(p.intra_op_threads, 16);
  p = ChooseEngineParallelism(2, 4, true, {16, 128 * kGiB}, kGiB);
  EXPECT_EQ(p.workers, 2);
  EXPECT_EQ(p.intra_op_threads, 4);
}

}  // namespace
}  // namespace attattr::server
