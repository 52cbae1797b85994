// GPU memory through NVML, loaded at run time (see gpu_memory_collector.h). The few NVML
// declarations below follow nvml.h of the driver's stable C ABI (the *_v2 entry points exist since
// driver 3xx); they are written here because the NVML headers are not packaged in Debian main.
#include "metrics/gpu_memory_collector.h"

#include <dlfcn.h>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"

namespace attattr::metrics {
namespace {

using NvmlReturn = int;  // nvmlReturn_t; NVML_SUCCESS = 0
constexpr NvmlReturn kNvmlSuccess = 0;
struct NvmlMemory {  // nvmlMemory_t
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

}  // namespace

struct GpuMemoryCollector::Nvml {
  void* library = nullptr;
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  NvmlReturn (*device_count)(unsigned int*) = nullptr;
  NvmlReturn (*device_handle)(unsigned int, void**) = nullptr;
  NvmlReturn (*memory_info)(void*, NvmlMemory*) = nullptr;
  bool initialised = false;

  ~Nvml() {
    if (initialised) shutdown();
    if (library != nullptr) dlclose(library);
  }
  // Loads and initialises NVML; nullptr when it is not there.
  static std::unique_ptr<Nvml> Load() {
    auto n = std::make_unique<Nvml>();
    n->library = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (n->library == nullptr) return nullptr;
    n->init = reinterpret_cast<NvmlReturn (*)()>(dlsym(n->library, "nvmlInit_v2"));
    n->shutdown = reinterpret_cast<NvmlReturn (*)()>(dlsym(n->library, "nvmlShutdown"));
    n->device_count =
        reinterpret_cast<NvmlReturn (*)(unsigned int*)>(dlsym(n->library, "nvmlDeviceGetCount_v2"));
    n->device_handle = reinterpret_cast<NvmlReturn (*)(unsigned int, void**)>(
        dlsym(n->library, "nvmlDeviceGetHandleByIndex_v2"));
    n->memory_info = reinterpret_cast<NvmlReturn (*)(void*, NvmlMemory*)>(
        dlsym(n->library, "nvmlDeviceGetMemoryInfo"));
    if (!n->init || !n->shutdown || !n->device_count || !n->device_handle || !n->memory_info) {
      return nullptr;
    }
    if (n->init() != kNvmlSuccess) return nullptr;
    n->initialised = true;
    return n;
  }
};

GpuMemoryCollector::GpuMemoryCollector(Registry* registry, std::unique_ptr<Nvml> nvml)
    : registry_(registry), nvml_(std::move(nvml)) {}

absl::StatusOr<std::unique_ptr<GpuMemoryCollector>> GpuMemoryCollector::Register(
    Registry* registry) {
  std::unique_ptr<Nvml> nvml = Nvml::Load();
  if (nvml == nullptr) return std::unique_ptr<GpuMemoryCollector>();
  unsigned int count = 0;
  if (nvml->device_count(&count) != kNvmlSuccess || count == 0) {
    return std::unique_ptr<GpuMemoryCollector>();
  }
  for (const char* name :
       {"attattr_device_memory_used_bytes", "attattr_device_memory_total_bytes"}) {
    if (registry->Contains(name)) {
      return absl::AlreadyExistsError(
          absl::StrCat("metric '", std::string(name), "' is already registered"));
    }
  }
  std::unique_ptr<GpuMemoryCollector> c(new GpuMemoryCollector(registry, std::move(nvml)));
  ATTATTR_ASSIGN_OR_RETURN(
      auto used,
      registry->AddGauge("attattr_device_memory_used_bytes",
                         "GPU memory in use (all processes), bytes, as NVML reports it"));
  c->used_family_ = used;
  ATTATTR_ASSIGN_OR_RETURN(auto total,
                           registry->AddGauge("attattr_device_memory_total_bytes",
                                              "GPU memory installed, bytes, as NVML reports it"));
  c->total_family_ = total;
  for (unsigned int i = 0; i < count; ++i) {
    Device d;
    if (c->nvml_->device_handle(i, &d.handle) != kNvmlSuccess) continue;
    const std::string device = absl::StrCat("cuda:", i);
    d.used = &c->used_family_->Add({{"device", device}});
    d.total = &c->total_family_->Add({{"device", device}});
    c->devices_.push_back(d);
  }
  c->Refresh();
  GpuMemoryCollector* self = c.get();
  c->callback_id_ = registry->AddCollectCallback([self] { self->Refresh(); });
  return c;
}

GpuMemoryCollector::~GpuMemoryCollector() {
  if (callback_id_ != 0) registry_->RemoveCollectCallback(callback_id_);
  if (used_family_ != nullptr) registry_->Remove(*used_family_);
  if (total_family_ != nullptr) registry_->Remove(*total_family_);
}

void GpuMemoryCollector::Refresh() {
  for (const Device& d : devices_) {
    NvmlMemory memory{};
    if (nvml_->memory_info(d.handle, &memory) != kNvmlSuccess) continue;
    d.used->Set(static_cast<double>(memory.used));
    d.total->Set(static_cast<double>(memory.total));
  }
}

}  // namespace attattr::metrics
