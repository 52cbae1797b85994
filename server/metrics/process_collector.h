// The standard process metrics of the Prometheus client libraries (process_resident_memory_bytes,
// process_virtual_memory_bytes, process_cpu_seconds_total, process_start_time_seconds,
// process_open_fds, process_max_fds), read from /proc/self at scrape time. Linux only; it reads no
// other process. Thread-safety: the collector only runs inside Registry::Collect (one at a time).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "metrics/metrics.h"

namespace attattr::metrics {

// What /proc/self says about this process; exposed for tests.
struct ProcessStats {
  double resident_memory_bytes = 0;
  double virtual_memory_bytes = 0;
  double cpu_seconds = 0;         // user + system
  double start_time_seconds = 0;  // Unix time
  double open_fds = 0;
  double max_fds = 0;  // soft limit; 0 when unlimited or unknown
};

// Reads /proc/self/stat, /proc/stat (boot time), /proc/self/fd and /proc/self/limits under
// `proc_root`.
absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& proc_root = "/proc");

// Registers the process families in a registry and refreshes them at every scrape. The registry
// must outlive the collector; destroying the collector stops the refresh and removes its families.
class ProcessCollector {
 public:
  // Fails with AlreadyExists when any of the names is registered already (one collector per
  // registry), or when /proc cannot be read.
  static absl::StatusOr<std::unique_ptr<ProcessCollector>> Register(Registry* registry);
  ~ProcessCollector();
  ProcessCollector(const ProcessCollector&) = delete;
  ProcessCollector& operator=(const ProcessCollector&) = delete;

 private:
  explicit ProcessCollector(Registry* registry) : registry_(registry) {}
  void Refresh();

  Registry* const registry_;
  Registry::CallbackId callback_id_ = 0;
  Family<Gauge>* resident_family_ = nullptr;
  Family<Gauge>* virtual_family_ = nullptr;
  Family<Counter>* cpu_family_ = nullptr;
  Family<Gauge>* start_family_ = nullptr;
  Family<Gauge>* open_fds_family_ = nullptr;
  Family<Gauge>* max_fds_family_ = nullptr;
  Gauge* resident_ = nullptr;
  Gauge* virtual_ = nullptr;
  Counter* cpu_ = nullptr;
  Gauge* start_ = nullptr;
  Gauge* open_fds_ = nullptr;
  Gauge* max_fds_ = nullptr;
  // CPU seconds already added to cpu_ (a counter only grows; Refresh adds the difference).
  double cpu_reported_ = 0;  // touched only by Refresh, which callbacks_mu_ serialises
};

}  // namespace attattr::metrics
