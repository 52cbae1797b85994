// SqliteJobStore: the JobStore schema, state transitions and chunked results on one SQLite
// connection. Does not retry on SQLITE_BUSY beyond busy_timeout and does not share work between
// processes. Thread-safe: each public call takes mu_ for its whole duration (ReadResult, inherited,
// takes it once per chunk).
#include "store/sqlite_job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "attattr/base/status_macros.h"
#include "store/job_store_rules.h"

namespace attattr::store {
namespace {

constexpr int64_t kWalSizeLimitBytes = int64_t{64} << 20;

// Column order shared by every SELECT that builds a JobRecord (see QueryRecords).
constexpr char kJobColumns[] =
    "id, request_id, kind, model, priority, state, spec, error_code, error_message, "
    "progress_stage, progress_done, progress_total, create_time_ms, start_time_ms, end_time_ms, "
    "update_time_ms, attempts, has_result, result_size_bytes, result_chunk_count, owner, "
    "lease_holder, lease_token, lease_expiry_ms, reserved_bytes";
// kJobColumns, or with an empty spec in its place when the spec is not wanted.
std::string JobColumns(bool include_spec) {
  if (include_spec) return kJobColumns;
  return absl::StrReplaceAll(kJobColumns, {{" spec,", " X'' AS spec,"}});
}
// The columns of schema version 3, which migrations copy from older files.
constexpr char kJobColumnsV3[] =
    "id, request_id, kind, model, priority, state, spec, error_code, error_message, "
    "progress_stage, progress_done, progress_total, create_time_ms, start_time_ms, end_time_ms, "
    "update_time_ms, attempts, has_result, result_size_bytes, result_chunk_count, owner";

// The schema of version kSchemaVersion: the jobs table, its indexes, the results table.
constexpr char kJobsTableSql[] = R"sql(
CREATE TABLE jobs (
  id                 TEXT    PRIMARY KEY NOT NULL,
  request_id         TEXT,            -- NULL when the client gave none; unique per owner
  kind               TEXT    NOT NULL,
  model              TEXT    NOT NULL,
  priority           INTEGER NOT NULL,
  state              TEXT    NOT NULL
                     CHECK (state IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
  spec               BLOB    NOT NULL,
  error_code         INTEGER NOT NULL DEFAULT 0,
  error_message      TEXT    NOT NULL DEFAULT '',
  progress_stage     TEXT    NOT NULL DEFAULT '',
  progress_done      INTEGER NOT NULL DEFAULT 0,
  progress_total     INTEGER NOT NULL DEFAULT 0,
  create_time_ms     INTEGER NOT NULL,
  start_time_ms      INTEGER NOT NULL DEFAULT 0,
  end_time_ms        INTEGER NOT NULL DEFAULT 0,
  update_time_ms     INTEGER NOT NULL,
  attempts           INTEGER NOT NULL DEFAULT 0,
  has_result         INTEGER NOT NULL DEFAULT 0,
  result_size_bytes  INTEGER NOT NULL DEFAULT 0,
  result_chunk_count INTEGER NOT NULL DEFAULT 0,
  owner              TEXT    NOT NULL DEFAULT '',
  seq                INTEGER NOT NULL DEFAULT 0,  -- submission order (ids are random)
  start_seq          INTEGER NOT NULL DEFAULT 0,  -- order of the last start (0 = never)
  lease_holder       TEXT    NOT NULL DEFAULT '',
  lease_token        INTEGER NOT NULL DEFAULT 0,
  lease_expiry_ms    INTEGER NOT NULL DEFAULT 0,
  reserved_bytes     INTEGER NOT NULL DEFAULT 0   -- result estimate held against the quota
);
)sql";
constexpr char kJobsIndexesSql[] = R"sql(
CREATE INDEX jobs_by_owner ON jobs (owner, create_time_ms, id);
CREATE UNIQUE INDEX jobs_by_request_id ON jobs (owner, request_id);
CREATE INDEX jobs_by_create_time ON jobs (create_time_ms, id);
CREATE INDEX jobs_by_state ON jobs (state, create_time_ms, id);
CREATE INDEX jobs_queued ON jobs (priority DESC, owner, seq) WHERE state = 'QUEUED';
CREATE INDEX jobs_running ON jobs (owner, lease_expiry_ms) WHERE state = 'RUNNING';
CREATE INDEX jobs_by_seq ON jobs (seq);
CREATE INDEX jobs_by_start_seq ON jobs (start_seq);
CREATE INDEX jobs_owner_starts ON jobs (owner, start_seq);
CREATE INDEX jobs_by_end_time ON jobs (end_time_ms) WHERE end_time_ms > 0;
)sql";
constexpr char kResultsTableSql[] = R"sql(
CREATE TABLE results (
  job_id TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq    INTEGER NOT NULL,
  data   BLOB    NOT NULL,
  PRIMARY KEY (job_id, seq)
);
)sql";

// The next QUEUED job to claim (see JobStore::Claim): by priority, then owners take turns (the
// owner whose last job started longest ago, or never, first: start_seq numbers the starts), then
// submission order; ?1 = max running per owner (0 = no limit).
constexpr char kClaimOrderSql[] = R"sql(
SELECT q.id FROM jobs AS q
LEFT JOIN (SELECT owner, MAX(start_seq) AS last_start FROM jobs
           WHERE start_seq > 0 AND owner IN (SELECT owner FROM jobs WHERE state = 'QUEUED')
           GROUP BY owner) AS s ON s.owner = q.owner
WHERE q.state = 'QUEUED' AND (?1 = 0 OR
      (SELECT COUNT(*) FROM jobs AS r WHERE r.state = 'RUNNING' AND r.owner = q.owner) < ?1)
ORDER BY q.priority DESC, COALESCE(s.last_start, 0), q.seq LIMIT 1
)sql";

