// PostgresShardStore (see postgres_shard_store.h). Rows are locked job first, then shard, in
// every transaction that takes both, so completions, failures, recoveries and cancels never
// deadlock one another.
#include "store/postgres_shard_store.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "store/job_store_rules.h"
#include "store/pg_connection_pool.h"
#include "store/pg_job_rows.h"

namespace attattr::store {
namespace {

constexpr char kShardColumns[] =
    "job_id, shard, state, begin_item, end_item, attempts, lease_holder, lease_token, "
    "lease_expiry_ms, error_code, error_message, stage, input";

std::optional<ShardState> ShardStateFromName(const std::string& name) {
  for (int i = 0; i <= static_cast<int>(ShardState::kFailed); ++i) {
    const auto state = static_cast<ShardState>(i);
    if (name == ShardStateName(state)) return state;
  }
  return std::nullopt;
}

absl::StatusOr<ShardRecord> ShardFromRow(const pqxx::row& row) {
  ShardRecord r;
  r.job_id = row[0].as<std::string>();
  r.index = row[1].as<int32_t>();
  std::optional<ShardState> state = ShardStateFromName(row[2].as<std::string>());
  if (!state.has_value()) {
    return absl::DataLossError(
        absl::StrCat("shard ", r.index, " of job ", Quote(r.job_id), " has an unknown state"));
  }
  r.state = *state;
  r.items = {row[3].as<int64_t>(), row[4].as<int64_t>()};
  r.attempts = row[5].as<int32_t>();
  r.lease_holder = row[6].as<std::string>();
  r.lease_token = row[7].as<int64_t>();
  r.lease_expiry_ms = row[8].as<int64_t>();
  r.error_code = row[9].as<int32_t>();
  r.error_message = row[10].as<std::string>();
  r.stage = row[11].as<int32_t>();
  r.input = pqxx::binarystring(row[12]).str();
  return r;
}

absl::StatusOr<std::vector<ShardRecord>> Shards(const pqxx::result& rows) {
  std::vector<ShardRecord> shards;
  for (const auto& row : rows) {
    ATTATTR_ASSIGN_OR_RETURN(auto shard, ShardFromRow(row));
    shards.push_back(std::move(shard));
  }
  return shards;
}

std::string ShardName(const std::string& job_id, int32_t index) {
  return absl::StrCat("shard ", index, " of job ", Quote(job_id));
}

// Locks the shard (after its job, which the caller locked) and checks this run still holds it.
absl::StatusOr<ShardRecord> LockHeldShard(pqxx::work& txn, const HeldShard& held) {
  const pqxx::result rows = txn.exec_params(
      absl::StrCat("SELECT ", kShardColumns,
                   " FROM attattr_shards WHERE job_id = $1 AND shard = $2 FOR UPDATE"),
      held.job_id, held.index);
  if (rows.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(ShardName(held.job_id, held.index), " is gone (its job ended)"));
  }
  ATTATTR_ASSIGN_OR_RETURN(ShardRecord shard, ShardFromRow(rows[0]));
  if (shard.state != ShardState::kRunning || shard.lease_token != held.token) {
    return absl::FailedPreconditionError(
        absl::StrCat(ShardName(held.job_id, held.index), " is no longer held by this run (",
                     ShardStateName(shard.state), ", lease token ", shard.lease_token,
                     ", this run's ", held.token, ")"));
  }
  return shard;
}

// Within `txn`, the job and shard locked: the shard failed for good, and so does its job.
absl::Status FailShardAndJob(pqxx::work& txn, const ShardRecord& shard, int32_t error_code,
                             const std::string& error_message, int64_t now_ms) {
  txn.exec_params(
      "UPDATE attattr_shards SET state = 'FAILED', lease_expiry_ms = 0, error_code = $3, "
      "error_message = $4 WHERE job_id = $1 AND shard = $2",
      shard.job_id, shard.index, error_code, TextForStore(error_message));
  ATTATTR_ASSIGN_OR_RETURN(const pg::LockedJob job, pg::LockJob(txn, shard.job_id));
  if (IsTerminal(job.state)) return absl::OkStatus();
  return pg::FinishLockedJob(txn, shard.job_id, JobState::kFailed, error_code,
                             absl::StrCat("shard ", shard.index, " (items ", shard.items.begin,
                                          "..", shard.items.end - 1, "): ", error_message),
                             now_ms)
      .status();
}

// Within `txn`: the shard back to QUEUED, its lease released, `error` recorded.
void RequeueShard(pqxx::work& txn, const ShardRecord& shard, int32_t error_code,
                  const std::string& error_message, bool count_attempt) {
  txn.exec_params(
      "UPDATE attattr_shards SET state = 'QUEUED', lease_holder = '', lease_expiry_ms = 0, "
      "error_code = $3, error_message = $4, attempts = attempts - $5 "
      "WHERE job_id = $1 AND shard = $2",
      shard.job_id, shard.index, error_code, TextForStore(error_message), count_attempt ? 0 : 1);
  pg::Notify(txn, std::string(pg::kShardsPayloadPrefix) + shard.job_id);
}

absl::Status CheckRanges(const std::vector<ShardRange>& ranges) {
  int64_t expected_begin = 0;
  for (const ShardRange& r : ranges) {
    if (r.begin != expected_begin || r.end <= r.begin) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ranges: not contiguous non-empty ranges from item 0 (at ", r.begin, "..", r.end, ")"));
    }
    expected_begin = r.end;
  }
  if (ranges.empty()) return absl::InvalidArgumentError("ranges: empty");
  return absl::OkStatus();
}

}  // namespace

