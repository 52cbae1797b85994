// `attattr report JOB -o FILE.html --server HOST:PORT`: writes the job's self-contained HTML report
// (attattr/report/html_report.h, the same library and bytes as the server's /jobs/{id}/report):
// GetJob, then GetJobResult once it SUCCEEDED. An unfinished, failed or cancelled job still gets
// its status page written; the exit code then says so as `get` does (4 not finished, 3 FAILED or
// CANCELLED). Single-threaded.
#pragma once

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "grpc_call.h"

namespace attattr::client {

class ReportCommand {
 public:
  // Registers `report` on `app`; keeps the flag values, so it must outlive parsing.
  explicit ReportCommand(CLI::App& app);
  ReportCommand(const ReportCommand&) = delete;
  ReportCommand& operator=(const ReportCommand&) = delete;

  bool Parsed() const { return cmd_->parsed(); }
  // Messages on `err` ("wrote FILE" on success is not printed: scripts read the exit code).
  // Returns the exit code (job_commands.h).
  int Run(std::ostream& err) const;

  struct Flags {
    std::string job;
    std::string output;  // FILE.html; "-" = stdout
    std::string server;
    ChannelSecurity security;  // the global TLS and token flags
    double deadline_seconds = 120;
  };

  // How the command reaches the server (the global TLS and token flags, loaded).
  void SetChannelSecurity(const ChannelSecurity& security) { flags_.security = security; }

 private:
  CLI::App* cmd_ = nullptr;
  Flags flags_;
};

}  // namespace attattr::client