absl::StatusCode CodeForSqlite(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CORRUPT:
      return absl::StatusCode::kDataLoss;
    case SQLITE_NOTADB:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_CONSTRAINT:
      return absl::StatusCode::kAlreadyExists;
    default:
      return absl::StatusCode::kInternal;
  }
}

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// A cached prepared statement in use: binds parameters, steps, and on destruction resets itself so
// the cache can hand it out again. Valid only while the store's mutex is held.
class SqliteJobStore::Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(Statement&& other) noexcept
      : stmt_(std::exchange(other.stmt_, nullptr)), bind_rc_(other.bind_rc_) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  // Text and blobs are copied by SQLite unless `copy` is false, in which case `value` must outlive
  // the statement's use (avoids copying result chunks).
  void BindText(int index, const std::string& value) {
    Check(sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8));
  }
  void BindBlob(int index, const char* data, size_t size, bool copy) {
    // A zero-length blob from a null pointer would bind NULL; use a non-null empty string.
    if (size == 0) data = "";
    Check(sqlite3_bind_blob64(stmt_, index, data, size, copy ? SQLITE_TRANSIENT : SQLITE_STATIC));
  }
  void BindInt(int index, int64_t value) { Check(sqlite3_bind_int64(stmt_, index, value)); }
  void BindNull(int index) { Check(sqlite3_bind_null(stmt_, index)); }

  // SQLITE_ROW, SQLITE_DONE or an error code (including a failed bind).
  int Step() { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(stmt_); }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string Bytes(int col) const {
    const void* data = sqlite3_column_blob(stmt_, col);
    const int size = sqlite3_column_bytes(stmt_, col);
    return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), size);
  }

 private:
  void Check(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

// BEGIN IMMEDIATE (takes the write lock up front, so two writers never deadlock upgrading) ...
// COMMIT; rolls back when destroyed uncommitted. Valid only while the store's mutex is held.
class SqliteJobStore::Transaction {
 public:
  explicit Transaction(SqliteJobStore* store) : store_(store) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (open_) store_->Exec("ROLLBACK").IgnoreError();
  }
  absl::Status Begin() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    absl::Status status = store_->Exec("BEGIN IMMEDIATE");
    open_ = status.ok();
    return status;
  }
  absl::Status Commit() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    absl::Status status = store_->Exec("COMMIT");
    if (status.ok()) open_ = false;
    return status;
  }
  absl::Status Rollback() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (!open_) return absl::OkStatus();
    open_ = false;
    return store_->Exec("ROLLBACK");
  }

 private:
  SqliteJobStore* store_;
  bool open_ = false;
};

#define ATTATTR_STORE_RETURN_IF_ERROR(expr) \
  do {                                      \
    absl::Status status_ = (expr);          \
    if (!status_.ok()) return status_;      \
  } while (0)

absl::Status SqliteJobStoreOptions::Validate() const {
  if (path.empty()) return absl::InvalidArgumentError("path: empty");
  if (busy_timeout_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("busy_timeout_ms: must be >= 0, got ", busy_timeout_ms));
  }
  if (result_chunk_bytes < 4096 || result_chunk_bytes > (int64_t{64} << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("result_chunk_bytes: must be in [4096, 67108864], got ", result_chunk_bytes));
  }
  if (result_write_batch_bytes < 4096 || result_write_batch_bytes > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "result_write_batch_bytes: must be in [4096, 1073741824], got ", result_write_batch_bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(
    const SqliteJobStoreOptions& options) {
  ATTATTR_STORE_RETURN_IF_ERROR(options.Validate());
  const std::string where = absl::StrCat("job store ", Quote(options.path), ": ");
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(options.path, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(where, "is a directory, not a file"));
  }
  fs::path dir = fs::path(options.path).parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat(where, "directory ", Quote(dir.string()), " does not exist"));
  }

  // Before SQLite touches the file: a second server would re-queue the first's running jobs. Beside
  // the file a symlink names, as SQLite's own -wal and -shm files are.
  const fs::path real = fs::weakly_canonical(options.path, ec);
  absl::StatusOr<FileLock> lock = FileLock::Acquire(
      (ec ? options.path : real.string()) + ".lock",
      "; one server per SQLite file (several replicas share a PostgreSQL store: --store "
      "postgresql://...)");
  if (!lock.ok()) {
    return absl::Status(lock.status().code(), absl::StrCat(where, lock.status().message()));
  }
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(options.path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return absl::Status(CodeForSqlite(rc), absl::StrCat(where, "cannot open: ", message));
  }
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore(options, *std::move(lock), db));
  absl::Status status;
  {
    absl::MutexLock lock(&store->mu_);
    status = store->Configure();
    if (status.ok()) status = store->CreateOrCheckSchema();
  }
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat(where, std::string(status.message())));
  }
  return store;
}

SqliteJobStore::SqliteJobStore(SqliteJobStoreOptions options, FileLock lock, sqlite3* db)
    : options_(std::move(options)), lock_(std::move(lock)), db_(db) {}

SqliteJobStore::~SqliteJobStore() {
  absl::MutexLock lock(&mu_);
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  statements_.clear();
  // The last connection to close checkpoints the WAL into the main file and removes it.
  sqlite3_close_v2(db_);
  db_ = nullptr;
}

int64_t SqliteJobStore::NowMs() const { return options_.clock ? options_.clock() : SystemNowMs(); }

absl::Status SqliteJobStore::SqliteError(int rc, const std::string& what) {
  return absl::Status(CodeForSqlite(rc), absl::StrCat(what, ": ", std::string(sqlite3_errmsg(db_)),
                                                      " (sqlite code ", rc, ")"));
}

absl::Status SqliteJobStore::Exec(const std::string& sql) {
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(rc, sql.substr(0, sql.find('\n')));
  return absl::OkStatus();
}

absl::StatusOr<SqliteJobStore::Statement> SqliteJobStore::Prepare(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, absl::StrCat("preparing ", sql));
    it = statements_.emplace(sql, stmt).first;
  }
  return Statement(it->second);
}

