// PostgresJobStore: the JobStore schema, state transitions and chunked results in PostgreSQL.
// Every transition is one transaction that locks the job's row (SELECT ... FOR UPDATE), so two
// replicas changing one job serialise on the database, not in this process; claims skip rows
// another claim holds (FOR UPDATE SKIP LOCKED). Every change sends NOTIFY attattr_jobs with the
// job id, delivered at commit. Lease expiry is the database's clock, so replicas' clocks need not
// agree. Ids, kinds, owners and request ids are COLLATE "C" so listings order them bytewise, as
// SQLite does.
#include "store/postgres_job_store.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "attattr/base/status_macros.h"
#include "store/job_store_rules.h"
#include "store/pg_change_listener.h"
#include "store/pg_connection_pool.h"
#include "store/pg_job_rows.h"
#include "store/postgres_shard_store.h"
#include "store/store_uri.h"

namespace attattr::store {
namespace {

using pg::kChannel;
using pg::kDbNowMs;
using pg::kJobColumns;
using pg::LockedJob;

// The transaction-level advisory lock that limited creates take (hashtext of this name).
constexpr char kAdmissionLock[] = "attattr_admission";
// The advisory locks claims of one owner's jobs take under a running limit (hashtext of this name
// and of the owner).
constexpr char kRunningLock[] = "attattr_running";

// kJobColumns, or with an empty spec in its place when the spec is not wanted.
std::string JobColumns(bool include_spec) {
  if (include_spec) return kJobColumns;
  return absl::StrReplaceAll(kJobColumns, {{" spec,", " ''::bytea AS spec,"}});
}

// QUEUED jobs, and of them `owner`'s.
QueueCounts QueueCountsIn(pqxx::transaction_base& txn, const std::string& owner) {
  const pqxx::row row = txn.exec_params1(
      "SELECT count(*), count(*) FILTER (WHERE owner = $1) FROM attattr_jobs WHERE state = "
      "'QUEUED'",
      owner);
  return QueueCounts{row[0].as<int64_t>(), row[1].as<int64_t>()};
}

// What `owner`'s jobs occupy: their specs and results, in bytes.
int64_t StoredBytesIn(pqxx::transaction_base& txn, const std::string& owner) {
  return txn
      .exec_params1(
          "SELECT COALESCE(SUM(octet_length(spec) + result_size_bytes + CASE WHEN state IN "
          "('QUEUED', 'RUNNING') THEN reserved_bytes ELSE 0 END), 0)::BIGINT "
          "FROM attattr_jobs WHERE owner = $1",
          owner)[0]
      .as<int64_t>();
}

// How many QUEUED jobs a claim considers at once (those other claims hold are skipped).
constexpr int kClaimCandidates = 32;

// The QUEUED jobs in claim order (see JobStore::Claim): by priority, then owners take turns (the
// owner whose last job started longest ago, or never, first: start_seq numbers the starts), then
// submission order; $1 = max running per owner (0 = no limit), $2 = how many, $3 = owners to pass
// over.
constexpr char kClaimCandidatesSql[] = R"sql(
SELECT q.id FROM attattr_jobs AS q
LEFT JOIN (SELECT owner, max(start_seq) AS last_start FROM attattr_jobs
           WHERE start_seq > 0 AND owner IN (SELECT owner FROM attattr_jobs WHERE state = 'QUEUED')
           GROUP BY owner) AS s ON s.owner = q.owner
WHERE q.state = 'QUEUED' AND NOT q.owner = ANY($3::text[]) AND ($1 = 0 OR
      (SELECT count(*) FROM attattr_jobs AS r WHERE r.state = 'RUNNING' AND r.owner = q.owner) < $1)
ORDER BY q.priority DESC, COALESCE(s.last_start, 0), q.seq LIMIT $2
)sql";

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
  seq                BIGINT  GENERATED ALWAYS AS IDENTITY,  -- submission order (ids are random)
  start_seq          BIGINT  NOT NULL DEFAULT 0,  -- order of the last start (0 = never)
  lease_holder       TEXT    NOT NULL DEFAULT '',
  lease_token        BIGINT  NOT NULL DEFAULT 0,
  lease_expiry_ms    BIGINT  NOT NULL DEFAULT 0,
  reserved_bytes     BIGINT  NOT NULL DEFAULT 0,  -- result estimate held against the quota
  CONSTRAINT attattr_jobs_request_id UNIQUE (owner, request_id)
);
CREATE INDEX attattr_jobs_by_owner ON attattr_jobs (owner, create_time_ms, id);
CREATE INDEX attattr_jobs_by_create_time ON attattr_jobs (create_time_ms, id);
CREATE INDEX attattr_jobs_by_state ON attattr_jobs (state, create_time_ms, id);
CREATE INDEX attattr_jobs_queued ON attattr_jobs (priority DESC, owner, seq)
  WHERE state = 'QUEUED';
