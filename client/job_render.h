// Renders jobs and job results for the job commands: a Job as JSON or one text line, a table of
// jobs, the progress line and terminal progress bar of `watch`, and a finished attribution job's
// result as {"job", "examples": [the per-example JSON `attattr explain` prints]}.
// Pure functions over the v1 protos; no I/O, thread-safe.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "attattr/v1/attattr_service.pb.h"
#include "nlohmann/json.hpp"

namespace attattr::client {

// {"name", "request_id", "kind", "state" (enum names), "model", "priority",
//  "progress": {"stage", "done", "total", "eta_seconds"}, "error": {"code", "message"} (only when
//  set), "create_time_ms", "start_time_ms", "end_time_ms" (Unix ms, null until set),
//  "result_size_bytes"}.
nlohmann::json JobToJson(const v1::Job& job);

// "jobs/x SUCCEEDED" then, when known, the stage and done/total and the error:
// "jobs/x FAILED  attribution 1/2  error DEADLINE_EXCEEDED: ...".
std::string JobToLine(const v1::Job& job);

// A table (header + one row per job): NAME STATE KIND PROGRESS CREATED MODEL REQUEST_ID.
std::string JobTable(const std::vector<v1::Job>& jobs);

// One line per `watch` update for logs and pipes; ends with the state:
// "jobs/x  attribution 1/2  eta 3s  RUNNING".
std::string ProgressLine(const v1::Job& job);
// The terminal form: "[########------------]  40%  attribution 2/5  ETA 0:07  RUNNING" (no \r).
std::string ProgressBar(const v1::Job& job, int width = 30);

// True for SUCCEEDED, FAILED and CANCELLED.
bool IsFinished(v1::JobState state);

// A finished job's result, written to `out` one example at a time: memory holds the result
// message and one example's rendering, never the whole document (a result may be a GiB of
// matrices). On an error part of the document may have been written. Attribution jobs, as JSON:
// {"examples": [AttributionToJson(...) per example, plus per layer "head_summed" [n][n],
// "attention" [H][n][n] and "top_connections", and the example's "tree", when the job asked for
// them], "job"}, compact, keys sorted (the bytes of JsonText of that object). Other kinds:
// {"job", "result": the result as JSON}. InvalidArgument when a tensor in the result is malformed.
absl::Status WriteJobResultJson(const v1::Job& job, const v1::JobResult& result, std::ostream& out);
// The text form: the job line, then AttributionToText per example (`top_k` connections per layer)
// and its attribution tree when the job kept one.
absl::Status WriteJobResultText(const v1::Job& job, const v1::JobResult& result, int top_k,
                                std::ostream& out);

}  // namespace attattr::client