absl::Status SqliteJobStore::Configure() {
  sqlite3_busy_timeout(db_, options_.busy_timeout_ms);
  sqlite3_extended_result_codes(db_, 1);
  // The first statement reads the header: a file that is not a database fails here.
  {
    absl::StatusOr<Statement> stmt = Prepare("PRAGMA journal_mode = WAL");
    if (!stmt.ok()) {
      if ((sqlite3_errcode(db_) & 0xff) == SQLITE_NOTADB) {
        return absl::FailedPreconditionError("not an SQLite database (file is not a database)");
      }
      return stmt.status();
    }
    const int rc = stmt->Step();
    if (rc != SQLITE_ROW) {
      if ((rc & 0xff) == SQLITE_NOTADB) {
        return absl::FailedPreconditionError("not an SQLite database (file is not a database)");
      }
      return SqliteError(rc, "setting journal_mode = WAL");
    }
    const std::string mode = stmt->Bytes(0);
    if (mode != "wal") {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot use WAL journal mode (got ", Quote(mode), ")"));
    }
  }
  ATTATTR_STORE_RETURN_IF_ERROR(Exec(options_.synchronous_full ? "PRAGMA synchronous = FULL"
                                                               : "PRAGMA synchronous = NORMAL"));
  ATTATTR_STORE_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys = ON"));
  ATTATTR_STORE_RETURN_IF_ERROR(
      Exec(absl::StrCat("PRAGMA journal_size_limit = ", kWalSizeLimitBytes)));
  return absl::OkStatus();
}

absl::Status SqliteJobStore::CreateOrCheckSchema() {
  Transaction txn(this);
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Begin());
  int64_t version = 0;
  int64_t tables = 0;
  {
    ATTATTR_ASSIGN_OR_RETURN(auto stmt, Prepare("PRAGMA user_version"));
    const int rc = stmt.Step();
    if (rc != SQLITE_ROW) return SqliteError(rc, "reading user_version");
    version = stmt.Int(0);
  }
  {
    absl::StatusOr<Statement> stmt =
        Prepare("SELECT COUNT(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'");
    if (!stmt.ok()) return stmt.status();
    const int rc = stmt->Step();
    if (rc != SQLITE_ROW) return SqliteError(rc, "reading the schema");
    tables = stmt->Int(0);
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "schema_version ", version, " is newer than this build supports (", kSchemaVersion, ")"));
  }
  if (version == kSchemaVersion) return absl::OkStatus();  // the transaction rolls back: no change
  if (version >= 1 && version < kSchemaVersion) {
    ATTATTR_STORE_RETURN_IF_ERROR(txn.Rollback());
    return MigrateToCurrent(version);
  }
  if (tables != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("not an attattr job store (an SQLite database with other tables, "
                     "schema_version ",
                     version, ")"));
  }
  ATTATTR_STORE_RETURN_IF_ERROR(
      Exec(absl::StrCat(kJobsTableSql, kJobsIndexesSql, kResultsTableSql)));
  ATTATTR_STORE_RETURN_IF_ERROR(Exec(absl::StrCat("PRAGMA user_version = ", kSchemaVersion)));
  return txn.Commit();
}

absl::Status SqliteJobStore::MigrateToCurrent(int64_t version) {
  // SQLite's procedure for a table change ALTER TABLE cannot make (sqlite.org/lang_altertable.html,
  // "Making Other Kinds Of Table Schema Changes"): foreign keys off outside the transaction, a new
  // table filled from the old, the old dropped (no cascade into results with foreign keys off),
  // the new renamed, the indexes made again, the foreign keys checked before the commit.
  ATTATTR_STORE_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys = OFF"));
  absl::Status status = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    Transaction txn(this);
    ATTATTR_STORE_RETURN_IF_ERROR(txn.Begin());
    {
      // Another process may have migrated the file between our read and this transaction.
      ATTATTR_ASSIGN_OR_RETURN(auto stmt, Prepare("PRAGMA user_version"));
      if (stmt.Step() != SQLITE_ROW) return SqliteError(SQLITE_ERROR, "reading user_version");
      if (stmt.Int(0) == kSchemaVersion) return absl::OkStatus();
    }
    if (version == 4) {
      // 4 -> 5: a queued or running job's result estimate, held against its owner's quota.
      ATTATTR_STORE_RETURN_IF_ERROR(
          Exec("ALTER TABLE jobs ADD COLUMN reserved_bytes INTEGER NOT NULL DEFAULT 0"));
      ATTATTR_STORE_RETURN_IF_ERROR(Exec(absl::StrCat("PRAGMA user_version = ", kSchemaVersion)));
      return txn.Commit();
    }
    if (version == 1) {
      // 1 -> 2: jobs record their owner (the principal that submitted them); older jobs have none.
      ATTATTR_STORE_RETURN_IF_ERROR(
          Exec("ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''"));
    }
    // 2 -> 3: request_id is unique per owner, no longer across owners (a column's UNIQUE cannot
    // be dropped: the table is rebuilt). 3 -> 4: the submission order (seq, numbered by create
    // time) and the lease columns, and 4 -> 5's reserved_bytes; the rebuild makes them too.
    std::string create = kJobsTableSql;
    create.replace(create.find("CREATE TABLE jobs ("), 19, "CREATE TABLE jobs_new (");
    ATTATTR_STORE_RETURN_IF_ERROR(Exec(create));
    ATTATTR_STORE_RETURN_IF_ERROR(
        Exec(absl::StrCat("INSERT INTO jobs_new (", kJobColumnsV3, ") SELECT ", kJobColumnsV3,
                          " FROM jobs ORDER BY create_time_ms, id")));
    ATTATTR_STORE_RETURN_IF_ERROR(Exec("UPDATE jobs_new SET seq = rowid"));
    ATTATTR_STORE_RETURN_IF_ERROR(Exec("DROP TABLE jobs; ALTER TABLE jobs_new RENAME TO jobs"));
    ATTATTR_STORE_RETURN_IF_ERROR(Exec(kJobsIndexesSql));
    {
      ATTATTR_ASSIGN_OR_RETURN(auto check, Prepare("PRAGMA foreign_key_check"));
      const int rc = check.Step();
      if (rc == SQLITE_ROW) {
        return absl::DataLossError("schema migration: results refer to jobs that do not exist");
      }
      if (rc != SQLITE_DONE) return SqliteError(rc, "checking foreign keys");
    }
    ATTATTR_STORE_RETURN_IF_ERROR(Exec(absl::StrCat("PRAGMA user_version = ", kSchemaVersion)));
    return txn.Commit();
  }();
  absl::Status on = Exec("PRAGMA foreign_keys = ON");
  return status.ok() ? on : status;
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::QueryRecords(Statement& stmt) {
  std::vector<JobRecord> records;
  for (;;) {
    const int rc = stmt.Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return SqliteError(rc, "reading jobs");
    JobRecord r;
    r.id = stmt.Bytes(0);
    r.request_id = stmt.IsNull(1) ? std::string() : stmt.Bytes(1);
    r.kind = stmt.Bytes(2);
    r.model = stmt.Bytes(3);
    r.priority = static_cast<int32_t>(stmt.Int(4));
    std::optional<JobState> state = JobStateFromName(stmt.Bytes(5));
    if (!state.has_value()) {
      return absl::DataLossError(absl::StrCat("job ", Quote(r.id), " has an unknown state"));
    }
    r.state = *state;
    r.spec = stmt.Bytes(6);
    r.error_code = static_cast<int32_t>(stmt.Int(7));
    r.error_message = stmt.Bytes(8);
    r.progress.stage = stmt.Bytes(9);
    r.progress.done = stmt.Int(10);
    r.progress.total = stmt.Int(11);
    r.create_time_ms = stmt.Int(12);
    r.start_time_ms = stmt.Int(13);
    r.end_time_ms = stmt.Int(14);
    r.update_time_ms = stmt.Int(15);
    r.attempts = static_cast<int32_t>(stmt.Int(16));
    r.has_result = stmt.Int(17) != 0;
    r.result_size_bytes = stmt.Int(18);
    r.result_chunk_count = stmt.Int(19);
    r.owner = stmt.Bytes(20);
    r.lease_holder = stmt.Bytes(21);
    r.lease_token = stmt.Int(22);
    r.lease_expiry_ms = stmt.Int(23);
    r.reserved_result_bytes = stmt.Int(24);
    records.push_back(std::move(r));
  }
  return records;
}