const char* ShardStateName(ShardState state) {
  switch (state) {
    case ShardState::kQueued:
      return "QUEUED";
    case ShardState::kRunning:
      return "RUNNING";
    case ShardState::kSucceeded:
      return "SUCCEEDED";
    case ShardState::kFailed:
      return "FAILED";
  }
  return "UNKNOWN";
}

absl::StatusOr<std::vector<ShardRecord>> PostgresShardStore::SplitJob(const std::string& job_id,
                                                                      int64_t job_lease_token,
                                                                      const ShardStage& stage) {
  const std::vector<ShardRange>& ranges = stage.ranges;
  if (stage.stage < 0) return absl::InvalidArgumentError("stage: negative");
  std::vector<ShardRecord> shards;
  ATTATTR_RETURN_IF_ERROR(pool_.Run(
      absl::StrCat("splitting job ", Quote(job_id)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::work txn(c);
        ATTATTR_RETURN_IF_ERROR(pg::LockRunningJob(txn, job_id, job_lease_token));
        const pqxx::row latest = txn.exec_params1(
            "SELECT COALESCE(max(stage), -1), COALESCE(max(shard), -1) FROM attattr_shards "
            "WHERE job_id = $1",
            job_id);
        if (latest[0].as<int32_t>() > stage.stage) {
          return absl::InvalidArgumentError(absl::StrCat(
              "stage: ", stage.stage, " is before the job's latest, ", latest[0].as<int32_t>()));
        }
        if (latest[0].as<int32_t>() < stage.stage) {
          ATTATTR_RETURN_IF_ERROR(CheckRanges(ranges));
          const int32_t first = latest[1].as<int32_t>() + 1;
          const pqxx::binarystring input(stage.input.data(), stage.input.size());
          for (size_t i = 0; i < ranges.size(); ++i) {
            txn.exec_params(
                "INSERT INTO attattr_shards (job_id, shard, state, begin_item, end_item, stage, "
                "input) VALUES ($1, $2, 'QUEUED', $3, $4, $5, $6)",
                job_id, first + static_cast<int32_t>(i), ranges[i].begin, ranges[i].end,
                stage.stage, input);
          }
        }
        ATTATTR_ASSIGN_OR_RETURN(
            shards, Shards(txn.exec_params(absl::StrCat("SELECT ", kShardColumns,
                                                        " FROM attattr_shards WHERE job_id = $1 "
                                                        "AND stage = $2 ORDER BY shard"),
                                           job_id, stage.stage)));
        int64_t done = 0;
        bool unfinished = false;
        for (const ShardRecord& s : shards) {
          if (s.state == ShardState::kSucceeded) done += s.items.end - s.items.begin;
          unfinished = unfinished || s.state != ShardState::kSucceeded;
        }
        // The job is carried by its shards' leases from now on — unless they are all done and
        // the caller merges them next, under the job's own lease (which lapses should it die).
        txn.exec_params(
            "UPDATE attattr_jobs SET lease_expiry_ms = CASE WHEN $6 THEN 0 ELSE lease_expiry_ms "
            "END, progress_stage = CASE WHEN $5 = '' THEN progress_stage ELSE $5 END, "
            "progress_done = $2, progress_total = $3, update_time_ms = $4 WHERE id = $1",
            job_id, done, shards.empty() ? int64_t{0} : shards.back().items.end, now_ms_(),
            TextForStore(stage.name), unfinished);
        pg::Notify(txn, job_id);
        pg::Notify(txn, std::string(pg::kShardsPayloadPrefix) + job_id);
        txn.commit();
        return absl::OkStatus();
      }));
  return shards;
}

