// The range of JobSpec.priority (job.proto): higher runs first; 0 is the default. One place for
// the server's validation, the roles (an administrator may use the whole range) and the checks.
#pragma once

#include <cstdint>

namespace attattr::server {

inline constexpr int32_t kMinJobPriority = -10;
inline constexpr int32_t kMaxJobPriority = 10;

}  // namespace attattr::server
