// A safetensors checkpoint's float32 tensors as a name → torch::Tensor map, and such a map (or a
// tensor in another dtype) written back, for the white-box engine tests that derive checkpoints
// from a real one (checkpoint_loader_test, family_oracle_test). Header-only: those tests include
// the engine's private safetensors reader and writer and link LibTorch; the support library does
// neither.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "safetensors_reader.h"
#include "safetensors_writer.h"

namespace attattr::testing {

// Every tensor of the float32 checkpoint in `dir` (model.safetensors), copied out of the mapping.
inline std::map<std::string, torch::Tensor> ReadFloatTensors(const std::string& dir) {
  auto ckpt = engine::SafetensorsCheckpoint::Open(dir);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status();
  std::map<std::string, torch::Tensor> out;
  if (!ckpt.ok()) return out;
  for (const auto& name : (*ckpt)->TensorNames()) {
    auto v = (*ckpt)->Find(name);
    out[name] =
        torch::from_blob(const_cast<uint8_t*>(v->data), v->entry->shape, torch::kFloat32).clone();
  }
  return out;
}

// `t` as a safetensors entry of `dtype` ("F32", "F16", "BF16", "I8").
inline engine::RawTensor ToRaw(const std::string& name, const torch::Tensor& t,
                               const std::string& dtype = "F32") {
  torch::Tensor c = t;
  if (dtype == "F16") c = t.to(torch::kFloat16);
  if (dtype == "BF16") c = t.to(torch::kBFloat16);
  if (dtype == "I8") c = t.to(torch::kInt8);
  c = c.contiguous();
  return {name, dtype, t.sizes().vec(),
          std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size())};
}

// Writes `tensors` as float32 to `file`; false when it cannot be written.
inline bool WriteFloatTensors(const std::string& file,
                              const std::map<std::string, torch::Tensor>& tensors) {
  std::vector<engine::RawTensor> raw;
  for (const auto& [name, t] : tensors) raw.push_back(ToRaw(name, t));
  return engine::WriteSafetensors(file, raw);
}

}  // namespace attattr::testing
