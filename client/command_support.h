// What the client's commands share: reading a labelled GLUE set named by a flag, putting it into a
// job's ExampleSource (inline, or as a dataset path under the server's data root), printing engine or
// job progress one line per stage, running a job to its end and fetching its result (heads,
// triggers), and writing an output file named by a flag. Errors name the flag they came from.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "attattr/engine/dataset.h"
#include "attattr/engine/run_control.h"
#include "attattr/v1/attattr_service.pb.h"

namespace attattr::client {

// INVALID_ARGUMENT "<flag>: <what>".
absl::Status InvalidFlag(const std::string& flag, const std::string& what);

// The first `limit` examples (0 = all) of the GLUE TSV at `path`; an empty set is an error.
absl::StatusOr<std::vector<engine::Example>> ReadFlagSet(const std::string& path, int limit,
                                                         const std::string& flag);

// Fills `out`: with `server_data` the path and limit go to the server as a dataset; otherwise the
// set is read here and sent inline.
absl::Status AddExampleSource(const std::string& path, int limit, bool server_data,
                              const std::string& flag, v1::ExampleSource* out);

// Prints "stage: done/total" to `err` when the stage changes and when it completes.
std::function<void(const engine::Progress&)> StageProgressPrinter(std::ostream& err);

// Submits `request` to `server`, prints progress to `err` while it runs and returns its result.
// `*job_failed` is set when the job ran and ended FAILED or CANCELLED (the CLI's exit code 3).
absl::StatusOr<v1::JobResult> RunJobToResult(const std::string& server, double deadline_seconds,
                                             const v1::SubmitJobRequest& request, std::ostream& err,
                                             bool* job_failed);

// Writes `contents` to `path`; FAILED_PRECONDITION naming `flag` when it cannot.
absl::Status WriteFlagFile(const std::string& flag, const std::string& path, const std::string& contents);

}  // namespace attattr::client
