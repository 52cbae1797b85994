// LibTorch process settings (see runtime.h).
#include <thread>

#include "absl/strings/str_cat.h"
#include "attattr/engine/runtime.h"
#include "torch_pch.h"

namespace attattr::engine {

absl::Status ConfigureRuntime(const RuntimeOptions& options) {
  if (options.intra_op_threads < 0) {
    return absl::InvalidArgumentError("intra_op_threads: must be >= 0");
  }
  int threads = options.intra_op_threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  try {
    at::set_num_threads(threads);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("intra_op_threads: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

std::string RuntimeDescription() {
  return absl::StrCat("torch ", TORCH_VERSION, ", intra-op threads ", at::get_num_threads(), "\n",
                      at::get_parallel_info());
}

}  // namespace attattr::engine
