// A real PostgreSQL server for tests: Debian's `postgresql` binaries, a fresh cluster initialised
// into a temporary directory (initdb) and started on a free loopback port, stopped and removed on
// destruction. initdb and postgres refuse to run as root, so when the test runs as root both run
// as an unprivileged user (ATTATTR_PG_USER, default "nobody") that owns the directory. On
// loopback, the superuser "attattr" is trusted and every other role needs its password
// (scram-sha-256); fsync off (test data is disposable). The
// server dies with the test process (parent-death signal). Not thread-safe; one per test suite.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "support/test_paths.h"

namespace attattr::testing {

class PostgresServer {
 public:
  // Why no server can be started here (no PostgreSQL binaries under /usr/lib/postgresql/*/bin or
  // ATTATTR_PG_BIN, or no unprivileged user to run them), or "" when one can.
  static std::string Unavailable();
  // initdb + start, waiting until it accepts connections.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // "postgresql://attattr@127.0.0.1:PORT/DATABASE".
  std::string Uri(const std::string& database) const;
  // A new empty database with a unique name, owned by `owner`; returns its URI (as "attattr").
  absl::StatusOr<std::string> CreateDatabase(const std::string& owner = "attattr");
  // A login role that authenticates with `password`.
  absl::Status CreateRole(const std::string& role, const std::string& password);
  // Runs `sql` on `database` and returns the first column of the first row ("" when none).
  absl::StatusOr<std::string> Query(const std::string& database, const std::string& sql) const;

  // Fast shutdown (SIGINT: open connections are cut), waiting for the process to exit.
  absl::Status Stop();
  // Starts the stopped server again on the same port and data.
  absl::Status Restart();
  // The server's log (its stderr), for failure messages.
  std::string Log() const;

 private:
  PostgresServer() = default;
  absl::Status Launch();

  std::string bin_dir_;
  std::string dir_;  // holds data/ (the cluster), the Unix socket and postgres.log
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  bool drop_privileges_ = false;
  int port_ = 0;
  pid_t pid_ = -1;
};

// The PostgreSQL server the tests of one process share: started by the first call (a cluster takes
// seconds to initialise), stopped and removed at exit. Null where none can be started, with the
// reason in *why_not; *installed (when given) says whether PostgreSQL's binaries were there.
PostgresServer* SharedPostgres(std::string* why_not, bool* installed = nullptr);

}  // namespace attattr::testing

// In a test's SetUp (the test includes gtest): `var` = SharedPostgres(). Skips the test where
// PostgreSQL is not installed
// (.ci/run installs it) and fails it where it is but does not start — a broken cluster set-up must
// not turn every store, sharding and replica test into a skip.
#define ATTATTR_SHARED_POSTGRES_OR_SKIP(var)                                          \
  do {                                                                                \
    std::string attattr_why_not;                                                      \
    bool attattr_installed = false;                                                   \
    (var) = ::attattr::testing::SharedPostgres(&attattr_why_not, &attattr_installed); \
    if ((var) == nullptr && attattr_installed) {                                      \
      FAIL() << "PostgreSQL is installed but did not start: " << attattr_why_not;     \
    }                                                                                 \
    if ((var) == nullptr) {                                                           \
      ATTATTR_MISSING_DEPENDENCY("no PostgreSQL server: " << attattr_why_not);        \
    }                                                                                 \
  } while (0)