CREATE INDEX attattr_jobs_running ON attattr_jobs (owner, lease_expiry_ms)
  WHERE state = 'RUNNING';
CREATE INDEX attattr_jobs_owner_starts ON attattr_jobs (owner, start_seq);
CREATE SEQUENCE attattr_start_seq;
CREATE INDEX attattr_jobs_by_end_time ON attattr_jobs (end_time_ms) WHERE end_time_ms > 0;
CREATE TABLE attattr_results (
  job_id TEXT   COLLATE "C" NOT NULL REFERENCES attattr_jobs (id) ON DELETE CASCADE,
  seq    BIGINT NOT NULL,
  data   BYTEA  NOT NULL,
  PRIMARY KEY (job_id, seq)
);
CREATE TABLE attattr_shards (
  job_id          TEXT    COLLATE "C" NOT NULL REFERENCES attattr_jobs (id) ON DELETE CASCADE,
  shard           INTEGER NOT NULL,
  state           TEXT    NOT NULL CHECK (state IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED')),
  begin_item      BIGINT  NOT NULL,
  end_item        BIGINT  NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  lease_holder    TEXT    NOT NULL DEFAULT '',
  lease_token     BIGINT  NOT NULL DEFAULT 0,
  lease_expiry_ms BIGINT  NOT NULL DEFAULT 0,
  error_code      INTEGER NOT NULL DEFAULT 0,
  error_message   TEXT    NOT NULL DEFAULT '',
  result          BYTEA,
  stage           INTEGER NOT NULL DEFAULT 0,      -- the job's pass (version 2)
  input           BYTEA   NOT NULL DEFAULT '',    -- what the stage's shards are given (version 2)
  PRIMARY KEY (job_id, shard)
);
CREATE INDEX attattr_shards_queued ON attattr_shards (job_id, shard) WHERE state = 'QUEUED';
CREATE INDEX attattr_shards_running ON attattr_shards (lease_expiry_ms) WHERE state = 'RUNNING';
CREATE TABLE attattr_schema (version INTEGER NOT NULL);
)sql";

// Forward migrations: kMigrations[v - 1] brings version v to v + 1.
constexpr const char* kMigrations[] = {
    // 1 -> 2: shards of jobs that run in several stages (studies, searches).
    R"sql(
ALTER TABLE attattr_shards ADD COLUMN stage INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attattr_shards ADD COLUMN input BYTEA NOT NULL DEFAULT '';
)sql",
    // 2 -> 3: a queued or running job's result estimate, held against its owner's quota.
    R"sql(
ALTER TABLE attattr_jobs ADD COLUMN reserved_bytes BIGINT NOT NULL DEFAULT 0;
)sql",
};
static_assert(std::size(kMigrations) == PostgresJobStore::kSchemaVersion - 1,
              "one migration per version step");

