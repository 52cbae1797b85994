// ShardStore: the shards of jobs split across replicas. A shardable job (a dataset ATTRIBUTION
// job, a HEAD_IMPORTANCE study, a TRIGGER_SEARCH) is split by the replica that claims it into
// shards of consecutive items of its first stage (pass); every replica's idle runners claim shards
// (with leases and fencing tokens, like jobs), store each shard's partial result, and the runner
// that completes the last shard takes a fresh lease on the job and merges the results in shard
// order — into the job's result, or into the input of the job's next stage, which it splits the
// same way (a study's pruning curves need its rankings; a search's evaluation its patterns).
// While split, the job's own lease does not expire (its shards' leases carry it); a shard whose
// lease lapses goes back to the queue, and one that failed max_attempts times fails the job with
// its error. When the job ends its unfinished shards are dropped and the finished ones kept
// without their results (who ran what, how many attempts) until the job is deleted. Only a store
// several processes share has shards (JobStore::shards()).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/job_store.h"

namespace attattr::store {

enum class ShardState { kQueued = 0, kRunning = 1, kSucceeded = 2, kFailed = 3 };
inline constexpr int kShardStateCount = 4;
// "QUEUED", "RUNNING", "SUCCEEDED", "FAILED".
const char* ShardStateName(ShardState state);

// Items [begin, end) of one stage of a job.
struct ShardRange {
  int64_t begin = 0;
  int64_t end = 0;
};

// One stage of a job, split: its shards' ranges (in order, contiguous from item 0, non-empty),
// the progress stage the job shows while they run, and the input every shard of it gets (what
// the previous stage's merge decided; empty for the first).
struct ShardStage {
  int32_t stage = 0;
  std::string name;
  std::vector<ShardRange> ranges;
  std::string input;
};

// Items [0, items) in consecutive ranges of `per_shard` items (the last may be shorter); none for
// no items. per_shard >= 1.
inline std::vector<ShardRange> SplitItems(int64_t items, int64_t per_shard) {
  std::vector<ShardRange> ranges;
  for (int64_t begin = 0; begin < items; begin += per_shard) {
    ranges.push_back({begin, std::min(items, begin + per_shard)});
  }
  return ranges;
}

struct ShardRecord {
  std::string job_id;
  int32_t index = 0;  // 0-based over the whole job, in stage then item order
  int32_t stage = 0;
  std::string input;  // the stage's input
  ShardState state = ShardState::kQueued;
  ShardRange items;          // of its stage
  int32_t attempts = 0;      // starts so far
  std::string lease_holder;  // the replica running it, or the one that completed it
  int64_t lease_token = 0;   // fencing token of its current or last run
  int64_t lease_expiry_ms = 0;
  int32_t error_code = 0;  // of a FAILED shard, or of the last failed attempt
  std::string error_message;
};

// A running shard's lease as its holder knows it.
struct HeldShard {
  std::string job_id;
  int32_t index = 0;
  int64_t token = 0;
};

// What storing a shard's result did.
struct ShardCompletion {
  // True when this was the job's last shard: the caller now holds the job (`job`, RUNNING, with a
  // new lease for the caller) and must merge the shards' results and finish it.
  bool job_complete = false;
  JobRecord job;
};

// Errors as JobStore's; a write with a lease token that is no longer the shard's (or of a shard
// that is gone with its job) is FailedPrecondition.
class ShardStore {
 public:
  virtual ~ShardStore() = default;

  // Splits stage `stage.stage` of RUNNING job `job_id`, held with `job_lease_token`, into
  // stage.ranges, unless that stage has shards already (an earlier run of the job made them; they
  // are kept with their results and the given ranges and input are not used). The job's lease
  // then stops expiring (its shards' leases carry it) and its progress counts the stage's items.
  // Returns the stage's shards, by index. InvalidArgument for ranges that are not contiguous from
  // 0 or a stage before the job's latest.
  virtual absl::StatusOr<std::vector<ShardRecord>> SplitJob(const std::string& job_id,
                                                            int64_t job_lease_token,
                                                            const ShardStage& stage) = 0;
  // Every shard of the job, of every stage, by index.
  virtual absl::StatusOr<std::vector<ShardRecord>> ListShards(const std::string& job_id) = 0;
  // The next QUEUED shard of a RUNNING job (jobs by priority, then the order they started; shards
  // by index) for request.holder, with a new lease token; nullopt when none — or when a QUEUED job
  // ranks before it: one of higher priority than the shard's job that JobStore::Claim with the
  // same request could take (owners at request.max_running_per_owner passed over; shards
  // themselves are not bound by it, their job runs already). At equal priority the shard goes
  // first: its job was at the head of the queue when it started. So a runner that asks for a
  // shard first and for a job when none comes never leaves a split job's shards waiting behind
  // the queue. Claims made at the same moment by several processes each get a different shard.
  virtual absl::StatusOr<std::optional<ShardRecord>> ClaimShard(const ClaimRequest& request) = 0;
  // Stores the result of a RUNNING shard (fenced) and marks it SUCCEEDED; the job's progress
  // becomes the items of its stage's succeeded shards. See ShardCompletion for the last shard.
  virtual absl::StatusOr<ShardCompletion> CompleteShard(const HeldShard& shard,
                                                        const std::string& result,
                                                        const std::string& holder,
                                                        int64_t job_lease_ms) = 0;
  // A RUNNING shard's attempt failed (fenced): back to QUEUED while it has been started fewer
  // than max_attempts times, else FAILED, failing its job with the error. Returns the shard.
  virtual absl::StatusOr<ShardRecord> FailShard(const HeldShard& shard, int32_t error_code,
                                                const std::string& error_message,
                                                int32_t max_attempts) = 0;
  // A RUNNING shard goes back to QUEUED at once, its attempt not counted (a drain).
  virtual absl::Status ReleaseShard(const HeldShard& shard) = 0;
  // The stored result of a SUCCEEDED shard.
  virtual absl::StatusOr<std::string> GetShardResult(const std::string& job_id, int32_t index) = 0;
  // Extends `holder`'s shard leases; returns those no longer held (the shard or its job is gone,
  // finished, or taken over). A lease that lapsed but that no recovery has taken yet is renewed,
  // as JobStore::RenewLeases does.
  virtual absl::StatusOr<std::vector<HeldShard>> RenewShardLeases(
      const std::string& holder, const std::vector<HeldShard>& shards, int64_t lease_ms) = 0;
  // Every RUNNING shard whose lease lapsed goes back to QUEUED, or — started max_attempts times —
  // ends FAILED and fails its job. Returns the shards as changed.
  virtual absl::StatusOr<std::vector<ShardRecord>> RecoverExpiredShardLeases(
      int32_t max_attempts) = 0;
  // Shards in the store by state, indexed by static_cast<int>(ShardState) (succeeded ones are
  // kept until their job is deleted).
  virtual absl::StatusOr<std::array<int64_t, kShardStateCount>> CountShards() = 0;
};

}  // namespace attattr::store
