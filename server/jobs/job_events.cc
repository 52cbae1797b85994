// JobEvents (see job_events.h).
#include "jobs/job_events.h"

#include <vector>

namespace attattr::server {

JobEvents::Token JobEvents::Subscribe(const std::string& job_id, Callback callback) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  const Token token = next_++;
  subscribers_.emplace(token, Subscriber{job_id, std::move(callback)});
  by_job_.emplace(job_id, token);
  return token;
}

void JobEvents::Unsubscribe(Token token) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  auto it = subscribers_.find(token);
  if (it == subscribers_.end()) return;
  auto range = by_job_.equal_range(it->second.job_id);
  for (auto j = range.first; j != range.second; ++j) {
    if (j->second == token) {
      by_job_.erase(j);
      break;
    }
  }
  subscribers_.erase(it);
}

void JobEvents::Publish(const store::JobRecord& record, Kind kind) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  // Tokens are copied first: a callback may unsubscribe itself (the mutex is recursive).
  std::vector<Token> tokens;
  auto range = by_job_.equal_range(record.id);
  for (auto j = range.first; j != range.second; ++j) tokens.push_back(j->second);
  for (Token token : tokens) {
    auto it = subscribers_.find(token);
    if (it != subscribers_.end()) it->second.callback(kind, record);
  }
}

void JobEvents::StopAll() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::vector<Token> tokens;
  for (const auto& [token, subscriber] : subscribers_) tokens.push_back(token);
  for (Token token : tokens) {
    auto it = subscribers_.find(token);
    if (it == subscribers_.end()) continue;
    store::JobRecord record;
    record.id = it->second.job_id;
    it->second.callback(Kind::kServerStopping, record);
  }
}

int JobEvents::SubscriberCount() const {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return static_cast<int>(subscribers_.size());
}

}  // namespace attattr::server