absl::StatusOr<std::vector<ShardRecord>> PostgresShardStore::ListShards(const std::string& job_id) {
  std::vector<ShardRecord> shards;
  ATTATTR_RETURN_IF_ERROR(pool_.Run(
      absl::StrCat("listing the shards of ", Quote(job_id)),
      [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        ATTATTR_ASSIGN_OR_RETURN(
            shards, Shards(txn.exec_params(absl::StrCat("SELECT ", kShardColumns,
                                                        " FROM attattr_shards WHERE job_id = $1 "
                                                        "ORDER BY shard"),
                                           job_id)));
        return absl::OkStatus();
      }));
  return shards;
}

absl::StatusOr<std::optional<ShardRecord>> PostgresShardStore::ClaimShard(
    const ClaimRequest& request) {
  ATTATTR_RETURN_IF_ERROR(ValidateClaim(request));
  std::optional<ShardRecord> claimed;
  ATTATTR_RETURN_IF_ERROR(pool_.Run("claiming a shard", [&](pqxx::connection& c) -> absl::Status {
    pqxx::work txn(c);
    // Only shards of jobs at the priority of the best QUEUED job a claim could take, or above
    // (the candidates of the job claim: owners at their running limit do not count).
    const pqxx::result next = txn.exec_params(
        "SELECT s.job_id, s.shard FROM attattr_shards AS s JOIN attattr_jobs AS j "
        "ON j.id = s.job_id WHERE s.state = 'QUEUED' AND j.state = 'RUNNING' AND "
        "j.priority >= COALESCE((SELECT max(q.priority) FROM attattr_jobs AS q "
        "WHERE q.state = 'QUEUED' AND ($1 = 0 OR (SELECT count(*) FROM attattr_jobs AS r "
        "WHERE r.state = 'RUNNING' AND r.owner = q.owner) < $1)), j.priority) "
        "ORDER BY j.priority DESC, j.start_seq, s.shard LIMIT 1 FOR UPDATE OF s SKIP LOCKED",
        request.max_running_per_owner);
    if (next.empty()) return absl::OkStatus();
    const pqxx::result rows = txn.exec_params(
        absl::StrCat("UPDATE attattr_shards SET state = 'RUNNING', attempts = attempts + 1, "
                     "lease_holder = $3, lease_token = lease_token + 1, lease_expiry_ms = ",
                     pg::kDbNowMs, " + $4 WHERE job_id = $1 AND shard = $2 RETURNING ",
                     kShardColumns),
        next[0][0].as<std::string>(), next[0][1].as<int32_t>(), request.holder, request.lease_ms);
    ATTATTR_ASSIGN_OR_RETURN(ShardRecord shard, ShardFromRow(rows[0]));
    txn.commit();
    claimed = std::move(shard);
    return absl::OkStatus();
  }));
  return claimed;
}

absl::StatusOr<ShardCompletion> PostgresShardStore::CompleteShard(const HeldShard& held,
                                                                  const std::string& result,
                                                                  const std::string& holder,
                                                                  int64_t job_lease_ms) {
  ShardCompletion completion;
  ATTATTR_RETURN_IF_ERROR(pool_.Run(
      absl::StrCat("storing the result of ", ShardName(held.job_id, held.index)),
      [&](pqxx::connection& c) -> absl::Status {
        pqxx::work txn(c);
        ATTATTR_ASSIGN_OR_RETURN(const pg::LockedJob job, pg::LockJob(txn, held.job_id));
        if (job.state != JobState::kRunning && job.state != JobState::kQueued) {
          return WrongState(held.job_id, job.state, "QUEUED or RUNNING");
        }
        ATTATTR_RETURN_IF_ERROR(LockHeldShard(txn, held).status());
        txn.exec_params(
            "UPDATE attattr_shards SET state = 'SUCCEEDED', result = $3, lease_expiry_ms = 0 "
            "WHERE job_id = $1 AND shard = $2",
            held.job_id, held.index, pqxx::binarystring(result.data(), result.size()));
        // Every stage before the latest has succeeded; progress counts the shard's stage.
        const pqxx::row left = txn.exec_params1(
            "SELECT count(*) FILTER (WHERE state <> 'SUCCEEDED'), "
            "COALESCE(sum(end_item - begin_item) FILTER (WHERE state = 'SUCCEEDED' AND stage = "
            "(SELECT stage FROM attattr_shards WHERE job_id = $1 AND shard = $2)), 0)::BIGINT "
            "FROM attattr_shards WHERE job_id = $1",
            held.job_id, held.index);
        txn.exec_params(
            "UPDATE attattr_jobs SET progress_done = $2, update_time_ms = $3 WHERE id = $1",
            held.job_id, left[1].as<int64_t>(), now_ms_());
        if (left[0].as<int64_t>() == 0 && job.state == JobState::kRunning) {
          // The last shard: its runner takes the job, with a fresh lease, to merge the results.
          ATTATTR_ASSIGN_OR_RETURN(
              completion.job,
              pg::OneRecord(
                  txn.exec_params(absl::StrCat("UPDATE attattr_jobs SET lease_holder = $2, "
                                               "lease_token = lease_token + 1, lease_expiry_ms = ",
                                               pg::kDbNowMs,
                                               " + $3, progress_stage = 'merging shards' WHERE "
                                               "id = $1 RETURNING ",
                                               pg::kJobColumns),
                                  held.job_id, holder, job_lease_ms),
                  held.job_id));
          completion.job_complete = true;
        }
        pg::Notify(txn, held.job_id);
        txn.commit();
        return absl::OkStatus();
      }));
  return completion;
}

