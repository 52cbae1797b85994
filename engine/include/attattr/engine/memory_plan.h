// Activation memory estimates per example and the batch plans sized by them. Every batched pass of
// the engine — the α-point chunks and example groups of an attribution, the clean forward passes of
// Predict, head-importance rankings, pruning curves and trigger-search evaluation — takes its batch
// from the one memory budget (AttributionOptions::memory_budget_bytes, the server's
// --memory-budget-mib) instead of a fixed count, so a long input shrinks its batch rather than
// growing the process. Torch-free: estimates are closed forms of the model's shape, float32 bytes.
#ifndef ATTATTR_ENGINE_MEMORY_PLAN_H_
#define ATTATTR_ENGINE_MEMORY_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "attattr/engine/example.h"

namespace attattr::engine {

struct ModelInfo;  // model.h, which includes this header for ForwardBatching

inline constexpr int64_t kDefaultMemoryBudgetBytes = int64_t{1} << 30;  // 1 GiB

// How clean forward passes (no gradient) are batched: at most `max_examples` per pass, and at most
// `memory_budget_bytes` of activations with padding counted. An example alone above the budget
// still runs alone (the passes that need admission control refuse such examples before queueing).
struct ForwardBatching {
  int max_examples = 64;
  int64_t memory_budget_bytes = kDefaultMemoryBudgetBytes;
};

// Bytes one α-point of one example costs when attributing layer l at length n: forward and
// backward through the L − l layers from l up, plus layer l's scaled probabilities and their
// gradient. A language model's head adds its logits, softmax and gradient over the vocabulary at
// each of the `head_rows` positions it reads (1, or a sequence target's continuation length).
int64_t PointBytes(const ModelInfo& info, int l, int64_t n, int64_t head_rows = 1);

// Bytes one example's clean forward pass without gradient needs at length n: one layer's
// transients (queries, keys, values, scores and probabilities, the feed-forward), and with
// `keep_attention` every layer's probabilities kept for the caller.
int64_t ForwardBytes(const ModelInfo& info, int64_t n, bool keep_attention);

// Bytes of one example's attribution result at length n over `layers` layers: the [H, n, n]
// attribution matrices, and the clean probabilities too with `keep_attention`.
int64_t ResultBytes(const ModelInfo& info, int64_t n, int layers, bool keep_attention);

// Splits `order` into consecutive batches, in order: each at most `max_examples` (≥ 1) long and,
// padded to its longest member, within `budget` bytes — count × the largest bytes_of(i) among its
// members. An example whose bytes_of alone exceeds the budget forms a batch of its own.
std::vector<std::vector<size_t>> PlanBatches(const std::vector<size_t>& order,
                                             const std::function<int64_t(size_t)>& bytes_of,
                                             int64_t budget, size_t max_examples);
// The same over 0, 1, ..., count − 1.
std::vector<std::vector<size_t>> PlanBatches(size_t count,
                                             const std::function<int64_t(size_t)>& bytes_of,
                                             int64_t budget, size_t max_examples);

// The indices of `encodings` shortest first (stable), so consecutive batches pad little.
std::vector<size_t> ShortestFirst(const std::vector<Encoding>& encodings);
// The encodings `batch` names, in its order.
std::vector<Encoding> Gather(const std::vector<Encoding>& encodings,
                             const std::vector<size_t>& batch);

}  // namespace attattr::engine

#endif  // ATTATTR_ENGINE_MEMORY_PLAN_H_
