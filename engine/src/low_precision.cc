// The bf16 integrand's autocast scope and weight copy (see low_precision.h). LibTorch 2.4 replaced
// autocast's per-device functions (is_cpu_enabled, set_autocast_gpu_dtype, …) by ones taking the
// device type; both spellings are covered so the engine builds against Debian's 1.13 and 2.x.
#include "low_precision.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace attattr::engine {
namespace {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool AutocastEnabled(c10::DeviceType type) { return at::autocast::is_autocast_enabled(type); }
at::ScalarType AutocastDtype(c10::DeviceType type) {
  return at::autocast::get_autocast_dtype(type);
}
void SetAutocast(c10::DeviceType type, bool enabled, at::ScalarType dtype) {
  at::autocast::set_autocast_enabled(type, enabled);
  at::autocast::set_autocast_dtype(type, dtype);
}
#else
bool AutocastEnabled(c10::DeviceType type) {
  return type == c10::DeviceType::CUDA ? at::autocast::is_enabled()
                                       : at::autocast::is_cpu_enabled();
}
at::ScalarType AutocastDtype(c10::DeviceType type) {
  return type == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                       : at::autocast::get_autocast_cpu_dtype();
}
void SetAutocast(c10::DeviceType type, bool enabled, at::ScalarType dtype) {
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
}
#endif

}  // namespace

LowPrecisionScope::LowPrecisionScope(Precision precision, const torch::Device& device)
    : active_(precision == Precision::kBf16),
      type_(device.is_cuda() ? c10::DeviceType::CUDA : c10::DeviceType::CPU) {
  if (!active_) return;
  was_enabled_ = AutocastEnabled(type_);
  was_dtype_ = AutocastDtype(type_);
  SetAutocast(type_, true, at::kBFloat16);
  at::autocast::increment_nesting();
}

LowPrecisionScope::~LowPrecisionScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetAutocast(type_, was_enabled_, was_dtype_);
}

const Encoder& IntegrandEncoder(const Model::Impl& impl, Precision precision) {
  // Bf16 weights are the integrand's already (weight_storage.h); fp32 is refused with them
  // (ValidateAttributionOptions).
  if (precision == Precision::kFp32 || impl.info.weights == Precision::kBf16) {
    return *impl.encoder;
  }
  absl::call_once(impl.bf16_once, [&impl] {
    torch::NoGradGuard no_grad;
    impl.bf16_encoder = impl.encoder->CloneWithMatrices(torch::kBFloat16);
  });
  return *impl.bf16_encoder;
}

}  // namespace attattr::engine
