// JobEvents: the fan-out of job changes to the RPCs that wait on them (WaitJob, WatchJob). The
// scheduler publishes every state change and progress update; subscribers get the new record on
// the publishing thread and must not block (reactors only queue a write or finish). Subscribing
// never blocks a gRPC reaction thread. Thread-safe. After Unsubscribe returns, the callback is not
// running and will not run again.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "store/job_store.h"

namespace attattr::server {

class JobEvents {
 public:
  enum class Kind {
    kChanged,         // `record` is the job's new state
    kDeleted,         // the job was removed (DeleteJob); `record` is its last known state
    kServerStopping,  // the server is draining: finish the call; `record` holds only the id
  };
  using Callback = std::function<void(Kind kind, const store::JobRecord& record)>;
  using Token = uint64_t;

  // Calls `callback` for every record published for `job_id` from now on.
  Token Subscribe(const std::string& job_id, Callback callback);
  void Unsubscribe(Token token);
  // Delivers `record` to the subscribers of record.id.
  void Publish(const store::JobRecord& record, Kind kind = Kind::kChanged);
  // Tells every subscriber the server is stopping (kServerStopping).
  void StopAll();
  int SubscriberCount() const;

 private:
  struct Subscriber {
    std::string job_id;
    Callback callback;
  };
  // Held while callbacks run, so Unsubscribe from another thread waits for a running callback;
  // recursive so a callback may unsubscribe itself.
  mutable std::recursive_mutex mu_;
  std::map<Token, Subscriber> subscribers_;
  std::multimap<std::string, Token> by_job_;
  Token next_ = 1;
};

}  // namespace attattr::server
