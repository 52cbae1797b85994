// MeasuredJobStore: a JobStore that forwards every call to another and records it in the
// service's metrics — attattr_store_operation_seconds{operation} and, for failures of the store
// itself (unreachable, timed out, full, corrupt, internal; not a missing job or a refused
// transition), attattr_store_errors_total{operation}. A decorator, so both stores are measured
// alike without either knowing of Prometheus. Thread-safe as the wrapped store is.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "service_metrics.h"
#include "store/job_store.h"

namespace attattr::server {

class MeasuredJobStore final : public store::JobStore {
 public:
  MeasuredJobStore(std::unique_ptr<store::JobStore> inner, ServiceMetrics& metrics)
      : inner_(std::move(inner)), metrics_(metrics) {}

  using store::JobStore::Create;
  absl::StatusOr<store::CreateResult> Create(const store::JobRecord& record,
                                             const store::AdmissionLimits& limits) override;
  using store::JobStore::Get;
  absl::StatusOr<store::JobRecord> Get(const std::string& id, bool include_spec) override;
  absl::StatusOr<store::ListPage> List(const store::ListFilter& filter) override;
  absl::StatusOr<store::JobRecord> MarkRunning(const std::string& id) override;
  absl::StatusOr<std::optional<store::JobRecord>> Claim(
      const store::ClaimRequest& request) override;
  absl::StatusOr<std::vector<std::string>> RenewLeases(const std::string& holder,
                                                       const std::vector<store::HeldLease>& leases,
                                                       int64_t lease_ms) override;
  absl::StatusOr<std::vector<store::JobRecord>> RecoverExpiredLeases(int32_t max_attempts) override;
  absl::Status UpdateProgress(const std::string& id, const store::JobProgress& progress,
                              int64_t lease_token) override;
  absl::StatusOr<store::JobRecord> Finish(const std::string& id, store::JobState state,
                                          int32_t error_code, const std::string& error_message,
                                          int64_t lease_token) override;
  absl::StatusOr<store::JobRecord> Cancel(const std::string& id) override;
  absl::Status PutResult(const std::string& id, const std::string& bytes,
                         int64_t lease_token) override;
  absl::StatusOr<store::ResultInfo> GetResultInfo(const std::string& id) override;
  absl::StatusOr<std::string> GetResultChunk(const std::string& id, int64_t seq) override;
  absl::Status Delete(const std::string& id) override;
  absl::StatusOr<store::JobRecord> Requeue(const std::string& id, int64_t lease_token) override;
  absl::StatusOr<std::vector<store::JobRecord>> RequeueInterrupted(int32_t max_attempts) override;
  absl::StatusOr<store::QueueCounts> CountQueued(const std::string& owner) override;
  absl::StatusOr<int64_t> ExpireResults(int64_t now_ms, int64_t retention_ms) override;
  absl::StatusOr<int64_t> StoredBytes(const std::string& owner) override;
  absl::StatusOr<store::StoreStats> Stats() override;
  bool Shared() const override { return inner_->Shared(); }
  int64_t NowMs() const override { return inner_->NowMs(); }
  bool SubscribeChanges(store::ChangeCallbacks callbacks) override {
    return inner_->SubscribeChanges(std::move(callbacks));
  }
  void StopChanges() override { inner_->StopChanges(); }
  store::ShardStore* shards() override { return inner_->shards(); }

  store::JobStore& inner() { return *inner_; }

 private:
  // Runs `call` (returning a Status or StatusOr), recording its time and any store failure.
  template <typename Call>
  auto Measure(const char* operation, Call&& call) -> decltype(call());

  const std::unique_ptr<store::JobStore> inner_;
  ServiceMetrics& metrics_;
};

}  // namespace attattr::server
