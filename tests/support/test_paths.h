// Where tests find their data: ../shared (DESIGN.md §3), the default model fetched by
// scripts/setup.sh, and the built binaries. Tests that need data or a tool that is absent call
// ATTATTR_MISSING_DEPENDENCY (or ATTATTR_SKIP_IF_MISSING), which skips with a message naming what
// is missing on a developer's machine and fails where ATTATTR_REQUIRE_TEST_DEPS=1 — .ci/run sets
// it: CI installs everything, so there a missing part is a broken set-up, not a reason to skip
// (regression: a relative test-data path made two tokenizer tests skip in every CI run).
#pragma once

#include <string>

namespace attattr::testing {

// ../shared beside the checkout (override: ATTATTR_SHARED_DIR environment variable).
std::string SharedDir();
// The shared SST-2 classifier, ../shared/models/sst2-bert-l4-h256.
std::string Sst2ModelDir();
// The golden reference file for that model.
std::string GoldenPath();
// all-MiniLM-L6-v2 as scripts/setup.sh unpacks it (override: ATTATTR_MINILM_DIR).
std::string MiniLmDir();
// build/bin.
std::string BinDir();
// A fresh empty temporary directory, removed by nobody (tests are short-lived).
std::string MakeTempDir(const std::string& prefix);

// MakeTempDir's directory, removed with everything in it when the TempDir goes out of scope.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) : path_(MakeTempDir(prefix)) {}
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};
bool PathExists(const std::string& path);
// Whether ATTATTR_REQUIRE_TEST_DEPS is set to 1: missing test dependencies fail instead of skip.
bool RequireTestDependencies();

// Runs `shell_command` through /bin/sh and returns its exit code (-1 when it did not exit normally)
// and everything it wrote to stdout (redirect stderr in the command to capture it too).
struct CommandResult {
  int exit_code = -1;
  std::string out;
};
CommandResult RunCommand(const std::string& shell_command);

// A loopback TCP port that was free a moment ago (0 when none could be had): for listeners whose
// bound port a test must know beforehand. The kernel does not hand it out again for a while.
int FreeLoopbackPort();

// The whole file ("" when it cannot be read).
std::string ReadFile(const std::string& path);

// A command's exit code, stdout and stderr apart.
struct SplitCommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  // "exit N / stdout: … / stderr: …", for assertion messages.
  std::string Describe() const;
};
// Runs `shell_command` with stdin from /dev/null and stderr captured through a file in
// `scratch_dir` (one command at a time per directory).
SplitCommandResult RunCommandSplit(const std::string& shell_command,
                                   const std::string& scratch_dir);

}  // namespace attattr::testing

// Skips the current test (returns from the function), saying what is missing — `message`, which
// may stream several parts ("x " << y) — or fails it where RequireTestDependencies().
#define ATTATTR_MISSING_DEPENDENCY(message)                                   \
  do {                                                                        \
    if (::attattr::testing::RequireTestDependencies()) {                      \
      GTEST_FAIL() << message << " (and ATTATTR_REQUIRE_TEST_DEPS=1 is set)"; \
    }                                                                         \
    GTEST_SKIP() << message;                                                  \
  } while (0)

// ATTATTR_MISSING_DEPENDENCY when `path` does not exist.
#define ATTATTR_SKIP_IF_MISSING(path)                                                             \
  do {                                                                                            \
    if (!::attattr::testing::PathExists(path)) {                                                  \
      ATTATTR_MISSING_DEPENDENCY("test data not found: "                                          \
                                 << (path)                                                        \
                                 << " (../shared or scripts/setup.sh's model folder is absent)"); \
    }                                                                                             \
  } while (0)
