// Weight storage of a loaded model (see weight_storage.h).
#include "weight_storage.h"

#include <map>

namespace attattr::engine {

StoredEncoder StoreWeights(const Encoder& encoder, Precision weights) {
  // One conversion per tensor: a tied head and its embeddings map to the same result.
  std::map<const c10::TensorImpl*, torch::Tensor> done;
  StoredEncoder out;
  out.encoder = encoder.CloneMapped([&](const torch::Tensor& t, WeightRole role) {
    const auto it = done.find(t.unsafeGetTensorImpl());
    if (it != done.end()) return it->second;
    torch::Tensor stored = t;
    if (t.is_floating_point()) {
      const bool low = weights == Precision::kBf16 && role != WeightRole::kOther;
      stored = t.to(low ? torch::kBFloat16 : torch::kFloat32);
    }
    out.bytes += static_cast<int64_t>(stored.nbytes());
    done.emplace(t.unsafeGetTensorImpl(), stored);
    return stored;
  });
  return out;
}

}  // namespace attattr::engine
