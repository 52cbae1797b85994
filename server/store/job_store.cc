// Store-independent parts of the job store interface: state names and the chunk-by-chunk ReadResult
// every implementation inherits. No storage here; these functions hold no state and are
// thread-safe.
#include "store/job_store.h"

#include "attattr/base/status_macros.h"

namespace attattr::store {

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "QUEUED";
    case JobState::kRunning:
      return "RUNNING";
    case JobState::kSucceeded:
      return "SUCCEEDED";
    case JobState::kFailed:
      return "FAILED";
    case JobState::kCancelled:
      return "CANCELLED";
  }
  return "UNKNOWN";
}

std::optional<JobState> JobStateFromName(const std::string& name) {
  for (int i = 0; i < kJobStateCount; ++i) {
    const auto state = static_cast<JobState>(i);
    if (name == JobStateName(state)) return state;
  }
  return std::nullopt;
}

bool IsTerminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

absl::Status JobStore::ReadResult(const std::string& id, const ResultChunkVisitor& visitor) {
  ATTATTR_ASSIGN_OR_RETURN(auto info, GetResultInfo(id));
  for (int64_t seq = 0; seq < info.chunk_count; ++seq) {
    ATTATTR_ASSIGN_OR_RETURN(auto chunk, GetResultChunk(id, seq));
    absl::Status visited = visitor(chunk);
    if (!visited.ok()) return visited;
  }
  return absl::OkStatus();
}

}  // namespace attattr::store
