// What this process may really use of its host: CPUs (the affinity mask, capped by a cgroup v2 CPU
// quota — `cpu.max`, what a container's CPU limit sets) and memory (physical memory, capped by a
// cgroup v2 `memory.max`). std::thread::hardware_concurrency() and sysconf see neither limit, so a
// pod limited to 2 CPUs on a 64-core node would otherwise size its threads for 64. Read at call
// time; the parsers are separate so tests can feed them file contents.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace attattr {

// CPUs the process may use (≥ 1).
int UsableCpus();
// Bytes of memory the process may use (physical memory, or the cgroup's limit when lower).
int64_t UsableMemoryBytes();

// `cpus` capped by a cgroup v2 cpu.max line ("QUOTA PERIOD" or "max PERIOD"); a quota of 1.5 CPUs
// counts as 2. Unparsable content leaves `cpus` as it is.
int CpusUnderQuota(int cpus, absl::string_view cpu_max);
// `bytes` capped by a cgroup v2 memory.max line (a byte count, or "max"); unparsable content
// leaves `bytes` as it is.
int64_t MemoryUnderLimit(int64_t bytes, absl::string_view memory_max);

}  // namespace attattr
