// PostgresJobStore: the JobStore schema, state transitions and chunked results in PostgreSQL.
// Every transition is one transaction that locks the job's row (SELECT ... FOR UPDATE), so two
// replicas changing one job serialise on the database, not in this process. Ids, kinds, owners and
// request ids are COLLATE "C" so listings order them bytewise, as SQLite does.
#include "store/postgres_job_store.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "attattr/base/status_macros.h"
#include "store/job_store_rules.h"
#include "store/pg_connection_pool.h"
#include "store/store_uri.h"

namespace attattr::store {
namespace {

// Column order shared by every SELECT that builds a JobRecord (see RecordFromRow).
constexpr char kJobColumns[] =
    "id, request_id, kind, model, priority, state, spec, error_code, error_message, "
    "progress_stage, progress_done, progress_total, create_time_ms, start_time_ms, end_time_ms, "
    "update_time_ms, attempts, has_result, result_size_bytes, result_chunk_count, owner";

// The schema of version kSchemaVersion.
constexpr char kSchemaSql[] = R"sql(
CREATE TABLE attattr_jobs (
  id                 TEXT    COLLATE "C" PRIMARY KEY,
  request_id         TEXT    COLLATE "C",  -- NULL when the client gave none; unique per owner
  kind               TEXT    COLLATE "C" NOT NULL,
  model              TEXT    NOT NULL,
  priority           INTEGER NOT NULL,
  state              TEXT    NOT NULL
                     CHECK (state IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
  spec               BYTEA   NOT NULL,
  error_code         INTEGER NOT NULL DEFAULT 0,
  error_message      TEXT    NOT NULL DEFAULT '',
  progress_stage     TEXT    NOT NULL DEFAULT '',
  progress_done      BIGINT  NOT NULL DEFAULT 0,
  progress_total     BIGINT  NOT NULL DEFAULT 0,
  create_time_ms     BIGINT  NOT NULL,
  start_time_ms      BIGINT  NOT NULL DEFAULT 0,
  end_time_ms        BIGINT  NOT NULL DEFAULT 0,
  update_time_ms     BIGINT  NOT NULL,
  attempts           INTEGER NOT NULL DEFAULT 0,
  has_result         BOOLEAN NOT NULL DEFAULT FALSE,
  result_size_bytes  BIGINT  NOT NULL DEFAULT 0,
  result_chunk_count BIGINT  NOT NULL DEFAULT 0,
  owner              TEXT    COLLATE "C" NOT NULL DEFAULT '',
  CONSTRAINT attattr_jobs_request_id UNIQUE (owner, request_id)
);
CREATE INDEX attattr_jobs_by_owner ON attattr_jobs (owner, create_time_ms, id);
CREATE INDEX attattr_jobs_by_create_time ON attattr_jobs (create_time_ms, id);
CREATE INDEX attattr_jobs_by_state ON attattr_jobs (state, create_time_ms, id);
CREATE INDEX attattr_jobs_queued ON attattr_jobs (priority DESC, create_time_ms, id)
  WHERE state = 'QUEUED';
CREATE INDEX attattr_jobs_by_end_time ON attattr_jobs (end_time_ms) WHERE end_time_ms > 0;
CREATE TABLE attattr_results (
  job_id TEXT   COLLATE "C" NOT NULL REFERENCES attattr_jobs (id) ON DELETE CASCADE,
  seq    BIGINT NOT NULL,
  data   BYTEA  NOT NULL,
  PRIMARY KEY (job_id, seq)
);
CREATE TABLE attattr_schema (version INTEGER NOT NULL);
)sql";

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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

// The job's state, its row locked until `txn` ends; NotFound when absent.
absl::StatusOr<JobState> LockJob(pqxx::work& txn, const std::string& id) {
  const pqxx::result rows =
      txn.exec_params("SELECT state FROM attattr_jobs WHERE id = $1 FOR UPDATE", id);
  if (rows.empty()) return JobNotFound(id);
  std::optional<JobState> state = JobStateFromName(rows[0][0].as<std::string>());
  if (!state.has_value()) {
    return absl::DataLossError(absl::StrCat("job ", Quote(id), " has an unknown state"));
  }
  return *state;
}

// Locks job `id` and checks it is RUNNING (FailedPrecondition otherwise).
absl::Status LockRunningJob(pqxx::work& txn, const std::string& id) {
  ATTATTR_ASSIGN_OR_RETURN(const JobState state, LockJob(txn, id));
  if (state != JobState::kRunning) return WrongState(id, state, "RUNNING");
  return absl::OkStatus();
}

// The one record an UPDATE ... RETURNING gave.
absl::StatusOr<JobRecord> OneRecord(const pqxx::result& rows, const std::string& id) {
  if (rows.empty()) return JobNotFound(id);
  return RecordFromRow(rows[0]);
}

}  // namespace

absl::Status PostgresJobStoreOptions::Validate() const {
  if (!IsPostgresUri(uri)) {
    return absl::InvalidArgumentError(
        absl::StrCat("uri: must start with postgresql:// or postgres://, got ",
                     Quote(RedactUri(uri).substr(0, 64))));
  }
  const auto in_range = [](const char* field, int64_t value, int64_t lo,
                           int64_t hi) -> absl::Status {
    if (value >= lo && value <= hi) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be in [", lo, ", ", hi, "], got ", value));
  };
  for (const absl::Status& status :
       {in_range("connections", connections, 1, 256),
        in_range("connect_timeout_s", connect_timeout_s, 1, 300),
        in_range("statement_timeout_ms", statement_timeout_ms, 100, 600000),
        in_range("result_chunk_bytes", result_chunk_bytes, 4096, int64_t{1} << 20),
        in_range("result_write_batch_bytes", result_write_batch_bytes, 4096, int64_t{1} << 30)}) {
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PostgresJobStore>> PostgresJobStore::Open(
    const PostgresJobStoreOptions& options) {
  ATTATTR_RETURN_IF_ERROR(options.Validate());
  std::string conninfo = options.uri;
  conninfo = WithUriDefault(conninfo, "connect_timeout", std::to_string(options.connect_timeout_s));
  conninfo = WithUriDefault(conninfo, "application_name", "attattr-server");
  // A peer that vanishes (node lost, network cut) is noticed in about 20 s, not hours.
  conninfo = WithUriDefault(conninfo, "keepalives_idle", "10");
  conninfo = WithUriDefault(conninfo, "keepalives_interval", "5");
  conninfo = WithUriDefault(conninfo, "keepalives_count", "2");
  if (!options.password.empty()) conninfo = WithUriDefault(conninfo, "password", options.password);
  PgPoolOptions pool;
  pool.conninfo = std::move(conninfo);
  pool.size = options.connections;
  pool.acquire_timeout = absl::Seconds(options.connect_timeout_s) + absl::Seconds(5);
  pool.session_sql = {
      absl::StrCat("SET statement_timeout = ", options.statement_timeout_ms),
      // A frozen or partitioned replica's open transaction (and the row locks it holds) ends.
      absl::StrCat("SET idle_in_transaction_session_timeout = ", options.statement_timeout_ms),
  };
  std::unique_ptr<PostgresJobStore> store(
      new PostgresJobStore(options, std::make_unique<PgConnectionPool>(std::move(pool))));
  absl::Status schema = store->CreateOrMigrateSchema();
  if (!schema.ok()) {
    return absl::Status(schema.code(), absl::StrCat("job store ", Quote(RedactUri(options.uri)),
                                                    ": ", schema.message()));
  }
  return store;
}

PostgresJobStore::PostgresJobStore(PostgresJobStoreOptions options,
                                   std::unique_ptr<PgConnectionPool> pool)
    : options_(std::move(options)), pool_(std::move(pool)) {}

PostgresJobStore::~PostgresJobStore() = default;

bool PostgresJobStore::connected() const { return pool_->connected(); }

int64_t PostgresJobStore::NowMs() const {
  return options_.clock ? options_.clock() : SystemNowMs();
}

absl::Status PostgresJobStore::CreateOrMigrateSchema() {
  return pool_->Run("creating the schema", [&](pqxx::connection& c) -> absl::Status {
    pqxx::work txn(c);
    // Held until the transaction ends: replicas starting at once take turns here, and the later
    // ones find the schema made.
    txn.exec("SELECT pg_advisory_xact_lock(hashtext('attattr_schema'))");
    const pqxx::row found = txn.exec1(
        "SELECT to_regclass('attattr_schema') IS NOT NULL, "
        "to_regclass('attattr_jobs') IS NOT NULL");
    if (!found[0].as<bool>()) {
      if (found[1].as<bool>()) {
        return absl::FailedPreconditionError(
            "has a table attattr_jobs but no attattr_schema: not an attattr job store");
      }
      txn.exec(kSchemaSql);
      txn.exec_params("INSERT INTO attattr_schema (version) VALUES ($1)", kSchemaVersion);
      txn.commit();
      schema_change_ = absl::StrCat("created version ", kSchemaVersion);
      return absl::OkStatus();
    }
    const pqxx::result version = txn.exec("SELECT max(version) FROM attattr_schema");
    if (version.empty() || version[0][0].is_null()) {
      return absl::FailedPreconditionError("attattr_schema holds no version");
    }
    const int stored = version[0][0].as<int>();
    if (stored > kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("schema version ", stored, " is newer than this build supports (",
                       kSchemaVersion, "): upgrade attattr-server"));
    }
    if (stored < 1) {
      return absl::FailedPreconditionError(absl::StrCat("unknown schema version ", stored));
    }
    return absl::OkStatus();  // current; the transaction ends without a change
  });
}

absl::StatusOr<CreateResult> PostgresJobStore::Create(const JobRecord& record) {
  ATTATTR_RETURN_IF_ERROR(ValidateNewRecord(record));
  std::string id = record.id;
  if (id.empty()) {
    ATTATTR_ASSIGN_OR_RETURN(id, NewJobId());
  }
  const int64_t now = NowMs();
  CreateResult result;
  ATTATTR_RETURN_IF_ERROR(pool_->Run(
      absl::StrCat("creating job ", Quote(id)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        // The unique constraints decide, not a check before the insert: of concurrent creates
        // with one request_id (on any replica), one inserts and the others find its job.
        const pqxx::result inserted = txn.exec_params(
            absl::StrCat("INSERT INTO attattr_jobs (id, request_id, kind, model, priority, state, "
                         "spec, create_time_ms, update_time_ms, owner) VALUES ($1, NULLIF($2, ''), "
                         "$3, $4, $5, 'QUEUED', $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING ",
                         kJobColumns),
            id, record.request_id, record.kind, record.model, record.priority,
            pqxx::binarystring(record.spec.data(), record.spec.size()),
            record.create_time_ms != 0 ? record.create_time_ms : now, now, record.owner);
        if (!inserted.empty()) {
          ATTATTR_ASSIGN_OR_RETURN(result.record, RecordFromRow(inserted[0]));
          result.created = true;
          return absl::OkStatus();
        }
        if (!record.request_id.empty()) {
          const pqxx::result existing =
              txn.exec_params(absl::StrCat(SelectJob(), " WHERE owner = $1 AND request_id = $2"),
                              record.owner, record.request_id);
          if (!existing.empty()) {
            ATTATTR_ASSIGN_OR_RETURN(result.record, RecordFromRow(existing[0]));
            result.created = false;
            return absl::OkStatus();
          }
        }
        return absl::AlreadyExistsError(absl::StrCat("job ", Quote(id), " already exists"));
      }));
  return result;
}

absl::StatusOr<JobRecord> PostgresJobStore::Get(const std::string& id) {
  JobRecord record;
  ATTATTR_RETURN_IF_ERROR(
      pool_->Run(absl::StrCat("reading job ", Quote(id)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        ATTATTR_ASSIGN_OR_RETURN(
            record,
            OneRecord(txn.exec_params(absl::StrCat(SelectJob(), " WHERE id = $1"), id), id));
        return absl::OkStatus();
      }));
  return record;
}

absl::StatusOr<ListPage> PostgresJobStore::List(const ListFilter& filter) {
  ATTATTR_ASSIGN_OR_RETURN(const int32_t page_size, PageSize(filter));
  ATTATTR_ASSIGN_OR_RETURN(auto cursor, DecodePageToken(filter));
  std::string columns = kJobColumns;
  if (!filter.include_spec) {
    columns = absl::StrReplaceAll(columns, {{" spec,", " ''::bytea AS spec,"}});
  }
  // Unused filters compare a parameter with itself, so one statement shape serves all.
  const std::string sql = absl::StrCat(
      "SELECT ", columns,
      " FROM attattr_jobs WHERE (create_time_ms, id) > ($1, $2) "
      "AND ($3 = '' OR state = $3) AND ($4 = 0 OR kind = $5) AND ($6 = 0 OR owner = $7) "
      "ORDER BY create_time_ms, id LIMIT $8");
  ListPage page;
  ATTATTR_RETURN_IF_ERROR(pool_->Run("listing jobs", [&](pqxx::connection& c) -> absl::Status {
    pqxx::nontransaction txn(c);
    const pqxx::result rows = txn.exec_params(
        sql, cursor.create_time_ms, cursor.id,
        std::string(filter.state.has_value() ? JobStateName(*filter.state) : ""),
        filter.kind.has_value() ? 1 : 0, filter.kind.value_or(""), filter.owner.has_value() ? 1 : 0,
        filter.owner.value_or(""), int64_t{page_size} + 1);
    ATTATTR_ASSIGN_OR_RETURN(page.records, Records(rows));
    return absl::OkStatus();
  }));
  if (page.records.size() > static_cast<size_t>(page_size)) {
    page.records.resize(page_size);
    page.next_page_token = EncodePageToken(filter, page.records.back());
  }
  return page;
}

absl::StatusOr<JobRecord> PostgresJobStore::MarkRunning(const std::string& id) {
  JobRecord updated;
  ATTATTR_RETURN_IF_ERROR(pool_->Run(
      absl::StrCat("starting job ", Quote(id)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::work txn(c);
        ATTATTR_ASSIGN_OR_RETURN(const JobState state, LockJob(txn, id));
        if (state != JobState::kQueued) return WrongState(id, state, "QUEUED");
        txn.exec_params("DELETE FROM attattr_results WHERE job_id = $1", id);
        ATTATTR_ASSIGN_OR_RETURN(
            updated,
            OneRecord(txn.exec_params(absl::StrCat("UPDATE attattr_jobs SET state = 'RUNNING', "
                                                   "attempts = attempts + 1, start_time_ms = $2, "
                                                   "update_time_ms = $2, has_result = FALSE, "
                                                   "result_size_bytes = 0, result_chunk_count = 0 "
                                                   "WHERE id = $1 RETURNING ",
                                                   kJobColumns),
                                      id, NowMs()),
                      id));
        txn.commit();
        return absl::OkStatus();
      }));
  return updated;
}

absl::Status PostgresJobStore::UpdateProgress(const std::string& id, const JobProgress& progress) {
  ATTATTR_RETURN_IF_ERROR(ValidateProgress(progress));
  return pool_->Run(
      absl::StrCat("updating progress of ", Quote(id)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        const pqxx::result changed = txn.exec_params(
            "UPDATE attattr_jobs SET progress_stage = $2, progress_done = $3, "
            "progress_total = $4, update_time_ms = $5 "
            "WHERE id = $1 AND state IN ('QUEUED', 'RUNNING')",
            id, TextForStore(progress.stage), progress.done, progress.total, NowMs());
        if (changed.affected_rows() == 1) return absl::OkStatus();
        const pqxx::result job =
            txn.exec_params("SELECT state FROM attattr_jobs WHERE id = $1", id);  // say why
        if (job.empty()) return JobNotFound(id);
        std::optional<JobState> state = JobStateFromName(job[0][0].as<std::string>());
        return WrongState(id, state.value_or(JobState::kQueued), "QUEUED or RUNNING");
      });
}

absl::StatusOr<JobRecord> PostgresJobStore::FinishJob(const std::string& id, JobState state,
                                                      int32_t error_code,
                                                      const std::string& error_message) {
  JobRecord updated;
  ATTATTR_RETURN_IF_ERROR(pool_->Run(
      absl::StrCat("finishing job ", Quote(id)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::work txn(c);
        ATTATTR_ASSIGN_OR_RETURN(const JobState current, LockJob(txn, id));
        if (IsTerminal(current)) return WrongState(id, current, "QUEUED or RUNNING");
        const bool keep_result = state == JobState::kSucceeded;
        if (!keep_result) txn.exec_params("DELETE FROM attattr_results WHERE job_id = $1", id);
        ATTATTR_ASSIGN_OR_RETURN(
            updated,
            OneRecord(
                txn.exec_params(
                    absl::StrCat(
                        "UPDATE attattr_jobs SET state = $2, error_code = $3, "
                        "error_message = $4, end_time_ms = $5, update_time_ms = $5, "
                        "has_result = has_result AND $6, "
                        "result_size_bytes = CASE WHEN $6 THEN result_size_bytes ELSE 0 END, "
                        "result_chunk_count = CASE WHEN $6 THEN result_chunk_count ELSE 0 END "
                        "WHERE id = $1 RETURNING ",
                        kJobColumns),
                    id, std::string(JobStateName(state)), error_code, TextForStore(error_message),
                    NowMs(), keep_result),
                id));
        txn.commit();
        return absl::OkStatus();
      }));
  return updated;
}

absl::StatusOr<JobRecord> PostgresJobStore::Finish(const std::string& id, JobState state,
                                                   int32_t error_code,
                                                   const std::string& error_message) {
  ATTATTR_ASSIGN_OR_RETURN(const int32_t code, ValidateFinish(state, error_code));
  return FinishJob(id, state, code, error_message);
}

absl::StatusOr<JobRecord> PostgresJobStore::Cancel(const std::string& id) {
  return FinishJob(id, JobState::kCancelled, kCancelledCode, "job cancelled");
}

// Like SqliteJobStore::PutResult: the old result goes, the chunks follow in batches (each a
// transaction that locks the job and checks it is still RUNNING, so a Cancel between batches ends
// the write and drops what was written), and the result becomes visible in the last transaction.
absl::Status PostgresJobStore::PutResult(const std::string& id, const std::string& bytes) {
  const size_t chunk = static_cast<size_t>(options_.result_chunk_bytes);
  const int64_t chunks_per_batch =
      std::max<int64_t>(1, options_.result_write_batch_bytes / options_.result_chunk_bytes);
  const int64_t total_chunks = static_cast<int64_t>((bytes.size() + chunk - 1) / chunk);
  const std::string what = absl::StrCat("writing the result of ", Quote(id));
  ATTATTR_RETURN_IF_ERROR(pool_->Run(what, [&](pqxx::connection& c) -> absl::Status {
    pqxx::work txn(c);
    ATTATTR_RETURN_IF_ERROR(LockRunningJob(txn, id));
    txn.exec_params("DELETE FROM attattr_results WHERE job_id = $1", id);
    txn.exec_params(
        "UPDATE attattr_jobs SET has_result = FALSE, result_size_bytes = 0, "
        "result_chunk_count = 0 WHERE id = $1",
        id);
    txn.commit();
    return absl::OkStatus();
  }));
  for (int64_t first = 0; first < total_chunks; first += chunks_per_batch) {
    ATTATTR_RETURN_IF_ERROR(pool_->Run(what, [&](pqxx::connection& c) -> absl::Status {
      pqxx::work txn(c);
      ATTATTR_RETURN_IF_ERROR(LockRunningJob(txn, id));
      const int64_t last = std::min(total_chunks, first + chunks_per_batch);
      for (int64_t seq = first; seq < last; ++seq) {
        const size_t offset = static_cast<size_t>(seq) * chunk;
        txn.exec_params(
            "INSERT INTO attattr_results (job_id, seq, data) VALUES ($1, $2, $3)", id, seq,
            pqxx::binarystring(bytes.data() + offset, std::min(chunk, bytes.size() - offset)));
      }
      txn.commit();
      return absl::OkStatus();
    }));
  }
  return pool_->Run(what, [&](pqxx::connection& c) -> absl::Status {
    pqxx::work txn(c);
    ATTATTR_RETURN_IF_ERROR(LockRunningJob(txn, id));
    txn.exec_params(
        "UPDATE attattr_jobs SET has_result = TRUE, result_size_bytes = $2, "
        "result_chunk_count = $3, update_time_ms = $4 WHERE id = $1",
        id, static_cast<int64_t>(bytes.size()), total_chunks, NowMs());
    txn.commit();
    return absl::OkStatus();
  });
}

absl::StatusOr<ResultInfo> PostgresJobStore::GetResultInfo(const std::string& id) {
  ATTATTR_ASSIGN_OR_RETURN(const JobRecord job, Get(id));
  if (!job.has_result) {
    return absl::NotFoundError(
        absl::StrCat("job ", Quote(id), " (", JobStateName(job.state), ") has no result"));
  }
  return ResultInfo{job.result_size_bytes, job.result_chunk_count};
}

absl::StatusOr<std::string> PostgresJobStore::GetResultChunk(const std::string& id, int64_t seq) {
  if (seq < 0) return absl::InvalidArgumentError(absl::StrCat("seq: must be >= 0, got ", seq));
  std::string data;
  ATTATTR_RETURN_IF_ERROR(pool_->Run(
      absl::StrCat("reading result chunk ", seq, " of ", Quote(id)),
      [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        const pqxx::result rows = txn.exec_params(
            "SELECT data FROM attattr_results WHERE job_id = $1 AND seq = $2", id, seq);
        if (!rows.empty()) {
          data = pqxx::binarystring(rows[0][0]).str();
          return absl::OkStatus();
        }
        const pqxx::result job =
            txn.exec_params("SELECT result_chunk_count FROM attattr_jobs WHERE id = $1", id);
        if (job.empty()) return JobNotFound(id);
        return absl::NotFoundError(absl::StrCat("job ", Quote(id), " has no result chunk ", seq,
                                                " (it has ", job[0][0].as<int64_t>(), ")"));
      }));
  return data;
}

absl::Status PostgresJobStore::Delete(const std::string& id) {
  return pool_->Run(
      absl::StrCat("deleting job ", Quote(id)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        // Results go with it (ON DELETE CASCADE).
        const pqxx::result deleted = txn.exec_params("DELETE FROM attattr_jobs WHERE id = $1", id);
        if (deleted.affected_rows() == 0) return JobNotFound(id);
        return absl::OkStatus();
      });
}

absl::StatusOr<JobRecord> PostgresJobStore::Requeue(const std::string& id) {
  JobRecord updated;
  ATTATTR_RETURN_IF_ERROR(pool_->Run(
      absl::StrCat("re-queueing job ", Quote(id)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::work txn(c);
        ATTATTR_RETURN_IF_ERROR(LockRunningJob(txn, id));
        txn.exec_params("DELETE FROM attattr_results WHERE job_id = $1", id);
        ATTATTR_ASSIGN_OR_RETURN(
            updated, OneRecord(txn.exec_params(
                                   absl::StrCat("UPDATE attattr_jobs SET state = 'QUEUED', "
                                                "update_time_ms = $2, progress_stage = '', "
                                                "progress_done = 0, progress_total = 0, "
                                                "has_result = FALSE, result_size_bytes = 0, "
                                                "result_chunk_count = 0 WHERE id = $1 RETURNING ",
                                                kJobColumns),
                                   id, NowMs()),
                               id));
        txn.commit();
        return absl::OkStatus();
      }));
  return updated;
}

absl::StatusOr<std::vector<std::string>> PostgresJobStore::RequeueInterrupted() {
  std::vector<std::string> ids;
  ATTATTR_RETURN_IF_ERROR(
      pool_->Run("re-queueing running jobs", [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        const pqxx::result rows = txn.exec_params(
            "UPDATE attattr_jobs SET state = 'QUEUED', update_time_ms = $1 "
            "WHERE state = 'RUNNING' RETURNING id",
            NowMs());
        for (const auto& row : rows) ids.push_back(row[0].as<std::string>());
        return absl::OkStatus();
      }));
  std::sort(ids.begin(), ids.end());
  return ids;
}

absl::StatusOr<std::vector<JobRecord>> PostgresJobStore::ListQueued() {
  std::vector<JobRecord> records;
  ATTATTR_RETURN_IF_ERROR(
      pool_->Run("listing queued jobs", [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        ATTATTR_ASSIGN_OR_RETURN(
            records, Records(txn.exec(absl::StrCat(SelectJob(),
                                                   " WHERE state = 'QUEUED' "
                                                   "ORDER BY priority DESC, create_time_ms, id"))));
        return absl::OkStatus();
      }));
  return records;
}

absl::StatusOr<int64_t> PostgresJobStore::ExpireResults(int64_t now_ms, int64_t retention_ms) {
  if (retention_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("retention_ms: must be >= 0, got ", retention_ms));
  }
  int64_t expired = 0;
  // One DELETE: replicas sweeping at once each remove what is still there, never a job twice.
  ATTATTR_RETURN_IF_ERROR(
      pool_->Run("expiring finished jobs", [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        expired = txn.exec_params(
                         "DELETE FROM attattr_jobs WHERE state IN ('SUCCEEDED', 'FAILED', "
                         "'CANCELLED') AND end_time_ms > 0 AND end_time_ms < $1",
                         now_ms - retention_ms)
                      .affected_rows();
        return absl::OkStatus();
      }));
  return expired;
}

absl::StatusOr<int64_t> PostgresJobStore::StoredBytes(const std::string& owner) {
  int64_t bytes = 0;
  ATTATTR_RETURN_IF_ERROR(pool_->Run(
      absl::StrCat("summing the jobs of ", Quote(owner)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        bytes = txn.exec_params1(
                       "SELECT COALESCE(SUM(octet_length(spec) + result_size_bytes), 0)::BIGINT "
                       "FROM attattr_jobs WHERE owner = $1",
                       owner)[0]
                    .as<int64_t>();
        return absl::OkStatus();
      }));
  return bytes;
}

absl::StatusOr<StoreStats> PostgresJobStore::Stats() {
  StoreStats stats;
  ATTATTR_RETURN_IF_ERROR(pool_->Run("counting jobs", [&](pqxx::connection& c) -> absl::Status {
    pqxx::nontransaction txn(c);
    const pqxx::result rows = txn.exec(
        "SELECT state, COUNT(*), COALESCE(SUM(result_size_bytes), 0)::BIGINT FROM attattr_jobs "
        "GROUP BY state");
    for (const auto& row : rows) {
      std::optional<JobState> state = JobStateFromName(row[0].as<std::string>());
      if (!state.has_value()) return absl::DataLossError("a job has an unknown state");
      stats.jobs_by_state[static_cast<int>(*state)] = row[1].as<int64_t>();
      stats.result_bytes += row[2].as<int64_t>();
    }
    return absl::OkStatus();
  }));
  return stats;
}

}  // namespace attattr::store
