// End-to-end tests of attattr-server on a PostgreSQL job store (a real PostgreSQL server started
// here, real server processes, the real client stubs): jobs and results survive a restart of the
// server process, a job running at shutdown resumes on the next start, results equal the SQLite
// store's byte for byte, and the database password comes from a file, never the command line.
// Skips with a message where no PostgreSQL server or no shared model is available.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "support/job_rpc.h"
#include "support/postgres_server.h"
#include "support/server_process.h"
#include "support/test_paths.h"

namespace {

namespace v1 = attattr::v1;
using ::attattr::testing::Connect;
using ::attattr::testing::PostgresServer;
using ::attattr::testing::ReadFile;
using ::attattr::testing::ReadResult;
using ::attattr::testing::ServerProcess;
using ::attattr::testing::Sst2ModelDir;
using ::attattr::testing::Submit;
using ::attattr::testing::WaitDone;
using ::attattr::testing::WaitForState;

constexpr char kModel[] = "sst2";

// `count` distinct reviews (ReviewsJob): small counts finish in a second, large ones run long
// enough to kill, freeze or cancel their replica mid-job.
v1::JobSpec TextJob(int count, int steps = 4) {
  return ::attattr::testing::ReviewsJob(kModel, count, steps);
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    ATTATTR_SHARED_POSTGRES_OR_SKIP(pg_);
    auto uri = pg_->CreateDatabase();
    ASSERT_TRUE(uri.ok()) << uri.status();
    uri_ = *uri;
    dir_ = tmp_.path();
  }

  PostgresServer* pg_ = nullptr;
  std::string uri_;
  ::attattr::testing::TempDir tmp_{"attattr-pg-e2e"};
  std::string dir_;
};

TEST_F(PostgresStoreTest, JobsAndResultsOutliveTheServerProcess) {
  std::string done_name;
  std::string done_bytes;
  std::string running_name;
  {
    ServerProcess server({{kModel, Sst2ModelDir()}}, {"--store=" + uri_, "--grace-seconds=0"});
    ASSERT_TRUE(server.ok());
    auto stub = Connect(server.address());
    v1::Job job;
    ASSERT_TRUE(Submit(*stub, TextJob(3), &job, "first").ok());
    done_name = job.name();
    ASSERT_EQ(WaitDone(*stub, done_name).state(), v1::SUCCEEDED);
    auto result = ReadResult(*stub, done_name);
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    done_bytes = result.bytes;
    // A long job is running when the server stops: drained, it goes back to the queue.
    ASSERT_TRUE(Submit(*stub, TextJob(60), &job, "second").ok());
    running_name = job.name();
    WaitForState(*stub, running_name, v1::RUNNING);
    EXPECT_EQ(server.Stop(), 0);
  }
  ServerProcess again({{kModel, Sst2ModelDir()}}, {"--store=" + uri_});
  ASSERT_TRUE(again.ok());
  auto stub = Connect(again.address());
  v1::Job first = ::attattr::testing::Get(*stub, done_name);
  EXPECT_EQ(first.state(), v1::SUCCEEDED);
  auto result = ReadResult(*stub, done_name);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_TRUE(result.bytes == done_bytes);
  // Idempotency is kept in the database too.
  v1::Job resubmitted;
  ASSERT_TRUE(Submit(*stub, TextJob(3), &resubmitted, "first").ok());
  EXPECT_EQ(resubmitted.name(), done_name);
  v1::Job second = WaitDone(*stub, running_name, 300);
  EXPECT_EQ(second.state(), v1::SUCCEEDED);

  // The same job on the SQLite store gives the same bytes: the store does not show in results.
  ServerProcess sqlite({{kModel, Sst2ModelDir()}});
  ASSERT_TRUE(sqlite.ok());
  auto sqlite_stub = Connect(sqlite.address());
  v1::Job on_sqlite;
  ASSERT_TRUE(Submit(*sqlite_stub, TextJob(3), &on_sqlite, "first").ok());
  ASSERT_EQ(WaitDone(*sqlite_stub, on_sqlite.name()).state(), v1::SUCCEEDED);
  EXPECT_TRUE(ReadResult(*sqlite_stub, on_sqlite.name()).bytes == done_bytes);
}

TEST_F(PostgresStoreTest, ThePasswordComesFromAFileNeverTheCommandLine) {
  const std::string role = "svc_" + std::to_string(getpid());
  const std::string password = "pw-" + std::to_string(getpid()) + "-s3cret";
  ASSERT_TRUE(pg_->CreateRole(role, password).ok());
  auto owned = pg_->CreateDatabase(role);
  ASSERT_TRUE(owned.ok()) << owned.status();
  const std::string uri = "postgresql://" + role + "@127.0.0.1:" + std::to_string(pg_->port()) +
                          "/" + owned->substr(owned->rfind('/') + 1);
  const std::string good = dir_ + "/password";
  std::ofstream(good) << password << "\n";
  {
    ServerProcess server({{kModel, Sst2ModelDir()}},
                         {"--store=" + uri, "--store-password-file=" + good});
    ASSERT_TRUE(server.ok());
    auto stub = Connect(server.address());
    v1::Job job;
    ASSERT_TRUE(Submit(*stub, TextJob(1), &job).ok());
    EXPECT_EQ(WaitDone(*stub, job.name()).state(), v1::SUCCEEDED);
  }
  const std::string bad = dir_ + "/wrong";
  std::ofstream(bad) << "not-it\n";
  {
    const std::string log = dir_ + "/wrong.log";
    ServerProcess server({{kModel, Sst2ModelDir()}},
                         {"--store=" + uri, "--store-password-file=" + bad}, log);
    EXPECT_FALSE(server.ok());
    server.Stop();
    const std::string text = ReadFile(log);
    EXPECT_NE(text.find("--store:"), std::string::npos) << text;
    EXPECT_NE(text.find("password authentication failed"), std::string::npos) << text;
    EXPECT_EQ(text.find("not-it"), std::string::npos) << text;
  }
  {
    const std::string log = dir_ + "/cmdline.log";
    const std::string with_password = "postgresql://" + role + ":" + password +
                                      "@127.0.0.1:" + std::to_string(pg_->port()) + "/x";
    ServerProcess server({{kModel, Sst2ModelDir()}}, {"--store=" + with_password}, log);
    EXPECT_FALSE(server.ok());
    server.Stop();
    const std::string text = ReadFile(log);
    EXPECT_NE(text.find("carries a password on the command line"), std::string::npos) << text;
    EXPECT_EQ(text.find(password), std::string::npos) << text;
  }
}

}  // namespace
