// attattr-server as an operator runs it: --help documents every option, bad flags exit 2, a real
// process serves on an ephemeral port, and SIGTERM drains it to exit code 0.
#include "support/server_process.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/test_paths.h"

namespace {

std::string Server() { return ::attattr::testing::BinDir() + "/attattr-server"; }

std::pair<int, std::string> RunToEnd(const std::string& args) {
  auto r = ::attattr::testing::RunCommand(Server() + " " + args + " 2>&1");
  return {r.exit_code, r.out};
}

TEST(ServerProcessTest, HelpListsEveryOptionWithDefaults) {
  auto [code, out] = RunToEnd("--help");
  EXPECT_EQ(code, 0);
  for (const char* opt : {"--models",
                          "--listen",
                          "--metrics-listen",
                          "--workers",
                          "--threads",
                          "--max-explain-tokens",
                          "--max-steps",
                          "--max-pending-explains",
                          "--memory-budget-mib",
                          "--grace-seconds",
                          "--log-format",
                          "--log-level",
                          "--config",
                          "ATTATTR_MODELS",
                          "127.0.0.1:50051",
                          "--store",
                          "attattr-jobs.db",
                          "--data-root",
                          "--job-runners",
                          "--batch-max-examples",
                          "--batch-max-delay-us",
                          "--max-queued-jobs",
                          "--max-job-examples",
                          "--max-result-mib",
                          "--retention-seconds",
                          "ATTATTR_STORE"}) {
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
  ::attattr::testing::ServerProcess server({{"sst2", ::attattr::testing::Sst2ModelDir()}});
  ASSERT_TRUE(server.ok());
  // Regression: LibTorch's OpenMP threads, started when main set the process's intra-op threads
  // before it blocked the stop signals, did not block them, so a SIGTERM the kernel handed to one
  // of them killed the server undrained (exit by signal, one run in four). Every thread of a
  // serving server but main must block SIGTERM and SIGINT; main takes them with sigwait (which
  // unblocks them while it waits).
  const std::string pid = std::to_string(server.pid());
  int threads = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + pid + "/task")) {
    if (task.path().filename() == pid) continue;
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("SigBlk:", 0) != 0) continue;
      const uint64_t blocked = std::stoull(line.substr(7), nullptr, 16);
      EXPECT_TRUE(blocked & (uint64_t{1} << (SIGTERM - 1))) << task.path() << ": " << line;
      EXPECT_TRUE(blocked & (uint64_t{1} << (SIGINT - 1))) << task.path() << ": " << line;
      ++threads;
    }
  }
  EXPECT_GT(threads, 0);
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
