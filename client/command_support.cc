// Shared parts of the client's commands (see command_support.h).
#include "command_support.h"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attattr/base/field_error.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/attribution_convert.h"
#include "attattr/engine/precision.h"
#include "attattr/engine/runtime.h"
#include "grpc_call.h"
#include "job_client.h"
#include "job_commands.h"
#include "job_render.h"

namespace attattr::client {

absl::Status InvalidFlag(const std::string& flag, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", what));
}

const char kPrecisionHelp[] =
    "fp32 | bf16: the integrand's arithmetic (bf16: matrix products in bfloat16 on AMX / tensor "
    "cores, ~3x faster, ~1-3 % error of each layer's max; on a CPU without AVX-512-BF16 or AMX "
    "it is emulated and slower than fp32, and a warning says so; README \"Precision\"). "
    "Default: the --weights precision in-process (fp32), the server's --default-precision with "
    "--server";

absl::StatusOr<std::optional<engine::Precision>> ParsePrecisionFlag(const std::string& value) {
  if (value.empty()) return std::optional<engine::Precision>();
  auto precision = engine::ParsePrecision(value);
  if (!precision.ok()) return InvalidFlag("--precision", "fp32 or bf16");
  return std::optional<engine::Precision>(*precision);
}

const char kWeightsHelp[] =
    "fp32 | bf16: how the in-process engine stores the model's weights (bf16: matrices and "
    "embedding tables in bfloat16, half the memory; every pass multiplies in bf16, so --precision "
    "defaults to bf16 and fp32 is refused). A server's is attattr-server --weights";

absl::StatusOr<engine::Precision> ParseWeightsFlag(const std::string& value,
                                                   const std::string& server) {
  auto weights = engine::ParsePrecision(value);
  if (!weights.ok()) return InvalidFlag("--weights", "fp32 or bf16");
  if (*weights == engine::Precision::kBf16 && !server.empty()) {
    return InvalidFlag("--weights", "in-process only (a server's is attattr-server --weights)");
  }
  return *weights;
}

engine::Precision LocalPrecision(const std::optional<engine::Precision>& precision,
                                 engine::Precision weights) {
  return precision.value_or(weights);
}

v1::Precision PrecisionFlagToProto(const std::optional<engine::Precision>& precision) {
  return precision ? convert::PrecisionToProto(*precision) : v1::PRECISION_UNSPECIFIED;
}

void AddStudyFlags(CLI::App* cmd, StudyFlags* f, const std::string& steps_help) {
  cmd->add_option("--model", f->model,
                  "Hugging Face classifier directory (with --server: a served model's name)")
      ->capture_default_str();
  cmd->add_option("--steps", f->steps, steps_help)->capture_default_str();
  cmd->add_option("--rule", f->rule, "gauss-legendre | left-riemann | trapezoid")
      ->capture_default_str();
  cmd->add_option("--precision", f->precision, kPrecisionHelp);
  cmd->add_option("--weights", f->weights, kWeightsHelp)->capture_default_str();
  cmd->add_option("--format", f->format, "json | text")->capture_default_str();
  cmd->add_option("--threads", f->threads, "Intra-op threads (0 = all cores)")
      ->capture_default_str();
  cmd->add_option("--server", f->server, "HOST:PORT of an attattr-server: run there as a job");
  cmd->add_flag("--server-data", f->server_data,
                "With --server: the set paths are under the server's --data-root (not read here)");
  AddDeadlineFlag(cmd, &f->deadline, " (with --server)");
  AddWaitTimeoutFlag(cmd, &f->timeout_seconds);
}

absl::StatusOr<engine::QuadratureRule> CheckStudyFlags(const StudyFlags& f) {
  if (f.format != "json" && f.format != "text") return InvalidFlag("--format", "json or text");
  if (f.server_data && f.server.empty()) return InvalidFlag("--server-data", "needs --server");
  if (!(f.deadline >= 0)) return InvalidFlag("--deadline-seconds", "must be >= 0 (0 = no limit)");
  if (!(f.timeout_seconds >= 0)) {
    return InvalidFlag("--timeout-seconds", "must be >= 0 (0 = until the job finishes)");
  }
  ATTATTR_RETURN_IF_ERROR(ParsePrecisionFlag(f.precision).status());
  ATTATTR_RETURN_IF_ERROR(ParseWeightsFlag(f.weights, f.server).status());
  auto rule = engine::ParseQuadratureRule(f.rule);
  if (!rule.ok()) return InvalidFlag("--rule", std::string(rule.status().message()));
  return rule;
}

std::optional<engine::Precision> StudyPrecision(const StudyFlags& f) {
  auto precision = ParsePrecisionFlag(f.precision);
  return precision.ok() ? *precision : std::nullopt;
}

engine::Precision StudyWeights(const StudyFlags& f) {
  auto weights = ParseWeightsFlag(f.weights, f.server);
  return weights.ok() ? *weights : engine::Precision::kFp32;
}

void WarnIfEmulatedBf16(engine::Precision precision, engine::Precision weights, std::ostream& err) {
  if (const std::string warning = engine::EmulatedBf16Warning(precision, weights);
      !warning.empty()) {
    err << "warning: " << warning << "\n";
  }
}

absl::StatusOr<std::unique_ptr<engine::Model>> LoadStudyModel(const StudyFlags& f,
                                                              std::ostream& err) {
  const engine::Precision weights = StudyWeights(f);
  WarnIfEmulatedBf16(LocalPrecision(StudyPrecision(f), weights), weights, err);
  engine::RuntimeOptions runtime;
  runtime.intra_op_threads = f.threads;
  if (auto s = engine::ConfigureRuntime(runtime); !s.ok()) {
    return InvalidFlag("--threads", std::string(s.message()));
  }
  engine::LoadOptions load;
  load.weights = weights;
  auto model = engine::Model::Load(f.model, load);
  // Exit 1 as for explain ("the model ... cannot be used"; UNKNOWN maps there), not the job exit
  // codes' "conflict" (9) that FAILED_PRECONDITION means for a job.
  if (!model.ok()) return absl::UnknownError(absl::StrCat("--model: ", model.status().message()));
  return model;
}

std::string ServedModelName(const std::string& model_flag) {
  std::filesystem::path path(model_flag);
  // "models/x/" names x: its filename() is empty, so the trailing separators go first.
  while (!path.empty() && path.filename().empty() && path.has_relative_path()) {
    path = path.parent_path();
  }
  return path.filename().string();
}

v1::SubmitJobRequest StudyJobRequest(const StudyFlags& f) {
  v1::SubmitJobRequest request;
  request.mutable_spec()->set_model(ServedModelName(f.model));
  return request;
}

int FailStudy(std::ostream& err, const absl::Status& s, int job_exit) {
  err << "error: " << s.message() << "\n";
  return job_exit != 0 ? job_exit : ExitCodeFor(s.code());
}

absl::StatusOr<std::vector<engine::Example>> ReadFlagSet(const std::string& path, int limit,
                                                         const std::string& flag) {
  if (path.empty()) return InvalidFlag(flag, "required");
  if (limit < 0) return InvalidFlag(flag, "limit must be >= 0");
  auto ds = engine::ReadDataset(path, limit);
  if (!ds.ok())
    return absl::Status(ds.status().code(), absl::StrCat(flag, ": ", ds.status().message()));
  if (ds->examples.empty()) return InvalidFlag(flag, absl::StrCat(path, " has no examples"));
  return std::move(ds->examples);
}

absl::Status AddExampleSource(const std::string& path, int limit, bool server_data,
                              const std::string& flag, v1::ExampleSource* out) {
  if (server_data) {
    if (path.empty()) return InvalidFlag(flag, "required");
    out->mutable_dataset()->set_path(path);
    out->mutable_dataset()->set_limit(limit);
    return absl::OkStatus();
  }
  ATTATTR_ASSIGN_OR_RETURN(auto examples, ReadFlagSet(path, limit, flag));
  auto* list = out->mutable_inline_();
  for (const auto& e : examples) {
    auto* p = list->add_examples();
    p->set_text(e.text);
    if (e.text_pair) p->set_text_pair(*e.text_pair);
    p->set_label(e.label);
  }
  return absl::OkStatus();
}

namespace {

// One line per stage change and one when a stage completes.
class StageLines {
 public:
  explicit StageLines(std::ostream& err) : err_(err) {}
  void Print(const std::string& stage, int64_t done, int64_t total) {
    if (stage != last_ || (total > 0 && done == total)) {
      err_ << stage << ": " << done << "/" << total << "\n";
      last_ = stage;
    }
  }

