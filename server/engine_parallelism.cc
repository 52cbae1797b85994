// Engine workers and intra-op threads chosen together (see engine_parallelism.h).
#include "engine_parallelism.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"

namespace attattr::server {

EngineParallelism ChooseEngineParallelism(int workers, int intra_op_threads, bool cuda,
                                          const HostShape& host, int64_t memory_budget_bytes,
                                          int max_workers) {
  const int cpus = std::max(1, host.cpus);
  EngineParallelism p;
  if (cuda) {
    p.workers = workers > 0 ? workers : 1;
    p.intra_op_threads = intra_op_threads > 0 ? intra_op_threads : cpus;
    p.reason = absl::StrCat("cuda: ", workers > 0 ? "workers as configured" : "one worker", ", ",
                            intra_op_threads > 0 ? "threads as configured" : "all CPUs",
                            " for host-side work (", cpus, " usable)");
    return p;
  }
  // Workers whose batches together stay within half the usable memory.
  const int64_t budget = std::max<int64_t>(1, memory_budget_bytes);
  const int by_memory = static_cast<int>(
      std::clamp<int64_t>(host.memory_bytes / 2 / budget, 1, std::numeric_limits<int>::max()));
  if (workers > 0 && intra_op_threads > 0) {
    p.workers = workers;
    p.intra_op_threads = intra_op_threads;
    p.reason = "cpu: workers and threads as configured";
  } else if (workers > 0) {
    p.workers = workers;
    p.intra_op_threads = std::max(1, cpus / workers);
    p.reason = absl::StrCat("cpu: ", cpus, " usable CPUs shared by ", workers, " workers");
  } else {
    p.intra_op_threads = intra_op_threads > 0 ? intra_op_threads : 1;
    const int by_cpus = std::max(1, cpus / p.intra_op_threads);
    p.workers = std::min({by_cpus, by_memory, std::max(1, max_workers)});
    p.reason = absl::StrCat("cpu: ", cpus, " usable CPUs / ", p.intra_op_threads, " thread",
                            p.intra_op_threads == 1 ? "" : "s", " each");
    if (p.workers < by_cpus) {
      absl::StrAppend(
          &p.reason,
          p.workers == by_memory
              ? absl::StrCat(", bounded by memory (", host.memory_bytes >> 20,
                             " MiB usable, half of it for batches of ", budget >> 20, " MiB)")
              : absl::StrCat(", at most ", max_workers, " workers"));
    }
  }
  return p;
}

}  // namespace attattr::server
