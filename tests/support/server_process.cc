// Child-process attattr-server for end-to-end tests (see server_process.h).
#include "support/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "support/test_paths.h"

namespace attattr::testing {

ServerProcess::ServerProcess(const std::map<std::string, std::string>& models,
                             const std::vector<std::string>& extra_args,
                             const std::string& log_path) {
  namespace fs = std::filesystem;
  models_dir_ = MakeTempDir("attattr-models");
  for (const auto& [name, dir] : models)
    fs::create_directory_symlink(dir, models_dir_ + "/" + name);
  int out_pipe[2];
  if (pipe(out_pipe) != 0) return;
  std::vector<std::string> args = {BinDir() + "/attattr-server", "--models=" + models_dir_,
                                   "--threads=1"};
  bool has_listen = false;  // a port of the test's choosing (a restart on the same address)
  bool has_store = false;
  bool has_metrics = false;
  bool has_log_level = false;
  for (const auto& a : extra_args) {
    has_listen = has_listen || a.rfind("--listen", 0) == 0;
    has_store = has_store || a.rfind("--store", 0) == 0;
    has_metrics = has_metrics || a.rfind("--metrics-listen", 0) == 0;
    has_log_level = has_log_level || a.rfind("--log-level", 0) == 0;
  }
  if (!has_listen) args.push_back("--listen=127.0.0.1:0");
  if (!has_log_level) args.push_back("--log-level=warn");
  if (!has_metrics) args.push_back("--metrics-listen=127.0.0.1:0");
  if (!has_store) {
    store_dir_ = MakeTempDir("attattr-store");
    store_path_ = store_dir_ + "/jobs.db";
    args.push_back("--store=" + store_path_);
  }
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    close(out_pipe[0]);
    if (!log_path.empty()) {
      const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (log >= 0) dup2(log, STDERR_FILENO);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  if (pid_ < 0) {
    close(out_pipe[0]);
    return;
  }
  // The server prints "attattr-server listening on port N" once it serves.
  FILE* out = fdopen(out_pipe[0], "r");
  char line[256] = {0};
  if (fgets(line, sizeof line, out) != nullptr) {
    const std::string s(line);
    const auto pos = s.find("port ");
    if (pos != std::string::npos) port_ = std::atoi(s.c_str() + pos + 5);
  }
  fclose(out);
}

int ServerProcess::Stop() {
  if (pid_ <= 0) return exit_code_;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return exit_code_;
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  exit_code_ = -1;
}

ServerProcess::~ServerProcess() {
  Stop();
  std::error_code ec;
  std::filesystem::remove_all(models_dir_, ec);
  if (!store_dir_.empty()) std::filesystem::remove_all(store_dir_, ec);
}

}  // namespace attattr::testing
