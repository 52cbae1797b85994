// Principal: who a call comes from, as the service's handlers see it — a name (the owner recorded
// on every job the caller submits) and what its roles allow. Made by the Authenticator
// (authenticator.h) once per call; a plain value type.
#pragma once

#include <cstdint>
#include <string>

namespace attattr::server {

// The principal of every call when authentication is off (no --auth-tokens, no --tls-client-ca):
// an administrator, so a server without authentication behaves as one private server.
inline constexpr char kAnonymousPrincipal[] = "anonymous";

struct Principal {
  std::string name;
  // Sees, cancels and deletes every principal's jobs; any priority; every kind of job.
  bool admin = false;
  // May submit HEAD_IMPORTANCE jobs that write a pruned checkpoint (export_path):
  // --export-principals.
  bool may_export = false;
  // May name dataset files under --data-root in job specs: --dataset-principals.
  bool may_read_datasets = false;
  // Highest JobSpec.priority it may ask for (admins: the proto's maximum): --max-user-priority.
  int32_t max_priority = 0;
};

}  // namespace attattr::server
