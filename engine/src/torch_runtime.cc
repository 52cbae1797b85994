// LibTorch process settings (see runtime.h).
#include "absl/strings/str_cat.h"
#include "attattr/base/host_resources.h"
#include "attattr/engine/runtime.h"
#include "torch_boundary.h"
#include "torch_pch.h"

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

std::string RuntimeDescription() {
  return absl::StrCat("torch ", TORCH_VERSION, ", intra-op threads ", at::get_num_threads(), "\n",
                      at::get_parallel_info());
}

}  // namespace attattr::engine
