// Dynamic batching of attribution work (Triton's dynamic batcher, applied to AttAttr): every
// attribution item — one example of an Explain call or of a job — waits here until an engine
// worker takes it. Items that are waiting at the same time and share a batch key (same model, same
// attribution options) run in one engine call of at most `max_examples`; the oldest item waits at
// most `max_delay` for others to join. The engine's results do not depend on how examples are
// batched (to float rounding, ~1e-5), so a batched item gets the answer it would get alone.
//
// Workers are the "workers per device": each runs one engine call at a time, with its own
// intra-op thread count (engine::SetThreadIntraOpThreads). A batch is stopped
// between engine chunks only when every item in it asks to stop; an item that asked to stop gets
// CancelledError instead of its result. If a batched call fails for another reason, its items are
// retried one by one so that one bad item cannot fail its neighbours. Items carry their owner (an
// Explain caller); each owner holds at most max_pending_per_owner of the waiting places, so one
// tenant's flood of calls cannot refuse every other tenant's.
// Thread-safe; the destructor finishes queued items (or fails them with Unavailable after Stop).
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/model.h"

namespace attattr::server {

struct AttributionItem {
  const engine::Model* model = nullptr;
  engine::AttributionOptions options;
  engine::Encoding encoding;
  // Polled between engine chunks; true = the caller no longer wants the result.
  std::function<bool()> should_stop;
  // Called exactly once, on a worker thread, with the item's result or error.
  std::function<void(absl::StatusOr<engine::ExampleAttribution>)> done;
  // Whose waiting place the item takes (Options::max_pending_per_owner); "" = nobody's (a job's
  // items, which the job queue admitted).
  std::string owner;
};

class AttributionBatcher {
 public:
  struct Options {
    int workers = 1;                            // engine workers (per device)
    int intra_op_threads = 0;                   // each worker's (0 = the process's setting)
    int max_examples = 8;                       // largest engine batch; 1 = no dynamic batching
    std::chrono::microseconds max_delay{2000};  // how long the oldest item may wait for company
    int max_pending = 256;                      // items waiting before TrySubmit refuses
    int max_pending_per_owner = 0;              // of those, one owner's at most (0 = no bound)
  };
  // What TrySubmit did with an item (only kQueued calls its `done`).
  enum class Admission {
    kQueued,
    kFull,       // max_pending items wait
    kOwnerFull,  // the item's owner has max_pending_per_owner items waiting
    kStopping,   // Stop was called
  };
  // Called after every engine call with the number of items it ran (for the batch-size metric).
  using BatchObserver = std::function<void(int items)>;

  AttributionBatcher(const Options& options, BatchObserver observer);
  ~AttributionBatcher();
  AttributionBatcher(const AttributionBatcher&) = delete;
  AttributionBatcher& operator=(const AttributionBatcher&) = delete;

  // Queues `item`, or says why not (and `item.done` is not called). `force` ignores the bounds on
  // waiting items and the item's owner (job items already admitted by the job queue).
  Admission TrySubmit(AttributionItem item, bool force = false);
  // Items waiting (not yet in an engine call).
  int Pending() const;
  // Engine workers.
  int workers() const { return options_.workers; }
  // Fails every waiting item with Unavailable, refuses new ones and joins the workers once the
  // running batches finish.
  void Stop();

 private:
  struct Waiting {
    AttributionItem item;
    std::string key;
    std::chrono::steady_clock::time_point arrived;
  };
  void Loop();
  // Takes the next batch: the oldest item and up to max_examples-1 later items with its key, once
  // the batch is full or the oldest has waited max_delay. Empty when stopping.
  std::vector<Waiting> TakeBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waiting items with `key`.
  int CountKey(const std::string& key) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `w` left the queue (taken or dropped): its owner's place is free.
  void Left(const Waiting& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(std::vector<Waiting>& batch);

  const Options options_;
  const BatchObserver observer_;
  mutable absl::Mutex mu_;
  std::deque<Waiting> queue_ ABSL_GUARDED_BY(mu_);
  // Waiting items per non-empty owner (owners with none are erased).
  std::unordered_map<std::string, int> waiting_by_owner_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;  // started by the constructor, joined by Stop (owner thread)
};

// The batch key: items with equal keys may share an engine call (same model and every option that
// changes the computation).
std::string BatchKey(const engine::Model* model, const engine::AttributionOptions& options);

}  // namespace attattr::server
