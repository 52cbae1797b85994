// The dynamic batcher on the shared SST-2 model: items that wait at the same time run in one
// engine call (the observer sees the batch size) and get the result they would get alone; items
// with other options never share a batch; an item that asks to stop gets CANCELLED while its batch
// neighbours finish; max_examples = 1 means no batching; Stop fails waiting items; each owner holds
// its share of the waiting places; every option that changes the computation is in the batch key.
#include "attribution_batcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/test_paths.h"

namespace attattr::server {
namespace {

using ::attattr::testing::Sst2ModelDir;
constexpr AttributionBatcher::Admission kQueued = AttributionBatcher::Admission::kQueued;

class AttributionBatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    auto model = engine::Model::Load(Sst2ModelDir());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    options_.steps = 4;
  }

  engine::Encoding Encode(const std::string& text) {
    auto e = model_->Encode({text, std::nullopt, -1});
    EXPECT_TRUE(e.ok());
    return *e;
  }

  // Collects results by index and the batch sizes the observer saw.
  struct Sink {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::optional<absl::StatusOr<engine::ExampleAttribution>>> results;
    std::vector<int> batches;
    void WaitAll() {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] {
        for (auto& r : results) {
          if (!r.has_value()) return false;
        }
        return true;
      });
    }
  };

  AttributionItem Item(Sink& sink, int index, const std::string& text,
                       const engine::AttributionOptions& options,
                       std::function<bool()> stop = nullptr) {
    AttributionItem item;
    item.model = model_.get();
    item.options = options;
    item.encoding = Encode(text);
    item.should_stop = std::move(stop);
    item.done = [&sink, index](absl::StatusOr<engine::ExampleAttribution> r) {
      std::lock_guard<std::mutex> lock(sink.mu);
      sink.results[index] = std::move(r);
      sink.cv.notify_all();
    };
    return item;
  }

  // Equal up to fp32 rounding: the largest difference within 1e-4 of the layer's largest
  // attribution. Relative to the layer's max, rounding is largest where a layer barely matters:
  // layer 1 of "boring ." attributes at most 1.9e-5 (F is ~1), and the ~2e-10 by which the
  // kernels LibTorch 2.15 picks for a batch's shapes and for one example's round its gradients
  // differently is 2.6e-5 of that (every other layer here: <= 2.1e-6). A result crossed with
  // another item's would differ by O(1).
  static void ExpectSameAttribution(const engine::ExampleAttribution& a,
                                    const engine::ExampleAttribution& b) {
    ASSERT_EQ(a.layers.size(), b.layers.size());
    for (size_t l = 0; l < a.layers.size(); ++l) {
      const auto& x = a.layers[l].attribution;
      const auto& y = b.layers[l].attribution;
      ASSERT_EQ(x.size(), y.size());
      float scale = 1e-12f;
      for (float v : x) scale = std::max(scale, std::abs(v));
      float diff = 0;
      for (size_t i = 0; i < x.size(); ++i) diff = std::max(diff, std::abs(x[i] - y[i]));
      EXPECT_LE(diff, 1e-4f * scale) << "layer " << l;
    }
  }

  std::unique_ptr<engine::Model> model_;
  engine::AttributionOptions options_;
};

const std::vector<std::string> kTexts = {
    "a gorgeous , witty , seductive movie .",
    "boring .",
    "the plot is nothing but boilerplate clichés from start to "
    "finish , and the script is no better .",
    "a charming journey .",
    "it never quite works .",
    "one of the year 's best films ."};

TEST_F(AttributionBatcherTest, WaitingItemsShareOneEngineCallAndGetTheirOwnResults) {
  Sink sink;
  sink.results.resize(kTexts.size());
  AttributionBatcher::Options o;
  o.max_examples = 8;
  o.max_delay = std::chrono::milliseconds(500);  // long: every item joins the first batch
  {
    AttributionBatcher batcher(o, [&](int n) {
      std::lock_guard<std::mutex> lock(sink.mu);
      sink.batches.push_back(n);
    });
    for (size_t i = 0; i < kTexts.size(); ++i) {
      ASSERT_EQ(batcher.TrySubmit(Item(sink, i, kTexts[i], options_)), kQueued);
    }
    sink.WaitAll();
  }
  EXPECT_EQ(sink.batches, std::vector<int>{static_cast<int>(kTexts.size())});
  for (size_t i = 0; i < kTexts.size(); ++i) {
    ASSERT_TRUE(sink.results[i]->ok()) << sink.results[i]->status();
    auto alone = engine::AttributeEncodings(*model_, {Encode(kTexts[i])}, options_);
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ((**sink.results[i]).encoding.input_ids, (*alone)[0].encoding.input_ids);
    ExpectSameAttribution(**sink.results[i], (*alone)[0]);
  }
}

