// The job RPCs of attattr.v1.Attattr as the CLI uses them (SubmitJob, GetJob, ListJobs, WaitJob,
// CancelJob, DeleteJob, WatchJob, GetJobResult), with every non-OK gRPC status turned into an
// absl::Status that keeps the canonical code and carries one clear line for a person: what was
// not found, which server could not be reached, the deadline that passed, the server's retry hint
// on RESOURCE_EXHAUSTED. Owns one channel; not thread-safe (one command at a time).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "attattr/v1/attattr_service.pb.h"
#include "grpc_call.h"

namespace attattr::client {

// The longest WaitJob timeout the server accepts (attattr_service.proto), milliseconds.
inline constexpr int64_t kMaxWaitTimeoutMs = 600000;

// "abc" -> "jobs/abc"; "jobs/abc" stays.
std::string CanonicalJobName(const std::string& name);

class JobClient {
 public:
  // `server` is HOST:PORT. `deadline_seconds` bounds each call (0 = no deadline); for WaitJob it is
  // added to the wait itself, and a WatchJob stream is one call (Follow has its own bound).
  JobClient(const std::string& server, const ChannelSecurity& security, double deadline_seconds);
  ~JobClient();

  absl::StatusOr<v1::Job> Submit(const v1::SubmitJobRequest& request);
  absl::StatusOr<v1::Job> Get(const std::string& name);
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request);
  // One WaitJob call; `timeout_ms` in [0, kMaxWaitTimeoutMs]. Returns the job, finished or not.
  absl::StatusOr<v1::Job> Wait(const std::string& name, int64_t timeout_ms);
  absl::StatusOr<v1::Job> Cancel(const std::string& name);
  absl::Status Delete(const std::string& name);
  // Calls `on_update` for every Job the stream sends (the job now, then each change; in the BASIC
  // view, as Follow: the spec without its contents) and returns the stream's final status (OK once
  // the job finished).
  absl::Status Watch(const std::string& name, const std::function<void(const v1::Job&)>& on_update);
  // How Follow ended.
  enum class FollowEnd { kFinished, kTimedOut, kInterrupted };
  // Streams WatchJob until the job finishes, calling `on_update` for each change. No per-call
  // deadline applies: `timeout_seconds` > 0 bounds the whole follow (kTimedOut when it passes),
  // and `interrupted` (polled every 100 ms) cancels it (kInterrupted). The job goes on on the
  // server either way. A stream that breaks first (UNAVAILABLE: a draining replica, a lost
  // connection; INTERNAL/UNKNOWN: a proxy cutting it; CANCELLED: a server shutting down) is opened
  // again after a pause, until two
  // minutes pass without a message; other errors (job deleted, not allowed) end it as a Status.
  absl::StatusOr<FollowEnd> Follow(const std::string& name,
                                   const std::function<void(const v1::Job&)>& on_update,
                                   double timeout_seconds,
                                   const std::function<bool()>& interrupted);
  // GetJobResult: the chunks, checked (indices 0..count-1, each once) and concatenated in index
  // order, parsed as JobResult. DataLoss when chunks are missing or do not parse.
  absl::StatusOr<v1::JobResult> GetResult(const std::string& name);
  // The labels of a served model (GetModel), for --target class:LABEL.
  absl::StatusOr<std::vector<std::string>> ModelLabels(const std::string& model);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attattr::client
