// FaultyJobStore: a JobStore (and its ShardStore, when the wrapped store has one) that forwards
// every call to a real store, except that a chosen operation fails with a chosen status — the next
// few calls, or every call until healed: the failovers, broken connections and outages the
// scheduler must ride out, at the exact call a test names (and a Finish that commits, then fails).
// It also counts calls per operation (Get by whether it read the spec). Header-only, for the
// scheduler tests; thread-safe.
#pragma once

#include <array>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "store/job_store.h"
#include "store/shard_store.h"

namespace attattr::testing {

class FaultyJobStore final : public store::JobStore, private store::ShardStore {
 public:
  // Borrows `inner`, which must outlive this.
  explicit FaultyJobStore(store::JobStore& inner) : inner_(inner) {}

  // The next `times` calls of `op` fail with `status` (after the failures already queued for it).
  // Operations are named as below ("get", "put_result", "split", "claim_shard", ...).
  void FailNext(const std::string& op, const absl::Status& status, int times = 1) {
    absl::MutexLock lock(&mu_);
    for (int i = 0; i < times; ++i) next_[op].push_back(status);
  }
  // The next call of "finish" does its work in the inner store and then answers `status`, as a
  // COMMIT that went through on a connection that broke before its answer came back.
  void FailNextFinishAfterItsWork(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    after_finish_.push_back(status);
  }
  // Every call of `op` fails with `status` until Heal(op); "*" names every operation.
  void FailAlways(const std::string& op, const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    always_[op] = status;
  }
  void Heal(const std::string& op) {
    absl::MutexLock lock(&mu_);
    always_.erase(op);
    next_.erase(op);
  }
  // Calls of `op` so far, failed ones included ("get+spec": Gets that read the spec).
  int Calls(const std::string& op) const {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(op);
    return it == calls_.end() ? 0 : it->second;
  }
  // Failures injected into `op` so far.
  int Failures(const std::string& op) const {
    absl::MutexLock lock(&mu_);
    auto it = failures_.find(op);
    return it == failures_.end() ? 0 : it->second;
  }

  using store::JobStore::Create;
  absl::StatusOr<store::CreateResult> Create(const store::JobRecord& record,
                                             const store::AdmissionLimits& limits) override {
    if (absl::Status s = Check("create"); !s.ok()) return s;
    return inner_.Create(record, limits);
  }
  using store::JobStore::Get;
  absl::StatusOr<store::JobRecord> Get(const std::string& id, bool include_spec) override {
    if (include_spec) Count("get+spec");
    if (absl::Status s = Check("get"); !s.ok()) return s;
    return inner_.Get(id, include_spec);
  }
  absl::StatusOr<store::ListPage> List(const store::ListFilter& filter) override {
    if (absl::Status s = Check("list"); !s.ok()) return s;
    return inner_.List(filter);
  }
  absl::StatusOr<store::JobRecord> MarkRunning(const std::string& id) override {
    if (absl::Status s = Check("mark_running"); !s.ok()) return s;
    return inner_.MarkRunning(id);
  }
  absl::StatusOr<std::optional<store::JobRecord>> Claim(
      const store::ClaimRequest& request) override {
    if (absl::Status s = Check("claim"); !s.ok()) return s;
    return inner_.Claim(request);
  }
  absl::StatusOr<std::vector<std::string>> RenewLeases(const std::string& holder,
                                                       const std::vector<store::HeldLease>& leases,
                                                       int64_t lease_ms) override {
    if (absl::Status s = Check("renew_leases"); !s.ok()) return s;
    return inner_.RenewLeases(holder, leases, lease_ms);
  }
  absl::StatusOr<std::vector<store::JobRecord>> RecoverExpiredLeases(
      int32_t max_attempts) override {
    if (absl::Status s = Check("recover"); !s.ok()) return s;
    return inner_.RecoverExpiredLeases(max_attempts);
  }
  absl::Status UpdateProgress(const std::string& id, const store::JobProgress& progress,
                              int64_t lease_token) override {
    if (absl::Status s = Check("update_progress"); !s.ok()) return s;
    return inner_.UpdateProgress(id, progress, lease_token);
  }
  absl::StatusOr<store::JobRecord> Finish(const std::string& id, store::JobState state,
                                          int32_t error_code, const std::string& error_message,
                                          int64_t lease_token) override {
    if (absl::Status s = Check("finish"); !s.ok()) return s;
    auto finished = inner_.Finish(id, state, error_code, error_message, lease_token);
    absl::MutexLock lock(&mu_);
    if (after_finish_.empty()) return finished;
    absl::Status lost = after_finish_.front();
    after_finish_.pop_front();
    return lost;
  }
  absl::StatusOr<store::JobRecord> Cancel(const std::string& id) override {
    if (absl::Status s = Check("cancel"); !s.ok()) return s;
    return inner_.Cancel(id);
  }
  absl::Status PutResult(const std::string& id, const std::string& bytes,
                         int64_t lease_token) override {
    if (absl::Status s = Check("put_result"); !s.ok()) return s;
    return inner_.PutResult(id, bytes, lease_token);
  }
  absl::StatusOr<store::ResultInfo> GetResultInfo(const std::string& id) override {
    if (absl::Status s = Check("get_result_info"); !s.ok()) return s;
    return inner_.GetResultInfo(id);
  }
  absl::StatusOr<std::string> GetResultChunk(const std::string& id, int64_t seq) override {
    if (absl::Status s = Check("get_result_chunk"); !s.ok()) return s;
    return inner_.GetResultChunk(id, seq);
  }
  absl::Status Delete(const std::string& id) override {
    if (absl::Status s = Check("delete"); !s.ok()) return s;
    return inner_.Delete(id);
  }
  absl::StatusOr<store::JobRecord> Requeue(const std::string& id, int64_t lease_token) override {
    if (absl::Status s = Check("requeue"); !s.ok()) return s;
    return inner_.Requeue(id, lease_token);
  }
  absl::StatusOr<std::vector<store::JobRecord>> RequeueInterrupted(int32_t max_attempts) override {
    if (absl::Status s = Check("requeue_interrupted"); !s.ok()) return s;
    return inner_.RequeueInterrupted(max_attempts);
  }
  absl::StatusOr<store::QueueCounts> CountQueued(const std::string& owner) override {
    if (absl::Status s = Check("count_queued"); !s.ok()) return s;
    return inner_.CountQueued(owner);
  }
  absl::StatusOr<int64_t> ExpireResults(int64_t now_ms, int64_t retention_ms) override {
    if (absl::Status s = Check("expire_results"); !s.ok()) return s;
    return inner_.ExpireResults(now_ms, retention_ms);
  }
  absl::StatusOr<int64_t> StoredBytes(const std::string& owner) override {
    if (absl::Status s = Check("stored_bytes"); !s.ok()) return s;
    return inner_.StoredBytes(owner);
  }
  absl::StatusOr<store::StoreStats> Stats() override {
    if (absl::Status s = Check("stats"); !s.ok()) return s;
    return inner_.Stats();
  }
  bool Shared() const override { return inner_.Shared(); }
  int64_t NowMs() const override { return inner_.NowMs(); }
  bool SubscribeChanges(store::ChangeCallbacks callbacks) override {
    return inner_.SubscribeChanges(std::move(callbacks));
  }
  void StopChanges() override { inner_.StopChanges(); }
  store::ShardStore* shards() override { return inner_.shards() != nullptr ? this : nullptr; }

