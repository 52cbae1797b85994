// Tensor encoding and decoding (see tensor_convert.h); fp16 through the engine's converter.
#include "attattr/convert/tensor_convert.h"

#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attattr/engine/half_float.h"

namespace attattr::convert {

void TensorToProto(const float* data, size_t count, const std::vector<int32_t>& shape, bool fp16,
                   v1::Tensor* out) {
  for (int32_t d : shape) out->add_shape(d);
  if (fp16) {
    std::string bytes(count * 2, '\0');
    for (size_t i = 0; i < count; ++i) {
      const uint16_t h = engine::FloatToHalf(data[i]);
      bytes[2 * i] = static_cast<char>(h & 0xff);
      bytes[2 * i + 1] = static_cast<char>(h >> 8);
    }
    out->set_f16(std::move(bytes));
  } else {
    auto* values = out->mutable_f32()->mutable_values();
    values->Reserve(static_cast<int>(count));
    for (size_t i = 0; i < count; ++i) values->Add(data[i]);
  }
}

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
    if (d > 0 && count > std::numeric_limits<int32_t>::max() / d) {
      return absl::InvalidArgumentError("tensor shape holds more values than a message can");
    }
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

}  // namespace attattr::convert
