// The job commands (see job_commands.h): flag registration, spec building, output and exit codes.
#include "job_commands.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/attribution_convert.h"
#include "attattr/engine/quadrature.h"
#include "attribution_request.h"
#include "command_support.h"
#include "grpc_call.h"
#include "job_client.h"
#include "job_render.h"
#include "render.h"
#include "terminal_output.h"

namespace attattr::client {

const char* const kJobExitCodesHelp =
    "Exit codes of submit/get/wait/watch/cancel/delete/list/report/heads/triggers:\n"
    "  0  success (get/wait/watch: the job SUCCEEDED)\n"
    "  1  other failure (INTERNAL, UNIMPLEMENTED, DATA_LOSS, cannot write -o FILE, ...)\n"
    "  2  bad arguments, or the server's INVALID_ARGUMENT (the message names the field)\n"
    "  3  the job ended FAILED or CANCELLED (its error is printed)\n"
    "  4  the job has not finished (--timeout-seconds passed, Ctrl-C while submit --wait,\n"
    "     heads or triggers follow it, or get before it finished); the job goes on\n"
    "  5  NOT_FOUND: no such job (or model)\n"
    "  6  UNAVAILABLE: cannot reach the server, or it is draining\n"
    "  7  DEADLINE_EXCEEDED: no answer within --deadline-seconds\n"
    "  8  RESOURCE_EXHAUSTED: the server's queue is full (the message gives its retry hint)\n"
    "  9  FAILED_PRECONDITION / ALREADY_EXISTS / ABORTED: e.g. cancelling a finished job, a\n"
    "     --request-id reused with a different spec\n"
    "Errors are one line on stderr: \"error: CODE: message\".";

int ExitCodeFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return kExitUsage;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kUnavailable:
      return kExitUnavailable;
    case absl::StatusCode::kDeadlineExceeded:
      return kExitDeadline;
    case absl::StatusCode::kResourceExhausted:
      return kExitBusy;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return kExitConflict;
    default:
      return kExitFailure;
  }
}

