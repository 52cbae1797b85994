// Batch plans sized by the memory budget (memory_plan.h): every example planned once and in order,
// no batch above its count or — padded — above the budget, a lone example over the budget alone;
// and the estimates that size them grow as the work they describe does. Regression (job-spec
// review): head importance's ATTENTION ranking ran fixed batches of 32 keeping every layer's
// probabilities — ~5 GB for BERT-base at 512 tokens against a 1 GiB budget.
#include "attattr/engine/memory_plan.h"

#include <gtest/gtest.h>

#include <numeric>

#include "attattr/engine/model.h"

namespace attattr::engine {
namespace {

std::vector<size_t> Iota(size_t n) {
  std::vector<size_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// Checks the plan's laws and returns the batch sizes.
std::vector<size_t> Sizes(const std::vector<std::vector<size_t>>& plan,
                          const std::vector<size_t>& order, const std::vector<int64_t>& bytes,
                          int64_t budget, size_t max_examples) {
  std::vector<size_t> flat, sizes;
  for (const auto& batch : plan) {
    EXPECT_FALSE(batch.empty());
    EXPECT_LE(batch.size(), max_examples);
    int64_t widest = 0;
    for (size_t i : batch) widest = std::max(widest, bytes[i]);
    if (batch.size() > 1) {
      EXPECT_LE(widest * static_cast<int64_t>(batch.size()), budget);
    }
    flat.insert(flat.end(), batch.begin(), batch.end());
    sizes.push_back(batch.size());
  }
  EXPECT_EQ(flat, order);
  return sizes;
}

TEST(PlanBatchesTest, FillsEachBatchUpToTheBudgetOrTheCount) {
  const std::vector<int64_t> bytes(10, 10);
  const auto order = Iota(10);
  auto of = [&](size_t i) { return bytes[i]; };
  EXPECT_EQ(Sizes(PlanBatches(order, of, 35, 8), order, bytes, 35, 8),
            (std::vector<size_t>{3, 3, 3, 1}));
  EXPECT_EQ(Sizes(PlanBatches(order, of, 1000, 4), order, bytes, 1000, 4),
            (std::vector<size_t>{4, 4, 2}));
  EXPECT_EQ(Sizes(PlanBatches(order, of, 1, 4), order, bytes, 1, 4), (std::vector<size_t>(10, 1)));
  EXPECT_TRUE(PlanBatches(std::vector<size_t>{}, of, 100, 4).empty());
}

TEST(PlanBatchesTest, PadsToTheLongestMemberAndKeepsAnOversizedExampleAlone) {
  // Ascending lengths as callers sort them: the batch costs count × its last member.
  const std::vector<int64_t> bytes = {1, 2, 3, 10, 50, 11, 11};
  const auto order = Iota(bytes.size());
  auto of = [&](size_t i) { return bytes[i]; };
  // {1,2,3} padded to 3 costs 9; adding 10 would cost 40 > 20; 50 is alone (over the budget);
  // {11} then {11}: 22 > 20.
  EXPECT_EQ(Sizes(PlanBatches(order, of, 20, 8), order, bytes, 20, 8),
            (std::vector<size_t>{3, 1, 1, 1, 1}));
  // Any order: a short example after a long one is padded to the long one.
  const std::vector<size_t> mixed = {4, 0, 1};
  EXPECT_EQ(Sizes(PlanBatches(mixed, of, 100, 8), mixed, bytes, 100, 8),
            (std::vector<size_t>{2, 1}));
}

TEST(PlanBatchesTest, OverACountPlansTheIndicesInOrder) {
  const std::vector<int64_t> bytes = {4, 1, 9, 2, 2, 30};
  auto of = [&](size_t i) { return bytes[i]; };
  EXPECT_EQ(PlanBatches(bytes.size(), of, 20, 3), PlanBatches(Iota(bytes.size()), of, 20, 3));
  EXPECT_EQ(PlanBatches(bytes.size(), of, 20, 3),
            (std::vector<std::vector<size_t>>{{0, 1}, {2, 3}, {4}, {5}}));
  EXPECT_TRUE(PlanBatches(size_t{0}, of, 20, 3).empty());
}

Encoding OfLength(size_t n, int32_t tag) {
  Encoding e;
  e.input_ids.assign(n, tag);
  return e;
}

TEST(PlanBatchesTest, ShortestFirstIsStableAndGatherFollowsTheBatch) {
  const std::vector<Encoding> encodings = {OfLength(5, 0), OfLength(2, 1), OfLength(5, 2),
                                           OfLength(1, 3), OfLength(2, 4)};
  // Equal lengths keep their input order (2 before 4, 0 before 2).
  EXPECT_EQ(ShortestFirst(encodings), (std::vector<size_t>{3, 1, 4, 0, 2}));
  EXPECT_TRUE(ShortestFirst({}).empty());
  const auto gathered = Gather(encodings, {4, 0, 3});
  ASSERT_EQ(gathered.size(), 3u);
  EXPECT_EQ(gathered[0].input_ids, std::vector<int32_t>(2, 4));
  EXPECT_EQ(gathered[1].input_ids, std::vector<int32_t>(5, 0));
  EXPECT_EQ(gathered[2].input_ids, std::vector<int32_t>(1, 3));
}

ModelInfo BertBase() {
  ModelInfo info;
  info.num_layers = 12;
  info.num_heads = 12;
  info.hidden_size = 768;
  info.intermediate_size = 3072;
  info.num_classes = 2;
  info.max_length = 512;
  return info;
}

TEST(MemoryEstimatesTest, GrowWithLengthAndWhatIsKept) {
  const ModelInfo info = BertBase();
  EXPECT_LT(ForwardBytes(info, 128, false), ForwardBytes(info, 512, false));
  EXPECT_LT(ForwardBytes(info, 512, false), ForwardBytes(info, 512, true));
  // Every layer's probabilities kept: L·H·n² floats at least.
  EXPECT_GE(ForwardBytes(info, 512, true), int64_t{4} * 12 * 12 * 512 * 512);
  EXPECT_EQ(ResultBytes(info, 100, 12, false), int64_t{4} * 12 * 12 * 100 * 100);
  EXPECT_EQ(ResultBytes(info, 100, 12, true), 2 * ResultBytes(info, 100, 12, false));
  // A point at the lowest layer backpropagates through every layer above it.
  EXPECT_GT(PointBytes(info, 0, 256), PointBytes(info, 11, 256));
  EXPECT_GT(PointBytes(info, 0, 256), ForwardBytes(info, 256, true));
  ModelInfo lm = info;
  lm.language_model = true;
  lm.num_classes = 50000;
  EXPECT_GT(PointBytes(lm, 0, 64, 8), PointBytes(lm, 0, 64, 1));
  EXPECT_GT(ForwardBytes(lm, 64, false), ForwardBytes(info, 64, false));
}

TEST(MemoryEstimatesTest, AttentionBatchesOfLongInputsShrinkToTheBudget) {
  const ModelInfo info = BertBase();
  const std::vector<size_t> order = Iota(32);
  auto plan = PlanBatches(
      order, [&](size_t) { return ForwardBytes(info, 512, true); }, kDefaultMemoryBudgetBytes, 32);
  ASSERT_GT(plan.size(), 1u);
  for (const auto& batch : plan) {
    EXPECT_LE(ForwardBytes(info, 512, true) * static_cast<int64_t>(batch.size()),
              kDefaultMemoryBudgetBytes);
  }
  // Short inputs still fill the count.
  plan = PlanBatches(
      order, [&](size_t) { return ForwardBytes(info, 32, true); }, kDefaultMemoryBudgetBytes, 32);
  EXPECT_EQ(plan.size(), 1u);
}

}  // namespace
}  // namespace attattr::engine