// The database clock minus `host_now`'s, read in `txn`; nothing when the round trip took over a
// second (it would say little about the offset) or the host clock stepped back during it.
std::optional<int64_t> DbClockOffsetMs(pqxx::transaction_base& txn,
                                       const std::function<int64_t()>& host_now) {
  const int64_t before = host_now();
  const auto db = txn.exec1(absl::StrCat("SELECT ", pg::kDbNowMs))[0].as<int64_t>();
  const int64_t after = host_now();
  if (after < before || after - before > 1000) return std::nullopt;  // a step, or a slow trip
  return db - (before + after) / 2;
}

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
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
        in_range("result_write_batch_bytes", result_write_batch_bytes, 4096, int64_t{1} << 30),
        in_range("clock_refresh_ms", clock_refresh_ms, 10, 3600000)}) {
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
  pool.conninfo = conninfo;
  pool.size = options.connections;
  pool.acquire_timeout = absl::Seconds(options.connect_timeout_s) + absl::Seconds(5);
  pool.session_sql = {
      absl::StrCat("SET statement_timeout = ", options.statement_timeout_ms),
      // A frozen or partitioned replica's open transaction (and the row locks it holds) ends.
      absl::StrCat("SET idle_in_transaction_session_timeout = ", options.statement_timeout_ms),
  };
  std::unique_ptr<PostgresJobStore> store(
      new PostgresJobStore(options, conninfo, std::make_unique<PgConnectionPool>(std::move(pool))));
  absl::Status schema = store->CreateOrMigrateSchema();
  if (absl::StrContains(schema.message(), "SQLSTATE 3F000")) {
    schema = absl::Status(schema.code(),
                          absl::StrCat(schema.message(),
                                       " (create the schema the URI's search_path names, owned by "
                                       "the connecting role, or leave search_path out)"));
  }
  if (!schema.ok()) {
    return absl::Status(schema.code(), absl::StrCat("job store ", Quote(RedactUri(options.uri)),
                                                    ": ", schema.message()));
  }
  ATTATTR_RETURN_IF_ERROR(store->MeasureClockOffset());
  if (!options.clock) {
    PostgresJobStore* opened = store.get();
    opened->clock_thread_ = std::thread([opened] {
      const absl::Duration period = absl::Milliseconds(opened->options_.clock_refresh_ms);
      while (!opened->stop_clock_.WaitForNotificationWithTimeout(period)) {
        // An unreachable database keeps the last offset; the store's calls say so themselves.
        opened->MeasureClockOffset().IgnoreError();
      }
    });
  }
  return store;
}

absl::Status PostgresJobStore::MeasureClockOffset() {
  return pool_->Run("reading the database clock", [&](pqxx::connection& c) {
    pqxx::nontransaction txn(c);
    for (int attempt = 0; attempt < 3; ++attempt) {
      const auto offset = DbClockOffsetMs(txn, [this] { return HostNowMs(); });
      if (offset.has_value()) {
        clock_offset_ms_.store(*offset);
        break;
      }
    }
    return absl::OkStatus();
  });
}

PostgresJobStore::PostgresJobStore(PostgresJobStoreOptions options, std::string conninfo,
                                   std::unique_ptr<PgConnectionPool> pool)
    : options_(std::move(options)),
      conninfo_(std::move(conninfo)),
      pool_(std::move(pool)),
      shards_(std::make_unique<PostgresShardStore>(*pool_, [this] { return NowMs(); })) {}

ShardStore* PostgresJobStore::shards() { return shards_.get(); }

void PostgresJobStore::StopChanges() { listener_.reset(); }

bool PostgresJobStore::SubscribeChanges(ChangeCallbacks callbacks) {
  if (listener_ == nullptr) {
    PgConnectionPool* pool = pool_.get();
    // "shards:<id>" says shards became claimable; anything else is a job id.
    ChangeCallbacks routed;
    routed.on_change = [callbacks](const std::string& payload) {
      if (absl::StartsWith(payload, pg::kShardsPayloadPrefix)) {
        if (callbacks.on_work) callbacks.on_work();
      } else if (callbacks.on_change) {
        callbacks.on_change(payload);
      }
    };
    // The listener reconnected: the database may have restarted, and then the pool's idle
    // connections are dead and their backend pids free for other replicas' backends.
    routed.on_resync = [pool, callbacks] {
      pool->CloseIdle();
      if (callbacks.on_resync) callbacks.on_resync();
    };
    listener_ = std::make_unique<PgChangeListener>(
        conninfo_, kChannel, std::move(routed),
        [pool](int backend_pid) { return pool->IsOwnBackend(backend_pid); });
  }
  return true;
}

