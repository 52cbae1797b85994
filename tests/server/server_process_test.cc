// attattr-server as an operator runs it: --help documents every option, bad flags exit 2, a real
// process serves on an ephemeral port, and SIGTERM drains it to exit code 0.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "support/test_paths.h"

namespace {

namespace fs = std::filesystem;

std::string Server() { return ::attattr::testing::BinDir() + "/attattr-server"; }

std::pair<int, std::string> RunToEnd(const std::string& args) {
  FILE* p = popen((Server() + " " + args + " 2>&1").c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(ServerProcessTest, HelpListsEveryOptionWithDefaults) {
  auto [code, out] = RunToEnd("--help");
  EXPECT_EQ(code, 0);
  for (const char* opt : {"--models", "--listen", "--metrics-listen", "--workers", "--threads",
                          "--max-explain-tokens", "--max-steps", "--max-pending-explains",
                          "--memory-budget-mib", "--grace-seconds", "--log-format", "--log-level",
                          "--config", "ATTATTR_MODELS", "127.0.0.1:50051"}) {
    EXPECT_NE(out.find(opt), std::string::npos) << opt;
  }
}

TEST(ServerProcessTest, BadFlagsExitWith2) {
  EXPECT_EQ(RunToEnd("").first, 2);  // --models is required
  EXPECT_EQ(RunToEnd("--models /tmp --listen nonsense").first, 2);
  EXPECT_EQ(RunToEnd("--models /tmp --log-format xml").first, 2);
  auto [code, out] = RunToEnd("--models /nonexistent --listen 127.0.0.1:0 --metrics-listen ''");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("/nonexistent"), std::string::npos) << out;
}

TEST(ServerProcessTest, SigtermDrainsAndExitsZero) {
  ATTATTR_SKIP_IF_MISSING(::attattr::testing::Sst2ModelDir());
  const std::string dir = ::attattr::testing::MakeTempDir("attattr-models");
  fs::create_directory_symlink(::attattr::testing::Sst2ModelDir(), dir + "/sst2");
  int out_pipe[2];
  ASSERT_EQ(pipe(out_pipe), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    close(out_pipe[0]);
    const std::string models = "--models=" + dir;
    execl(Server().c_str(), "attattr-server", models.c_str(), "--listen=127.0.0.1:0",
          "--metrics-listen=127.0.0.1:0", "--threads=1", "--log-level=warn",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out_pipe[1]);
  FILE* out = fdopen(out_pipe[0], "r");
  char line[256] = {0};
  ASSERT_NE(fgets(line, sizeof line, out), nullptr);
  EXPECT_NE(std::string(line).find("listening on port"), std::string::npos) << line;
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  fclose(out);
  fs::remove_all(dir);
}

}  // namespace