absl::StatusOr<JobRecord> SqliteJobStore::GetLocked(const std::string& id, bool include_spec) {
  absl::StatusOr<Statement> stmt =
      Prepare(absl::StrCat("SELECT ", JobColumns(include_spec), " FROM jobs WHERE id = ?1"));
  if (!stmt.ok()) return stmt.status();
  stmt->BindText(1, id);
  ATTATTR_ASSIGN_OR_RETURN(auto records, QueryRecords(*stmt));
  if (records.empty()) return JobNotFound(id);
  return std::move(records.front());
}

absl::Status SqliteJobStore::DeleteResultLocked(const std::string& id) {
  ATTATTR_ASSIGN_OR_RETURN(auto stmt, Prepare("DELETE FROM results WHERE job_id = ?1"));
  stmt.BindText(1, id);
  const int rc = stmt.Step();
  if (rc != SQLITE_DONE) return SqliteError(rc, absl::StrCat("deleting the result of ", Quote(id)));
  return absl::OkStatus();
}

absl::StatusOr<CreateResult> SqliteJobStore::Create(const JobRecord& record,
                                                    const AdmissionLimits& limits) {
  ATTATTR_STORE_RETURN_IF_ERROR(ValidateNewRecord(record));
  ATTATTR_STORE_RETURN_IF_ERROR(ValidateAdmissionLimits(limits));

  absl::MutexLock lock(&mu_);
  Transaction txn(this);
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Begin());
  if (!record.request_id.empty()) {
    ATTATTR_ASSIGN_OR_RETURN(
        auto stmt, Prepare(absl::StrCat("SELECT ", std::string(kJobColumns),
                                        " FROM jobs WHERE owner = ?1 AND request_id = ?2")));
    stmt.BindText(1, record.owner);
    stmt.BindText(2, record.request_id);
    ATTATTR_ASSIGN_OR_RETURN(auto existing, QueryRecords(stmt));
    if (!existing.empty()) {
      CreateResult found;
      found.record = std::move(existing.front());
      return found;
    }
  }
  // Counted in the transaction that inserts, which holds the file's write lock from its start
  // (BEGIN IMMEDIATE): no other process sharing the file inserts between the counts and the insert.
  CreateResult admission;
  if (CountsQueue(limits)) {
    ATTATTR_ASSIGN_OR_RETURN(admission.counts, CountQueuedLocked(record.owner));
  }
  if (limits.max_stored_bytes_per_owner > 0) {
    ATTATTR_ASSIGN_OR_RETURN(const int64_t stored, StoredBytesLocked(record.owner));
    admission.owner_stored_bytes = stored + static_cast<int64_t>(record.spec.size()) +
                                   std::max<int64_t>(record.reserved_result_bytes, 0);
  }
  admission.refused = Admit(limits, admission.counts, admission.owner_stored_bytes);
  if (admission.refused != Refusal::kNone) return admission;
  std::string id = record.id;
  if (id.empty()) {
    ATTATTR_ASSIGN_OR_RETURN(id, NewJobId());
  }
  if (!record.id.empty()) {
    absl::StatusOr<JobRecord> clash = GetLocked(id);
    if (clash.ok()) {
      return absl::AlreadyExistsError(absl::StrCat("job ", Quote(id), " already exists"));
    }
    if (!absl::IsNotFound(clash.status())) return clash.status();
  }
  const int64_t now = NowMs();
  {
    ATTATTR_ASSIGN_OR_RETURN(
        auto stmt,
        Prepare(
            "INSERT INTO jobs (id, request_id, kind, model, priority, state, spec, create_time_ms, "
            "update_time_ms, owner, reserved_bytes, seq) VALUES (?1, ?2, ?3, ?4, ?5, 'QUEUED', ?6, "
            "?7, ?8, ?9, ?10, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs))"));
    stmt.BindText(1, id);
    if (record.request_id.empty()) {
      stmt.BindNull(2);
    } else {
      stmt.BindText(2, record.request_id);
    }
    stmt.BindText(3, record.kind);
    stmt.BindText(4, record.model);
    stmt.BindInt(5, record.priority);
    stmt.BindBlob(6, record.spec.data(), record.spec.size(), /*copy=*/false);
    stmt.BindInt(7, record.create_time_ms != 0 ? record.create_time_ms : now);
    stmt.BindInt(8, now);
    stmt.BindText(9, record.owner);
    stmt.BindInt(10, std::max<int64_t>(record.reserved_result_bytes, 0));
    const int rc = stmt.Step();
    if (rc != SQLITE_DONE) return SqliteError(rc, absl::StrCat("inserting job ", Quote(id)));
  }
  ATTATTR_ASSIGN_OR_RETURN(admission.record, GetLocked(id));
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Commit());
  admission.created = true;
  return admission;
}

