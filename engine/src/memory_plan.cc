// Activation memory estimates and batch plans (see memory_plan.h).
#include "attattr/engine/memory_plan.h"

#include <algorithm>
#include <numeric>

#include "attattr/engine/model.h"

namespace attattr::engine {

int64_t PointBytes(const ModelInfo& info, int l, int64_t n, int64_t head_rows) {
  const int64_t h = info.num_heads, d = info.hidden_size, i = info.intermediate_size;
  const int64_t upper = info.num_layers - l;
  const int64_t head = info.language_model ? 3 * int64_t{info.num_classes} * head_rows : 0;
  return 4 * (upper * (4 * h * n * n + 12 * n * d + 3 * n * i) + 2 * h * n * n + head);
}

int64_t ForwardBytes(const ModelInfo& info, int64_t n, bool keep_attention) {
  const int64_t h = info.num_heads, d = info.hidden_size, i = info.intermediate_size;
  // Scores and probabilities; the hidden state, queries, keys, values, context, output and the
  // residual; the feed-forward's intermediate and its activation. A language model's head reads
  // one row of vocabulary logits (and its softmax).
  const int64_t layer = 2 * h * n * n + 8 * n * d + 2 * n * i;
  const int64_t head = info.language_model ? 2 * int64_t{info.num_classes} : 0;
  const int64_t kept = keep_attention ? int64_t{info.num_layers} * h * n * n : 0;
  return 4 * (layer + head + kept);
}

int64_t ResultBytes(const ModelInfo& info, int64_t n, int layers, bool keep_attention) {
  const int64_t matrices = int64_t{layers} * info.num_heads * n * n;
  return 4 * matrices * (keep_attention ? 2 : 1);
}

std::vector<std::vector<size_t>> PlanBatches(const std::vector<size_t>& order,
                                             const std::function<int64_t(size_t)>& bytes_of,
                                             int64_t budget, size_t max_examples) {
  max_examples = std::max<size_t>(max_examples, 1);
  std::vector<std::vector<size_t>> batches;
  std::vector<size_t> current;
  int64_t widest = 0;  // the largest bytes_of in `current`: what each member costs padded
  for (size_t index : order) {
    const int64_t bytes = std::max<int64_t>(bytes_of(index), 1);
    const int64_t padded = std::max(widest, bytes);
    const auto count = static_cast<int64_t>(current.size()) + 1;
    const bool fits = current.size() < max_examples && padded <= budget / count;
    if (!current.empty() && !fits) {
      batches.push_back(std::move(current));
      current.clear();
      widest = 0;
    }
    current.push_back(index);
    widest = std::max(widest, bytes);
  }
  if (!current.empty()) batches.push_back(std::move(current));
  return batches;
}

std::vector<std::vector<size_t>> PlanBatches(size_t count,
                                             const std::function<int64_t(size_t)>& bytes_of,
                                             int64_t budget, size_t max_examples) {
  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  return PlanBatches(order, bytes_of, budget, max_examples);
}

std::vector<size_t> ShortestFirst(const std::vector<Encoding>& encodings) {
  std::vector<size_t> order(encodings.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return encodings[a].size() < encodings[b].size(); });
  return order;
}

std::vector<Encoding> Gather(const std::vector<Encoding>& encodings,
                             const std::vector<size_t>& batch) {
  std::vector<Encoding> out;
  out.reserve(batch.size());
  for (size_t i : batch) out.push_back(encodings[i]);
  return out;
}

}  // namespace attattr::engine