absl::StatusOr<ShardRecord> PostgresShardStore::FailShard(const HeldShard& held, int32_t error_code,
                                                          const std::string& error_message,
                                                          int32_t max_attempts) {
  ShardRecord after;
  ATTATTR_RETURN_IF_ERROR(
      pool_.Run(absl::StrCat("recording a failure of ", ShardName(held.job_id, held.index)),
                [&](pqxx::connection& c) -> absl::Status {
                  pqxx::work txn(c);
                  ATTATTR_ASSIGN_OR_RETURN(const pg::LockedJob job, pg::LockJob(txn, held.job_id));
                  (void)job;
                  ATTATTR_ASSIGN_OR_RETURN(ShardRecord shard, LockHeldShard(txn, held));
                  if (shard.attempts >= max_attempts) {
                    ATTATTR_RETURN_IF_ERROR(
                        FailShardAndJob(txn, shard, error_code, error_message, now_ms_()));
                    shard.state = ShardState::kFailed;
                  } else {
                    RequeueShard(txn, shard, error_code, error_message, /*count_attempt=*/true);
                    shard.state = ShardState::kQueued;
                  }
                  shard.error_code = error_code;
                  shard.error_message = error_message;
                  pg::Notify(txn, held.job_id);
                  txn.commit();
                  after = std::move(shard);
                  return absl::OkStatus();
                }));
  return after;
}

absl::Status PostgresShardStore::ReleaseShard(const HeldShard& held) {
  return pool_.Run(absl::StrCat("releasing ", ShardName(held.job_id, held.index)),
                   [&](pqxx::connection& c) -> absl::Status {
                     pqxx::work txn(c);
                     ATTATTR_ASSIGN_OR_RETURN(const pg::LockedJob job,
                                              pg::LockJob(txn, held.job_id));
                     (void)job;
                     ATTATTR_ASSIGN_OR_RETURN(const ShardRecord shard, LockHeldShard(txn, held));
                     RequeueShard(txn, shard, 0, "", /*count_attempt=*/false);
                     txn.commit();
                     return absl::OkStatus();
                   });
}

absl::StatusOr<std::string> PostgresShardStore::GetShardResult(const std::string& job_id,
                                                               int32_t index) {
  std::string result;
  ATTATTR_RETURN_IF_ERROR(pool_.Run(
      absl::StrCat("reading the result of ", ShardName(job_id, index)),
      [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        const pqxx::result rows = txn.exec_params(
            "SELECT result FROM attattr_shards WHERE job_id = $1 AND shard = $2 AND "
            "state = 'SUCCEEDED'",
            job_id, index);
        if (rows.empty() || rows[0][0].is_null()) {
          return absl::NotFoundError(absl::StrCat(ShardName(job_id, index), " has no result"));
        }
        result = pqxx::binarystring(rows[0][0]).str();
        return absl::OkStatus();
      }));
  return result;
}

