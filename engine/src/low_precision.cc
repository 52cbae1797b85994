// The bf16 integrand's autocast scope and weight copy (see low_precision.h).
#include "low_precision.h"

#include <ATen/autocast_mode.h>

namespace attattr::engine {

LowPrecisionScope::LowPrecisionScope(Precision precision, const torch::Device& device)
    : active_(precision == Precision::kBf16), cuda_(device.is_cuda()) {
  if (!active_) return;
  if (cuda_) {
    was_enabled_ = at::autocast::is_enabled();
    was_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  } else {
    was_enabled_ = at::autocast::is_cpu_enabled();
    was_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  }
  at::autocast::increment_nesting();
}

LowPrecisionScope::~LowPrecisionScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(was_enabled_);
    at::autocast::set_autocast_gpu_dtype(was_dtype_);
  } else {
    at::autocast::set_cpu_enabled(was_enabled_);
    at::autocast::set_autocast_cpu_dtype(was_dtype_);
  }
}

const Encoder& IntegrandEncoder(const Model::Impl& impl, Precision precision) {
  if (precision == Precision::kFp32) return *impl.encoder;
  absl::call_once(impl.bf16_once, [&impl] {
    torch::NoGradGuard no_grad;
    impl.bf16_encoder = impl.encoder->CloneWithMatrices(torch::kBFloat16);
  });
  return *impl.bf16_encoder;
}

}  // namespace attattr::engine
