// Runs the real attattr-server binary as a child process for end-to-end tests: serves a temporary
// models directory (symlinks), on ephemeral loopback ports, with a job store in a temporary
// directory (unless `extra_args` names --store; --metrics-listen there replaces the ephemeral
// metrics port), and stops it on destruction (SIGTERM, then waits). Not thread-safe; one per test.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace attattr::testing {

class ServerProcess {
 public:
  // `models` maps served names to model directories. `extra_args` are appended to the command line
  // (the log level is warn, the port any free one, unless they name one). With `log_path`, the
  // server's log (stderr) goes to that file instead of the test's stderr.
  ServerProcess(const std::map<std::string, std::string>& models,
                const std::vector<std::string>& extra_args = {}, const std::string& log_path = "");
  ~ServerProcess();

  // False when the process failed to start or never printed its port.
  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Sends SIGTERM and returns the exit status (-1 when it did not exit normally).
  int Stop();
  // Sends SIGKILL (a crash) and reaps the process.
  void Kill();
  pid_t pid() const { return pid_; }
  // The job store file this server uses (empty when extra_args chose one).
  const std::string& store_path() const { return store_path_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
  std::string models_dir_;
  std::string store_dir_;
  std::string store_path_;
};

}  // namespace attattr::testing
