// LibTorch process settings (see runtime.h).
#include "absl/strings/str_cat.h"
#include "attattr/base/host_resources.h"
#include "attattr/engine/precision.h"
#include "attattr/engine/runtime.h"
#include "torch_boundary.h"
#include "torch_pch.h"

// Per-thread thread counts: OpenMP's omp_set_num_threads sets the calling thread's own count, and
// MKL (linked into the PyPI wheel's libtorch_cpu; absent from Debian's OpenBLAS build, whose OpenMP
// variant follows the caller's OpenMP count) has a thread-local one, MKL_Set_Num_Threads_Local —
// the C entry point mkl_service.h maps mkl_set_num_threads_local to (the lower-case export is
// Fortran's, by reference). Weak: resolved from the libraries LibTorch loaded, null when absent.
extern "C" {
void omp_set_num_threads(int) __attribute__((weak));
int MKL_Set_Num_Threads_Local(int) __attribute__((weak));
}

namespace attattr::engine {

absl::Status ConfigureRuntime(const RuntimeOptions& options) {
  if (options.intra_op_threads < 0) {
    return absl::InvalidArgumentError("intra_op_threads: must be >= 0");
  }
  int threads = options.intra_op_threads;
  if (threads == 0) threads = attattr::UsableCpus();
  try {
    at::set_num_threads(threads);
  } catch (...) {
    return TorchExceptionToStatus("intra_op_threads");
  }
  return absl::OkStatus();
}

int IntraOpThreads() { return at::get_num_threads(); }

void SetThreadIntraOpThreads(int threads) {
  if (threads < 1) return;
  // LibTorch sets a thread's counts to the process's on the thread's first parallel operation
  // (a thread-local flag in an inline function: libtorch's copy, reached through get_num_threads,
  // and this library's); let both happen now, so neither can undo what follows.
  (void)at::get_num_threads();
  at::internal::lazy_init_num_threads();
  if (omp_set_num_threads != nullptr) omp_set_num_threads(threads);
  if (MKL_Set_Num_Threads_Local != nullptr) MKL_Set_Num_Threads_Local(threads);
}

std::string RuntimeDescription() {
  const auto bf16 = CpuHasNativeBf16();
  return absl::StrCat(
      "torch ", TORCH_VERSION, ", intra-op threads ", at::get_num_threads(),
      ", CPU bf16 arithmetic: ", bf16 ? (*bf16 ? "yes" : "no (emulated)") : "unknown", "\n",
      at::get_parallel_info());
}

}  // namespace attattr::engine