 private:
  // store::ShardStore, forwarded to inner_.shards().
  absl::StatusOr<std::vector<store::ShardRecord>> SplitJob(
      const std::string& job_id, int64_t job_lease_token, const store::ShardStage& stage) override {
    if (absl::Status s = Check("split"); !s.ok()) return s;
    return inner_.shards()->SplitJob(job_id, job_lease_token, stage);
  }
  absl::StatusOr<std::vector<store::ShardRecord>> ListShards(const std::string& job_id) override {
    if (absl::Status s = Check("list_shards"); !s.ok()) return s;
    return inner_.shards()->ListShards(job_id);
  }
  absl::StatusOr<std::optional<store::ShardRecord>> ClaimShard(
      const store::ClaimRequest& request) override {
    if (absl::Status s = Check("claim_shard"); !s.ok()) return s;
    return inner_.shards()->ClaimShard(request);
  }
  absl::StatusOr<store::ShardCompletion> CompleteShard(const store::HeldShard& shard,
                                                       const std::string& result,
                                                       const std::string& holder,
                                                       int64_t job_lease_ms) override {
    if (absl::Status s = Check("complete_shard"); !s.ok()) return s;
    return inner_.shards()->CompleteShard(shard, result, holder, job_lease_ms);
  }
  absl::StatusOr<store::ShardRecord> FailShard(const store::HeldShard& shard, int32_t error_code,
                                               const std::string& error_message,
                                               int32_t max_attempts) override {
    if (absl::Status s = Check("fail_shard"); !s.ok()) return s;
    return inner_.shards()->FailShard(shard, error_code, error_message, max_attempts);
  }
  absl::Status ReleaseShard(const store::HeldShard& shard) override {
    if (absl::Status s = Check("release_shard"); !s.ok()) return s;
    return inner_.shards()->ReleaseShard(shard);
  }
  absl::StatusOr<std::string> GetShardResult(const std::string& job_id, int32_t index) override {
    if (absl::Status s = Check("get_shard_result"); !s.ok()) return s;
    return inner_.shards()->GetShardResult(job_id, index);
  }
  absl::StatusOr<std::vector<store::HeldShard>> RenewShardLeases(
      const std::string& holder, const std::vector<store::HeldShard>& shards,
      int64_t lease_ms) override {
    if (absl::Status s = Check("renew_shard_leases"); !s.ok()) return s;
    return inner_.shards()->RenewShardLeases(holder, shards, lease_ms);
  }
  absl::StatusOr<std::vector<store::ShardRecord>> RecoverExpiredShardLeases(
      int32_t max_attempts) override {
    if (absl::Status s = Check("recover_shards"); !s.ok()) return s;
    return inner_.shards()->RecoverExpiredShardLeases(max_attempts);
  }
  absl::StatusOr<std::array<int64_t, store::kShardStateCount>> CountShards() override {
    if (absl::Status s = Check("count_shards"); !s.ok()) return s;
    return inner_.shards()->CountShards();
  }

  void Count(const std::string& op) {
    absl::MutexLock lock(&mu_);
    ++calls_[op];
  }
  // Counts a call of `op`; the failure it is to return, if any.
  absl::Status Check(const std::string& op) {
    absl::MutexLock lock(&mu_);
    ++calls_[op];
    std::optional<absl::Status> failure;
    if (auto it = next_.find(op); it != next_.end() && !it->second.empty()) {
      failure = it->second.front();
      it->second.pop_front();
    } else if (auto always = always_.find(op); always != always_.end()) {
      failure = always->second;
    } else if (auto all = always_.find("*"); all != always_.end()) {
      failure = all->second;
    }
    if (!failure.has_value()) return absl::OkStatus();
    ++failures_[op];
    return *failure;
  }

  store::JobStore& inner_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::deque<absl::Status>> next_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> always_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> failures_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::Status> after_finish_ ABSL_GUARDED_BY(mu_);
};

}  // namespace attattr::testing