absl::StatusOr<std::vector<HeldShard>> PostgresShardStore::RenewShardLeases(
    const std::string& holder, const std::vector<HeldShard>& shards, int64_t lease_ms) {
  if (shards.empty()) return std::vector<HeldShard>();
  std::vector<std::string> jobs;
  std::string indexes = "{", tokens = "{";
  for (const HeldShard& s : shards) {
    jobs.push_back(s.job_id);
    absl::StrAppend(&indexes, indexes.size() > 1 ? "," : "", s.index);
    absl::StrAppend(&tokens, tokens.size() > 1 ? "," : "", s.token);
  }
  indexes += "}";
  tokens += "}";
  std::set<std::pair<std::string, int32_t>> renewed;
  ATTATTR_RETURN_IF_ERROR(
      pool_.Run("renewing shard leases", [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        const pqxx::result rows = txn.exec_params(
            absl::StrCat("UPDATE attattr_shards AS s SET lease_expiry_ms = ", pg::kDbNowMs,
                         " + $5 FROM unnest($2::text[], $3::int[], $4::bigint[]) AS "
                         "l(job_id, shard, token) WHERE s.job_id = l.job_id AND "
                         "s.shard = l.shard AND s.lease_token = l.token AND "
                         "s.state = 'RUNNING' AND s.lease_holder = $1 RETURNING s.job_id, s.shard"),
            holder, pg::TextArray(jobs), indexes, tokens, lease_ms);
        for (const auto& row : rows) {
          renewed.insert({row[0].as<std::string>(), row[1].as<int32_t>()});
        }
        return absl::OkStatus();
      }));
  std::vector<HeldShard> lost;
  for (const HeldShard& s : shards) {
    if (renewed.count({s.job_id, s.index}) == 0) lost.push_back(s);
  }
  return lost;
}

absl::StatusOr<std::array<int64_t, kShardStateCount>> PostgresShardStore::CountShards() {
  std::array<int64_t, kShardStateCount> counts{};
  ATTATTR_RETURN_IF_ERROR(pool_.Run("counting shards", [&](pqxx::connection& c) -> absl::Status {
    pqxx::nontransaction txn(c);
    for (const auto& row : txn.exec("SELECT state, count(*) FROM attattr_shards GROUP BY state")) {
      std::optional<ShardState> state = ShardStateFromName(row[0].as<std::string>());
      if (state.has_value()) counts[static_cast<int>(*state)] = row[1].as<int64_t>();
    }
    return absl::OkStatus();
  }));
  return counts;
}

absl::StatusOr<std::vector<ShardRecord>> PostgresShardStore::RecoverExpiredShardLeases(
    int32_t max_attempts) {
  std::vector<std::pair<std::string, int32_t>> lapsed;
  ATTATTR_RETURN_IF_ERROR(
      pool_.Run("finding shards whose lease lapsed", [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        for (const auto& row : txn.exec(absl::StrCat(
                 "SELECT job_id, shard FROM attattr_shards WHERE state = 'RUNNING' AND "
                 "lease_expiry_ms > 0 AND lease_expiry_ms < ",
                 pg::kDbNowMs, " ORDER BY job_id, shard"))) {
          lapsed.push_back({row[0].as<std::string>(), row[1].as<int32_t>()});
        }
        return absl::OkStatus();
      }));
  std::vector<ShardRecord> changed;
  for (const auto& [job_id, index] : lapsed) {
    ATTATTR_RETURN_IF_ERROR(pool_.Run(
        absl::StrCat("recovering ", ShardName(job_id, index)),
        [&, job_id = job_id, index = index](pqxx::connection& c) -> absl::Status {
          pqxx::work txn(c);
          // Job first, then the shard (skipped when another replica is recovering it now).
          absl::StatusOr<pg::LockedJob> job = pg::LockJob(txn, job_id);
          if (!job.ok()) return absl::IsNotFound(job.status()) ? absl::OkStatus() : job.status();
          const pqxx::result rows = txn.exec_params(
              absl::StrCat("SELECT ", kShardColumns,
                           " FROM attattr_shards WHERE job_id = $1 AND shard = $2 AND "
                           "state = 'RUNNING' AND lease_expiry_ms > 0 AND lease_expiry_ms < ",
                           pg::kDbNowMs, " FOR UPDATE SKIP LOCKED"),
              job_id, index);
          if (rows.empty()) return absl::OkStatus();
          ATTATTR_ASSIGN_OR_RETURN(ShardRecord shard, ShardFromRow(rows[0]));
          const int32_t internal = static_cast<int32_t>(absl::StatusCode::kInternal);
          if (shard.attempts >= max_attempts) {
            ATTATTR_RETURN_IF_ERROR(
                FailShardAndJob(txn, shard, internal,
                                TooManyAttemptsMessage(shard.attempts, max_attempts), now_ms_()));
            shard.state = ShardState::kFailed;
          } else {
            RequeueShard(txn, shard, internal, "its replica stopped renewing the lease",
                         /*count_attempt=*/true);
            shard.state = ShardState::kQueued;
          }
          pg::Notify(txn, job_id);
          txn.commit();
          changed.push_back(std::move(shard));
          return absl::OkStatus();
        }));
  }
  return changed;
}

}  // namespace attattr::store
