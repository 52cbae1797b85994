// Resolves test data locations from compile-time defaults and environment overrides.
#include "support/test_paths.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace attattr::testing {
namespace {
std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}
}  // namespace

std::string SharedDir() { return EnvOr("ATTATTR_SHARED_DIR", ATTATTR_SHARED_DIR); }
std::string Sst2ModelDir() { return SharedDir() + "/models/sst2-bert-l4-h256"; }
std::string GoldenPath() { return SharedDir() + "/golden/sst2-bert-l4-h256.json"; }
std::string MiniLmDir() {
  return EnvOr("ATTATTR_MINILM_DIR", std::string(ATTATTR_MODELS_DIR) + "/all-MiniLM-L6-v2");
}
std::string BinDir() { return ATTATTR_BIN_DIR; }
bool PathExists(const std::string& path) { return std::filesystem::exists(path); }
bool RequireTestDependencies() { return EnvOr("ATTATTR_REQUIRE_TEST_DEPS", "") == "1"; }

std::string MakeTempDir(const std::string& prefix) {
  std::random_device rd;
  auto base = std::filesystem::temp_directory_path();
  for (;;) {
    auto dir = base / (prefix + "-" + std::to_string(rd()));
    if (std::filesystem::create_directory(dir)) return dir.string();
  }
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

CommandResult RunCommand(const std::string& shell_command) {
  CommandResult r;
  FILE* p = popen(shell_command.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string SplitCommandResult::Describe() const {
  return "exit " + std::to_string(exit_code) + "\nstdout: " + out + "\nstderr: " + err;
}

SplitCommandResult RunCommandSplit(const std::string& shell_command,
                                   const std::string& scratch_dir) {
  const std::string err_file = scratch_dir + "/stderr.txt";
  const auto done = RunCommand("{ " + shell_command + " ; } 2>" + err_file + " </dev/null");
  return {done.exit_code, done.out, ReadFile(err_file)};
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace attattr::testing
