// attattr-server: parses flags (server_flags.h: command line, ATTATTR_* environment variables, or
// an INI/TOML --config file), sets up logging, sets the process's LibTorch threads once
// (--job-threads; the engine workers set their own), starts the Server and
// drains it on SIGTERM/SIGINT (health NOT_SERVING, new work refused, running jobs get
// --grace-seconds to finish and are otherwise re-queued for the next start, exit 0).
#include <csignal>
#include <iostream>

#include "attattr/engine/runtime.h"
#include "event_log.h"
#include "server.h"
#include "server_flags.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  // Block the stop signals first, so every thread started from here on (LibTorch's OpenMP and
  // MKL threads when the intra-op threads are set below, gRPC's, the engine workers) inherits the
  // block and a SIGTERM reaches main's sigwait below instead of killing the process undrained.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<attattr::server::ServerFlags> flags = attattr::server::ParseServerFlags(args);
  if (!flags.ok()) {
    std::cerr << "error: " << flags.status().message() << "\n";
    return 2;
  }
  if (flags->help_requested) {
    std::cout << flags->help << std::endl;
    return 0;
  }
  const attattr::server::ServerConfig& config = flags->config;
  const int grace_seconds = flags->grace_seconds;
  auto logger = attattr::server::MakeLogger(config.log_format, config.log_level,
                                            std::make_shared<spdlog::sinks::stderr_sink_mt>());
  const attattr::server::EventLog log(logger, config.log_format);
  // The process's intra-op threads: what HEAD_IMPORTANCE and TRIGGER_SEARCH jobs use on their
  // runner's thread. Each engine worker sets its own (Server::Start, engine_parallelism.h).
  attattr::engine::RuntimeOptions runtime;
  runtime.intra_op_threads = config.job_threads > 0 ? config.job_threads : config.EffectiveCpus();
  if (auto s = attattr::engine::ConfigureRuntime(runtime); !s.ok()) {
    log.Error("cannot configure LibTorch", {{"error", s.message()}});
    return 2;
  }
  auto server = attattr::server::Server::Start(config, logger);
  if (!server.ok()) {
    log.Error("cannot start", {{"error", server.status().message()}});
    return 1;
  }
  std::cout << "attattr-server listening on port " << (*server)->port() << std::endl;
  int sig = 0;
  sigwait(&stop_signals, &sig);
  log.Info("signal received", {{"signal", sig}});
  (*server)->Shutdown(std::chrono::seconds(grace_seconds));
  (*server)->Wait();
  server->reset();
  log.Info("stopped");
  return 0;
}