PostgresJobStore::~PostgresJobStore() {
  stop_clock_.Notify();
  if (clock_thread_.joinable()) clock_thread_.join();
}

bool PostgresJobStore::connected() const { return pool_->connected(); }

int64_t PostgresJobStore::HostNowMs() const {
  return options_.host_clock ? options_.host_clock() : SystemNowMs();
}

int64_t PostgresJobStore::NowMs() const {
  return options_.clock ? options_.clock() : HostNowMs() + clock_offset_ms_.load();
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
    if (stored == kSchemaVersion) return absl::OkStatus();  // the transaction ends unchanged
    for (int v = stored; v < kSchemaVersion; ++v) txn.exec(kMigrations[v - 1]);
    txn.exec_params("UPDATE attattr_schema SET version = $1", kSchemaVersion);
    txn.commit();
    schema_change_ = absl::StrCat("migrated from version ", stored, " to ", kSchemaVersion);
    return absl::OkStatus();
  });
}

absl::StatusOr<CreateResult> PostgresJobStore::Create(const JobRecord& record,
                                                      const AdmissionLimits& limits) {
  ATTATTR_RETURN_IF_ERROR(ValidateNewRecord(record));
  ATTATTR_RETURN_IF_ERROR(ValidateAdmissionLimits(limits));
  std::string id = record.id;
  if (id.empty()) {
    ATTATTR_ASSIGN_OR_RETURN(id, NewJobId());
  }
  const int64_t now = NowMs();
  CreateResult result;
  ATTATTR_RETURN_IF_ERROR(pool_->Run(
      absl::StrCat("creating job ", Quote(id)), [&](pqxx::connection& c) -> absl::Status {
        result = CreateResult{};
        pqxx::work txn(c);
        const bool limited = CountsQueue(limits) || limits.max_stored_bytes_per_owner > 0;
        if (limited) {
          // Limited creates of every replica take turns, from their counts to their commit, so
          // each one counts what the others stored (READ COMMITTED: every statement below reads
          // after the lock). Unlimited creates and every other call do not wait for it.
          txn.exec(absl::StrCat("SELECT pg_advisory_xact_lock(hashtext('", kAdmissionLock, "'))"));
        }
        auto find_existing = [&]() -> absl::StatusOr<bool> {
          if (record.request_id.empty()) return false;
          const pqxx::result existing = txn.exec_params(
              absl::StrCat(pg::SelectJob(), " WHERE owner = $1 AND request_id = $2"), record.owner,
              record.request_id);
          if (existing.empty()) return false;
          ATTATTR_ASSIGN_OR_RETURN(result.record, pg::RecordFromRow(existing[0]));
          return true;
        };
        if (limited) {
          // A retry of a stored submission is answered whatever the limits.
          ATTATTR_ASSIGN_OR_RETURN(const bool found, find_existing());
          if (found) return absl::OkStatus();
          if (CountsQueue(limits)) result.counts = QueueCountsIn(txn, record.owner);
          if (limits.max_stored_bytes_per_owner > 0) {
            result.owner_stored_bytes = StoredBytesIn(txn, record.owner) +
                                        static_cast<int64_t>(record.spec.size()) +
                                        std::max<int64_t>(record.reserved_result_bytes, 0);
          }
          result.refused = Admit(limits, result.counts, result.owner_stored_bytes);
          if (result.refused != Refusal::kNone) return absl::OkStatus();  // nothing written
        }
        // The unique constraints decide, not a check before the insert: of concurrent unlimited
        // creates with one request_id (on any replica), one inserts and the others find its job.
        const pqxx::result inserted = txn.exec_params(
            absl::StrCat(
                "INSERT INTO attattr_jobs (id, request_id, kind, model, priority, state, "
                "spec, create_time_ms, update_time_ms, owner, reserved_bytes) VALUES ($1, "
                "NULLIF($2, ''), $3, $4, $5, 'QUEUED', $6, $7, $8, $9, $10) ON CONFLICT DO "
                "NOTHING RETURNING ",
                kJobColumns, ", pg_notify('", kChannel, "', id)"),
            id, record.request_id, record.kind, record.model, record.priority,
            pqxx::binarystring(record.spec.data(), record.spec.size()),
            record.create_time_ms != 0 ? record.create_time_ms : now, now, record.owner,
            std::max<int64_t>(record.reserved_result_bytes, 0));
        if (!inserted.empty()) {
          ATTATTR_ASSIGN_OR_RETURN(result.record, pg::RecordFromRow(inserted[0]));
          txn.commit();
          result.created = true;
          return absl::OkStatus();
        }
        ATTATTR_ASSIGN_OR_RETURN(const bool found, find_existing());
        if (found) return absl::OkStatus();
        return absl::AlreadyExistsError(absl::StrCat("job ", Quote(id), " already exists"));
      }));
  return result;
}