absl::StatusOr<JobRecord> SqliteJobStore::Get(const std::string& id, bool include_spec) {
  absl::MutexLock lock(&mu_);
  return GetLocked(id, include_spec);
}

absl::StatusOr<ListPage> SqliteJobStore::List(const ListFilter& filter) {
  ATTATTR_ASSIGN_OR_RETURN(const int32_t page_size, PageSize(filter));
  ATTATTR_ASSIGN_OR_RETURN(auto cursor, DecodePageToken(filter));

  std::string sql = absl::StrCat("SELECT ", JobColumns(filter.include_spec),
                                 " FROM jobs WHERE (create_time_ms, id) > (?1, ?2)");
  if (filter.state.has_value()) absl::StrAppend(&sql, " AND state = ?3");
  if (filter.kind.has_value()) absl::StrAppend(&sql, " AND kind = ?4");
  if (filter.owner.has_value()) absl::StrAppend(&sql, " AND owner = ?6");
  absl::StrAppend(&sql, " ORDER BY create_time_ms, id LIMIT ?5");

  absl::MutexLock lock(&mu_);
  ATTATTR_ASSIGN_OR_RETURN(auto stmt, Prepare(sql));
  stmt.BindInt(1, cursor.create_time_ms);
  stmt.BindText(2, cursor.id);
  if (filter.state.has_value()) stmt.BindText(3, JobStateName(*filter.state));
  if (filter.kind.has_value()) stmt.BindText(4, *filter.kind);
  if (filter.owner.has_value()) stmt.BindText(6, *filter.owner);
  stmt.BindInt(5, int64_t{page_size} + 1);
  ATTATTR_ASSIGN_OR_RETURN(auto records, QueryRecords(stmt));
  ListPage page;
  if (records.size() > static_cast<size_t>(page_size)) {
    records.resize(page_size);
    page.next_page_token = EncodePageToken(filter, records.back());
  }
  page.records = std::move(records);
  return page;
}

absl::StatusOr<JobRecord> SqliteJobStore::StartLocked(const std::string& id,
                                                      const std::string& holder,
                                                      int64_t lease_expiry_ms) {
  ATTATTR_STORE_RETURN_IF_ERROR(DeleteResultLocked(id));
  {
    ATTATTR_ASSIGN_OR_RETURN(
        auto stmt,
        Prepare("UPDATE jobs SET state = 'RUNNING', attempts = attempts + 1, start_time_ms = ?2, "
                "update_time_ms = ?2, has_result = 0, result_size_bytes = 0, "
                "result_chunk_count = 0, lease_holder = ?3, lease_token = lease_token + 1, "
                "lease_expiry_ms = ?4, start_seq = (SELECT COALESCE(MAX(start_seq), 0) + 1 FROM "
                "jobs) WHERE id = ?1"));
    stmt.BindText(1, id);
    stmt.BindInt(2, NowMs());
    stmt.BindText(3, holder);
    stmt.BindInt(4, lease_expiry_ms);
    const int rc = stmt.Step();
    if (rc != SQLITE_DONE) return SqliteError(rc, absl::StrCat("starting job ", Quote(id)));
  }
  return GetLocked(id);
}

absl::StatusOr<JobRecord> SqliteJobStore::MarkRunning(const std::string& id) {
  absl::MutexLock lock(&mu_);
  Transaction txn(this);
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Begin());
  ATTATTR_ASSIGN_OR_RETURN(auto job, GetLocked(id));
  if (job.state != JobState::kQueued) return WrongState(id, job.state, "QUEUED");
  ATTATTR_ASSIGN_OR_RETURN(auto updated, StartLocked(id, "", 0));
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Commit());
  return updated;
}

absl::StatusOr<std::optional<JobRecord>> SqliteJobStore::Claim(const ClaimRequest& request) {
  ATTATTR_STORE_RETURN_IF_ERROR(ValidateClaim(request));
  absl::MutexLock lock(&mu_);
  Transaction txn(this);
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Begin());
  std::string id;
  {
    ATTATTR_ASSIGN_OR_RETURN(auto stmt, Prepare(kClaimOrderSql));
    stmt.BindInt(1, request.max_running_per_owner);
    const int rc = stmt.Step();
    if (rc == SQLITE_DONE) return std::optional<JobRecord>();
    if (rc != SQLITE_ROW) return SqliteError(rc, "choosing the next job");
    id = stmt.Bytes(0);
  }
  ATTATTR_ASSIGN_OR_RETURN(auto claimed,
                           StartLocked(id, request.holder, NowMs() + request.lease_ms));
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Commit());
  return std::optional<JobRecord>(std::move(claimed));
}

