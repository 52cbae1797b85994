// Store-independent parts of the job store interface: state names and the chunk-by-chunk ReadResult
// every implementation inherits. No storage here; these functions hold no state and are
// thread-safe.
#include "store/job_store.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"

namespace attattr::store {

absl::StatusOr<std::string> NewJobId() {
  char bytes[16];
  size_t have = 0;
  while (have < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + have, sizeof(bytes) - have, 0);
    if (n > 0) {
      have += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      return absl::InternalError(
          absl::StrCat("no randomness for a job id: ", std::strerror(errno)));
    }
  }
  return absl::StrCat("jobs/", absl::BytesToHexString(absl::string_view(bytes, sizeof(bytes))));
}

absl::Status JobNotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("job '", id, "' not found"));
}

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
