// LibTorch process settings (see runtime.h).
#include <sched.h>

#include <cmath>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "attattr/engine/runtime.h"
#include "torch_boundary.h"
#include "torch_pch.h"

namespace attattr::engine {
namespace {

// CPUs this process may really use: its affinity mask, further capped by a cgroup v2 CPU quota
// (cpu.max "QUOTA PERIOD"), as containers with CPU limits set. hardware_concurrency() sees neither.
int UsableCpus() {
  int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = std::max(1, CPU_COUNT(&set));
  std::ifstream cpu_max("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (cpu_max >> quota >> period && quota != "max" && period > 0) {
    const double limit = std::ceil(std::stod(quota) / period);
    if (limit >= 1) cpus = std::min(cpus, static_cast<int>(limit));
  }
  return cpus;
}

}  // namespace

absl::Status ConfigureRuntime(const RuntimeOptions& options) {
  if (options.intra_op_threads < 0) {
    return absl::InvalidArgumentError("intra_op_threads: must be >= 0");
  }
  int threads = options.intra_op_threads;
  if (threads == 0) threads = UsableCpus();
  try {
    at::set_num_threads(threads);
  } catch (...) {
    return TorchExceptionToStatus("intra_op_threads");
  }
  return absl::OkStatus();
}

std::string RuntimeDescription() {
  return absl::StrCat("torch ", TORCH_VERSION, ", intra-op threads ", at::get_num_threads(), "\n",
                      at::get_parallel_info());
}

}  // namespace attattr::engine