absl::StatusOr<std::vector<std::string>> SqliteJobStore::RenewLeases(
    const std::string& holder, const std::vector<HeldLease>& leases, int64_t lease_ms) {
  absl::MutexLock lock(&mu_);
  Transaction txn(this);
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Begin());
  std::vector<std::string> lost;
  const int64_t expiry = NowMs() + lease_ms;
  for (const HeldLease& lease : leases) {
    ATTATTR_ASSIGN_OR_RETURN(
        auto stmt, Prepare("UPDATE jobs SET lease_expiry_ms = ?4 WHERE id = ?1 AND "
                           "state = 'RUNNING' AND lease_holder = ?2 AND lease_token = ?3"));
    stmt.BindText(1, lease.id);
    stmt.BindText(2, holder);
    stmt.BindInt(3, lease.token);
    stmt.BindInt(4, expiry);
    const int rc = stmt.Step();
    if (rc != SQLITE_DONE) return SqliteError(rc, absl::StrCat("renewing the lease of ", lease.id));
    if (sqlite3_changes(db_) == 0) lost.push_back(lease.id);
  }
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Commit());
  return lost;
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::RecoverExpiredLeases(int32_t max_attempts) {
  absl::MutexLock lock(&mu_);
  Transaction txn(this);
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Begin());
  std::vector<JobRecord> expired;
  {
    ATTATTR_ASSIGN_OR_RETURN(
        auto stmt,
        Prepare(absl::StrCat("SELECT ", kJobColumns,
                             " FROM jobs WHERE state = 'RUNNING' AND "
                             "lease_expiry_ms > 0 AND lease_expiry_ms < ?1 ORDER BY id")));
    stmt.BindInt(1, NowMs());
    ATTATTR_ASSIGN_OR_RETURN(expired, QueryRecords(stmt));
  }
  std::vector<JobRecord> changed;
  for (const JobRecord& job : expired) {
    ATTATTR_ASSIGN_OR_RETURN(JobRecord after, RecoverLocked(job, max_attempts));
    changed.push_back(std::move(after));
  }
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Commit());
  return changed;
}

absl::StatusOr<JobRecord> SqliteJobStore::RecoverLocked(const JobRecord& job,
                                                        int32_t max_attempts) {
  if (job.attempts >= max_attempts) {
    return FinishLocked(job.id, JobState::kFailed,
                        static_cast<int32_t>(absl::StatusCode::kInternal),
                        TooManyAttemptsMessage(job.attempts, max_attempts), kNoLease,
                        /*own_transaction=*/false);
  }
  return RequeueLocked(job.id, /*count_attempt=*/true);
}

absl::Status SqliteJobStore::UpdateProgress(const std::string& id, const JobProgress& progress,
                                            int64_t lease_token) {
  ATTATTR_STORE_RETURN_IF_ERROR(ValidateProgress(progress));
  absl::MutexLock lock(&mu_);
  {
    ATTATTR_ASSIGN_OR_RETURN(
        auto stmt,
        Prepare("UPDATE jobs SET progress_stage = ?2, progress_done = ?3, progress_total = ?4, "
                "update_time_ms = ?5 WHERE id = ?1 AND state IN ('QUEUED', 'RUNNING') "
                "AND (?6 = 0 OR lease_token = ?6)"));
    stmt.BindInt(6, lease_token);
    stmt.BindText(1, id);
    stmt.BindText(2, TextForStore(progress.stage));
    stmt.BindInt(3, progress.done);
    stmt.BindInt(4, progress.total);
    stmt.BindInt(5, NowMs());
    const int rc = stmt.Step();
    if (rc != SQLITE_DONE) return SqliteError(rc, absl::StrCat("updating progress of ", Quote(id)));
  }
  if (sqlite3_changes(db_) == 1) return absl::OkStatus();
  absl::StatusOr<JobRecord> job = GetLocked(id);  // say why nothing changed
  if (!job.ok()) return job.status();
  if (!IsTerminal(job->state)) return LeaseLost(id, lease_token, job->lease_token);
  return WrongState(id, job->state, "QUEUED or RUNNING");
}

absl::StatusOr<JobRecord> SqliteJobStore::FinishLocked(const std::string& id, JobState state,
                                                       int32_t error_code,
                                                       const std::string& error_message,
                                                       int64_t lease_token, bool own_transaction) {
  Transaction txn(this);
  if (own_transaction) ATTATTR_STORE_RETURN_IF_ERROR(txn.Begin());
  ATTATTR_ASSIGN_OR_RETURN(auto job, GetLocked(id));
  if (IsTerminal(job.state)) return WrongState(id, job.state, "QUEUED or RUNNING");
  if (lease_token != kNoLease && job.lease_token != lease_token) {
    return LeaseLost(id, lease_token, job.lease_token);
  }
  if (state != JobState::kSucceeded) ATTATTR_STORE_RETURN_IF_ERROR(DeleteResultLocked(id));
  const int64_t now = NowMs();
  {
    ATTATTR_ASSIGN_OR_RETURN(
        auto stmt,
        Prepare(
            "UPDATE jobs SET state = ?2, error_code = ?3, error_message = ?4, end_time_ms = ?5, "
            "update_time_ms = ?5, has_result = has_result AND ?6, lease_expiry_ms = 0, "
            "result_size_bytes = CASE WHEN ?6 THEN result_size_bytes ELSE 0 END, "
            "result_chunk_count = CASE WHEN ?6 THEN result_chunk_count ELSE 0 END WHERE id = ?1"));
    stmt.BindText(1, id);
    stmt.BindText(2, JobStateName(state));
    stmt.BindInt(3, error_code);
    stmt.BindText(4, TextForStore(error_message));
    stmt.BindInt(5, now);
    stmt.BindInt(6, state == JobState::kSucceeded ? 1 : 0);
    const int rc = stmt.Step();
    if (rc != SQLITE_DONE) return SqliteError(rc, absl::StrCat("finishing job ", Quote(id)));
  }
  ATTATTR_ASSIGN_OR_RETURN(auto updated, GetLocked(id));
  if (own_transaction) ATTATTR_STORE_RETURN_IF_ERROR(txn.Commit());
  return updated;
}

absl::StatusOr<JobRecord> SqliteJobStore::Finish(const std::string& id, JobState state,
                                                 int32_t error_code,
                                                 const std::string& error_message,
                                                 int64_t lease_token) {
  ATTATTR_ASSIGN_OR_RETURN(const int32_t code, ValidateFinish(state, error_code));
  absl::MutexLock lock(&mu_);
  return FinishLocked(id, state, code, error_message, lease_token, /*own_transaction=*/true);
}

absl::StatusOr<JobRecord> SqliteJobStore::Cancel(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return FinishLocked(id, JobState::kCancelled, kCancelledCode, "job cancelled", kNoLease,
                      /*own_transaction=*/true);
}

absl::Status SqliteJobStore::BeginOnRunningJob(Transaction& txn, const std::string& id,
                                               int64_t lease_token) {
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Begin());
  ATTATTR_ASSIGN_OR_RETURN(auto job, GetLocked(id));
  if (job.state != JobState::kRunning) return WrongState(id, job.state, "RUNNING");
  if (lease_token != kNoLease && job.lease_token != lease_token) {
    return LeaseLost(id, lease_token, job.lease_token);
  }
  return absl::OkStatus();
}