absl::StatusOr<JobRecord> PostgresJobStore::Get(const std::string& id, bool include_spec) {
  JobRecord record;
  ATTATTR_RETURN_IF_ERROR(
      pool_->Run(absl::StrCat("reading job ", Quote(id)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        ATTATTR_ASSIGN_OR_RETURN(
            record, pg::OneRecord(txn.exec_params(absl::StrCat("SELECT ", JobColumns(include_spec),
                                                               " FROM attattr_jobs WHERE id = $1"),
                                                  id),
                                  id));
        return absl::OkStatus();
      }));
  return record;
}

absl::StatusOr<ListPage> PostgresJobStore::List(const ListFilter& filter) {
  ATTATTR_ASSIGN_OR_RETURN(const int32_t page_size, PageSize(filter));
  ATTATTR_ASSIGN_OR_RETURN(auto cursor, DecodePageToken(filter));
  const std::string columns = JobColumns(filter.include_spec);
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
    ATTATTR_ASSIGN_OR_RETURN(page.records, pg::Records(rows));
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
        ATTATTR_ASSIGN_OR_RETURN(const LockedJob job, pg::LockJob(txn, id));
        if (job.state != JobState::kQueued) return WrongState(id, job.state, "QUEUED");
        ATTATTR_ASSIGN_OR_RETURN(updated, pg::StartJob(txn, id, "", 0, NowMs()));
        txn.commit();
        return absl::OkStatus();
      }));
  return updated;
}

absl::StatusOr<std::optional<JobRecord>> PostgresJobStore::Claim(const ClaimRequest& request) {
  ATTATTR_RETURN_IF_ERROR(ValidateClaim(request));
  std::optional<JobRecord> claimed;
  // Owners found at their running limit once counted under their lock. Each attempt is one
  // transaction holding at most one owner's lock, so two claims never wait on each other's.
  std::vector<std::string> full_owners;
  for (bool again = true; again;) {
    again = false;
    ATTATTR_RETURN_IF_ERROR(pool_->Run("claiming a job", [&](pqxx::connection& c) -> absl::Status {
      pqxx::work txn(c);
      std::vector<std::string> candidates;
      for (const auto& row : txn.exec_params(kClaimCandidatesSql, request.max_running_per_owner,
                                             kClaimCandidates, pg::TextArray(full_owners))) {
        candidates.push_back(row[0].as<std::string>());
      }
      if (candidates.empty()) return absl::OkStatus();
      // The first candidate no other claim holds, still QUEUED once locked.
      const pqxx::result locked = txn.exec_params(
          "SELECT id, owner FROM attattr_jobs WHERE id = ANY($1::text[]) AND state = 'QUEUED' "
          "ORDER BY array_position($1::text[], id) LIMIT 1 FOR UPDATE SKIP LOCKED",
          pg::TextArray(candidates));
      if (locked.empty()) return absl::OkStatus();
      const std::string owner = locked[0][1].as<std::string>();
      if (request.max_running_per_owner > 0) {
        // The candidates' counts were read before any lock: claims of one owner's jobs on
        // several replicas take turns from here to their commit, and each counts again.
        txn.exec_params("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))",
                        std::string(kRunningLock), owner);
        const int64_t running =
            txn.exec_params1(
                   "SELECT count(*) FROM attattr_jobs WHERE state = 'RUNNING' AND owner = $1",
                   owner)[0]
                .as<int64_t>();
        if (running >= request.max_running_per_owner) {
          full_owners.push_back(owner);
          again = true;
          return absl::OkStatus();  // rolled back: the lock goes with it
        }
      }
      ATTATTR_ASSIGN_OR_RETURN(JobRecord record,
                               pg::StartJob(txn, locked[0][0].as<std::string>(), request.holder,
                                            request.lease_ms, NowMs()));
      txn.commit();
      claimed = std::move(record);
      return absl::OkStatus();
    }));
  }
  return claimed;
}

