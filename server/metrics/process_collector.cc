// Reads /proc/self for the standard process metrics (see process_collector.h). Linux only; a read
// that fails at scrape time leaves the previous values. Thread-safety: Refresh runs inside
// Registry::Collect's callback lock, never concurrently with itself.
#include "metrics/process_collector.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"

namespace attattr::metrics {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& proc_root) {
  ProcessStats stats;
  const std::string stat_path = proc_root + "/self/stat";
  ATTATTR_ASSIGN_OR_RETURN(auto stat, ReadFile(stat_path));
  // Fields after "(comm)", which may itself hold spaces and parentheses: field 3 is the state.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) {
    return absl::InternalError(absl::StrCat("cannot parse ", stat_path));
  }
  std::istringstream fields(stat.substr(close + 1));
  std::vector<std::string> f;  // f[0] = field 3 (state)
  for (std::string field; fields >> field;) f.push_back(field);
  if (f.size() < 22) return absl::InternalError(absl::StrCat("too few fields in ", stat_path));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_size = static_cast<double>(sysconf(_SC_PAGESIZE));
  const auto field = [&f](int number) { return std::strtod(f[number - 3].c_str(), nullptr); };
  stats.cpu_seconds = (field(14) + field(15)) / ticks;  // utime + stime
  stats.virtual_memory_bytes = field(23);
  stats.resident_memory_bytes = field(24) * page_size;

  ATTATTR_ASSIGN_OR_RETURN(auto proc_stat, ReadFile(proc_root + "/stat"));
  const size_t btime = proc_stat.find("\nbtime ");
  if (btime == std::string::npos) {
    return absl::InternalError(absl::StrCat("no btime in ", proc_root, "/stat"));
  }
  stats.start_time_seconds =
      std::strtod(proc_stat.c_str() + btime + 7, nullptr) + field(22) / ticks;

  const std::string fd_dir = proc_root + "/self/fd";
  DIR* dir = opendir(fd_dir.c_str());
  if (dir == nullptr) return absl::UnavailableError(absl::StrCat("cannot list ", fd_dir));
  int count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  stats.open_fds = count - 1;  // not the descriptor opendir itself held

  absl::StatusOr<std::string> limits = ReadFile(proc_root + "/self/limits");
  if (limits.ok()) {
    const size_t line = limits->find("Max open files");
    if (line != std::string::npos) {
      std::istringstream rest(limits->substr(line + 14));
      std::string soft;
      rest >> soft;
      if (soft != "unlimited") stats.max_fds = std::strtod(soft.c_str(), nullptr);
    }
  }
  return stats;
}

absl::StatusOr<std::unique_ptr<ProcessCollector>> ProcessCollector::Register(Registry* registry) {
  ATTATTR_ASSIGN_OR_RETURN(auto probe, ReadProcessStats());
  // The collector owns its families (its destructor removes them), so it cannot share them.
  for (const char* name : {"process_resident_memory_bytes", "process_virtual_memory_bytes",
                           "process_cpu_seconds_total", "process_start_time_seconds",
                           "process_open_fds", "process_max_fds"}) {
    if (registry->Contains(name)) {
      return absl::AlreadyExistsError(
          absl::StrCat("metric '", std::string(name),
                       "' is already registered (one ProcessCollector per registry)"));
    }
  }
  std::unique_ptr<ProcessCollector> c(new ProcessCollector(registry));
  const auto add_gauge = [&](const char* name, const char* help, Family<Gauge>** family,
                             Gauge** metric) -> absl::Status {
    ATTATTR_ASSIGN_OR_RETURN(auto f, registry->AddGauge(name, help));
    *family = f;
    *metric = &f->Add({});
    return absl::OkStatus();
  };
  absl::Status status = add_gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                                  &c->resident_family_, &c->resident_);
  if (status.ok()) {
    status = add_gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                       &c->virtual_family_, &c->virtual_);
  }
  if (status.ok()) {
    status = add_gauge("process_start_time_seconds",
                       "Start time of the process since unix epoch in seconds.", &c->start_family_,
                       &c->start_);
  }
  if (status.ok()) {
    status = add_gauge("process_open_fds", "Number of open file descriptors.", &c->open_fds_family_,
                       &c->open_fds_);
  }
  if (status.ok()) {
    status = add_gauge("process_max_fds", "Maximum number of open file descriptors.",
                       &c->max_fds_family_, &c->max_fds_);
  }
  if (status.ok()) {
    absl::StatusOr<Family<Counter>*> cpu = registry->AddCounter(
        "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
    if (cpu.ok()) {
      c->cpu_family_ = *cpu;
      c->cpu_ = &(*cpu)->Add({});
    } else {
      status = cpu.status();
    }
  }
  if (!status.ok()) return status;  // the destructor removes what was registered
  c->start_->Set(probe.start_time_seconds);
  c->Refresh();  // not yet shared: no callback registered
  c->callback_id_ = registry->AddCollectCallback([raw = c.get()] { raw->Refresh(); });
  return c;
}

ProcessCollector::~ProcessCollector() {
  if (callback_id_ != 0) registry_->RemoveCollectCallback(callback_id_);
  for (const FamilyBase* family :
       std::vector<const FamilyBase*>{resident_family_, virtual_family_, cpu_family_, start_family_,
                                      open_fds_family_, max_fds_family_}) {
    if (family != nullptr) registry_->Remove(*family);
  }
}

void ProcessCollector::Refresh() {
  absl::StatusOr<ProcessStats> stats = ReadProcessStats();
  if (!stats.ok()) return;
  resident_->Set(stats->resident_memory_bytes);
  virtual_->Set(stats->virtual_memory_bytes);
  open_fds_->Set(stats->open_fds);
  max_fds_->Set(stats->max_fds);
  if (stats->cpu_seconds > cpu_reported_) {
    cpu_->Increment(stats->cpu_seconds - cpu_reported_);
    cpu_reported_ = stats->cpu_seconds;
  }
}

}  // namespace attattr::metrics
