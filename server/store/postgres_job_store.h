// JobStore on a PostgreSQL database (libpqxx), for several server replicas sharing one queue: the
// same contract as SqliteJobStore (the contract tests run against both), with request_id
// idempotency held by a unique constraint (concurrent creates on different replicas yield one
// job) and results in chunks of at most 1 MiB. Tables are prefixed attattr_ in the connection's
// schema (choose another schema with the URI's options=-csearch_path=...). The schema is
// versioned (attattr_schema) and created or migrated at Open under a transaction-scoped advisory
// lock, so replicas starting at once migrate exactly once; a database newer than this build is
// refused. Thread-safe: calls run on a bounded pool of connections.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "store/job_store.h"
#include "store/store_uri.h"

namespace attattr::store {

class PgConnectionPool;
class PgChangeListener;
class PostgresShardStore;

struct PostgresJobStoreOptions {
  // libpq connection URI, "postgresql://[user@]host[:port]/database[?param=value&...]" (or
  // "postgres://"). Required.
  std::string uri;
  // The password, when it does not come from the URI or libpq's own PGPASSWORD/PGPASSFILE.
  // Default: none.
  std::string password;
  // Connections at most (calls beyond wait for one). 1..256. Default: 8.
  int connections = 8;
  // How long opening a connection may take, seconds (libpq connect_timeout). 1..300. Default: 5.
  int connect_timeout_s = 5;
  // How long one SQL statement may run before PostgreSQL cancels it (Unavailable). 100..600000.
  // Default: 30000.
  int64_t statement_timeout_ms = 30000;
  // Size of the stored result chunks, 4 KiB..1 MiB. Default: 1 MiB.
  int64_t result_chunk_bytes = int64_t{1} << 20;
  // PutResult writes a result in transactions of at most this many bytes (at least one chunk).
  // 4 KiB..1 GiB. Default: 8 MiB.
  int64_t result_write_batch_bytes = int64_t{8} << 20;
  // Source of "now" in unix ms for create/start/end/update times. Default (empty): the database
  // server's clock (host_clock corrected by the offset measured at Open, then every
  // clock_refresh_ms on a thread of the store's own, and by every Stats).
  std::function<int64_t()> clock;
  // How often the offset between this host's clock and the database's is measured again, ms, so
  // that a host clock stepped after Open (NTP, a resumed VM) does not move job times, deadlines
  // or the retention sweep. 10..3600000. Default: 10000.
  int64_t clock_refresh_ms = 10000;
  // This host's clock in unix ms, which the offset corrects. Default (empty): the system clock;
  // tests skew it to stand for a replica whose clock is wrong.
  std::function<int64_t()> host_clock;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

class PostgresJobStore final : public JobStore {
 public:
  // The schema version this build writes, stored in attattr_schema.version.
  static constexpr int kSchemaVersion = 3;

  // Connects, then creates or migrates the schema. Unavailable when the database cannot be
  // reached; FailedPrecondition for a newer schema. Messages show the URI without its password.
  static absl::StatusOr<std::unique_ptr<PostgresJobStore>> Open(
      const PostgresJobStoreOptions& options);
  ~PostgresJobStore() override;
  PostgresJobStore(const PostgresJobStore&) = delete;
  PostgresJobStore& operator=(const PostgresJobStore&) = delete;

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
  bool Shared() const override { return true; }
  // LISTENs on attattr_jobs on a connection of its own (reconnecting with backoff when it breaks,
  // then on_resync), calling on_change for other processes' changes (this store's own are
  // recognised by their backend process and skipped). Once per store.
  bool SubscribeChanges(ChangeCallbacks callbacks) override;
  void StopChanges() override;
  ShardStore* shards() override;

  // What Open did to the schema: "created version 1", "migrated from version N to M", or "" when
  // it was current (so of replicas opening an empty database at once, exactly one says created).
  const std::string& schema_change() const { return schema_change_; }
  // True while the last call reached the database.
  bool connected() const;

 private:
  PostgresJobStore(PostgresJobStoreOptions options, std::string conninfo,
                   std::unique_ptr<PgConnectionPool> pool);
  absl::Status CreateOrMigrateSchema();
  // QUEUED/RUNNING -> terminal `state` (FailedPrecondition otherwise).
  absl::StatusOr<JobRecord> FinishJob(const std::string& id, JobState state, int32_t error_code,
                                      const std::string& error_message, int64_t lease_token);
  int64_t HostNowMs() const;
  // Measures clock_offset_ms_ (a round trip over a second says little and is tried again, at most
  // three times; the old offset stays).
  absl::Status MeasureClockOffset();

  const PostgresJobStoreOptions options_;
  const std::string conninfo_;  // the URI with defaults and password added; never logged
  const std::unique_ptr<PgConnectionPool> pool_;
  std::string schema_change_;
  const std::unique_ptr<PostgresShardStore> shards_;  // shares pool_
  std::unique_ptr<PgChangeListener> listener_;        // after SubscribeChanges; stopped first
  std::atomic<int64_t> clock_offset_ms_{0};           // database clock − host clock
  // Measures the offset every clock_refresh_ms until stop_clock_ (the destructor: first).
  absl::Notification stop_clock_;
  std::thread clock_thread_;
};

}  // namespace attattr::store
