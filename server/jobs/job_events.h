// JobEvents: the fan-out of job changes to the RPCs that wait on them (WaitJob, WatchJob). The
// scheduler publishes every state change and progress update; subscribers get the new record on
// the publishing thread, in publication order, and must not block (reactors only queue a write or
// finish) nor Publish themselves. Subscribing never blocks a gRPC reaction thread. Thread-safe.
// After Unsubscribe returns, the callback is not running (unless Unsubscribe was called from it)
// and will not run again.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "store/job_store.h"

namespace attattr::server {

class JobEvents {
 public:
  enum class Kind {
    kChanged,         // `record` is the job's new state
    kDeleted,         // the job was removed (DeleteJob); `record` is its last known state
    kServerStopping,  // the server is draining: finish the call; `record` holds only the id
  };
  // `publication` numbers the Publish (or StopAll) call being delivered, distinct for each and
  // the same for all of its subscribers: work done for one subscriber (a conversion of `record`)
  // can be shared with the others (job_streams.cc's PublishedJobMessages).
  using Callback =
      std::function<void(Kind kind, const store::JobRecord& record, uint64_t publication)>;
  using Token = uint64_t;

  // Calls `callback` for every record published for `job_id` from now on.
  Token Subscribe(const std::string& job_id, Callback callback);
  void Unsubscribe(Token token);
  // Delivers `record` to the subscribers of record.id.
  void Publish(const store::JobRecord& record, Kind kind = Kind::kChanged);
  // Tells every subscriber the server is stopping (kServerStopping).
  void StopAll();
  int SubscriberCount() const;
  // Whether someone is subscribed to `job_id` now.
  bool HasSubscribers(const std::string& job_id) const;
  // The jobs someone is subscribed to now.
  std::vector<std::string> SubscribedJobs() const;

 private:
  struct Subscriber {
    std::string job_id;
    Callback callback;
  };
  // Runs the callback of `token` (if still subscribed) outside mu_, marked as running so that
  // Unsubscribe can wait for it.
  void Deliver(Token token, Kind kind, const store::JobRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(publish_mu_) ABSL_LOCKS_EXCLUDED(mu_);

  // Held for a whole Publish / StopAll: subscribers see one job's records in publication order.
  absl::Mutex publish_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  uint64_t publication_ ABSL_GUARDED_BY(publish_mu_) = 0;  // of the Publish/StopAll delivering
  // Guards the subscriptions; never held while a callback runs.
  mutable absl::Mutex mu_;
  std::map<Token, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
  std::multimap<std::string, Token> by_job_ ABSL_GUARDED_BY(mu_);
  // Callbacks running now, by token and the thread running them.
  std::multiset<std::pair<Token, std::thread::id>> running_ ABSL_GUARDED_BY(mu_);
  Token next_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace attattr::server
