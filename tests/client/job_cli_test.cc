// The job commands of `attattr` (submit, get, wait, watch, cancel, delete, list) as a user runs
// them against a real attattr-server child process: results equal `attattr explain --server`,
// progress lines on a pipe, and one clear line plus a distinct exit code for each server error
// (NOT_FOUND, FAILED_PRECONDITION, UNAVAILABLE, INVALID_ARGUMENT).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "support/server_process.h"
#include "support/test_paths.h"

namespace {

using ::attattr::testing::BinDir;
using ::attattr::testing::MakeTempDir;
using ::attattr::testing::Sst2ModelDir;
using nlohmann::json;

// Exit codes documented in client/job_commands.h.
constexpr int kExitUsage = 2;
constexpr int kExitJobFailed = 3;
constexpr int kExitNotFound = 5;
constexpr int kExitUnavailable = 6;
constexpr int kExitConflict = 9;

using RunResult = ::attattr::testing::SplitCommandResult;  // stdout and stderr apart

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs build/bin/attattr with `args` (already shell-quoted), or `args` as the whole command line
// when `whole`; stdout is a pipe, never a terminal.
RunResult RunCli(const std::string& args, bool whole = false) {
  static const ::attattr::testing::TempDir dir("attattr-job-cli");
  return ::attattr::testing::RunCommandSplit(whole ? args : BinDir() + "/attattr " + args,
                                             dir.path());
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Numbers equal to float tolerance (a job batches examples, Explain runs one: ~1e-5 apart).
void ExpectClose(const json& a, const json& b, const std::string& where) {
  if (a.is_number() && b.is_number()) {
    const double x = a.get<double>(), y = b.get<double>();
    EXPECT_LE(std::abs(x - y), 2e-4 + 1e-3 * std::abs(y)) << where << ": " << x << " vs " << y;
    return;
  }
  ASSERT_EQ(a.type(), b.type()) << where;
  if (a.is_array()) {
    ASSERT_EQ(a.size(), b.size()) << where;
    for (size_t i = 0; i < a.size(); ++i)
      ExpectClose(a[i], b[i], where + "[" + std::to_string(i) + "]");
  } else if (a.is_object()) {
    ASSERT_EQ(a.size(), b.size()) << where << ": " << a.dump().substr(0, 200) << " vs "
                                  << b.dump().substr(0, 200);
    for (auto it = a.begin(); it != a.end(); ++it) {
      ASSERT_TRUE(b.contains(it.key())) << where << "." << it.key();
      ExpectClose(it.value(), b[it.key()], where + "." + it.key());
    }
  } else {
    EXPECT_EQ(a, b) << where;
  }
}

class JobCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::attattr::testing::PathExists(Sst2ModelDir())) return;
    tmp_ = new ::attattr::testing::TempDir("attattr-job-server");
    const std::string dir = tmp_->path();
    std::vector<std::string> extra;
    // The job store: a fresh file per run, not attattr-jobs.db in the working directory.
    extra.push_back("--store=" + dir + "/jobs.db");
    {
      data_root_ = new std::string(dir + "/data");
      std::filesystem::create_directories(*data_root_);
      std::ofstream(*data_root_ + "/tiny.tsv") << "sentence\tlabel\n"
                                                  "a gorgeous , witty , seductive movie . \t1\n"
                                                  "the plot is a mess \t0\n"
                                                  "it is a film about nothing \t0\n";
      extra.push_back("--data-root=" + *data_root_);
    }
    server_ = new ::attattr::testing::ServerProcess({{"sst2", Sst2ModelDir()}}, extra);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete data_root_;
    data_root_ = nullptr;
    delete tmp_;  // after the server that used it
    tmp_ = nullptr;
  }
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(server_->ok()) << "attattr-server did not start";
  }

  static std::string Server() { return " --server " + server_->address(); }

  // Submits inline texts and returns the job name (fails the test otherwise).
  static std::string Submit(const std::string& args) {
    auto r = RunCli("submit" + Server() + " --model sst2 " + args);
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    if (r.exit_code != 0) return "";
    auto job = json::parse(r.out);
    return job["name"].get<std::string>();
  }

  static ::attattr::testing::ServerProcess* server_;
  static std::string* data_root_;
  static ::attattr::testing::TempDir* tmp_;
};

