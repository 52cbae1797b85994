// What the client's commands share: reading a labelled GLUE set named by a flag and tokenizing it,
// putting it into a job's ExampleSource (inline, or as a dataset path under the server's data
// root), printing engine or job progress one line per stage, following a job to its end (with
// --timeout-seconds and Ctrl-C leaving it running) and fetching its result (heads, triggers, submit
// --wait), and writing an output file named by a flag. Errors name the flag they came from.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "attattr/engine/dataset.h"
#include "attattr/engine/model.h"
#include "attattr/engine/precision.h"
#include "attattr/engine/quadrature.h"
#include "attattr/engine/run_control.h"
#include "attattr/v1/attattr_service.pb.h"
#include "grpc_call.h"

namespace attattr::client {

// INVALID_ARGUMENT "<flag>: <what>".
absl::Status InvalidFlag(const std::string& flag, const std::string& what);

// The served model a --model value names with --server: its directory's name, so that
// `--model models/x`, `--model models/x/` and `--model x` all mean x.
std::string ServedModelName(const std::string& model_flag);

// What the study commands (heads, triggers) share: the model, how the study's attribution
// integrates, where the study runs (in-process, or as a job on a server) and how it is printed.
struct StudyFlags {
  std::string model;  // a model directory; with --server, a served model (its last path component)
  int steps = engine::kDefaultQuadratureSteps;
  std::string precision;  // --precision: "" (fp32 here, the server's default there), fp32, bf16
  std::string weights = "fp32";  // --weights: the in-process model's storage, fp32 or bf16
  std::string rule = std::string(engine::QuadratureRuleName(engine::kDefaultQuadratureRule));
  std::string format = "text";  // json | text
  int threads = 0;              // intra-op threads of the local engine, 0 = all cores
  std::string server;           // HOST:PORT; empty = in-process
  ChannelSecurity security;     // how to reach `server` (the global TLS and token flags)
  bool server_data = false;     // set paths are under the server's --data-root
  double deadline = 30;         // --deadline-seconds: each call to the server
  double timeout_seconds = 0;   // --timeout-seconds: the wait for the job; 0 = until it ends
};

// --precision's help, shared by every command that attributes.
extern const char kPrecisionHelp[];

// A --precision value: unset ("": fp32 in-process, the server's --default-precision with
// --server), fp32 or bf16; InvalidArgument naming --precision otherwise.
absl::StatusOr<std::optional<engine::Precision>> ParsePrecisionFlag(const std::string& value);
// --weights' help, shared by every command that loads a model in-process.
extern const char kWeightsHelp[];
// A --weights value (fp32 or bf16; bf16 with a `server` is refused: that is the server's
// setting); InvalidArgument naming --weights otherwise.
absl::StatusOr<engine::Precision> ParseWeightsFlag(const std::string& value,
                                                   const std::string& server);
// The in-process integrand's precision: --precision when set, else the weights' own (fp32 for fp32
// weights, bf16 for bf16 ones, which refuse fp32).
engine::Precision LocalPrecision(const std::optional<engine::Precision>& precision,
                                 engine::Precision weights);
// What the request carries for it: UNSPECIFIED when unset.
v1::Precision PrecisionFlagToProto(const std::optional<engine::Precision>& precision);

// Registers StudyFlags' options on `cmd`; `steps_help` says what --steps integrates.
void AddStudyFlags(CLI::App* cmd, StudyFlags* f, const std::string& steps_help);

// Checks StudyFlags (InvalidArgument naming the flag, --precision included) and returns the
// quadrature rule.
absl::StatusOr<engine::QuadratureRule> CheckStudyFlags(const StudyFlags& f);

// --precision of flags CheckStudyFlags accepted.
std::optional<engine::Precision> StudyPrecision(const StudyFlags& f);
// --weights of flags CheckStudyFlags accepted.
engine::Precision StudyWeights(const StudyFlags& f);

// In-process runs: "warning: ..." on `err` when `precision` or `weights` is bf16 and this CPU
// only emulates bf16 (engine::EmulatedBf16Warning).
void WarnIfEmulatedBf16(engine::Precision precision, engine::Precision weights, std::ostream& err);

// In-process: sets the engine's intra-op threads and loads --model with --weights' storage
// (FailedPrecondition when it cannot be loaded); warns on `err` as WarnIfEmulatedBf16 does.
absl::StatusOr<std::unique_ptr<engine::Model>> LoadStudyModel(const StudyFlags& f,
                                                              std::ostream& err);

// On a server: a SubmitJobRequest naming the served model.
v1::SubmitJobRequest StudyJobRequest(const StudyFlags& f);

// Prints "error: <message>" and returns the exit code: `job_exit` when the job ran and did not
// succeed (RunJobToResult), else ExitCodeFor(s.code()).
int FailStudy(std::ostream& err, const absl::Status& s, int job_exit);

// The first `limit` examples (0 = all) of the GLUE TSV at `path`; an empty set is an error.
absl::StatusOr<std::vector<engine::Example>> ReadFlagSet(const std::string& path, int limit,
                                                         const std::string& flag);

// Fills `out`: with `server_data` the path and limit go to the server as a dataset; otherwise the
// set is read here and sent inline.
absl::Status AddExampleSource(const std::string& path, int limit, bool server_data,
                              const std::string& flag, v1::ExampleSource* out);

// Prints "stage: done/total" to `err` when the stage changes and when it completes.
std::function<void(const engine::Progress&)> StageProgressPrinter(std::ostream& err);

// While alive, Ctrl-C (SIGINT) raises a flag instead of ending the process, so a command that
// follows a job can say how to follow it later; the previous handler comes back on destruction.
// One at a time per process (the handler's flag is the process-wide exception to "no globals":
// a signal handler can reach nothing else).
class InterruptFlag {
 public:
  InterruptFlag();
  ~InterruptFlag();
  InterruptFlag(const InterruptFlag&) = delete;
  InterruptFlag& operator=(const InterruptFlag&) = delete;
  bool raised() const;
};

// Follows job `name` on `server` until it finishes, printing "stage: done/total" lines to `err`
// (one per stage change and one when a stage completes), and returns the finished job. No
// per-call deadline bounds the wait: `timeout_seconds` > 0 does, and Ctrl-C stops it; either way
// the job goes on on the server, and the error (DeadlineExceeded / Cancelled, with `*job_exit` set
// to kExitJobNotFinished) says how to follow it (`attattr wait JOB`) or stop it.
absl::StatusOr<v1::Job> FollowJob(const std::string& server, const ChannelSecurity& security,
                                  double deadline_seconds, const std::string& name,
                                  double timeout_seconds, std::ostream& err, int* job_exit);

// Submits `request` to `server` (each call bounded by `deadline_seconds`), prints "submitted JOB"
// and its progress to `err` while it runs (FollowJob, bounded only by `timeout_seconds` > 0), and
// returns its result. `*job_exit` is set to kExitJobFailed when the job ended FAILED or
// CANCELLED, and to kExitJobNotFinished when the wait stopped before it finished.
absl::StatusOr<v1::JobResult> RunJobToResult(const std::string& server,
                                             const ChannelSecurity& security,
                                             double deadline_seconds, double timeout_seconds,
                                             const v1::SubmitJobRequest& request, std::ostream& err,
                                             int* job_exit);

// Registers --timeout-seconds on a command that runs a job: how long to wait for it (default:
// until it finishes; the job goes on after it either way).
void AddWaitTimeoutFlag(CLI::App* cmd, double* seconds);

// Model::EncodeAll of a set read from `flag`: an example that cannot be encoded is
// InvalidArgument "<flag>: example <i>: <what>".
absl::StatusOr<std::vector<engine::Encoding>> EncodeFlagSet(const engine::Model& model,
                                                            const std::vector<engine::Example>& set,
                                                            const std::string& flag);

// An error of engine::ValidateAttributionOptions named by the flag that set the field:
// {"layers", 1} becomes "--layers: <what>", {"target.class_index"} "--target: class_index:
// <what>", {"steps"} "--steps: <what>". Fields no flag sets, and other errors, pass through.
absl::Status NameOptionsFieldByFlag(const absl::Status& status);

// An engine error that names an example of a set by its field (attattr/base/field_error.h), in the
// set's flag: {"evaluation_labels", 3} with flag_for("evaluation_labels") = "--eval-set" becomes
// "<flag>: example 3: <noun> <what>" (noun "label" for *_labels fields). Other errors pass through.
absl::Status NameExampleByFlag(const absl::Status& status,
                               const std::function<std::string(const std::string&)>& flag_for);

// Writes `contents` to `path`; FAILED_PRECONDITION naming `flag` when it cannot.
absl::Status WriteFlagFile(const std::string& flag, const std::string& path,
                           const std::string& contents);

}  // namespace attattr::client
