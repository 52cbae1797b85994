// The items of one shard of a prepared job: a shard's range checked against the job as prepared
// now (a dataset file changed since the job was split shows as FailedPrecondition, not as wrong
// numbers), and a part of a job's example vectors cut out by item numbers. Header-only helpers of
// the kinds' shard runners.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "store/shard_store.h"

namespace attattr::server {

// Elements [begin, end) of `v`, clamped to it (empty when the range lies outside).
template <typename T>
std::vector<T> SliceItems(const std::vector<T>& v, int64_t begin, int64_t end) {
  const auto size = static_cast<int64_t>(v.size());
  begin = std::clamp<int64_t>(begin, 0, size);
  end = std::clamp<int64_t>(end, begin, size);
  return std::vector<T>(v.begin() + begin, v.begin() + end);
}

inline absl::Status CheckShardItems(const store::ShardRecord& shard, int64_t items) {
  if (shard.items.begin < 0 || shard.items.end > items || shard.items.begin >= shard.items.end) {
    return absl::FailedPreconditionError(absl::StrCat(
        "shard items ", shard.items.begin, "..", shard.items.end, " are not within the job's ",
        items, " (its data changed since it was split)"));
  }
  return absl::OkStatus();
}

}  // namespace attattr::server
