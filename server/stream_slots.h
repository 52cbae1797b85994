// StreamSlots: how many long-lived calls (WaitJob, WatchJob, GetJobResult) each caller holds open,
// bounded per caller. Each open stream costs the server a subscription to its job's events (every
// change of the job is converted and queued for it on the publishing thread) and a call's buffers,
// so one principal's thousand idle watchers must be refused, not served at every other tenant's
// expense: past the bound a call is answered RESOURCE_EXHAUSTED at once. Keys are principals (with
// authentication) or client addresses (without: AttattrService::CallerKey). Thread-safe.
#pragma once

#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace attattr::server {

class StreamSlots {
 public:
  // A slot held; given back when destroyed (movable, so a reactor can own it).
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept : owner_(other.owner_), key_(std::move(other.key_)) {
      other.owner_ = nullptr;
    }
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { Release(); }
    bool held() const { return owner_ != nullptr; }

   private:
    friend class StreamSlots;
    Slot(StreamSlots* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    void Release();
    StreamSlots* owner_ = nullptr;
    std::string key_;
  };

  // `max_per_key` >= 1 slots per key.
  explicit StreamSlots(int max_per_key) : max_per_key_(max_per_key) {}
  StreamSlots(const StreamSlots&) = delete;
  StreamSlots& operator=(const StreamSlots&) = delete;

  // A held slot for `key`, or an empty one (held() false) when `key` holds max_per_key already.
  Slot TryAcquire(const std::string& key);

  int max_per_key() const { return max_per_key_; }
  // Slots `key` holds now.
  int Held(const std::string& key) const;

 private:
  void Release(const std::string& key);

  const int max_per_key_;
  mutable absl::Mutex mu_;
  std::unordered_map<std::string, int> held_ ABSL_GUARDED_BY(mu_);  // keys holding >= 1 only
};

}  // namespace attattr::server
