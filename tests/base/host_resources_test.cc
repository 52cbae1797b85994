// host_resources (base/include/attattr/base/host_resources.h): cgroup v2 cpu.max and memory.max
// lines cap what the host offers — a quota rounds up to whole CPUs, "max" and unparsable content
// leave the figure alone — and the live readings are sane on this machine.
#include "attattr/base/host_resources.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

namespace attattr {
namespace {

TEST(HostResourcesTest, CpuQuotaCapsAndRoundsUp) {
  EXPECT_EQ(CpusUnderQuota(64, "200000 100000\n"), 2);
  EXPECT_EQ(CpusUnderQuota(64, "150000 100000"), 2);  // 1.5 CPUs of time: two threads can use it
  EXPECT_EQ(CpusUnderQuota(64, "50000 100000"), 1);
  EXPECT_EQ(CpusUnderQuota(2, "800000 100000"), 2);  // a quota above the affinity mask
  EXPECT_EQ(CpusUnderQuota(8, "max 100000"), 8);
  EXPECT_EQ(CpusUnderQuota(8, ""), 8);
  EXPECT_EQ(CpusUnderQuota(8, "garbage"), 8);
  EXPECT_EQ(CpusUnderQuota(8, "100000 0"), 8);
  EXPECT_EQ(CpusUnderQuota(8, "1e300 1"), 8);
}

TEST(HostResourcesTest, MemoryLimitCaps) {
  const int64_t gib = int64_t{1} << 30;
  EXPECT_EQ(MemoryUnderLimit(64 * gib, "4294967296\n"), 4 * gib);
  EXPECT_EQ(MemoryUnderLimit(2 * gib, "4294967296"), 2 * gib);
  EXPECT_EQ(MemoryUnderLimit(8 * gib, "max"), 8 * gib);
  EXPECT_EQ(MemoryUnderLimit(8 * gib, ""), 8 * gib);
  EXPECT_EQ(MemoryUnderLimit(8 * gib, "-5"), 8 * gib);
  EXPECT_EQ(MemoryUnderLimit(8 * gib, "12abc"), 8 * gib);
}

TEST(HostResourcesTest, LiveReadingsAreWithinTheMachine) {
  const int cpus = UsableCpus();
  EXPECT_GE(cpus, 1);
  EXPECT_LE(cpus, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const int64_t memory = UsableMemoryBytes();
  EXPECT_GT(memory, int64_t{64} << 20);
  EXPECT_LE(memory, int64_t{sysconf(_SC_PHYS_PAGES)} * sysconf(_SC_PAGE_SIZE));
}

}  // namespace
}  // namespace attattr
