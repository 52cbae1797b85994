// Precompiled header for the engine's LibTorch sources: the torch headers are the slow part of
// every engine compile. Only engine/src uses it; nothing outside the engine includes torch.
#pragma once

#include <torch/torch.h>
