// PrincipalRateLimiter: one token bucket per principal (`rate` calls per second, holding at most
// `burst`), for --explain-rate-per-principal. A call takes one token or is refused with the time
// until the next token. Buckets of principals that went quiet (full again) are dropped once more
// than kMaxTracked are held, so the map stays bounded whatever names arrive. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace attattr::server {

class PrincipalRateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMaxTracked = 4096;

  // rate <= 0: no limit.
  PrincipalRateLimiter(double rate, int burst) : rate_(rate), burst_(burst < 1 ? 1 : burst) {}

  // 0 when `principal` may go on now (a token taken); else the milliseconds until it may.
  int64_t TryAcquire(const std::string& principal, Clock::time_point now = Clock::now());

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };
  void Refill(Bucket& bucket, Clock::time_point now) const;

  const double rate_;
  const int burst_;
  absl::Mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace attattr::server
