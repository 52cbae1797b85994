// SQL pieces the PostgreSQL job and shard stores share (one translation unit each): the job
// columns and their reading into a JobRecord, row locks, the notification of a change, and the
// transitions both stores make inside their own transactions (start, re-queue, finish a job).
// Internal to server/store; includes libpqxx.
#pragma once

#include <cstdint>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/job_store.h"

namespace attattr::store::pg {

// Column order shared by every SELECT that builds a JobRecord (see RecordFromRow).
inline constexpr char kJobColumns[] =
    "id, request_id, kind, model, priority, state, spec, error_code, error_message, "
    "progress_stage, progress_done, progress_total, create_time_ms, start_time_ms, end_time_ms, "
    "update_time_ms, attempts, has_result, result_size_bytes, result_chunk_count, owner, "
    "lease_holder, lease_token, lease_expiry_ms, reserved_bytes";
// The notification channel of job changes; the payload is the job id, or "shards:" + the job id
// when shards of the job became claimable.
inline constexpr char kChannel[] = "attattr_jobs";
inline constexpr char kShardsPayloadPrefix[] = "shards:";
// The database's clock in unix ms (leases are timed by it).
inline constexpr char kDbNowMs[] = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

absl::StatusOr<JobRecord> RecordFromRow(const pqxx::row& row);
absl::StatusOr<std::vector<JobRecord>> Records(const pqxx::result& rows);
// "SELECT <kJobColumns> FROM attattr_jobs".
std::string SelectJob();
// The one record an UPDATE ... RETURNING gave; NotFound naming `id` when none.
absl::StatusOr<JobRecord> OneRecord(const pqxx::result& rows, const std::string& id);

struct LockedJob {
  JobState state = JobState::kQueued;
  int64_t lease_token = 0;
};
// The job's state and lease token, its row locked until `txn` ends; NotFound when absent.
absl::StatusOr<LockedJob> LockJob(pqxx::work& txn, const std::string& id);
// Locks job `id` and checks it is RUNNING, with `lease_token` unless kNoLease
// (FailedPrecondition otherwise).
absl::Status LockRunningJob(pqxx::work& txn, const std::string& id, int64_t lease_token);
// NOTIFY kChannel with `payload`, delivered when `txn` commits.
void Notify(pqxx::transaction_base& txn, const std::string& payload);
// A PostgreSQL text[] literal of printable-ASCII values ('"' and '\\' escaped).
std::string TextArray(const std::vector<std::string>& values);

// Within `txn`: QUEUED job `id` (checked by the caller) starts RUNNING with a new lease token for
// `holder`, lasting `lease_ms` by the database's clock (0 = no expiry).
absl::StatusOr<JobRecord> StartJob(pqxx::work& txn, const std::string& id,
                                   const std::string& holder, int64_t lease_ms, int64_t now_ms);
// Within `txn`: RUNNING job `id` (locked by the caller) back to QUEUED, lease released and its
// token advanced (the run that held it is fenced off: its writes no longer match), progress and
// partial result dropped (its shards are kept: their results stay valid). `count_attempt` false
// (a run handing the job back on purpose): its start is not counted against max attempts.
absl::StatusOr<JobRecord> RequeueJob(pqxx::work& txn, const std::string& id, int64_t now_ms,
                                     bool count_attempt);
// Within `txn`: job `id` (locked by the caller, not terminal) ends in terminal `state`; its
// unfinished shards go, and the results of the finished ones (merged, or moot).
absl::StatusOr<JobRecord> FinishLockedJob(pqxx::work& txn, const std::string& id, JobState state,
                                          int32_t error_code, const std::string& error_message,
                                          int64_t now_ms);
// Within `txn`: RUNNING job `id` (locked by the caller), started `attempts` times, whose run died
// (its process, or its lease lapsed): re-queued with the start counted (RequeueJob), or FAILED
// (INTERNAL, TooManyAttemptsMessage) once started max_attempts times.
absl::StatusOr<JobRecord> RecoverJob(pqxx::work& txn, const std::string& id, int32_t attempts,
                                     int32_t max_attempts, int64_t now_ms);

}  // namespace attattr::store::pg
