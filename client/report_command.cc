// `attattr report` (see report_command.h).
#include "report_command.h"

#include <cmath>
#include <fstream>
#include <iostream>

#include "absl/status/status.h"
#include "attattr/report/html_report.h"
#include "grpc_call.h"
#include "job_client.h"
#include "job_commands.h"

namespace attattr::client {

ReportCommand::ReportCommand(CLI::App& app) {
  cmd_ = app.add_subcommand(
      "report", "Write a job's self-contained HTML report (heat maps, tree, curves, tables)");
  cmd_->add_option("job", flags_.job, "jobs/ID or ID")->required();
  cmd_->add_option("-o,--output", flags_.output, "The HTML file to write (- = stdout)")->required();
  cmd_->add_option("--server", flags_.server, "HOST:PORT of an attattr-server")->required();
  AddDeadlineFlag(cmd_, &flags_.deadline_seconds, "; the result download is one call");
  cmd_->footer(
      "Exit codes: 0 the job SUCCEEDED and its report was written; 3 it ended FAILED or "
      "CANCELLED and 4 it has not finished (its status page was written); others as `attattr "
      "get` (attattr --help).");
}

int ReportCommand::Run(std::ostream& err) const {
  auto report = [&err](const absl::Status& s) {
    err << "error: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
    return ExitCodeFor(s.code());
  };
  if (!(flags_.deadline_seconds >= 0) || !std::isfinite(flags_.deadline_seconds)) {
    err << "error: --deadline-seconds: must be >= 0 (0 = no deadline)\n";
    return kExitUsage;
  }
  const std::string name = CanonicalJobName(flags_.job);
  JobClient client(flags_.server, flags_.security, flags_.deadline_seconds);
  auto job = client.Get(name);
  if (!job.ok()) return report(job.status());
  v1::JobResult result;
  const bool succeeded = job->state() == v1::SUCCEEDED;
  if (succeeded) {
    auto r = client.GetResult(name);
    if (!r.ok()) return report(r.status());
    result = std::move(*r);
  }
  auto html = report::RenderJobReport(*job, succeeded ? &result : nullptr);
  if (!html.ok()) return report(absl::DataLossError(html.status().message()));
  if (flags_.output == "-") {
    std::cout << *html;
    std::cout.flush();
  } else {
    std::ofstream file(flags_.output, std::ios::binary | std::ios::trunc);
    file << *html;
    file.close();
    if (!file) {
      err << "error: cannot write " << flags_.output << "\n";
      return kExitFailure;
    }
  }
  switch (job->state()) {
    case v1::SUCCEEDED:
      return kExitOk;
    case v1::FAILED:
    case v1::CANCELLED:
      err << "error: job " << name << " " << v1::JobState_Name(job->state()) << ": "
          << job->error_message() << " (its status page was written)\n";
      return kExitJobFailed;
    default:
      err << "error: job " << name << " has not finished: it is " << v1::JobState_Name(job->state())
          << " (its status page was written)\n";
      return kExitJobNotFinished;
  }
}

}  // namespace attattr::client
