// JobEvents (see job_events.h).
#include "jobs/job_events.h"

#include <vector>

namespace attattr::server {

JobEvents::Token JobEvents::Subscribe(const std::string& job_id, Callback callback) {
  absl::MutexLock lock(&mu_);
  const Token token = next_++;
  subscribers_.emplace(token, Subscriber{job_id, std::move(callback)});
  by_job_.emplace(job_id, token);
  return token;
}

void JobEvents::Unsubscribe(Token token) {
  absl::MutexLock lock(&mu_);
  auto it = subscribers_.find(token);
  if (it != subscribers_.end()) {
    auto range = by_job_.equal_range(it->second.job_id);
    for (auto j = range.first; j != range.second; ++j) {
      if (j->second == token) {
        by_job_.erase(j);
        break;
      }
    }
    subscribers_.erase(it);
  }
  // A callback of `token` running on another thread finishes before this returns; one running on
  // this thread is the caller itself (a callback unsubscribing itself).
  const std::thread::id self = std::this_thread::get_id();
  const auto idle = [this, token, self]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // under mu_ (Await)
    for (const auto& [t, thread] : running_) {
      if (t == token && thread != self) return false;
    }
    return true;
  };
  mu_.Await(absl::Condition(&idle));
}

void JobEvents::Deliver(Token token, Kind kind, const store::JobRecord& record) {
  const std::pair<Token, std::thread::id> mark(token, std::this_thread::get_id());
  Callback callback;
  {
    absl::MutexLock lock(&mu_);
    auto it = subscribers_.find(token);
    if (it == subscribers_.end()) return;  // unsubscribed meanwhile
    callback = it->second.callback;
    running_.insert(mark);
  }
  callback(kind, record, publication_);
  absl::MutexLock lock(&mu_);
  running_.erase(running_.find(mark));
}

void JobEvents::Publish(const store::JobRecord& record, Kind kind) {
  absl::MutexLock publishing(&publish_mu_);
  ++publication_;
  std::vector<Token> tokens;
  {
    absl::MutexLock lock(&mu_);
    auto range = by_job_.equal_range(record.id);
    for (auto j = range.first; j != range.second; ++j) tokens.push_back(j->second);
  }
  for (Token token : tokens) Deliver(token, kind, record);
}

void JobEvents::StopAll() {
  absl::MutexLock publishing(&publish_mu_);
  ++publication_;
  std::vector<std::pair<Token, std::string>> subscribers;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [token, subscriber] : subscribers_) {
      subscribers.emplace_back(token, subscriber.job_id);
    }
  }
  for (const auto& [token, job_id] : subscribers) {
    store::JobRecord record;
    record.id = job_id;
    Deliver(token, Kind::kServerStopping, record);
  }
}

std::vector<std::string> JobEvents::SubscribedJobs() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (auto it = by_job_.begin(); it != by_job_.end(); it = by_job_.upper_bound(it->first)) {
    ids.push_back(it->first);
  }
  return ids;
}

bool JobEvents::HasSubscribers(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  return by_job_.count(job_id) > 0;
}

int JobEvents::SubscriberCount() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(subscribers_.size());
}

}  // namespace attattr::server
