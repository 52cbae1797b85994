// GPU memory as Triton reports it (nv_gpu_memory_used_bytes / nv_gpu_memory_total_bytes, from
// NVML): attattr_device_memory_used_bytes{device="cuda:N"} and
// attattr_device_memory_total_bytes{device="cuda:N"}, read at scrape time for every GPU the driver
// shows. NVML (libnvidia-ml.so.1, part of the NVIDIA driver) is loaded at run time with dlopen, so
// the server neither links nor needs it: on a machine without the driver no GPU families are
// registered (host memory is process_resident_memory_bytes). Thread-safety: refreshed only inside
// Registry::Collect (one at a time).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "metrics/metrics.h"

namespace attattr::metrics {

class GpuMemoryCollector {
 public:
  // nullptr (and OK) when NVML cannot be loaded or initialised or shows no GPU; AlreadyExists when
  // the names are registered already.
  static absl::StatusOr<std::unique_ptr<GpuMemoryCollector>> Register(Registry* registry);
  ~GpuMemoryCollector();
  GpuMemoryCollector(const GpuMemoryCollector&) = delete;
  GpuMemoryCollector& operator=(const GpuMemoryCollector&) = delete;

  int device_count() const { return static_cast<int>(devices_.size()); }

 private:
  struct Nvml;  // the dlopen'ed library and its entry points
  GpuMemoryCollector(Registry* registry, std::unique_ptr<Nvml> nvml);
  void Refresh();

  Registry* const registry_;
  std::unique_ptr<Nvml> nvml_;
  Registry::CallbackId callback_id_ = 0;
  Family<Gauge>* used_family_ = nullptr;
  Family<Gauge>* total_family_ = nullptr;
  struct Device {
    void* handle = nullptr;  // nvmlDevice_t
    Gauge* used = nullptr;
    Gauge* total = nullptr;
  };
  std::vector<Device> devices_;
};

}  // namespace attattr::metrics
