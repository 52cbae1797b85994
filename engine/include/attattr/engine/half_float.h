// IEEE 754 binary16 <-> binary32, as `fp16` results carry matrices on the wire (Tensor.f16).
// Written here rather than taken from a library: the server and client link no tensor library
// (LibTorch stays in the engine's private sources), and the conversion is the standard bit
// manipulation, tested against exact values. Pure functions.
#pragma once

#include <cstdint>

namespace attattr::engine {

// Round to nearest even; overflow gives infinity, NaN stays NaN.
uint16_t FloatToHalf(float value);
// Exact.
float HalfToFloat(uint16_t half);

}  // namespace attattr::engine
