// CPUs and memory this process may use (see host_resources.h).
#include "attattr/base/host_resources.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace attattr {
namespace {

// The first line of a cgroup v2 file of this process's cgroup, or "" (no cgroup v2, or not there).
std::string CgroupFile(const char* name) {
  std::ifstream in(std::string("/sys/fs/cgroup/") + name);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

int CpusUnderQuota(int cpus, absl::string_view cpu_max) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::StripAsciiWhitespace(cpu_max), ' ', absl::SkipEmpty());
  double quota = 0, period = 0;
  if (parts.size() != 2 || !absl::SimpleAtod(parts[0], &quota) ||
      !absl::SimpleAtod(parts[1], &period) || quota <= 0 || period <= 0) {
    return cpus;  // "max PERIOD" (no quota) lands here too
  }
  const double limit = std::ceil(quota / period);
  return limit >= 1 ? std::min(cpus, static_cast<int>(std::min(limit, 1e6))) : cpus;
}

int64_t MemoryUnderLimit(int64_t bytes, absl::string_view memory_max) {
  int64_t limit = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(memory_max), &limit) || limit <= 0) {
    return bytes;  // "max" (no limit) lands here too
  }
  return std::min(bytes, limit);
}

int UsableCpus() {
  int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = std::max(1, CPU_COUNT(&set));
  return CpusUnderQuota(cpus, CgroupFile("cpu.max"));
}

int64_t UsableMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  const int64_t physical = pages > 0 && page > 0 ? int64_t{pages} * page : int64_t{1} << 30;
  return MemoryUnderLimit(physical, CgroupFile("memory.max"));
}

}  // namespace attattr