 private:
  std::ostream& err_;
  std::string last_;
};

}  // namespace

std::function<void(const engine::Progress&)> StageProgressPrinter(std::ostream& err) {
  auto lines = std::make_shared<StageLines>(err);
  return [lines](const engine::Progress& p) { lines->Print(p.stage, p.done, p.total); };
}

namespace {

volatile std::sig_atomic_t interrupt_raised = 0;
struct sigaction previous_sigint;

void OnInterrupt(int) { interrupt_raised = 1; }

}  // namespace

InterruptFlag::InterruptFlag() {
  interrupt_raised = 0;
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous_sigint);
}

InterruptFlag::~InterruptFlag() { sigaction(SIGINT, &previous_sigint, nullptr); }

bool InterruptFlag::raised() const { return interrupt_raised != 0; }

absl::StatusOr<v1::Job> FollowJob(const std::string& server, const ChannelSecurity& security,
                                  double deadline_seconds, const std::string& name,
                                  double timeout_seconds, std::ostream& err, int* job_exit) {
  JobClient client(server, security, deadline_seconds);
  StageLines lines(err);
  InterruptFlag interrupt;
  auto end = client.Follow(
      name,
      [&lines](const v1::Job& j) {
        lines.Print(j.progress().stage(), j.progress().done(), j.progress().total());
      },
      timeout_seconds, [&interrupt] { return interrupt.raised(); });
  if (!end.ok()) return end.status();
  const std::string follow =
      absl::StrCat("`attattr wait ", name, " --server ", server, "` follows it, `attattr cancel ",
                   name, " --server ", server, "` stops it");
  if (*end == JobClient::FollowEnd::kTimedOut) {
    *job_exit = kExitJobNotFinished;
    return absl::DeadlineExceededError(
        absl::StrCat("job ", name, " has not finished within ", timeout_seconds,
                     " s (--timeout-seconds); it goes on: ", follow));
  }
  if (*end == JobClient::FollowEnd::kInterrupted) {
    *job_exit = kExitJobNotFinished;
    return absl::CancelledError(
        absl::StrCat("interrupted; job ", name, " goes on on the server: ", follow));
  }
  return client.Get(name);
}

