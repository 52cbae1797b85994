// MeasuredJobStore (see measured_job_store.h): one timed forward per operation.
#include "measured_job_store.h"

#include <chrono>

#include "attattr/base/status_macros.h"

namespace attattr::server {
namespace {

// A failure of the store itself, as opposed to an answer about the job (missing, wrong state,
// bad argument, already there).
bool IsStoreFailure(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kCancelled:
      return false;
    default:
      return true;
  }
}

}  // namespace

template <typename Call>
auto MeasuredJobStore::Measure(const char* operation, Call&& call) -> decltype(call()) {
  const auto start = std::chrono::steady_clock::now();
  auto result = call();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_.RecordStoreCall(operation, seconds, IsStoreFailure(StatusOf(result)));
  return result;
}

absl::StatusOr<store::CreateResult> MeasuredJobStore::Create(const store::JobRecord& record,
                                                             const store::AdmissionLimits& limits) {
  return Measure("create", [&] { return inner_->Create(record, limits); });
}
absl::StatusOr<store::JobRecord> MeasuredJobStore::Get(const std::string& id, bool include_spec) {
  return Measure("get", [&] { return inner_->Get(id, include_spec); });
}
absl::StatusOr<store::ListPage> MeasuredJobStore::List(const store::ListFilter& filter) {
  return Measure("list", [&] { return inner_->List(filter); });
}
absl::StatusOr<store::JobRecord> MeasuredJobStore::MarkRunning(const std::string& id) {
  return Measure("mark_running", [&] { return inner_->MarkRunning(id); });
}
absl::StatusOr<std::optional<store::JobRecord>> MeasuredJobStore::Claim(
    const store::ClaimRequest& request) {
  return Measure("claim", [&] { return inner_->Claim(request); });
}
absl::StatusOr<std::vector<std::string>> MeasuredJobStore::RenewLeases(
    const std::string& holder, const std::vector<store::HeldLease>& leases, int64_t lease_ms) {
  return Measure("renew_leases", [&] { return inner_->RenewLeases(holder, leases, lease_ms); });
}
absl::StatusOr<std::vector<store::JobRecord>> MeasuredJobStore::RecoverExpiredLeases(
    int32_t max_attempts) {
  return Measure("recover_expired_leases",
                 [&] { return inner_->RecoverExpiredLeases(max_attempts); });
}
absl::Status MeasuredJobStore::UpdateProgress(const std::string& id,
                                              const store::JobProgress& progress,
                                              int64_t lease_token) {
  return Measure("update_progress",
                 [&] { return inner_->UpdateProgress(id, progress, lease_token); });
}
absl::StatusOr<store::JobRecord> MeasuredJobStore::Finish(const std::string& id,
                                                          store::JobState state, int32_t error_code,
                                                          const std::string& error_message,
                                                          int64_t lease_token) {
  return Measure("finish",
                 [&] { return inner_->Finish(id, state, error_code, error_message, lease_token); });
}
absl::StatusOr<store::JobRecord> MeasuredJobStore::Cancel(const std::string& id) {
  return Measure("cancel", [&] { return inner_->Cancel(id); });
}
absl::Status MeasuredJobStore::PutResult(const std::string& id, const std::string& bytes,
                                         int64_t lease_token) {
  return Measure("put_result", [&] { return inner_->PutResult(id, bytes, lease_token); });
}
absl::StatusOr<store::ResultInfo> MeasuredJobStore::GetResultInfo(const std::string& id) {
  return Measure("get_result_info", [&] { return inner_->GetResultInfo(id); });
}
absl::StatusOr<std::string> MeasuredJobStore::GetResultChunk(const std::string& id, int64_t seq) {
  return Measure("get_result_chunk", [&] { return inner_->GetResultChunk(id, seq); });
}
absl::Status MeasuredJobStore::Delete(const std::string& id) {
  return Measure("delete", [&] { return inner_->Delete(id); });
}
absl::StatusOr<store::JobRecord> MeasuredJobStore::Requeue(const std::string& id,
                                                           int64_t lease_token) {
  return Measure("requeue", [&] { return inner_->Requeue(id, lease_token); });
}
absl::StatusOr<std::vector<store::JobRecord>> MeasuredJobStore::RequeueInterrupted(
    int32_t max_attempts) {
  return Measure("requeue_interrupted", [&] { return inner_->RequeueInterrupted(max_attempts); });
}
absl::StatusOr<store::QueueCounts> MeasuredJobStore::CountQueued(const std::string& owner) {
  return Measure("count_queued", [&] { return inner_->CountQueued(owner); });
}
absl::StatusOr<int64_t> MeasuredJobStore::ExpireResults(int64_t now_ms, int64_t retention_ms) {
  return Measure("expire_results", [&] { return inner_->ExpireResults(now_ms, retention_ms); });
}
absl::StatusOr<int64_t> MeasuredJobStore::StoredBytes(const std::string& owner) {
  return Measure("stored_bytes", [&] { return inner_->StoredBytes(owner); });
}
absl::StatusOr<store::StoreStats> MeasuredJobStore::Stats() {
  return Measure("stats", [&] { return inner_->Stats(); });
}

}  // namespace attattr::server
