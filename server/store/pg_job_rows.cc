// SQL pieces of the PostgreSQL stores (see pg_job_rows.h).
#include "store/pg_job_rows.h"

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "store/job_store_rules.h"

namespace attattr::store::pg {

absl::StatusOr<JobRecord> RecordFromRow(const pqxx::row& row) {
  JobRecord r;
  r.id = row[0].as<std::string>();
  r.request_id = row[1].is_null() ? std::string() : row[1].as<std::string>();
  r.kind = row[2].as<std::string>();
  r.model = row[3].as<std::string>();
  r.priority = row[4].as<int32_t>();
  std::optional<JobState> state = JobStateFromName(row[5].as<std::string>());
  if (!state.has_value()) {
    return absl::DataLossError(absl::StrCat("job ", Quote(r.id), " has an unknown state"));
  }
  r.state = *state;
  r.spec = pqxx::binarystring(row[6]).str();
  r.error_code = row[7].as<int32_t>();
  r.error_message = row[8].as<std::string>();
  r.progress.stage = row[9].as<std::string>();
  r.progress.done = row[10].as<int64_t>();
  r.progress.total = row[11].as<int64_t>();
  r.create_time_ms = row[12].as<int64_t>();
  r.start_time_ms = row[13].as<int64_t>();
  r.end_time_ms = row[14].as<int64_t>();
  r.update_time_ms = row[15].as<int64_t>();
  r.attempts = row[16].as<int32_t>();
  r.has_result = row[17].as<bool>();
  r.result_size_bytes = row[18].as<int64_t>();
  r.result_chunk_count = row[19].as<int64_t>();
  r.owner = row[20].as<std::string>();
  r.lease_holder = row[21].as<std::string>();
  r.lease_token = row[22].as<int64_t>();
  r.lease_expiry_ms = row[23].as<int64_t>();
  r.reserved_result_bytes = row[24].as<int64_t>();
  return r;
}

absl::StatusOr<std::vector<JobRecord>> Records(const pqxx::result& rows) {
  std::vector<JobRecord> records;
  records.reserve(rows.size());
  for (const auto& row : rows) {
    ATTATTR_ASSIGN_OR_RETURN(auto record, RecordFromRow(row));
    records.push_back(std::move(record));
  }
  return records;
}

std::string SelectJob() { return absl::StrCat("SELECT ", kJobColumns, " FROM attattr_jobs"); }

absl::StatusOr<LockedJob> LockJob(pqxx::work& txn, const std::string& id) {
  const pqxx::result rows =
      txn.exec_params("SELECT state, lease_token FROM attattr_jobs WHERE id = $1 FOR UPDATE", id);
  if (rows.empty()) return JobNotFound(id);
  std::optional<JobState> state = JobStateFromName(rows[0][0].as<std::string>());
  if (!state.has_value()) {
    return absl::DataLossError(absl::StrCat("job ", Quote(id), " has an unknown state"));
  }
  return LockedJob{*state, rows[0][1].as<int64_t>()};
}

absl::Status LockRunningJob(pqxx::work& txn, const std::string& id, int64_t lease_token) {
  ATTATTR_ASSIGN_OR_RETURN(const LockedJob job, LockJob(txn, id));
  if (job.state != JobState::kRunning) return WrongState(id, job.state, "RUNNING");
  if (lease_token != kNoLease && job.lease_token != lease_token) {
    return LeaseLost(id, lease_token, job.lease_token);
  }
  return absl::OkStatus();
}

void Notify(pqxx::transaction_base& txn, const std::string& id) {
  txn.exec_params("SELECT pg_notify($1, $2)", std::string(kChannel), id);
}

std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

absl::StatusOr<JobRecord> StartJob(pqxx::work& txn, const std::string& id,
                                   const std::string& holder, int64_t lease_ms, int64_t now_ms) {
  txn.exec_params("DELETE FROM attattr_results WHERE job_id = $1", id);
  const pqxx::result rows = txn.exec_params(
      absl::StrCat("UPDATE attattr_jobs SET state = 'RUNNING', attempts = attempts + 1, "
                   "start_time_ms = $2, update_time_ms = $2, has_result = FALSE, "
                   "result_size_bytes = 0, result_chunk_count = 0, lease_holder = $3, "
                   "lease_token = lease_token + 1, start_seq = nextval('attattr_start_seq'), "
                   "lease_expiry_ms = CASE WHEN $4 > 0 THEN ",
                   kDbNowMs, " + $4 ELSE 0 END WHERE id = $1 RETURNING ", kJobColumns),
      id, now_ms, holder, lease_ms);
  Notify(txn, id);
  if (rows.empty()) return JobNotFound(id);
  return RecordFromRow(rows[0]);
}

absl::StatusOr<JobRecord> RequeueJob(pqxx::work& txn, const std::string& id, int64_t now_ms,
                                     bool count_attempt) {
  txn.exec_params("DELETE FROM attattr_results WHERE job_id = $1", id);
  const pqxx::result rows = txn.exec_params(
      absl::StrCat("UPDATE attattr_jobs SET state = 'QUEUED', update_time_ms = $2, "
                   "progress_stage = '', progress_done = 0, progress_total = 0, "
                   "has_result = FALSE, result_size_bytes = 0, result_chunk_count = 0, "
                   "lease_holder = '', lease_expiry_ms = 0, lease_token = lease_token + 1, "
                   "attempts = GREATEST(attempts - $3, 0) WHERE id = $1 RETURNING ",
                   kJobColumns),
      id, now_ms, count_attempt ? 0 : 1);
  Notify(txn, id);
  if (rows.empty()) return JobNotFound(id);
  return RecordFromRow(rows[0]);
}

absl::StatusOr<JobRecord> FinishLockedJob(pqxx::work& txn, const std::string& id, JobState state,
                                          int32_t error_code, const std::string& error_message,
                                          int64_t now_ms) {
  const bool keep_result = state == JobState::kSucceeded;
  if (!keep_result) txn.exec_params("DELETE FROM attattr_results WHERE job_id = $1", id);
  // Unfinished shards are moot; finished ones stay as the record of who ran what (their results,
  // merged or moot, go).
  txn.exec_params("DELETE FROM attattr_shards WHERE job_id = $1 AND state <> 'SUCCEEDED'", id);
  txn.exec_params("UPDATE attattr_shards SET result = NULL WHERE job_id = $1", id);
  const pqxx::result rows = txn.exec_params(
      absl::StrCat("UPDATE attattr_jobs SET state = $2, error_code = $3, error_message = $4, "
                   "end_time_ms = $5, update_time_ms = $5, has_result = has_result AND $6, "
                   "lease_expiry_ms = 0, "
                   "result_size_bytes = CASE WHEN $6 THEN result_size_bytes ELSE 0 END, "
                   "result_chunk_count = CASE WHEN $6 THEN result_chunk_count ELSE 0 END "
                   "WHERE id = $1 RETURNING ",
                   kJobColumns),
      id, std::string(JobStateName(state)), error_code, TextForStore(error_message), now_ms,
      keep_result);
  Notify(txn, id);
  if (rows.empty()) return JobNotFound(id);
  return RecordFromRow(rows[0]);
}

absl::StatusOr<JobRecord> OneRecord(const pqxx::result& rows, const std::string& id) {
  if (rows.empty()) return JobNotFound(id);
  return RecordFromRow(rows[0]);
}

absl::StatusOr<JobRecord> RecoverJob(pqxx::work& txn, const std::string& id, int32_t attempts,
                                     int32_t max_attempts, int64_t now_ms) {
  if (attempts >= max_attempts) {
    return FinishLockedJob(txn, id, JobState::kFailed,
                           static_cast<int32_t>(absl::StatusCode::kInternal),
                           TooManyAttemptsMessage(attempts, max_attempts), now_ms);
  }
  return RequeueJob(txn, id, now_ms, /*count_attempt=*/true);
}

}  // namespace attattr::store::pg