absl::StatusOr<v1::JobResult> RunJobToResult(const std::string& server,
                                             const ChannelSecurity& security,
                                             double deadline_seconds, double timeout_seconds,
                                             const v1::SubmitJobRequest& request, std::ostream& err,
                                             int* job_exit) {
  JobClient client(server, security, deadline_seconds);
  ATTATTR_ASSIGN_OR_RETURN(auto job, client.Submit(request));
  err << "submitted " << job.name() << "\n";
  ATTATTR_ASSIGN_OR_RETURN(auto done, FollowJob(server, security, deadline_seconds, job.name(),
                                                timeout_seconds, err, job_exit));
  if (done.state() != v1::SUCCEEDED) {
    *job_exit = IsFinished(done.state()) ? kExitJobFailed : kExitJobNotFinished;
    return absl::UnknownError(absl::StrCat(done.name(), " ", v1::JobState_Name(done.state()), ": ",
                                           done.error_message()));
  }
  return client.GetResult(job.name());
}

void AddWaitTimeoutFlag(CLI::App* cmd, double* seconds) {
  cmd->add_option("--timeout-seconds", *seconds,
                  "Stop waiting for the job after this long (exit 4; the job goes on on the "
                  "server). Default: until it finishes");
}

absl::StatusOr<std::vector<engine::Encoding>> EncodeFlagSet(const engine::Model& model,
                                                            const std::vector<engine::Example>& set,
                                                            const std::string& flag) {
  auto encodings = model.EncodeAll(set);
  if (encodings.ok()) return encodings;
  const auto error = GetFieldError(encodings.status());
  if (!error) return encodings.status();
  return InvalidFlag(flag, absl::StrCat("example ", error->field.index, ": ", error->what));
}

absl::Status NameOptionsFieldByFlag(const absl::Status& status) {
  const auto error = GetFieldError(status);
  if (!error) return status;
  const std::string& name = error->field.name;
  static constexpr std::pair<absl::string_view, absl::string_view> kFlags[] = {
      {"precision", "--precision"},
      {"layers", "--layers"},
      {"steps", "--steps"},
      {"max_batch_examples", "--batch"},
      {"target", "--target"}};
  for (const auto& [field, flag] : kFlags) {
    if (name == field) return absl::Status(status.code(), absl::StrCat(flag, ": ", error->what));
    // A part of the target ("target.class_index"): --target sets them all.
    if (field == "target" && absl::StartsWith(name, "target.")) {
      return absl::Status(status.code(),
                          absl::StrCat(flag, ": ", name.substr(7), ": ", error->what));
    }
  }
  return status;
}

absl::Status NameExampleByFlag(const absl::Status& status,
                               const std::function<std::string(const std::string&)>& flag_for) {
  const auto error = GetFieldError(status);
  if (!error || error->field.index < 0) return status;
  const std::string flag = flag_for(error->field.name);
  if (flag.empty()) return status;
  const bool label = absl::EndsWith(error->field.name, "labels");
  return absl::Status(status.code(), absl::StrCat(flag, ": example ", error->field.index, ": ",
                                                  label ? "label " : "", error->what));
}

absl::Status WriteFlagFile(const std::string& flag, const std::string& path,
                           const std::string& contents) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << contents;
  file.close();
  // An I/O failure: exit 1 (UNKNOWN), as documented, not the job exit codes' conflict (9).
  if (!file) return absl::UnknownError(absl::StrCat(flag, ": cannot write ", path));
  return absl::OkStatus();
}

}  // namespace attattr::client