absl::StatusOr<std::vector<std::string>> PostgresJobStore::RenewLeases(
    const std::string& holder, const std::vector<HeldLease>& leases, int64_t lease_ms) {
  if (leases.empty()) return std::vector<std::string>();
  std::vector<std::string> ids;
  std::string tokens = "{";
  for (const HeldLease& lease : leases) {
    ids.push_back(lease.id);
    absl::StrAppend(&tokens, tokens.size() > 1 ? "," : "", lease.token);
  }
  tokens += "}";
  std::set<std::string> renewed;
  ATTATTR_RETURN_IF_ERROR(pool_->Run("renewing leases", [&](pqxx::connection& c) -> absl::Status {
    pqxx::nontransaction txn(c);
    const pqxx::result rows =
        txn.exec_params(absl::StrCat("UPDATE attattr_jobs AS j SET lease_expiry_ms = ", kDbNowMs,
                                     " + $4 FROM unnest($2::text[], $3::bigint[]) AS l(id, token) "
                                     "WHERE j.id = l.id AND j.lease_token = l.token AND "
                                     "j.state = 'RUNNING' AND j.lease_holder = $1 AND "
                                     "j.lease_expiry_ms > 0 RETURNING j.id"),
                        holder, pg::TextArray(ids), tokens, lease_ms);
    for (const auto& row : rows) renewed.insert(row[0].as<std::string>());
    return absl::OkStatus();
  }));
  std::vector<std::string> lost;
  for (const std::string& id : ids) {
    if (renewed.count(id) == 0) lost.push_back(id);
  }
  return lost;
}

absl::StatusOr<std::vector<JobRecord>> PostgresJobStore::RecoverExpiredLeases(
    int32_t max_attempts) {
  std::vector<JobRecord> changed;
  ATTATTR_RETURN_IF_ERROR(
      pool_->Run("recovering jobs whose lease lapsed", [&](pqxx::connection& c) -> absl::Status {
        pqxx::work txn(c);
        // Rows another replica is recovering (or finishing) right now are skipped, not waited
        // for: that replica deals with them.
        const pqxx::result expired = txn.exec(
            absl::StrCat("SELECT id, attempts FROM attattr_jobs WHERE state = 'RUNNING' AND "
                         "lease_expiry_ms > 0 AND lease_expiry_ms < ",
                         kDbNowMs, " ORDER BY id FOR UPDATE SKIP LOCKED"));
        for (const auto& row : expired) {
          ATTATTR_ASSIGN_OR_RETURN(
              JobRecord after, pg::RecoverJob(txn, row[0].as<std::string>(), row[1].as<int32_t>(),
                                              max_attempts, NowMs()));
          changed.push_back(std::move(after));
        }
        txn.commit();
        return absl::OkStatus();
      }));
  return changed;
}

absl::Status PostgresJobStore::UpdateProgress(const std::string& id, const JobProgress& progress,
                                              int64_t lease_token) {
  ATTATTR_RETURN_IF_ERROR(ValidateProgress(progress));
  return pool_->Run(
      absl::StrCat("updating progress of ", Quote(id)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        const pqxx::result changed = txn.exec_params(
            absl::StrCat("UPDATE attattr_jobs SET progress_stage = $2, progress_done = $3, "
                         "progress_total = $4, update_time_ms = $5 "
                         "WHERE id = $1 AND state IN ('QUEUED', 'RUNNING') "
                         "AND ($6 = 0 OR lease_token = $6) RETURNING pg_notify('",
                         kChannel, "', id)"),
            id, TextForStore(progress.stage), progress.done, progress.total, NowMs(), lease_token);
        if (changed.size() == 1) return absl::OkStatus();
        const pqxx::result job = txn.exec_params(  // say why nothing changed
            "SELECT state, lease_token FROM attattr_jobs WHERE id = $1", id);
        if (job.empty()) return JobNotFound(id);
        const JobState state =
            JobStateFromName(job[0][0].as<std::string>()).value_or(JobState::kQueued);
        if (!IsTerminal(state)) return LeaseLost(id, lease_token, job[0][1].as<int64_t>());
        return WrongState(id, state, "QUEUED or RUNNING");
      });
}

