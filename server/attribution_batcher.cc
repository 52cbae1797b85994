// Dynamic batcher (see attribution_batcher.h).
#include "attribution_batcher.h"

#include <algorithm>
#include <exception>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "attattr/engine/runtime.h"

namespace attattr::server {

using Clock = std::chrono::steady_clock;

std::string BatchKey(const engine::Model* model, const engine::AttributionOptions& o) {
  const auto& t = o.target;
  // The reference embedding is compared by value: two jobs with equal vectors share batches.
  std::string embedding(reinterpret_cast<const char*>(t.reference_embedding.data()),
                        t.reference_embedding.size() * sizeof(float));
  // Texts are length-prefixed so that no two different option sets share a key.
  auto text = [](const std::string& s) { return absl::StrCat(s.size(), ":", s); };
  return absl::StrCat(reinterpret_cast<uintptr_t>(model), "|", static_cast<int>(o.rule), "|",
                      o.steps, "|", absl::StrJoin(o.layers, ","), "|", static_cast<int>(t.kind),
                      "|", t.class_index, "|", text(t.reference_text), "|", text(embedding), "|",
                      text(t.next_token), "|", text(t.continuation), "|", o.memory_budget_bytes,
                      "|", o.max_batch_examples, "|", o.keep_attention, "|",
                      static_cast<int>(o.precision));
}

AttributionBatcher::AttributionBatcher(const Options& options, BatchObserver observer)
    : options_(options), observer_(std::move(observer)) {
  for (int i = 0; i < options_.workers; ++i) {
    threads_.emplace_back([this] {
      engine::SetThreadIntraOpThreads(options_.intra_op_threads);
      Loop();
    });
  }
}

AttributionBatcher::~AttributionBatcher() { Stop(); }

AttributionBatcher::Admission AttributionBatcher::TrySubmit(AttributionItem item, bool force) {
  std::string key = BatchKey(item.model, item.options);
  absl::MutexLock lock(&mu_);
  if (stopping_) return Admission::kStopping;
  if (!force && static_cast<int>(queue_.size()) >= options_.max_pending) return Admission::kFull;
  if (force) item.owner.clear();  // admitted elsewhere: nobody's place
  if (!item.owner.empty()) {
    int& waiting = waiting_by_owner_[item.owner];
    if (options_.max_pending_per_owner > 0 && waiting >= options_.max_pending_per_owner) {
      return Admission::kOwnerFull;
    }
    ++waiting;
  }
  queue_.push_back(Waiting{std::move(item), std::move(key), Clock::now()});
  return Admission::kQueued;
}

void AttributionBatcher::Left(const Waiting& w) {
  if (w.item.owner.empty()) return;
  auto it = waiting_by_owner_.find(w.item.owner);
  if (it != waiting_by_owner_.end() && --it->second <= 0) waiting_by_owner_.erase(it);
}

int AttributionBatcher::Pending() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queue_.size());
}

void AttributionBatcher::Stop() {
  std::deque<Waiting> dropped;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    dropped.swap(queue_);
    waiting_by_owner_.clear();
  }
  for (auto& w : dropped) {
    w.item.done(absl::UnavailableError("the server is shutting down; the item was not run"));
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

int AttributionBatcher::CountKey(const std::string& key) const {
  return static_cast<int>(
      std::count_if(queue_.begin(), queue_.end(), [&](const Waiting& w) { return w.key == key; }));
}

std::vector<AttributionBatcher::Waiting> AttributionBatcher::TakeBatch() {
  // The conditions below run under mu_ (Await), which the analysis cannot see.
  while (true) {
    const auto ready = [this]()
                           ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_ || !queue_.empty(); };
    mu_.Await(absl::Condition(&ready));
    if (stopping_) return {};
    const std::string key = queue_.front().key;
    const Clock::time_point arrived = queue_.front().arrived;
    const Clock::time_point deadline = arrived + options_.max_delay;
    const Clock::time_point now = Clock::now();
    if (CountKey(key) >= options_.max_examples || now >= deadline) break;
    // Wait for company until the oldest item's delay runs out (or the queue changes under it).
    const auto changed = [this, &key, arrived]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return stopping_ || queue_.empty() || queue_.front().arrived != arrived ||
             CountKey(key) >= options_.max_examples;
    };
    mu_.AwaitWithTimeout(absl::Condition(&changed), absl::FromChrono(deadline - now));
  }
  std::vector<Waiting> batch;
  const std::string key = queue_.front().key;
  for (auto it = queue_.begin();
       it != queue_.end() && static_cast<int>(batch.size()) < options_.max_examples;) {
    if (it->key == key) {
      Left(*it);
      batch.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  return batch;
}

void AttributionBatcher::Loop() {
  while (true) {
    std::vector<Waiting> batch;
    {
      absl::MutexLock lock(&mu_);
      batch = TakeBatch();
    }
    if (batch.empty()) return;
    Run(batch);
  }
}

namespace {

bool WantsStop(const AttributionItem& item) { return item.should_stop && item.should_stop(); }

absl::StatusOr<std::vector<engine::ExampleAttribution>> RunEngine(
    const engine::Model& model, const std::vector<engine::Encoding>& encodings,
    const engine::AttributionOptions& options, const engine::RunControl& control) {
  try {
    return engine::AttributeEncodings(model, encodings, options, control);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("engine: ", e.what()));
  }
}

}  // namespace

void AttributionBatcher::Run(std::vector<Waiting>& batch) {
  if (observer_) observer_(static_cast<int>(batch.size()));
  const AttributionItem& first = batch.front().item;
  std::vector<engine::Encoding> encodings;
  encodings.reserve(batch.size());
  for (const auto& w : batch) encodings.push_back(w.item.encoding);
  engine::RunControl control;
  control.should_stop = [&batch] {
    return std::all_of(batch.begin(), batch.end(),
                       [](const Waiting& w) { return WantsStop(w.item); });
  };
  auto results = RunEngine(*first.model, encodings, first.options, control);
  if (results.ok()) {
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& item = batch[i].item;
      if (WantsStop(item)) {
        item.done(absl::CancelledError("stopped before its batch finished"));
      } else {
        item.done(std::move((*results)[i]));
      }
    }
    return;
  }
  if (batch.size() > 1 && results.status().code() != absl::StatusCode::kCancelled) {
    // Isolate the failure: each item alone gets its own answer.
    for (auto& w : batch) {
      std::vector<Waiting> one;
      one.push_back(std::move(w));
      Run(one);
    }
    return;
  }
  for (auto& w : batch) w.item.done(results.status());
}

}  // namespace attattr::server
