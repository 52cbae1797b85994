// JobStore on one embedded SQLite file (WAL journal): the default single-machine store. Does not
// share work between replicas (that is the PostgreSQL store's job) and keeps no cache: every call
// reads or writes the file. One store at a time per file: Open locks "<path>.lock" (FileLock) and
// refuses a file another open store holds, in this process or another. Thread-safe: one connection,
// every call serialised by one mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "store/file_lock.h"
#include "store/job_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace attattr::store {

struct SqliteJobStoreOptions {
  // The database file; created (with its schema) when absent. Its directory must exist.
  // Default: none (required).
  std::string path;
  // synchronous=FULL instead of NORMAL. In WAL mode NORMAL already survives a crash or kill -9 of
  // the process (a committed transaction is in the WAL file, which the OS keeps); only an OS crash
  // or power loss may drop the last commits (never corrupting the file). FULL also fsyncs each
  // commit. Default: false.
  bool synchronous_full = false;
  // How long a call waits for another process holding the file's write lock. Default: 5000.
  int32_t busy_timeout_ms = 5000;
  // Size of the stored result chunks, 4 KiB..64 MiB. Default: 1 MiB.
  int64_t result_chunk_bytes = int64_t{1} << 20;
  // PutResult writes a result in transactions of at most this many bytes (at least one chunk),
  // releasing the store between them, so a 1 GiB result never holds every other call for the
  // whole write. 4 KiB..1 GiB. Default: 8 MiB.
  int64_t result_write_batch_bytes = int64_t{8} << 20;
  // Source of "now" in unix ms for create/start/end/update times. Default (empty): the system
  // clock.
  std::function<int64_t()> clock;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

class SqliteJobStore final : public JobStore {
 public:
  // Bumped when the schema changes; stored as PRAGMA user_version. A newer file is refused.
  // 2: jobs.owner; 3: request_id unique per owner; 4: submission order and leases (older files
  // are migrated in place at Open).
  static constexpr int kSchemaVersion = 5;

  // Opens (creating if needed) the store. Errors name the path: a missing directory is NotFound, a
  // file that is not an SQLite database or not a job store, or a newer schema, is
  // FailedPrecondition.
  static absl::StatusOr<std::unique_ptr<SqliteJobStore>> Open(const SqliteJobStoreOptions& options);
  ~SqliteJobStore() override;
  SqliteJobStore(const SqliteJobStore&) = delete;
  SqliteJobStore& operator=(const SqliteJobStore&) = delete;

  using JobStore::Create;
  absl::StatusOr<CreateResult> Create(const JobRecord& record,
                                      const AdmissionLimits& limits) override;
  using JobStore::Get;
  absl::StatusOr<JobRecord> Get(const std::string& id, bool include_spec) override;
  absl::StatusOr<ListPage> List(const ListFilter& filter) override;
  absl::StatusOr<JobRecord> MarkRunning(const std::string& id) override;
  absl::StatusOr<std::optional<JobRecord>> Claim(const ClaimRequest& request) override;
  absl::StatusOr<std::vector<std::string>> RenewLeases(const std::string& holder,
                                                       const std::vector<HeldLease>& leases,
                                                       int64_t lease_ms) override;
  absl::StatusOr<std::vector<JobRecord>> RecoverExpiredLeases(int32_t max_attempts) override;
  absl::Status UpdateProgress(const std::string& id, const JobProgress& progress,
                              int64_t lease_token) override;
  absl::StatusOr<JobRecord> Finish(const std::string& id, JobState state, int32_t error_code,
                                   const std::string& error_message, int64_t lease_token) override;
  absl::StatusOr<JobRecord> Cancel(const std::string& id) override;
  absl::Status PutResult(const std::string& id, const std::string& bytes,
                         int64_t lease_token) override;
  absl::StatusOr<ResultInfo> GetResultInfo(const std::string& id) override;
  absl::StatusOr<std::string> GetResultChunk(const std::string& id, int64_t seq) override;
  absl::Status Delete(const std::string& id) override;
  absl::StatusOr<JobRecord> Requeue(const std::string& id, int64_t lease_token) override;
  absl::StatusOr<std::vector<JobRecord>> RequeueInterrupted(int32_t max_attempts) override;
  absl::StatusOr<QueueCounts> CountQueued(const std::string& owner) override;
  absl::StatusOr<int64_t> ExpireResults(int64_t now_ms, int64_t retention_ms) override;
  absl::StatusOr<int64_t> StoredBytes(const std::string& owner) override;
  absl::StatusOr<StoreStats> Stats() override;
  int64_t NowMs() const override;
  // One process owns the file.
  bool Shared() const override { return false; }

  const std::string& path() const { return options_.path; }

 private:
  class Statement;
  class Transaction;

  SqliteJobStore(SqliteJobStoreOptions options, FileLock lock, sqlite3* db);

  absl::Status Configure() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CreateOrCheckSchema() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Brings a store of schema `version` (1 or 2) to kSchemaVersion in one transaction.
  absl::Status MigrateToCurrent(int64_t version) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs SQL without results or parameters (pragmas, DDL, BEGIN/COMMIT).
  absl::Status Exec(const std::string& sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A cached prepared statement for `sql`, reset and unbound when the Statement goes out of scope.
  absl::StatusOr<Statement> Prepare(const std::string& sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An error from the last SQLite call, saying what was being done.
  absl::Status SqliteError(int rc, const std::string& what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::StatusOr<JobRecord> GetLocked(const std::string& id, bool include_spec = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<JobRecord>> QueryRecords(Statement& stmt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DeleteResultLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<QueueCounts> CountQueuedLocked(const std::string& owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> StoredBytesLocked(const std::string& owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Begins `txn` and checks that job `id` is RUNNING, with `lease_token` unless kNoLease
  // (FailedPrecondition otherwise).
  absl::Status BeginOnRunningJob(Transaction& txn, const std::string& id, int64_t lease_token)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves a QUEUED/RUNNING job to a terminal state (FailedPrecondition otherwise, or when
  // `lease_token` is set and not the job's), in its own transaction or the caller's.
  absl::StatusOr<JobRecord> FinishLocked(const std::string& id, JobState state, int32_t error_code,
                                         const std::string& error_message, int64_t lease_token,
                                         bool own_transaction) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Within the caller's transaction: job `id` (QUEUED, checked by the caller) starts RUNNING with
  // a new lease token for `holder` until `lease_expiry_ms` (0 = no expiry).
  absl::StatusOr<JobRecord> StartLocked(const std::string& id, const std::string& holder,
                                        int64_t lease_expiry_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Within the caller's transaction: RUNNING job `id` back to QUEUED, lease released, progress
  // and partial result dropped.
  // RUNNING job `id` back to QUEUED (as pg::RequeueJob: token advanced, the start uncounted
  // unless `count_attempt`).
  absl::StatusOr<JobRecord> RequeueLocked(const std::string& id, bool count_attempt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Within the caller's transaction: RUNNING `job` whose process died back to QUEUED with its
  // start counted, or FAILED once started max_attempts times.
  absl::StatusOr<JobRecord> RecoverLocked(const JobRecord& job, int32_t max_attempts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SqliteJobStoreOptions options_;
  // "<path>.lock", held until the store is gone (members go after the destructor closed db_).
  const FileLock lock_;
  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, sqlite3_stmt*> statements_ ABSL_GUARDED_BY(mu_);
};

}  // namespace attattr::store