// A result is written in batches, each its own short transaction that first checks the job is
// still RUNNING (a job cancelled meanwhile has its chunks dropped by Finish, and no batch lands
// after that). Chunks are invisible until the last transaction sets has_result; a process that
// dies part-way leaves chunks of a RUNNING job, which MarkRunning drops when it runs again.
absl::Status SqliteJobStore::PutResult(const std::string& id, const std::string& bytes,
                                       int64_t lease_token) {
  const size_t chunk = static_cast<size_t>(options_.result_chunk_bytes);
  const size_t chunks_per_batch =
      std::max<size_t>(1, static_cast<size_t>(options_.result_write_batch_bytes) / chunk);
  const int64_t total_chunks = static_cast<int64_t>((bytes.size() + chunk - 1) / chunk);
  {
    // 1. The previous result goes, and with it has_result.
    absl::MutexLock lock(&mu_);
    Transaction txn(this);
    ATTATTR_STORE_RETURN_IF_ERROR(BeginOnRunningJob(txn, id, lease_token));
    ATTATTR_STORE_RETURN_IF_ERROR(DeleteResultLocked(id));
    ATTATTR_ASSIGN_OR_RETURN(auto stmt,
                             Prepare("UPDATE jobs SET has_result = 0, result_size_bytes = 0, "
                                     "result_chunk_count = 0 WHERE id = ?1"));
    stmt.BindText(1, id);
    const int rc = stmt.Step();
    if (rc != SQLITE_DONE)
      return SqliteError(rc, absl::StrCat("clearing the result of ", Quote(id)));
    ATTATTR_STORE_RETURN_IF_ERROR(txn.Commit());
  }
  // 2. The chunks, a batch per transaction.
  for (int64_t first = 0; first < total_chunks; first += static_cast<int64_t>(chunks_per_batch)) {
    absl::MutexLock lock(&mu_);
    Transaction txn(this);
    ATTATTR_STORE_RETURN_IF_ERROR(BeginOnRunningJob(txn, id, lease_token));
    const int64_t last = std::min(total_chunks, first + static_cast<int64_t>(chunks_per_batch));
    for (int64_t seq = first; seq < last; ++seq) {
      const size_t offset = static_cast<size_t>(seq) * chunk;
      absl::StatusOr<Statement> stmt =
          Prepare("INSERT INTO results (job_id, seq, data) VALUES (?1, ?2, ?3)");
      if (!stmt.ok()) return stmt.status();
      stmt->BindText(1, id);
      stmt->BindInt(2, seq);
      stmt->BindBlob(3, bytes.data() + offset, std::min(chunk, bytes.size() - offset),
                     /*copy=*/false);
      const int rc = stmt->Step();
      if (rc != SQLITE_DONE) {
        return SqliteError(rc, absl::StrCat("writing result chunk ", seq, " of ", Quote(id)));
      }
    }
    ATTATTR_STORE_RETURN_IF_ERROR(txn.Commit());
  }
  // 3. The result becomes visible.
  absl::MutexLock lock(&mu_);
  Transaction txn(this);
  ATTATTR_STORE_RETURN_IF_ERROR(BeginOnRunningJob(txn, id, lease_token));
  {
    ATTATTR_ASSIGN_OR_RETURN(
        auto stmt,
        Prepare("UPDATE jobs SET has_result = 1, result_size_bytes = ?2, result_chunk_count = ?3, "
                "update_time_ms = ?4 WHERE id = ?1"));
    stmt.BindText(1, id);
    stmt.BindInt(2, static_cast<int64_t>(bytes.size()));
    stmt.BindInt(3, total_chunks);
    stmt.BindInt(4, NowMs());
    const int rc = stmt.Step();
    if (rc != SQLITE_DONE) return SqliteError(rc, absl::StrCat("recording result of ", Quote(id)));
  }
  return txn.Commit();
}

absl::StatusOr<ResultInfo> SqliteJobStore::GetResultInfo(const std::string& id) {
  absl::MutexLock lock(&mu_);
  ATTATTR_ASSIGN_OR_RETURN(auto job, GetLocked(id));
  if (!job.has_result) {
    return absl::NotFoundError(
        absl::StrCat("job ", Quote(id), " (", JobStateName(job.state), ") has no result"));
  }
  return ResultInfo{job.result_size_bytes, job.result_chunk_count};
}

absl::StatusOr<std::string> SqliteJobStore::GetResultChunk(const std::string& id, int64_t seq) {
  if (seq < 0) return absl::InvalidArgumentError(absl::StrCat("seq: must be >= 0, got ", seq));
  absl::MutexLock lock(&mu_);
  {
    absl::StatusOr<Statement> stmt =
        Prepare("SELECT data FROM results WHERE job_id = ?1 AND seq = ?2");
    if (!stmt.ok()) return stmt.status();
    stmt->BindText(1, id);
    stmt->BindInt(2, seq);
    const int rc = stmt->Step();
    if (rc == SQLITE_ROW) return stmt->Bytes(0);
    if (rc != SQLITE_DONE) {
      return SqliteError(rc, absl::StrCat("reading result chunk ", seq, " of ", Quote(id)));
    }
  }
  ATTATTR_ASSIGN_OR_RETURN(auto job, GetLocked(id));
  return absl::NotFoundError(absl::StrCat("job ", Quote(id), " has no result chunk ", seq,
                                          " (it has ", job.result_chunk_count, ")"));
}

absl::Status SqliteJobStore::Delete(const std::string& id) {
  absl::MutexLock lock(&mu_);
  ATTATTR_ASSIGN_OR_RETURN(auto stmt, Prepare("DELETE FROM jobs WHERE id = ?1"));
  stmt.BindText(1, id);
  const int rc = stmt.Step();  // results go with it (ON DELETE CASCADE)
  if (rc != SQLITE_DONE) return SqliteError(rc, absl::StrCat("deleting job ", Quote(id)));
  if (sqlite3_changes(db_) == 0) return JobNotFound(id);
  return absl::OkStatus();
}

