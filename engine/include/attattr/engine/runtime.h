// Process-wide LibTorch settings the host program sets once at start-up (in main, never in a
// library constructor): intra-op threads, and a description of the BLAS/parallel backend for logs
// and benchmark reports. Call ConfigureRuntime before starting worker threads.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace attattr::engine {

struct RuntimeOptions {
  // Intra-op threads for LibTorch (matmuls, elementwise ops). 0 = the CPUs this process may use
  // (attattr::UsableCpus: the affinity mask, capped by a cgroup v2 CPU quota).
  // Default: 0 (Debian's LibTorch otherwise starts with 1 on some machines).
  int intra_op_threads = 0;
};

absl::Status ConfigureRuntime(const RuntimeOptions& options);

// The intra-op threads LibTorch uses for work started from the calling thread.
int IntraOpThreads();

// Intra-op threads (≥ 1; 0 = leave as is) for work started from the calling thread only: OpenMP
// regions, LibTorch's parallel loops and MKL's products. Other threads keep the process's setting
// (ConfigureRuntime). The server's engine workers call it once when they start.
void SetThreadIntraOpThreads(int threads);

// Threads in use, the parallel/BLAS backend LibTorch reports, and whether the CPU has bf16
// arithmetic (CpuHasNativeBf16).
std::string RuntimeDescription();

}  // namespace attattr::engine