absl::StatusOr<JobRecord> PostgresJobStore::FinishJob(const std::string& id, JobState state,
                                                      int32_t error_code,
                                                      const std::string& error_message,
                                                      int64_t lease_token) {
  JobRecord updated;
  ATTATTR_RETURN_IF_ERROR(pool_->Run(
      absl::StrCat("finishing job ", Quote(id)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::work txn(c);
        ATTATTR_ASSIGN_OR_RETURN(const LockedJob job, pg::LockJob(txn, id));
        if (IsTerminal(job.state)) return WrongState(id, job.state, "QUEUED or RUNNING");
        if (lease_token != kNoLease && job.lease_token != lease_token) {
          return LeaseLost(id, lease_token, job.lease_token);
        }
        ATTATTR_ASSIGN_OR_RETURN(
            updated, pg::FinishLockedJob(txn, id, state, error_code, error_message, NowMs()));
        txn.commit();
        return absl::OkStatus();
      }));
  return updated;
}

absl::StatusOr<JobRecord> PostgresJobStore::Finish(const std::string& id, JobState state,
                                                   int32_t error_code,
                                                   const std::string& error_message,
                                                   int64_t lease_token) {
  ATTATTR_ASSIGN_OR_RETURN(const int32_t code, ValidateFinish(state, error_code));
  return FinishJob(id, state, code, error_message, lease_token);
}

absl::StatusOr<JobRecord> PostgresJobStore::Cancel(const std::string& id) {
  return FinishJob(id, JobState::kCancelled, kCancelledCode, "job cancelled", kNoLease);
}

