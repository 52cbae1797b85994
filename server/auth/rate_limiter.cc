// PrincipalRateLimiter (see rate_limiter.h): token buckets refilled lazily on each call.
#include "auth/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace attattr::server {

void PrincipalRateLimiter::Refill(Bucket& bucket, Clock::time_point now) const {
  const double seconds = std::chrono::duration<double>(now - bucket.updated).count();
  if (seconds > 0) {
    bucket.tokens = std::min<double>(burst_, bucket.tokens + seconds * rate_);
    bucket.updated = now;
  }
}

int64_t PrincipalRateLimiter::TryAcquire(const std::string& principal, Clock::time_point now) {
  if (rate_ <= 0) return 0;
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(principal);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxTracked) {
      for (auto b = buckets_.begin(); b != buckets_.end();) {
        Refill(b->second, now);
        b = b->second.tokens >= burst_ ? buckets_.erase(b) : std::next(b);
      }
    }
    it = buckets_.emplace(principal, Bucket{static_cast<double>(burst_), now}).first;
  }
  Bucket& bucket = it->second;
  Refill(bucket, now);
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return 0;
  }
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1 - bucket.tokens) / rate_ * 1e3)));
}

}  // namespace attattr::server
