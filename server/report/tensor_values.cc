// Tensor decoding for the reports (see tensor_values.h); fp16 through the engine's converter.
#include "server/report/tensor_values.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attattr/engine/half_float.h"

namespace attattr::report {

bool HasValues(const v1::Tensor& tensor) {
  return tensor.shape_size() > 0 && tensor.data_case() != v1::Tensor::DATA_NOT_SET;
}

absl::StatusOr<std::vector<float>> TensorValues(const v1::Tensor& tensor,
                                                const std::vector<int32_t>& expected_shape) {
  const std::vector<int32_t> shape(tensor.shape().begin(), tensor.shape().end());
  if (!expected_shape.empty() && shape != expected_shape) {
    return absl::InvalidArgumentError(absl::StrCat("tensor shape [", absl::StrJoin(shape, ", "),
                                                   "], expected [",
                                                   absl::StrJoin(expected_shape, ", "), "]"));
  }
  int64_t count = 1;
  for (int32_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError("tensor shape has a negative dimension");
    count *= d;
  }
  std::vector<float> values;
  if (tensor.has_f32()) {
    if (tensor.f32().values_size() != count) {
      return absl::InvalidArgumentError(absl::StrCat("tensor holds ", tensor.f32().values_size(),
                                                     " fp32 values, its shape needs ", count));
    }
    values.assign(tensor.f32().values().begin(), tensor.f32().values().end());
  } else if (tensor.data_case() == v1::Tensor::kF16) {
    const std::string& bytes = tensor.f16();
    if (static_cast<int64_t>(bytes.size()) != 2 * count) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor holds ", bytes.size(), " fp16 bytes, its shape needs ", 2 * count));
    }
    values.resize(count);
    for (int64_t i = 0; i < count; ++i) {
      const auto lo = static_cast<uint8_t>(bytes[2 * i]);
      const auto hi = static_cast<uint8_t>(bytes[2 * i + 1]);
      values[i] = engine::HalfToFloat(static_cast<uint16_t>(lo | (hi << 8)));
    }
  } else if (count != 0) {
    return absl::InvalidArgumentError("tensor has a shape but no values");
  }
  return values;
}

}  // namespace attattr::report