namespace {

// "error: NOT_FOUND: job jobs/x not found", and the matching exit code.
int Report(const absl::Status& s, std::ostream& err) {
  err << "error: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
  return ExitCodeFor(s.code());
}

// A bad flag value noticed here (before any call): "error: --flag: ...", exit 2.
int Usage(const std::string& message, std::ostream& err) {
  err << "error: " << message << "\n";
  return kExitUsage;
}

absl::Status CheckCommon(const JobCommands::Common& c) {
  if (c.server.empty()) return absl::InvalidArgumentError("--server: required");
  if (c.format != "json" && c.format != "text") {
    return absl::InvalidArgumentError(
        absl::StrCat("--format: '", c.format, "' is not json or text"));
  }
  if (!(c.deadline_seconds >= 0) || !std::isfinite(c.deadline_seconds)) {
    return absl::InvalidArgumentError("--deadline-seconds: must be >= 0 (0 = no deadline)");
  }
  return absl::OkStatus();
}

void PrintJob(const v1::Job& job, const std::string& format, std::ostream& out) {
  if (format == "json") {
    out << JsonText(JobToJson(job)) << "\n";
  } else {
    out << JobToLine(job) << "\n";
  }
}

// The exit code of a job's final state; explains anything but SUCCEEDED on `err`.
int FinalState(const v1::Job& job, std::ostream& err) {
  switch (job.state()) {
    case v1::SUCCEEDED:
      return kExitOk;
    case v1::FAILED:
    case v1::CANCELLED: {
      err << "error: job " << job.name() << " " << v1::JobState_Name(job.state());
      if (job.error_code() != 0 || !job.error_message().empty()) {
        err << ": " << absl::StatusCodeToString(static_cast<absl::StatusCode>(job.error_code()))
            << ": " << job.error_message();
      }
      err << "\n";
      return kExitJobFailed;
    }
    default:
      err << "error: job " << job.name() << " has not finished: it is "
          << v1::JobState_Name(job.state());
      if (job.progress().total() > 0) {
        err << " (" << job.progress().stage() << " " << job.progress().done() << "/"
            << job.progress().total() << ")";
      }
      err << "\n";
      return kExitJobNotFinished;
  }
}

absl::StatusOr<v1::ResultOptions> ResultOptionsFrom(const JobCommands::Submit& f) {
  if (f.top_k < 0) return absl::InvalidArgumentError("--top-k: must be >= 0");
  v1::ResultOptions r;
  // Nothing asked: the full matrices, so `attattr get` prints what `attattr explain` prints.
  const bool any = f.full_matrices || f.head_summed || f.top_k > 0;
  r.set_full_matrices(f.full_matrices || !any);
  r.set_head_summed(f.head_summed);
  r.set_top_k(f.top_k);
  r.set_fp16(f.fp16);
  r.set_attention(f.attention);
  ATTATTR_RETURN_IF_ERROR(engine::ValidateTreeTau(f.tau, "--tau"));
  r.set_tree(f.tree);
  if (f.tree) r.set_tree_tau(f.tau);
  return r;
}

int RunSubmit(const JobCommands::Submit& f, std::ostream& out, std::ostream& err) {
  if (auto s = CheckCommon(f.common); !s.ok()) return Usage(std::string(s.message()), err);
  if (f.model.empty())
    return Usage("--model: required (a served model, see `attattr models`)", err);
  if (f.texts.empty() == f.dataset.empty()) {
    return Usage("--text: give one or more --text (each with an optional --text-pair) or --dataset",
                 err);
  }
  if (f.limit < 0) return Usage("--limit: must be >= 0 (0 = all)", err);
  if (f.limit > 0 && f.dataset.empty()) return Usage("--limit: only with --dataset", err);
  if (!(f.job_timeout_seconds >= 0)) {
    return Usage("--job-timeout-seconds: must be >= 0 (0 = none)", err);
  }
  if (!(f.timeout_seconds >= 0)) {
    return Usage("--timeout-seconds: must be >= 0 (0 = until the job finishes)", err);
  }
  if (f.timeout_seconds > 0 && !f.wait) {
    return Usage(
        "--timeout-seconds: bounds --wait; the job's own limit on the server is "
        "--job-timeout-seconds",
        err);
  }
  auto rule = engine::ParseQuadratureRule(f.rule);
  if (!rule.ok()) return Usage(absl::StrCat("--", rule.status().message()), err);
  auto layers = ParseLayers(f.layers);
  if (!layers.ok()) return Usage(std::string(layers.status().message()), err);
  auto precision = ParsePrecisionFlag(f.precision);
  if (!precision.ok()) return Usage(std::string(precision.status().message()), err);
  auto result = ResultOptionsFrom(f);
  if (!result.ok()) return Usage(std::string(result.status().message()), err);

  JobClient client(f.common.server, f.common.security, f.common.deadline_seconds);
  std::vector<std::string> labels;
  if (TargetNeedsLabels(f.target)) {  // --target class:positive needs the model's labels
    auto l = client.ModelLabels(f.model);
    if (!l.ok()) return Report(l.status(), err);
    labels = std::move(*l);
  }
  auto target = ParseTarget(f.target, labels);
  if (!target.ok()) return Usage(std::string(target.status().message()), err);

  engine::AttributionOptions options;
  options.rule = *rule;
  options.steps = f.steps;
  options.layers = *layers;
  options.target = *target;

  v1::SubmitJobRequest req;
  req.set_request_id(f.request_id);
  v1::JobSpec* spec = req.mutable_spec();
  spec->set_model(f.model);
  spec->set_priority(f.priority);
  spec->set_timeout_ms(static_cast<int64_t>(std::llround(f.job_timeout_seconds * 1000)));
  v1::AttributionSpec* a = spec->mutable_attribution();
  if (!f.dataset.empty()) {
    a->mutable_examples()->mutable_dataset()->set_path(f.dataset);
    a->mutable_examples()->mutable_dataset()->set_limit(f.limit);
  } else {
    auto* list = a->mutable_examples()->mutable_inline_();
    for (const auto& text : f.texts) {
      auto* e = list->add_examples();
      e->set_text(text);
      e->set_label(-1);
    }
    for (const auto& [index, pair] : f.pairs) list->mutable_examples(index)->set_text_pair(pair);
  }
  convert::AttributionOptionsToProto(options, a->mutable_options());
  a->mutable_options()->set_precision(PrecisionFlagToProto(*precision));
  *a->mutable_result() = *result;

  auto job = client.Submit(req);
  if (!job.ok()) return Report(job.status(), err);
  if (!f.wait) {
    PrintJob(*job, f.common.format, out);
    return kExitOk;
  }
  err << "submitted " << job->name() << "\n";
  int job_exit = 0;
  auto done = FollowJob(f.common.server, f.common.security, f.common.deadline_seconds, job->name(),
                        f.timeout_seconds, err, &job_exit);
  if (!done.ok()) {
    if (job_exit == 0) return Report(done.status(), err);
    err << "error: " << done.status().message() << "\n";
    return job_exit;
  }
  PrintJob(*done, f.common.format, out);
  return FinalState(*done, err);
}

int RunGet(const JobCommands::Get& f, std::ostream& out, std::ostream& err) {
  if (auto s = CheckCommon(f.common); !s.ok()) return Usage(std::string(s.message()), err);
  const std::string name = CanonicalJobName(f.job);
  JobClient client(f.common.server, f.common.security, f.common.deadline_seconds);
  auto job = client.Get(name);
  if (!job.ok()) return Report(job.status(), err);
  if (job->state() != v1::SUCCEEDED) {
    PrintJob(*job, f.common.format, out);
    return FinalState(*job, err);
  }
  auto result = client.GetResult(name);
  if (!result.ok()) return Report(result.status(), err);
  // Rendered straight to the destination, one example at a time (a result may be a GiB).
  const auto write = [&](std::ostream& to) {
    absl::Status written = f.common.format == "json"
                               ? WriteJobResultJson(*job, *result, to)
                               : WriteJobResultText(*job, *result, f.top_k, to);
    if (written.ok() && f.common.format == "json") to << "\n";
    return written;
  };
  std::error_code probe;
  const auto kind = std::filesystem::status(f.output, probe).type();
  const bool special = kind != std::filesystem::file_type::not_found &&
                       kind != std::filesystem::file_type::regular && !probe;
  if (f.output.empty() || f.output == "-" || special) {
    // Standard output, or a device or pipe named by --output (/dev/stdout, a FIFO): streamed, so
    // an error part-way leaves part of the document there (and exits non-zero).
    std::ofstream device;
    if (special) device.open(f.output, std::ios::binary);
    std::ostream& to = special ? device : out;
    const absl::Status written = write(to);
    to.flush();
    if (!written.ok()) return Report(absl::DataLossError(written.message()), err);
    if (!to) {
      err << "error: cannot write " << f.output << "\n";
      return kExitFailure;
    }
    return kExitOk;
  }
  // A file holds the whole rendering or is left as it was: written beside it, then renamed.
  const std::string staged = f.output + ".attattr-partial";
  std::ofstream file(staged, std::ios::binary | std::ios::trunc);
  const absl::Status written = file ? write(file) : absl::OkStatus();
  file.close();
  std::error_code renamed;
  if (written.ok() && file) std::filesystem::rename(staged, f.output, renamed);
  if (!written.ok() || !file || renamed) {
    std::error_code ignored;
    std::filesystem::remove(staged, ignored);
    if (!written.ok()) return Report(absl::DataLossError(written.message()), err);
    err << "error: cannot write " << f.output << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

int RunWait(const JobCommands::Wait& f, std::ostream& out, std::ostream& err) {
  if (auto s = CheckCommon(f.common); !s.ok()) return Usage(std::string(s.message()), err);
  if (std::isnan(f.timeout_seconds)) return Usage("--timeout-seconds: not a number", err);
  const std::string name = CanonicalJobName(f.job);
  JobClient client(f.common.server, f.common.security, f.common.deadline_seconds);
  const bool forever = f.timeout_seconds < 0 || std::isinf(f.timeout_seconds);
  int64_t left_ms = forever ? 0 : static_cast<int64_t>(std::llround(f.timeout_seconds * 1000));
  v1::Job last;
  // The server waits at most kMaxWaitTimeoutMs per call: longer waits are several calls.
  while (true) {
    const int64_t slice = forever ? kMaxWaitTimeoutMs : std::min(left_ms, kMaxWaitTimeoutMs);
    auto job = client.Wait(name, slice);
    if (!job.ok()) return Report(job.status(), err);
    last = std::move(*job);
    if (!forever) left_ms -= slice;
    if (IsFinished(last.state()) || (!forever && left_ms <= 0)) break;
  }
  PrintJob(last, f.common.format, out);
  return FinalState(last, err);
}

int RunWatch(const JobCommands::Watch& f, std::ostream& out, std::ostream& err, bool interactive) {
  if (auto s = CheckCommon(f.common); !s.ok()) return Usage(std::string(s.message()), err);
  const std::string name = CanonicalJobName(f.job);
  JobClient client(f.common.server, f.common.security, f.common.deadline_seconds);
  const bool json = f.common.format == "json";
  const bool bar = interactive && !json;
  v1::Job last;
  bool any = false;
  std::string previous;
  size_t drawn = 0;  // width of the bar line on screen
  auto status = client.Watch(name, [&](const v1::Job& job) {
    last = job;
    any = true;
    if (json) {
      out << JsonText(JobToJson(job)) << "\n";
    } else if (bar) {
      const std::string line = absl::StrCat(job.name(), "  ", ProgressBar(job));
      WriteControl(out, "\r");
      out << line << std::string(drawn > line.size() ? drawn - line.size() : 0, ' ');
      drawn = line.size();
    } else {
      // Updates may repeat (the server coalesces); print each distinct one once.
      const std::string line = ProgressLine(job);
      if (line != previous) out << line << "\n";
      previous = line;
    }
    out.flush();
  });
  if (bar && any) out << "\n";
  if (!status.ok()) return Report(status, err);
  if (!any || !IsFinished(last.state())) {
    // The stream ended without a final state (it should not): ask once more.
    auto job = client.Get(name);
    if (!job.ok()) return Report(job.status(), err);
    last = std::move(*job);
    if (json) {
      out << JsonText(JobToJson(last)) << "\n";
    } else {
      out << ProgressLine(last) << "\n";
    }
  }
  if (bar && !IsFinished(last.state())) out << JobToLine(last) << "\n";
  return FinalState(last, err);
}

int RunCancel(const JobCommands::OneJob& f, std::ostream& out, std::ostream& err) {
  if (auto s = CheckCommon(f.common); !s.ok()) return Usage(std::string(s.message()), err);
  JobClient client(f.common.server, f.common.security, f.common.deadline_seconds);
  auto job = client.Cancel(CanonicalJobName(f.job));
  if (!job.ok()) return Report(job.status(), err);
  PrintJob(*job, f.common.format, out);
  return kExitOk;
}

int RunDelete(const JobCommands::OneJob& f, std::ostream& out, std::ostream& err) {
  if (auto s = CheckCommon(f.common); !s.ok()) return Usage(std::string(s.message()), err);
  const std::string name = CanonicalJobName(f.job);
  JobClient client(f.common.server, f.common.security, f.common.deadline_seconds);
  if (auto s = client.Delete(name); !s.ok()) return Report(s, err);
  if (f.common.format == "json") {
    out << JsonText(nlohmann::json{{"name", name}, {"deleted", true}}) << "\n";
  } else {
    out << "deleted " << name << "\n";
  }
  return kExitOk;
}

// "succeeded" / "SUCCEEDED" -> SUCCEEDED; "head-importance" -> HEAD_IMPORTANCE.
std::string EnumSpelling(const std::string& s) {
  return absl::AsciiStrToUpper(absl::StrReplaceAll(s, {{"-", "_"}}));
}

int RunList(const JobCommands::List& f, std::ostream& out, std::ostream& err) {
  if (auto s = CheckCommon(f.common); !s.ok()) return Usage(std::string(s.message()), err);
  v1::ListJobsRequest req;
  if (!f.state.empty()) {
    v1::JobState state;
    if (!v1::JobState_Parse(EnumSpelling(f.state), &state) || state == v1::JOB_STATE_UNSPECIFIED) {
      return Usage(absl::StrCat("--state: '", f.state,
                                "' is not one of queued, running, succeeded, failed, cancelled"),
                   err);
    }
    req.set_state(state);
  }
  if (!f.kind.empty()) {
    v1::JobKind kind;
    if (!v1::JobKind_Parse(EnumSpelling(f.kind), &kind) || kind == v1::JOB_KIND_UNSPECIFIED) {
      return Usage(absl::StrCat("--kind: '", f.kind,
                                "' is not one of attribution, head-importance, trigger-search"),
                   err);
    }
    req.set_kind(kind);
  }
  if (f.page_size < 0 || f.page_size > 1000) {
    return Usage("--page-size: must be in [1, 1000] (0 = the server's default, 100)", err);
  }
  req.set_page_size(f.page_size);
  req.set_page_token(f.page_token);
  JobClient client(f.common.server, f.common.security, f.common.deadline_seconds);
  std::vector<v1::Job> jobs;
  std::string next;
  while (true) {
    auto page = client.List(req);
    if (!page.ok()) return Report(page.status(), err);
    for (auto& job : *page->mutable_jobs()) jobs.push_back(std::move(job));
    next = page->next_page_token();
    if (!f.all || next.empty()) break;
    req.set_page_token(next);
  }
  if (f.common.format == "json") {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& job : jobs) list.push_back(JobToJson(job));
    out << JsonText(nlohmann::json{{"jobs", std::move(list)}, {"next_page_token", next}}) << "\n";
  } else {
    out << JobTable(jobs);
    if (!next.empty()) {
      err << "(more jobs: --all, or --page-token " << next << ")\n";
    }
  }
  return kExitOk;
}

void AddCommon(CLI::App* cmd, JobCommands::Common* c, double deadline, const std::string& format,
               const std::string& deadline_help) {
  c->deadline_seconds = deadline;
  c->format = format;
  cmd->add_option("--server", c->server, "HOST:PORT of an attattr-server")->required();
  cmd->add_option("--format", c->format, "json | text")->capture_default_str();
  AddDeadlineFlag(cmd, &c->deadline_seconds, deadline_help);
  cmd->footer(kJobExitCodesHelp);
}

}  // namespace

JobCommands::JobCommands(CLI::App& app) {
  // submit ----------------------------------------------------------------------------------
  submit_cmd_ = app.add_subcommand(
      "submit",
      "Submit an attribution job (inline --text examples or a --dataset on the server); prints "
      "the job (its name is what get/wait/watch/cancel/delete take)");
  Submit& s = submit_;
  AddCommon(submit_cmd_, &s.common, 60, "json", "");
  submit_cmd_->add_option("--model", s.model, "A served model (see `attattr models`)")->required();
  text_opt_ = submit_cmd_->add_option("--text", s.texts,
                                      "An example's text; repeat for several examples (one job)");
  pair_opt_ =
      submit_cmd_->add_option("--text-pair", pair_values_,
                              "Second segment of a sentence pair, for the --text just before it");
  submit_cmd_->add_option("--dataset", s.dataset,
                          "A GLUE-format TSV file, relative to the server's --data-root "
                          "(instead of --text)");
  submit_cmd_->add_option("--limit", s.limit, "With --dataset: only the first N examples (0 = all)")
      ->capture_default_str();
  submit_cmd_->add_option("--steps", s.steps, "Integration points m")->capture_default_str();
  submit_cmd_->add_option("--rule", s.rule, "gauss-legendre | left-riemann | trapezoid")
      ->capture_default_str();
  submit_cmd_->add_option("--precision", s.precision, kPrecisionHelp);
  submit_cmd_->add_option("--layers", s.layers, "Comma-separated layer indices (default: all)");
  submit_cmd_
      ->add_option(
          "--target", s.target,
          "predicted | class:K | logit:K | logprob:K | similarity:TEXT (K: index or label); "
          "language models: next_token:TEXT | next_token_logprob:TEXT | "
          "next_token_logit:TEXT (TEXT one token, e.g. ' Paris'; K a token id) | "
          "sequence_logprob:TEXT (log p(TEXT | input), teacher-forced)")
      ->capture_default_str();
  submit_cmd_->add_option("--top-k", s.top_k, "Keep the K strongest connections per layer")
      ->capture_default_str();
  submit_cmd_->add_flag("--full-matrices", s.full_matrices,
                        "Keep every head's n x n attribution matrix (the default when none of "
                        "--full-matrices, --head-summed, --top-k is given)");
  submit_cmd_->add_flag("--head-summed", s.head_summed,
                        "Keep the head-summed n x n matrix per layer");
  submit_cmd_->add_flag("--attention", s.attention, "Also keep the attention probabilities A^l");
  submit_cmd_->add_flag("--fp16", s.fp16, "Store matrices as IEEE fp16 (half the size)");
  submit_cmd_->add_flag("--tree", s.tree,
                        "Keep each example's attribution tree (needs all layers; `get` prints it)");
  submit_cmd_->add_option("--tau", s.tau, "The tree's threshold tau, in (0, 1]")
      ->capture_default_str();
  submit_cmd_->add_option("--priority", s.priority, "-10..10, higher runs first")
      ->capture_default_str();
  submit_cmd_
      ->add_option("--job-timeout-seconds", s.job_timeout_seconds,
                   "The job fails with DEADLINE_EXCEEDED if not finished this long after "
                   "submission (0 = no limit)")
      ->capture_default_str();
  submit_cmd_->add_flag("--wait", s.wait,
                        "Follow the job to its end (progress on stderr), then print it; exit as "
                        "`attattr wait` does");
  AddWaitTimeoutFlag(submit_cmd_, &s.timeout_seconds);
  submit_cmd_->add_option(
      "--request-id", s.request_id,
      "Idempotency key: submitting again with the same id returns the same job");

  // get -------------------------------------------------------------------------------------
  get_cmd_ = app.add_subcommand(
      "get",
      "Show a job; when it SUCCEEDED, download its result: JSON {\"job\", \"examples\": [one "
      "object per example, as `attattr explain` prints]} for attribution jobs, {\"job\", "
      "\"result\": ...} as `attattr heads` / `attattr triggers` print for the others (exit 3/4 "
      "when "
      "it failed/is not done)");
  AddCommon(get_cmd_, &get_.common, 300, "json", "; the result download is one call");
  get_cmd_->add_option("job", get_.job, "Job name (jobs/ID or ID)")->required();
  get_cmd_->add_option("-o,--output", get_.output, "Write the result to FILE instead of stdout");
  get_cmd_->add_option("--top", get_.top_k, "Connections per layer in text output")
      ->capture_default_str();

  // wait ------------------------------------------------------------------------------------
  wait_cmd_ = app.add_subcommand(
      "wait", "Block until a job finishes; prints it (exit 0 only when it SUCCEEDED)");
  AddCommon(wait_cmd_, &wait_.common, 30, "json",
            "; a WaitJob call (at most 600 s of waiting) may take this beyond its wait");
  wait_cmd_->add_option("job", wait_.job, "Job name (jobs/ID or ID)")->required();
  wait_cmd_->add_option("--timeout-seconds", wait_.timeout_seconds,
                        "Give up (exit 4) after this long; default: until the job finishes");

  // watch -----------------------------------------------------------------------------------
  watch_cmd_ = app.add_subcommand(
      "watch",
      "Follow a job's progress: a progress bar on a terminal, one line per update otherwise "
      "(exit 0 only when it SUCCEEDED)");
  AddCommon(watch_cmd_, &watch_.common, 0, "text", "; the progress stream is one call");
  watch_cmd_->add_option("job", watch_.job, "Job name (jobs/ID or ID)")->required();

  // cancel, delete --------------------------------------------------------------------------
  cancel_cmd_ = app.add_subcommand("cancel", "Cancel a queued or running job; prints it");
  AddCommon(cancel_cmd_, &cancel_.common, 30, "json", "");
  cancel_cmd_->add_option("job", cancel_.job, "Job name (jobs/ID or ID)")->required();
  delete_cmd_ = app.add_subcommand(
      "delete", "Delete a job and its result (a queued or running job is cancelled first)");
  AddCommon(delete_cmd_, &delete_.common, 30, "json", "");
  delete_cmd_->add_option("job", delete_.job, "Job name (jobs/ID or ID)")->required();

  // list ------------------------------------------------------------------------------------
  list_cmd_ = app.add_subcommand("list", "List jobs, oldest first (creation order; text: a table)");
  AddCommon(list_cmd_, &list_.common, 30, "text", "");
  list_cmd_->add_option("--state", list_.state,
                        "Only jobs in this state: queued | running | succeeded | failed | "
                        "cancelled");
  list_cmd_->add_option("--kind", list_.kind,
                        "Only jobs of this kind: attribution | head-importance | trigger-search");
  list_cmd_
      ->add_option("--page-size", list_.page_size, "Jobs per page, 1..1000 (0 = server default)")
      ->capture_default_str();
  list_cmd_->add_option("--page-token", list_.page_token, "Continue from a previous page");
  list_cmd_->add_flag("--all", list_.all, "Follow next_page_token to the end");
}

bool JobCommands::Parsed() const {
  for (const CLI::App* c :
       {submit_cmd_, get_cmd_, wait_cmd_, watch_cmd_, cancel_cmd_, delete_cmd_, list_cmd_}) {
    if (c->parsed()) return true;
  }
  return false;
}

int JobCommands::CollectPairs(std::ostream& err) {
  submit_.pairs.clear();
  size_t texts = 0, pairs = 0;
  for (const CLI::Option* op : submit_cmd_->parse_order()) {
    if (op == text_opt_) {
      ++texts;
    } else if (op == pair_opt_) {
      if (texts == 0) return Usage("--text-pair: must follow the --text it pairs with", err);
      if (!submit_.pairs.empty() && submit_.pairs.back().first == texts - 1) {
        return Usage(absl::StrCat("--text-pair: text ", texts, " already has a pair"), err);
      }
      if (pairs < pair_values_.size()) submit_.pairs.emplace_back(texts - 1, pair_values_[pairs]);
      ++pairs;
    }
  }
  if (pairs != pair_values_.size() || texts != submit_.texts.size()) {
    return Usage("--text-pair: cannot tell which --text each pair belongs to", err);
  }
  return kExitOk;
}

int JobCommands::Run(std::ostream& out, std::ostream& err, bool interactive) {
  if (submit_cmd_->parsed()) {
    if (int rc = CollectPairs(err); rc != kExitOk) return rc;
    return RunSubmit(submit_, out, err);
  }
  if (get_cmd_->parsed()) return RunGet(get_, out, err);
  if (wait_cmd_->parsed()) return RunWait(wait_, out, err);
  if (watch_cmd_->parsed()) return RunWatch(watch_, out, err, interactive);
  if (cancel_cmd_->parsed()) return RunCancel(cancel_, out, err);
  if (delete_cmd_->parsed()) return RunDelete(delete_, out, err);
  if (list_cmd_->parsed()) return RunList(list_, out, err);
  return Usage("no job command given", err);
}

}  // namespace attattr::client
