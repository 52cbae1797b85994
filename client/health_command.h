// `attattr health --server HOST:PORT [--service NAME]`: asks a server's grpc.health.v1 Check, as
// Kubernetes' gRPC probes and grpc_health_probe do, and prints the serving status. The empty
// service name is the server as a whole; "attattr.v1.Attattr" is the attribution service. Exit 0
// when SERVING, 6 (as UNAVAILABLE) when NOT_SERVING, unknown or unreachable. Single-threaded.
#pragma once

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "grpc_call.h"

namespace attattr::client {

class HealthCommand {
 public:
  // Registers `health` on `app`; keeps the flag values, so it must outlive parsing.
  explicit HealthCommand(CLI::App& app);
  HealthCommand(const HealthCommand&) = delete;
  HealthCommand& operator=(const HealthCommand&) = delete;

  bool Parsed() const { return cmd_->parsed(); }
  // The status on `out` (SERVING, or JSON), errors on `err`; the exit code (job_commands.h).
  int Run(std::ostream& out, std::ostream& err) const;

  struct Flags {
    std::string server;
    ChannelSecurity security;  // the global TLS and token flags
    std::string service;       // "" = the whole server
    std::string format = "text";
    double deadline = 10;
  };

  // How the command reaches the server (the global TLS and token flags, loaded).
  void SetChannelSecurity(const ChannelSecurity& security) { flags_.security = security; }

 private:
  CLI::App* cmd_ = nullptr;
  Flags flags_;
};

}  // namespace attattr::client
