// ShardStore on the PostgreSQL job store's database (table attattr_shards, made with the jobs'
// schema): owned by PostgresJobStore and sharing its connection pool. Shard claims skip rows other
// claims hold (FOR UPDATE SKIP LOCKED); completing or failing a shard locks its job's row first,
// so the last shard's completion and a cancel never cross. Leases are timed by the database's
// clock. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "store/shard_store.h"

namespace attattr::store {

class PgConnectionPool;

class PostgresShardStore final : public ShardStore {
 public:
  // Borrows `pool`; `now_ms` is the store's clock for job times (leases use the database's).
  PostgresShardStore(PgConnectionPool& pool, std::function<int64_t()> now_ms)
      : pool_(pool), now_ms_(std::move(now_ms)) {}

  absl::StatusOr<std::vector<ShardRecord>> SplitJob(const std::string& job_id,
                                                    int64_t job_lease_token,
                                                    const ShardStage& stage) override;
  absl::StatusOr<std::vector<ShardRecord>> ListShards(const std::string& job_id) override;
  absl::StatusOr<std::optional<ShardRecord>> ClaimShard(const ClaimRequest& request) override;
  absl::StatusOr<ShardCompletion> CompleteShard(const HeldShard& shard, const std::string& result,
                                                const std::string& holder,
                                                int64_t job_lease_ms) override;
  absl::StatusOr<ShardRecord> FailShard(const HeldShard& shard, int32_t error_code,
                                        const std::string& error_message,
                                        int32_t max_attempts) override;
  absl::Status ReleaseShard(const HeldShard& shard) override;
  absl::StatusOr<std::string> GetShardResult(const std::string& job_id, int32_t index) override;
  absl::StatusOr<std::vector<HeldShard>> RenewShardLeases(const std::string& holder,
                                                          const std::vector<HeldShard>& shards,
                                                          int64_t lease_ms) override;
  absl::StatusOr<std::vector<ShardRecord>> RecoverExpiredShardLeases(int32_t max_attempts) override;
  absl::StatusOr<std::array<int64_t, kShardStateCount>> CountShards() override;

 private:
  PgConnectionPool& pool_;
  const std::function<int64_t()> now_ms_;
};

}  // namespace attattr::store