TEST_F(AttributionBatcherTest, DifferentOptionsNeverShareABatchAndOneBatchMeansNone) {
  Sink sink;
  sink.results.resize(4);
  engine::AttributionOptions other = options_;
  other.steps = 2;
  AttributionBatcher::Options o;
  o.max_examples = 8;
  o.max_delay = std::chrono::milliseconds(300);
  {
    AttributionBatcher batcher(o, [&](int n) {
      std::lock_guard<std::mutex> lock(sink.mu);
      sink.batches.push_back(n);
    });
    ASSERT_EQ(batcher.TrySubmit(Item(sink, 0, kTexts[0], options_)), kQueued);
    ASSERT_EQ(batcher.TrySubmit(Item(sink, 1, kTexts[1], other)), kQueued);
    ASSERT_EQ(batcher.TrySubmit(Item(sink, 2, kTexts[2], options_)), kQueued);
    ASSERT_EQ(batcher.TrySubmit(Item(sink, 3, kTexts[3], other)), kQueued);
    sink.WaitAll();
  }
  EXPECT_EQ(sink.batches, (std::vector<int>{2, 2}));
  EXPECT_EQ((**sink.results[1]).layers.size(), 4u);

  Sink single;
  single.results.resize(3);
  o.max_examples = 1;
  AttributionBatcher unbatched(o, [&](int n) {
    std::lock_guard<std::mutex> lock(single.mu);
    single.batches.push_back(n);
  });
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(unbatched.TrySubmit(Item(single, i, kTexts[i], options_)), kQueued);
  single.WaitAll();
  EXPECT_EQ(single.batches, (std::vector<int>{1, 1, 1}));
}

// Regression: next-token, continuation and precision were missing from the key, so two waiting
// items asking for different next tokens could share one engine call under the first's target.
TEST(BatchKeyTest, EveryOptionThatChangesTheComputationChangesTheKey) {
  const engine::AttributionOptions base;
  const std::string key = BatchKey(nullptr, base);
  const std::vector<std::pair<const char*, std::function<void(engine::AttributionOptions&)>>>
      changes = {
          {"rule", [](auto& o) { o.rule = engine::QuadratureRule::kTrapezoid; }},
          {"steps", [](auto& o) { o.steps = 3; }},
          {"layers", [](auto& o) { o.layers = {1}; }},
          {"target.kind", [](auto& o) { o.target.kind = engine::TargetKind::kClassLogit; }},
          {"target.class_index", [](auto& o) { o.target.class_index = 1; }},
          {"target.reference_text", [](auto& o) { o.target.reference_text = "a"; }},
          {"target.reference_embedding", [](auto& o) { o.target.reference_embedding = {1.0f}; }},
          {"target.next_token", [](auto& o) { o.target.next_token = " Paris"; }},
          {"target.continuation", [](auto& o) { o.target.continuation = " and more"; }},
          {"memory_budget_bytes", [](auto& o) { o.memory_budget_bytes = 1 << 20; }},
          {"max_batch_examples", [](auto& o) { o.max_batch_examples = 2; }},
          {"keep_attention", [](auto& o) { o.keep_attention = false; }},
          {"precision", [](auto& o) { o.precision = engine::Precision::kBf16; }},
      };
  for (const auto& [field, change] : changes) {
    engine::AttributionOptions o = base;
    change(o);
    EXPECT_NE(BatchKey(nullptr, o), key) << field;
  }
  // Texts are delimited: moving characters between two text fields changes the key.
  engine::AttributionOptions a = base, b = base;
  a.target.next_token = "x|";
  a.target.continuation = "y";
  b.target.next_token = "x";
  b.target.continuation = "|y";
  EXPECT_NE(BatchKey(nullptr, a), BatchKey(nullptr, b));
}

