// Reads a result Tensor (attribution.proto: row-major, fp32 or IEEE fp16 little-endian) into
// floats for drawing, checking its shape against what the report expects. Pure, thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/v1/attribution.pb.h"

namespace attattr::report {

// True when the tensor carries data (f32 or f16 set, non-empty shape).
bool HasValues(const v1::Tensor& tensor);

// The values, row-major. InvalidArgument when the value count does not match the shape, a
// dimension is negative, or `expected_shape` is non-empty and differs from the tensor's shape.
absl::StatusOr<std::vector<float>> TensorValues(const v1::Tensor& tensor,
                                                const std::vector<int32_t>& expected_shape = {});

}  // namespace attattr::report
