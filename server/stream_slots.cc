// Per-caller bound on open streams (see stream_slots.h).
#include "stream_slots.h"

#include <utility>

namespace attattr::server {

StreamSlots::Slot& StreamSlots::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = other.owner_;
    key_ = std::move(other.key_);
    other.owner_ = nullptr;
  }
  return *this;
}

void StreamSlots::Slot::Release() {
  if (owner_ == nullptr) return;
  owner_->Release(key_);
  owner_ = nullptr;
}

StreamSlots::Slot StreamSlots::TryAcquire(const std::string& key) {
  absl::MutexLock lock(&mu_);
  int& held = held_[key];
  if (held >= max_per_key_) return Slot();
  ++held;
  return Slot(this, key);
}

int StreamSlots::Held(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  const auto it = held_.find(key);
  return it == held_.end() ? 0 : it->second;
}

void StreamSlots::Release(const std::string& key) {
  absl::MutexLock lock(&mu_);
  const auto it = held_.find(key);
  if (it == held_.end()) return;
  if (--it->second <= 0) held_.erase(it);
}

}  // namespace attattr::server
