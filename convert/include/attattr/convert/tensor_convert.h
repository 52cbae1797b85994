// Result tensors between engine buffers and the public contract (attribution.proto Tensor:
// row-major, fp32 values or IEEE fp16 little-endian bytes). The one encoder and the one decoder:
// the server packs results with them, the CLI and the HTML reports read them back. Pure,
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/v1/attribution.pb.h"

namespace attattr::convert {

// Fills `out` with `shape` and the `count` values at `data`, as fp16 when `fp16` is set.
void TensorToProto(const float* data, size_t count, const std::vector<int32_t>& shape, bool fp16,
                   v1::Tensor* out);

// True when the tensor carries data (f32 or f16 set, non-empty shape).
bool HasValues(const v1::Tensor& tensor);

// The values, row-major, decoded from fp32 or fp16. InvalidArgument when the value count does not
// match the shape, a dimension is negative, or `expected_shape` is non-empty and differs from the
// tensor's shape.
absl::StatusOr<std::vector<float>> TensorValues(const v1::Tensor& tensor,
                                                const std::vector<int32_t>& expected_shape = {});

}  // namespace attattr::convert
