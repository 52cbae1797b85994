// attattr-server: parses flags (server_flags.h: command line, ATTATTR_* environment variables, or
// an INI/TOML --config file), sets up logging, chooses engine workers and LibTorch threads
// together (engine_parallelism.h) and sets the threads once, starts the Server and
// drains it on SIGTERM/SIGINT (health NOT_SERVING, new work refused, running jobs get
// --grace-seconds to finish and are otherwise re-queued for the next start, exit 0).
#include <csignal>
#include <iostream>

#include "attattr/base/host_resources.h"
#include "attattr/engine/runtime.h"
#include "engine_parallelism.h"
#include "event_log.h"
#include "server.h"
#include "server_flags.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
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
  attattr::server::ServerConfig config = flags->config;
  const int grace_seconds = flags->grace_seconds;
  auto logger = attattr::server::MakeLogger(config.log_format, config.log_level,
                                            std::make_shared<spdlog::sinks::stderr_sink_mt>());
  const attattr::server::EventLog log(logger, config.log_format);
  // Workers and intra-op threads chosen together (0 = auto), before any engine thread starts.
  const attattr::server::EngineParallelism parallelism = attattr::server::ChooseEngineParallelism(
      config.workers, config.intra_op_threads, config.OnCuda(),
      {attattr::UsableCpus(), attattr::UsableMemoryBytes()}, config.memory_budget_bytes);
  config.workers = parallelism.workers;
  config.intra_op_threads = parallelism.intra_op_threads;
  log.Info("engine parallelism", {{"workers", parallelism.workers},
                                  {"intra_op_threads", parallelism.intra_op_threads},
                                  {"reason", parallelism.reason}});
  attattr::engine::RuntimeOptions runtime;
  runtime.intra_op_threads = config.intra_op_threads;
  if (auto s = attattr::engine::ConfigureRuntime(runtime); !s.ok()) {
    log.Error("cannot configure LibTorch", {{"error", s.message()}});
    return 2;
  }
  // Block the stop signals in every thread; main waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

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
