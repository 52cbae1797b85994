// How many engine workers (threads that each run one attribution batch at a time) and how many
// LibTorch intra-op threads each uses, chosen together from the host when the flags leave them at
// 0 (auto). Measured on a 2-core CPU (bench/threads_run.py, bench/README.md "threads_run"): the
// engine's per-example products are small, so a second intra-op thread adds 1.1-1.4x at best
// (0.7x in bf16), while a second single-threaded worker gives 1.3-2.9x the calls and examples per
// second; and workers whose threads together outnumber the cores contend (13-15 % lost). So on CPU
// the auto choice is one worker per usable core with one intra-op thread each — workers × threads =
// cores — bounded by memory: each worker may hold a batch of up to --memory-budget-mib of
// activations, and all of them together at most half the memory the process may use. On CUDA one
// worker feeds the device (batching fills it) and the intra-op threads get every core for the
// host-side work. Each worker sets its threads on its own thread (engine::SetThreadIntraOpThreads);
// HEAD_IMPORTANCE and TRIGGER_SEARCH jobs run on their job runner's thread with the process's
// (--job-threads). Pure function; the caller reads the host (attattr/base/host_resources.h).
#pragma once

#include <cstdint>
#include <string>

namespace attattr::server {

struct EngineParallelism {
  int workers = 1;
  int intra_op_threads = 1;
  // How the figures were reached, for the start-up log ("auto: 2 usable CPUs, 1 thread each").
  std::string reason;
};

struct HostShape {
  int cpus = 1;              // attattr::UsableCpus()
  int64_t memory_bytes = 0;  // attattr::UsableMemoryBytes()
};

// `workers` and `intra_op_threads` as configured (0 = auto, each; both ≥ 0); `cuda` for a CUDA
// device; `memory_budget_bytes` per batch (> 0). Workers are at most `max_workers`.
EngineParallelism ChooseEngineParallelism(int workers, int intra_op_threads, bool cuda,
                                          const HostShape& host, int64_t memory_budget_bytes,
                                          int max_workers = 64);

}  // namespace attattr::server