absl::StatusOr<JobRecord> SqliteJobStore::RequeueLocked(const std::string& id, bool count_attempt) {
  ATTATTR_STORE_RETURN_IF_ERROR(DeleteResultLocked(id));
  {
    ATTATTR_ASSIGN_OR_RETURN(
        auto stmt,
        Prepare("UPDATE jobs SET state = 'QUEUED', update_time_ms = ?2, progress_stage = '', "
                "progress_done = 0, progress_total = 0, has_result = 0, result_size_bytes = 0, "
                "result_chunk_count = 0, lease_holder = '', lease_expiry_ms = 0, "
                "lease_token = lease_token + 1, attempts = MAX(attempts - ?3, 0) WHERE id = ?1"));
    stmt.BindText(1, id);
    stmt.BindInt(2, NowMs());
    stmt.BindInt(3, count_attempt ? 0 : 1);
    const int rc = stmt.Step();
    if (rc != SQLITE_DONE) return SqliteError(rc, absl::StrCat("re-queueing job ", Quote(id)));
  }
  return GetLocked(id);
}

absl::StatusOr<JobRecord> SqliteJobStore::Requeue(const std::string& id, int64_t lease_token) {
  absl::MutexLock lock(&mu_);
  Transaction txn(this);
  ATTATTR_STORE_RETURN_IF_ERROR(BeginOnRunningJob(txn, id, lease_token));
  ATTATTR_ASSIGN_OR_RETURN(auto updated, RequeueLocked(id, /*count_attempt=*/false));
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Commit());
  return updated;
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::RequeueInterrupted(int32_t max_attempts) {
  absl::MutexLock lock(&mu_);
  Transaction txn(this);
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Begin());
  std::vector<JobRecord> running;
  {
    ATTATTR_ASSIGN_OR_RETURN(
        auto stmt, Prepare(absl::StrCat("SELECT ", kJobColumns,
                                        " FROM jobs WHERE state = 'RUNNING' ORDER BY id")));
    ATTATTR_ASSIGN_OR_RETURN(running, QueryRecords(stmt));
  }
  // Each re-queued as RecoverExpiredLeases re-queues a lapsed lease (a result the dead run stored
  // before it could finish the job goes: it would count against its owner's stored bytes and
  // read as the result of a job that is queued; so does its progress), or failed as it fails one.
  std::vector<JobRecord> changed;
  for (const JobRecord& job : running) {
    ATTATTR_ASSIGN_OR_RETURN(JobRecord after, RecoverLocked(job, max_attempts));
    changed.push_back(std::move(after));
  }
  ATTATTR_STORE_RETURN_IF_ERROR(txn.Commit());
  return changed;
}

absl::StatusOr<QueueCounts> SqliteJobStore::CountQueued(const std::string& owner) {
  absl::MutexLock lock(&mu_);
  return CountQueuedLocked(owner);
}

absl::StatusOr<QueueCounts> SqliteJobStore::CountQueuedLocked(const std::string& owner) {
  ATTATTR_ASSIGN_OR_RETURN(auto stmt,
                           Prepare("SELECT COUNT(*), COALESCE(SUM(owner = ?1), 0) FROM jobs "
                                   "WHERE state = 'QUEUED'"));
  stmt.BindText(1, owner);
  const int rc = stmt.Step();
  if (rc != SQLITE_ROW) return SqliteError(rc, "counting queued jobs");
  return QueueCounts{stmt.Int(0), stmt.Int(1)};
}

absl::StatusOr<int64_t> SqliteJobStore::ExpireResults(int64_t now_ms, int64_t retention_ms) {
  if (retention_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("retention_ms: must be >= 0, got ", retention_ms));
  }
  // In batches of kExpireBatch, the store's lock let go between them: a backlog does not hold
  // every other call for the whole sweep.
  int64_t expired = 0;
  for (;;) {
    absl::MutexLock lock(&mu_);
    ATTATTR_ASSIGN_OR_RETURN(
        auto stmt,
        Prepare("DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('SUCCEEDED', "
                "'FAILED', 'CANCELLED') AND end_time_ms > 0 AND end_time_ms < ?1 LIMIT ?2)"));
    stmt.BindInt(1, now_ms - retention_ms);
    stmt.BindInt(2, kExpireBatch);
    const int rc = stmt.Step();
    if (rc != SQLITE_DONE) return SqliteError(rc, "expiring finished jobs");
    const int64_t batch = sqlite3_changes64(db_);
    expired += batch;
    if (batch < kExpireBatch) return expired;
  }
}

absl::StatusOr<int64_t> SqliteJobStore::StoredBytes(const std::string& owner) {
  absl::MutexLock lock(&mu_);
  return StoredBytesLocked(owner);
}

absl::StatusOr<int64_t> SqliteJobStore::StoredBytesLocked(const std::string& owner) {
  ATTATTR_ASSIGN_OR_RETURN(
      auto stmt,
      Prepare(
          "SELECT COALESCE(SUM(length(spec) + result_size_bytes + CASE WHEN state IN ('QUEUED', "
          "'RUNNING') THEN reserved_bytes ELSE 0 END), 0) FROM jobs WHERE owner = ?1"));
  stmt.BindText(1, owner);
  const int rc = stmt.Step();
  if (rc != SQLITE_ROW) return SqliteError(rc, absl::StrCat("summing the jobs of ", Quote(owner)));
  return stmt.Int(0);
}

absl::StatusOr<StoreStats> SqliteJobStore::Stats() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt =
      Prepare("SELECT state, COUNT(*), SUM(result_size_bytes) FROM jobs GROUP BY state");
  if (!stmt.ok()) return stmt.status();
  StoreStats stats;
  for (;;) {
    const int rc = stmt->Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return SqliteError(rc, "counting jobs");
    std::optional<JobState> state = JobStateFromName(stmt->Bytes(0));
    if (!state.has_value()) return absl::DataLossError("a job has an unknown state");
    stats.jobs_by_state[static_cast<int>(*state)] = stmt->Int(1);
    stats.result_bytes += stmt->Int(2);
  }
  return stats;
}

}  // namespace attattr::store