// Like SqliteJobStore::PutResult: the old result goes, the chunks follow in batches (each a
// transaction that locks the job and checks it is still RUNNING, so a Cancel between batches ends
// the write and drops what was written), and the result becomes visible in the last transaction.
absl::Status PostgresJobStore::PutResult(const std::string& id, const std::string& bytes,
                                         int64_t lease_token) {
  const size_t chunk = static_cast<size_t>(options_.result_chunk_bytes);
  const int64_t chunks_per_batch =
      std::max<int64_t>(1, options_.result_write_batch_bytes / options_.result_chunk_bytes);
  const int64_t total_chunks = static_cast<int64_t>((bytes.size() + chunk - 1) / chunk);
  const std::string what = absl::StrCat("writing the result of ", Quote(id));
  ATTATTR_RETURN_IF_ERROR(pool_->Run(what, [&](pqxx::connection& c) -> absl::Status {
    pqxx::work txn(c);
    ATTATTR_RETURN_IF_ERROR(pg::LockRunningJob(txn, id, lease_token));
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
      ATTATTR_RETURN_IF_ERROR(pg::LockRunningJob(txn, id, lease_token));
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
    ATTATTR_RETURN_IF_ERROR(pg::LockRunningJob(txn, id, lease_token));
    txn.exec_params(
        "UPDATE attattr_jobs SET has_result = TRUE, result_size_bytes = $2, "
        "result_chunk_count = $3, update_time_ms = $4 WHERE id = $1",
        id, static_cast<int64_t>(bytes.size()), total_chunks, NowMs());
    pg::Notify(txn, id);
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
        const pqxx::result deleted = txn.exec_params(
            absl::StrCat("DELETE FROM attattr_jobs WHERE id = $1 RETURNING pg_notify('", kChannel,
                         "', id)"),
            id);
        if (deleted.empty()) return JobNotFound(id);
        return absl::OkStatus();
      });
}

absl::StatusOr<JobRecord> PostgresJobStore::Requeue(const std::string& id, int64_t lease_token) {
  JobRecord updated;
  ATTATTR_RETURN_IF_ERROR(pool_->Run(
      absl::StrCat("re-queueing job ", Quote(id)), [&](pqxx::connection& c) -> absl::Status {
        pqxx::work txn(c);
        ATTATTR_RETURN_IF_ERROR(pg::LockRunningJob(txn, id, lease_token));
        ATTATTR_ASSIGN_OR_RETURN(updated,
                                 pg::RequeueJob(txn, id, NowMs(), /*count_attempt=*/false));
        txn.commit();
        return absl::OkStatus();
      }));
  return updated;
}

absl::StatusOr<std::vector<JobRecord>> PostgresJobStore::RequeueInterrupted(int32_t max_attempts) {
  std::vector<JobRecord> changed;
  ATTATTR_RETURN_IF_ERROR(
      pool_->Run("re-queueing running jobs", [&](pqxx::connection& c) -> absl::Status {
        changed.clear();
        pqxx::work txn(c);
        // Each as RecoverExpiredLeases recovers a lapsed lease: re-queued (the dead run's stored
        // result and progress go too), or failed once started max_attempts times.
        for (const auto& row : txn.exec("SELECT id, attempts FROM attattr_jobs WHERE state = "
                                        "'RUNNING' ORDER BY id FOR UPDATE")) {
          ATTATTR_ASSIGN_OR_RETURN(
              JobRecord after, pg::RecoverJob(txn, row[0].as<std::string>(), row[1].as<int32_t>(),
                                              max_attempts, NowMs()));
          changed.push_back(std::move(after));
        }
        txn.commit();
        return absl::OkStatus();
      }));
  return changed;
}

absl::StatusOr<QueueCounts> PostgresJobStore::CountQueued(const std::string& owner) {
  QueueCounts counts;
  ATTATTR_RETURN_IF_ERROR(
      pool_->Run("counting queued jobs", [&](pqxx::connection& c) -> absl::Status {
        pqxx::nontransaction txn(c);
        counts = QueueCountsIn(txn, owner);
        return absl::OkStatus();
      }));
  return counts;
}

absl::StatusOr<int64_t> PostgresJobStore::ExpireResults(int64_t now_ms, int64_t retention_ms) {
  if (retention_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("retention_ms: must be >= 0, got ", retention_ms));
  }
  int64_t expired = 0;
  // In batches of kExpireBatch, each its own statement: a backlog (a long pause, a shorter
  // retention) cannot make one DELETE and its cascades outlast the statement timeout every sweep,
  // and what each batch removed stays removed. Rows another replica's sweep holds are skipped.
  for (;;) {
    int64_t batch = 0;
    ATTATTR_RETURN_IF_ERROR(
        pool_->Run("expiring finished jobs", [&](pqxx::connection& c) -> absl::Status {
          pqxx::nontransaction txn(c);
          batch = txn.exec_params(
                         "DELETE FROM attattr_jobs WHERE id IN (SELECT id FROM attattr_jobs "
                         "WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELLED') AND end_time_ms > 0 "
                         "AND end_time_ms < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                         now_ms - retention_ms, kExpireBatch)
                      .affected_rows();
          return absl::OkStatus();
        }));
    expired += batch;
    if (batch < kExpireBatch) return expired;
  }
}

absl::StatusOr<int64_t> PostgresJobStore::StoredBytes(const std::string& owner) {
  int64_t bytes = 0;
  ATTATTR_RETURN_IF_ERROR(pool_->Run(absl::StrCat("summing the jobs of ", Quote(owner)),
                                     [&](pqxx::connection& c) -> absl::Status {
                                       pqxx::nontransaction txn(c);
                                       bytes = StoredBytesIn(txn, owner);
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
    const auto offset = DbClockOffsetMs(txn, [this] { return HostNowMs(); });
    if (offset.has_value()) clock_offset_ms_.store(*offset);
    return absl::OkStatus();
  }));
  return stats;
}

}  // namespace attattr::store