TEST_F(AttributionBatcherTest, AStoppedItemIsCancelledWhileItsNeighboursFinish) {
  Sink sink;
  sink.results.resize(3);
  AttributionBatcher::Options o;
  o.max_delay = std::chrono::milliseconds(300);
  AttributionBatcher batcher(o, nullptr);
  ASSERT_EQ(batcher.TrySubmit(Item(sink, 0, kTexts[0], options_)), kQueued);
  ASSERT_EQ(batcher.TrySubmit(Item(sink, 1, kTexts[1], options_, [] { return true; })), kQueued);
  ASSERT_EQ(batcher.TrySubmit(Item(sink, 2, kTexts[2], options_)), kQueued);
  sink.WaitAll();
  EXPECT_TRUE(sink.results[0]->ok());
  EXPECT_EQ(sink.results[1]->status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(sink.results[2]->ok());
}

TEST_F(AttributionBatcherTest, BoundedQueueAndStopFailWaitingItems) {
  Sink sink;
  sink.results.resize(3);
  AttributionBatcher::Options o;
  o.max_pending = 2;
  o.max_delay = std::chrono::seconds(30);  // nothing runs before Stop
  o.max_examples = 8;
  AttributionBatcher batcher(o, nullptr);
  ASSERT_EQ(batcher.TrySubmit(Item(sink, 0, kTexts[0], options_)), kQueued);
  ASSERT_EQ(batcher.TrySubmit(Item(sink, 1, kTexts[1], options_)), kQueued);
  AttributionItem refused = Item(sink, 2, kTexts[2], options_);
  EXPECT_EQ(batcher.TrySubmit(refused), AttributionBatcher::Admission::kFull);
  EXPECT_EQ(batcher.Pending(), 2);
  ASSERT_EQ(batcher.TrySubmit(std::move(refused), /*force=*/true), kQueued);  // admitted job items
  batcher.Stop();
  sink.WaitAll();
  for (auto& r : sink.results) EXPECT_EQ(r->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(batcher.TrySubmit(Item(sink, 0, kTexts[0], options_)),
            AttributionBatcher::Admission::kStopping);
}

// Regression (hostile-input review): only max_pending bounded the waiting Explain calls, so one
// principal's flood could hold every place and every other tenant's call was refused. Each owner
// now holds at most max_pending_per_owner of them; items without an owner (jobs') and forced ones
// are not counted against anyone, and an owner's place is free again once its item is taken.
TEST_F(AttributionBatcherTest, EachOwnerHoldsItsShareOfTheWaitingPlaces) {
  Sink sink;
  sink.results.resize(6);
  AttributionBatcher::Options o;
  o.max_pending = 5;
  o.max_pending_per_owner = 2;
  o.max_delay = std::chrono::seconds(30);  // nothing runs before Stop
  o.max_examples = 8;
  AttributionBatcher batcher(o, nullptr);
  auto owned = [&](int index, const std::string& owner) {
    AttributionItem item = Item(sink, index, kTexts[index], options_);
    item.owner = owner;
    return item;
  };
  ASSERT_EQ(batcher.TrySubmit(owned(0, "alice")), kQueued);
  ASSERT_EQ(batcher.TrySubmit(owned(1, "alice")), kQueued);
  EXPECT_EQ(batcher.TrySubmit(owned(2, "alice")), AttributionBatcher::Admission::kOwnerFull);
  ASSERT_EQ(batcher.TrySubmit(owned(2, "bob")), kQueued);  // another tenant is not refused
  ASSERT_EQ(batcher.TrySubmit(owned(3, "")), kQueued);     // nobody's
  ASSERT_EQ(batcher.TrySubmit(owned(4, "alice"), /*force=*/true), kQueued);
  EXPECT_EQ(batcher.TrySubmit(owned(5, "carol")), AttributionBatcher::Admission::kFull);
  EXPECT_EQ(batcher.Pending(), 5);
  batcher.Stop();
  sink.results.resize(5);
  sink.WaitAll();

  // Taken items free their owner's place (max_examples 1: each runs as soon as it arrives).
  Sink ran;
  ran.results.resize(3);
  o.max_examples = 1;
  o.max_pending_per_owner = 1;
  AttributionBatcher running(o, nullptr);
  for (int i = 0; i < 3; ++i) {
    AttributionItem item = Item(ran, i, kTexts[i], options_);
    item.owner = "alice";
    ASSERT_EQ(running.TrySubmit(std::move(item)), kQueued) << i;
    std::unique_lock<std::mutex> lock(ran.mu);
    ran.cv.wait(lock, [&] { return ran.results[i].has_value(); });
    EXPECT_TRUE(ran.results[i]->ok()) << i;
  }
}

}  // namespace
}  // namespace attattr::server