::attattr::testing::ServerProcess* JobCliTest::server_ = nullptr;
std::string* JobCliTest::data_root_ = nullptr;
::attattr::testing::TempDir* JobCliTest::tmp_ = nullptr;

const char kText1[] = "a gorgeous , witty , seductive movie .";
const char kText2[] = "a long and rather tedious film";
const char kPair2[] = "it bored me";

TEST_F(JobCliTest, SubmitWaitGetMatchesExplain) {
  const std::string options = " --steps 4 --layers 0,3 --rule gauss-legendre";
  auto submitted = RunCli("submit" + Server() + " --model sst2 --text " + Quote(kText1) +
                          " --text " + Quote(kText2) + " --text-pair " + Quote(kPair2) + options +
                          " --request-id cli-test-1");
  ASSERT_EQ(submitted.exit_code, 0) << submitted.Describe();
  const json job = json::parse(submitted.out);
  const std::string name = job["name"];
  EXPECT_EQ(name.rfind("jobs/", 0), 0u) << name;
  EXPECT_EQ(job["kind"], "ATTRIBUTION");
  EXPECT_EQ(job["request_id"], "cli-test-1");
  EXPECT_EQ(job["model"], "sst2");
  for (const char* key : {"state", "progress", "create_time_ms", "start_time_ms", "end_time_ms",
                          "result_size_bytes"}) {
    EXPECT_TRUE(job.contains(key)) << key;
  }

  // Same request id, same spec: the same job (idempotent submit).
  auto again = RunCli("submit" + Server() + " --model sst2 --text " + Quote(kText1) + " --text " +
                      Quote(kText2) + " --text-pair " + Quote(kPair2) + options +
                      " --request-id cli-test-1");
  ASSERT_EQ(again.exit_code, 0) << again.Describe();
  EXPECT_EQ(json::parse(again.out)["name"], name);

  auto waited = RunCli("wait " + name + Server() + " --timeout-seconds 120");
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  const json done = json::parse(waited.out);
  EXPECT_EQ(done["state"], "SUCCEEDED");
  EXPECT_GT(done["result_size_bytes"].get<int64_t>(), 0);
  EXPECT_FALSE(done["end_time_ms"].is_null());
  EXPECT_FALSE(done.contains("error"));

  const ::attattr::testing::TempDir tmp("attattr-job-get");
  const std::string file = tmp.path() + "/result.json";
  auto got = RunCli("get " + name + Server() + " -o " + file);
  ASSERT_EQ(got.exit_code, 0) << got.Describe();
  EXPECT_EQ(got.out, "");
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  const json result = json::parse(ss.str());
  EXPECT_EQ(result["job"]["name"], name);
  EXPECT_EQ(result["job"]["state"], "SUCCEEDED");
  ASSERT_EQ(result["examples"].size(), 2u);

  // Each example is what `attattr explain --server` prints for the same text and options.
  const std::vector<std::string> explain_args = {
      " --text " + Quote(kText1), " --text " + Quote(kText2) + " --text-pair " + Quote(kPair2)};
  for (size_t i = 0; i < 2; ++i) {
    auto ex = RunCli("explain" + Server() + " --model sst2" + explain_args[i] + options);
    ASSERT_EQ(ex.exit_code, 0) << ex.Describe();
    const json expected = json::parse(ex.out);
    const json& actual = result["examples"][i];
    EXPECT_EQ(actual["tokens"], expected["tokens"]) << i;
    EXPECT_EQ(actual["prediction"]["label"], expected["prediction"]["label"]) << i;
    EXPECT_EQ(actual["model"], "sst2");
    EXPECT_EQ(actual["target"], "predicted");
    EXPECT_EQ(actual["rule"], "gauss-legendre");
    EXPECT_EQ(actual["steps"], 4);
    ASSERT_EQ(actual["layers"].size(), 2u);
    EXPECT_EQ(actual["layers"][1]["layer"], 3);
    ExpectClose(actual, expected, "examples[" + std::to_string(i) + "]");
  }

  // The same result on stdout, and as text.
  auto to_stdout = RunCli("get " + name + Server());
  ASSERT_EQ(to_stdout.exit_code, 0) << to_stdout.Describe();
  EXPECT_EQ(json::parse(to_stdout.out), result);
  EXPECT_EQ(to_stdout.out, ss.str());  // the file holds the same bytes
  // A path that cannot be written: an error, and no file or staging file left.
  auto unwritable = RunCli("get " + name + Server() + " -o " + tmp.path() + "/no/such/dir.json");
  EXPECT_EQ(unwritable.exit_code, 1) << unwritable.Describe();
  EXPECT_NE(unwritable.err.find("cannot write"), std::string::npos) << unwritable.Describe();
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp.path()), {}), 1);
  auto text = RunCli("get " + name.substr(5) + Server() + " --format text");
  ASSERT_EQ(text.exit_code, 0) << text.Describe();
  EXPECT_NE(text.out.find(name + " SUCCEEDED"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("example 2 of 2"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("completeness gap"), std::string::npos) << text.out;

  // list shows it (JSON and the table).
  auto listed = RunCli("list" + Server() + " --format json --all");
  ASSERT_EQ(listed.exit_code, 0) << listed.Describe();
  bool found = false;
  const json listed_jobs = json::parse(listed.out)["jobs"];
  for (const auto& j : listed_jobs) {
    if (j["name"] == name) {
      found = true;
      EXPECT_EQ(j["state"], "SUCCEEDED");
    }
  }
  EXPECT_TRUE(found) << listed.out;
  auto table = RunCli("list" + Server() + " --state succeeded");
  ASSERT_EQ(table.exit_code, 0) << table.Describe();
  EXPECT_NE(table.out.find("NAME"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(name), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("ATTRIBUTION"), std::string::npos) << table.out;
  auto none = RunCli("list" + Server() + " --state cancelled --format json");
  ASSERT_EQ(none.exit_code, 0) << none.Describe();
  const json cancelled_jobs = json::parse(none.out)["jobs"];
  for (const auto& j : cancelled_jobs) EXPECT_NE(j["name"], name);

  // A finished job cannot be cancelled.
  auto cancel = RunCli("cancel " + name + Server());
  EXPECT_EQ(cancel.exit_code, kExitConflict) << cancel.Describe();
  EXPECT_NE(cancel.err.find("error: FAILED_PRECONDITION: "), std::string::npos) << cancel.err;
  EXPECT_EQ(Lines(cancel.err).size(), 1u) << cancel.err;

  // Deleted: gone.
  auto deleted = RunCli("delete " + name + Server() + " --format text");
  ASSERT_EQ(deleted.exit_code, 0) << deleted.Describe();
  EXPECT_EQ(deleted.out, "deleted " + name + "\n");
  auto gone = RunCli("get " + name + Server());
  EXPECT_EQ(gone.exit_code, kExitNotFound) << gone.Describe();
}

// Runs build/bin/attattr with `args`, its output to /dev/null, and returns its peak resident
// memory in bytes (wait4's ru_maxrss for that one process); -1 when it does not exit with 0.
int64_t PeakBytesOf(const std::vector<std::string>& args) {
  const std::string path = BinDir() + "/attattr";
  std::vector<std::string> all = {path};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  if (pid < 0 || wait4(pid, &status, 0, &usage) != pid) return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

// Regression (client review): `get` held a result ~8-15 times over (the chunks, their
// concatenation, the parsed message, the whole JSON tree and its text). It parses the chunks in
// place and writes one example at a time: a ~90 MB result of full matrices and attention costs at
// most about twice its size above what a tiny result's `get` costs.
TEST_F(JobCliTest, GetStreamsALargeResultInsteadOfBuildingItsDocument) {
  std::string text;
  for (int i = 0; i < 110; ++i) text += "film ";
  std::string args = "--steps 1 --full-matrices --attention";
  for (int i = 0; i < 24; ++i) args += " --text " + Quote(text);
  const std::string large = Submit(args);
  const std::string tiny = Submit("--steps 1 --layers 0 --top-k 1 --text fine");
  ASSERT_FALSE(large.empty() || tiny.empty());
  auto waited = RunCli("wait " + large + Server() + " --timeout-seconds 300");
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  const int64_t result_bytes = json::parse(waited.out)["result_size_bytes"].get<int64_t>();
  ASSERT_GT(result_bytes, int64_t{60} << 20);
  ASSERT_EQ(RunCli("wait " + tiny + Server()).exit_code, 0);
  const std::string address = server_->address();
  const int64_t baseline = PeakBytesOf({"get", tiny, "--server", address, "-o", "/dev/null"});
  const int64_t peak = PeakBytesOf({"get", large, "--server", address, "-o", "/dev/null"});
  ASSERT_GT(baseline, 0);
  ASSERT_GT(peak, 0);
  std::printf("get: %.1f MB result, peak RSS %.1f MB (tiny result: %.1f MB)\n", result_bytes / 1e6,
              peak / 1e6, baseline / 1e6);
  EXPECT_LT(peak - baseline, 2.5 * static_cast<double>(result_bytes));
}

TEST_F(JobCliTest, ListFollowsPages) {
  const std::string a = Submit("--text 'one fine film' --steps 2 --layers 0 --format json");
  const std::string b = Submit("--text 'another dull one' --steps 2 --layers 0");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  auto page = RunCli("list" + Server() + " --format json --page-size 1");
  ASSERT_EQ(page.exit_code, 0) << page.Describe();
  const json first = json::parse(page.out);
  EXPECT_EQ(first["jobs"].size(), 1u);
  EXPECT_FALSE(first["next_page_token"].get<std::string>().empty());
  auto all = RunCli("list" + Server() + " --format json --page-size 1 --all");
  ASSERT_EQ(all.exit_code, 0) << all.Describe();
  const json every = json::parse(all.out);
  EXPECT_EQ(every["next_page_token"], "");
  std::set<std::string> names;
  for (const auto& j : every["jobs"]) names.insert(j["name"].get<std::string>());
  EXPECT_GE(names.size(), 2u);
  EXPECT_TRUE(names.count(a)) << all.out;
  EXPECT_TRUE(names.count(b)) << all.out;
  EXPECT_EQ(RunCli("wait " + a + Server()).exit_code, 0);
  EXPECT_EQ(RunCli("wait " + b + Server()).exit_code, 0);
}

TEST_F(JobCliTest, WatchOnAPipePrintsOneLinePerUpdateEndingWithSucceeded) {
  auto submitted = RunCli("submit" + Server() + " --model sst2 --text " + Quote(kText1) +
                          " --text " + Quote(kText2) + " --steps 4 --format text");
  ASSERT_EQ(submitted.exit_code, 0) << submitted.Describe();
  // Text: one line, the name and the state.
  ASSERT_EQ(Lines(submitted.out).size(), 1u) << submitted.out;
  const std::string name = submitted.out.substr(0, submitted.out.find(' '));
  EXPECT_EQ(name.rfind("jobs/", 0), 0u) << submitted.out;
  auto watched = RunCli("watch " + name + Server());
  ASSERT_EQ(watched.exit_code, 0) << watched.Describe();
  EXPECT_EQ(watched.out.find('\r'), std::string::npos) << "no progress bar on a pipe";
  const auto lines = Lines(watched.out);
  ASSERT_FALSE(lines.empty());
  for (const auto& line : lines) EXPECT_EQ(line.rfind(name, 0), 0u) << line;
  EXPECT_TRUE(EndsWith(lines.back(), "SUCCEEDED")) << watched.out;
  EXPECT_NE(lines.back().find("2/2"), std::string::npos) << watched.out;
  // Watching a finished job: its final state at once.
  auto json_watch = RunCli("watch " + name + Server() + " --format json");
  ASSERT_EQ(json_watch.exit_code, 0) << json_watch.Describe();
  EXPECT_EQ(json::parse(Lines(json_watch.out).back())["state"], "SUCCEEDED");
}

TEST_F(JobCliTest, CancelledJobMakesWaitExitWithJobFailed) {
  // Enough work that it usually is still queued or running when cancel arrives.
  std::string texts;
  for (int i = 0; i < 48; ++i) {
    texts += " --text 'an example sentence number " + std::to_string(i) +
             " that is long enough to make the work take a while , with more words'";
  }
  const std::string name = Submit(texts + " --steps 64");
  ASSERT_FALSE(name.empty());
  auto cancel = RunCli("cancel " + name + Server());
  if (cancel.exit_code == kExitConflict) {
    GTEST_SKIP() << "the job finished before cancel arrived: " << cancel.err;
  }
  ASSERT_EQ(cancel.exit_code, 0) << cancel.Describe();
  auto waited = RunCli("wait " + name + Server() + " --timeout-seconds 120");
  EXPECT_EQ(waited.exit_code, kExitJobFailed) << waited.Describe();
  EXPECT_EQ(json::parse(waited.out)["state"], "CANCELLED");
  EXPECT_NE(waited.err.find("CANCELLED"), std::string::npos) << waited.err;
  auto got = RunCli("get " + name + Server());
  EXPECT_EQ(got.exit_code, kExitJobFailed) << got.Describe();
  EXPECT_EQ(json::parse(got.out)["state"], "CANCELLED");
}

TEST_F(JobCliTest, UnknownJobIsNotFound) {
  for (const std::string cmd : {"get", "wait", "watch", "cancel", "delete"}) {
    auto r = RunCli(cmd + " jobs/no-such-job" + Server());
    EXPECT_EQ(r.exit_code, kExitNotFound) << cmd << "\n" << r.Describe();
    EXPECT_NE(r.err.find("error: NOT_FOUND: "), std::string::npos) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("jobs/no-such-job"), std::string::npos) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("not found"), std::string::npos) << cmd << ": " << r.err;
    EXPECT_EQ(Lines(r.err).size(), 1u) << cmd << ": " << r.err;
  }
  // A bare id means jobs/ID.
  auto bare = RunCli("wait no-such-job" + Server());
  EXPECT_EQ(bare.exit_code, kExitNotFound) << bare.Describe();
  EXPECT_NE(bare.err.find("jobs/no-such-job"), std::string::npos) << bare.err;
}

TEST_F(JobCliTest, BadSpecsAreUsageErrors) {
  auto steps = RunCli("submit" + Server() + " --model sst2 --text hi --steps 5000");
  EXPECT_EQ(steps.exit_code, kExitUsage) << steps.Describe();
  EXPECT_NE(steps.err.find("error: INVALID_ARGUMENT: "), std::string::npos) << steps.err;
  EXPECT_NE(steps.err.find("steps"), std::string::npos) << steps.err;
  auto model = RunCli("submit" + Server() + " --model no-such-model --text hi");
  EXPECT_NE(model.exit_code, 0) << model.Describe();
  EXPECT_NE(model.err.find("no-such-model"), std::string::npos) << model.err;
  // Caught before any call.
  for (const std::string& args :
       {std::string("submit --model sst2 --text hi"), "submit" + Server() + " --model sst2",
        "submit" + Server() + " --model sst2 --text hi --rule simpson",
        "submit" + Server() + " --model sst2 --text-pair b --text a",
        "submit" + Server() + " --model sst2 --text a --dataset x.tsv",
        "list" + Server() + " --state sleeping", "get" + Server(),
        "wait jobs/x" + Server() + " --format xml"}) {
    auto r = RunCli(args);
    EXPECT_EQ(r.exit_code, kExitUsage) << args << "\n" << r.Describe();
    EXPECT_NE(r.err.find("error: "), std::string::npos) << args << ": " << r.err;
  }
}

TEST_F(JobCliTest, DatasetJob) {
  const std::string name = Submit("--dataset tiny.tsv --limit 2 --steps 2 --layers 3 --top-k 3");
  ASSERT_FALSE(name.empty());
  ASSERT_EQ(RunCli("wait " + name + Server()).exit_code, 0);
  auto got = RunCli("get " + name + Server());
  ASSERT_EQ(got.exit_code, 0) << got.Describe();
  const json result = json::parse(got.out);
  ASSERT_EQ(result["examples"].size(), 2u);
  EXPECT_EQ(result["examples"][0]["tokens"][1], "a");
  const json& layer = result["examples"][0]["layers"][0];
  EXPECT_FALSE(layer.contains("attribution")) << "only --top-k was asked for";
  EXPECT_EQ(layer["top_connections"].size(), 3u);
  // Paths that leave the data root are refused (the server picks the code).
  auto escape = RunCli("submit" + Server() + " --model sst2 --dataset ../../etc/passwd");
  EXPECT_NE(escape.exit_code, 0) << escape.Describe();
  EXPECT_NE(escape.err.find("error: "), std::string::npos) << escape.err;
}

TEST(JobCliStandaloneTest, UnreachableServerIsUnavailable) {
  for (const std::string args : {"get jobs/x", "list", "submit --model m --text hi", "wait jobs/x",
                                 "watch jobs/x", "cancel jobs/x", "delete jobs/x"}) {
    auto r = RunCli(args + " --server 127.0.0.1:1 --deadline-seconds 10");
    EXPECT_EQ(r.exit_code, kExitUnavailable) << args << "\n" << r.Describe();
    EXPECT_NE(r.err.find("error: UNAVAILABLE: cannot reach server at 127.0.0.1:1"),
              std::string::npos)
        << args << ": " << r.err;
    EXPECT_EQ(Lines(r.err).size(), 1u) << r.err;
  }
}

// Regression (client review): `submit --wait` gave up (exit 6) when its WatchJob stream broke —
// a replica draining in a rolling update hands its job back and ends the stream UNAVAILABLE —
// although the job went on. The follow opens the stream again and sees the job to its end: here
// the server is stopped mid-job (SIGTERM, no grace: the job goes back to the queue) and a new one
// starts on the same address and store, which runs the job again.
TEST(JobCliStandaloneTest, SubmitWaitFollowsTheJobThroughAServerRestart) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  const ::attattr::testing::TempDir dir("attattr-follow-restart");
  const std::string address = "127.0.0.1:" + std::to_string(::attattr::testing::FreeLoopbackPort());
  const std::vector<std::string> args = {"--listen=" + address,
                                         "--store=" + dir.path() + "/jobs.db", "--grace-seconds=0",
                                         "--job-runners=1"};
  auto first = std::make_unique<::attattr::testing::ServerProcess>(
      std::map<std::string, std::string>{{"sst2", Sst2ModelDir()}}, args);
  ASSERT_TRUE(first->ok());
  std::string texts;
  for (int i = 0; i < 12; ++i) texts += " --text " + Quote(kText1);
  RunResult followed;
  std::thread cli([&] {
    // Its own scratch directory: the polls below run RunCli meanwhile.
    followed = ::attattr::testing::RunCommandSplit(BinDir() + "/attattr submit --server " +
                                                       address + " --model sst2" + texts +
                                                       " --steps 64 --top-k 1 --wait --format json",
                                                   dir.path());
  });
  // Stop the first server once the job runs on it.
  bool running = false;
  for (int i = 0; i < 300 && !running; ++i) {
    auto list = RunCli("list --server " + address + " --state RUNNING --format json");
    running = list.exit_code == 0 && list.out.find("jobs/") != std::string::npos;
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(running);
  EXPECT_EQ(first->Stop(), 0);
  first.reset();
  ::attattr::testing::ServerProcess second({{"sst2", Sst2ModelDir()}}, args);
  ASSERT_TRUE(second.ok());
  cli.join();
  ASSERT_EQ(followed.exit_code, 0) << followed.Describe();
  EXPECT_EQ(json::parse(followed.out)["state"], "SUCCEEDED");
}

// Regression (security review): a token from ATTATTR_TOKEN went in plain text to any host when
// --tls was forgotten. Every command with --server now refuses before connecting, unless the
// host is loopback, TLS is on, or --plaintext-token says a mesh encrypts.
TEST(JobCliStandaloneTest, ATokenIsNotSentInPlainTextToAnotherHost) {
  const std::string remote = " --server 10.255.255.1:50051 --deadline-seconds 1";
  for (const std::string& args : std::vector<std::string>{
           "list" + remote, "get jobs/x" + remote, "models --server 10.255.255.1:50051",
           "health --server attattr.example:50051", "explain --text hi" + remote,
           "report jobs/x -o x.html --server dns:///attattr.example:50051"}) {
    auto r = RunCli("ATTATTR_TOKEN=secret-token " + BinDir() + "/attattr " + args, true);
    EXPECT_EQ(r.exit_code, kExitUsage) << args << "\n" << r.Describe();
    EXPECT_NE(r.err.find("refusing to send the bearer token (--token-file or ATTATTR_TOKEN) in "
                         "plain text to a host that is not loopback"),
              std::string::npos)
        << args << ": " << r.err;
    EXPECT_EQ(r.err.find("secret-token"), std::string::npos);
  }
  // Allowed: loopback, an explicit --plaintext-token, TLS; each then tries to connect.
  for (const std::string& args :
       std::vector<std::string>{"list --server 127.0.0.1:1 --deadline-seconds 5",
                                "--plaintext-token list" + remote, "--tls list" + remote}) {
    auto r = RunCli("ATTATTR_TOKEN=secret-token " + BinDir() + "/attattr " + args, true);
    EXPECT_NE(r.exit_code, kExitUsage) << args << "\n" << r.Describe();
    EXPECT_EQ(r.err.find("refusing to send"), std::string::npos) << args << ": " << r.err;
  }
}

TEST(JobCliStandaloneTest, HelpDocumentsCommandsAndExitCodes) {
  auto r = RunCli("--help");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  for (const char* s :
       {"submit", "get", "wait", "watch", "cancel", "delete", "list", "NOT_FOUND", "UNAVAILABLE",
        "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  }
  auto submit = RunCli("submit --help");
  ASSERT_EQ(submit.exit_code, 0);
  for (const char* opt :
       {"--server",   "--model",           "--text",        "--text-pair",        "--dataset",
        "--limit",    "--steps",           "--rule",        "--layers",           "--target",
        "--top-k",    "--full-matrices",   "--head-summed", "--attention",        "--fp16",
        "--priority", "--timeout-seconds", "--request-id",  "--deadline-seconds", "--format"}) {
    EXPECT_NE(submit.out.find(opt), std::string::npos) << opt;
  }
}

TEST_F(JobCliTest, SubmitWithTreeAndGetPrintsIt) {
  auto submitted = RunCli("submit" + Server() + " --model sst2 --text " + Quote(kText1) +
                          " --rule left-riemann --steps 20 --top-k 1 --tree --tau 0.5");
  ASSERT_EQ(submitted.exit_code, 0) << submitted.Describe();
  const std::string name = json::parse(submitted.out)["name"];
  ASSERT_EQ(RunCli("wait " + name + Server() + " --timeout-seconds 120").exit_code, 0);
  auto got = RunCli("get " + name + Server());
  ASSERT_EQ(got.exit_code, 0) << got.Describe();
  const json result = json::parse(got.out);
  ASSERT_EQ(result["examples"].size(), 1u);
  const json& tree = result["examples"][0]["tree"];
  EXPECT_DOUBLE_EQ(tree["tau"].get<double>(), 0.5);
  EXPECT_EQ(tree["root"], 0);
  EXPECT_FALSE(tree["nodes"].empty());
  // The same tree as `explain --server --tree`.
  auto explained = RunCli("explain --model sst2 --text " + Quote(kText1) + Server() +
                          " --rule left-riemann --steps 20 --tree --tau 0.5");
  ASSERT_EQ(explained.exit_code, 0) << explained.Describe();
  EXPECT_EQ(json::parse(explained.out)["tree"], tree);
  auto text = RunCli("get " + name + Server() + " --format text");
  ASSERT_EQ(text.exit_code, 0) << text.Describe();
  EXPECT_NE(text.out.find("attribution tree (tau = 0.5"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("[CLS]\n└─ "), std::string::npos) << text.out;

  auto bad = RunCli("submit" + Server() + " --model sst2 --text hi --tree --tau 2");
  EXPECT_EQ(bad.exit_code, kExitUsage) << bad.Describe();
  EXPECT_NE(bad.err.find("--tau"), std::string::npos) << bad.err;
}

// `submit --wait` follows the job to its end like `wait` (progress on stderr, the finished job on
// stdout, exit 0 only when it SUCCEEDED); --timeout-seconds bounds that wait and only that wait.
TEST_F(JobCliTest, SubmitWaitFollowsTheJobToItsEnd) {
  auto done = RunCli("submit" + Server() + " --model sst2 --text " + Quote(kText1) +
                     " --top-k 2 --wait --format json");
  ASSERT_EQ(done.exit_code, 0) << done.Describe();
  const json job = json::parse(done.out);
  EXPECT_EQ(job["state"], "SUCCEEDED");
  EXPECT_NE(done.err.find("submitted " + job["name"].get<std::string>()), std::string::npos)
      << done.err;
  EXPECT_NE(done.err.find("attribution: 1/1"), std::string::npos) << done.err;
  // Without --wait there is no wait to bound: the job's own limit has its own name.
  auto unbound = RunCli("submit" + Server() + " --model sst2 --text hi --timeout-seconds 5");
  EXPECT_EQ(unbound.exit_code, kExitUsage) << unbound.Describe();
  EXPECT_NE(unbound.err.find("--job-timeout-seconds"), std::string::npos) << unbound.err;
}

// A wait that runs out leaves the job running and says how to follow it (exit 4); the job then
// finishes on its own.
TEST_F(JobCliTest, AWaitThatTimesOutLeavesTheJobRunningAndSaysHowToFollowIt) {
  std::string texts;
  for (int i = 0; i < 12; ++i) texts += " --text " + Quote(kText1);
  auto timed_out = RunCli("submit" + Server() + " --model sst2" + texts +
                          " --steps 64 --top-k 1 --wait --timeout-seconds 0.3");
  ASSERT_EQ(timed_out.exit_code, 4) << timed_out.Describe();
  EXPECT_NE(timed_out.err.find("has not finished within 0.3 s (--timeout-seconds); it goes on"),
            std::string::npos)
      << timed_out.err;
  const std::string follow = "`attattr wait ";
  const auto at = timed_out.err.find(follow + "jobs/");
  ASSERT_NE(at, std::string::npos) << timed_out.err;
  const auto begin = at + follow.size();
  const std::string name = timed_out.err.substr(begin, timed_out.err.find(' ', begin) - begin);
  auto waited = RunCli("wait " + name + Server() + " --timeout-seconds 300");
  EXPECT_EQ(waited.exit_code, 0) << waited.Describe();
  EXPECT_EQ(json::parse(waited.out)["state"], "SUCCEEDED");
}

}  // namespace
