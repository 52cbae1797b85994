// A bounded pool of libpqxx connections to one PostgreSQL database, and the one place libpqxx's
// exceptions become absl::Status. Connections are opened lazily (at most `size`), set up with the
// session settings every store call relies on, and dropped when they break, so the next call
// reconnects by itself once the database is back. Included only by the store's .cc files: libpqxx
// stays out of every other header. Thread-safe.
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace attattr::store {

struct PgPoolOptions {
  std::string conninfo;  // a libpq connection string or URI, password included (never logged).
  int size = 8;          // connections at most.
  // How long a call waits for a free connection when all `size` are in use.
  absl::Duration acquire_timeout = absl::Seconds(10);
  // Run on every new connection (SET statement_timeout = ..., ...).
  std::vector<std::string> session_sql;
};

// The status for a libpqxx/libpq exception thrown while doing `what`: a lost or refused
// connection is Unavailable, a unique violation AlreadyExists, bad data InvalidArgument, a full
// disk or too many connections ResourceExhausted, a timeout or conflict Unavailable (retryable),
// corruption DataLoss, missing privileges PermissionDenied, anything else Internal. Messages say
// `what` and PostgreSQL's own words, never the connection string.
absl::Status PgError(const std::exception& error, const std::string& what);

class PgConnectionPool {
 public:
  explicit PgConnectionPool(PgPoolOptions options);
  ~PgConnectionPool();
  PgConnectionPool(const PgConnectionPool&) = delete;
  PgConnectionPool& operator=(const PgConnectionPool&) = delete;

  // Runs `body` on a pooled connection; an exception it throws becomes PgError(e, what), and a
  // connection that broke is closed rather than returned to the pool. Unavailable when no
  // connection frees up within acquire_timeout or none can be opened.
  absl::Status Run(const std::string& what,
                   const std::function<absl::Status(pqxx::connection&)>& body);

  // True while the last attempt to use the database found it reachable.
  bool connected() const { return connected_.load(); }
  // True when `backend_pid` serves one of this pool's open connections (a notification it sent).
  bool IsOwnBackend(int backend_pid) const;
  // Closes the idle connections and forgets their backends. For when the database may have
  // restarted (the change listener lost its connection): an idle connection's backend pid would
  // otherwise stay listed until the connection is next used, and once the restarted server hands
  // that pid to another replica's backend, that replica's notifications would read as this
  // pool's own and be dropped.
  void CloseIdle();

 private:
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Acquire(const std::string& what);
  void Release(std::unique_ptr<pqxx::connection> connection, bool broken);
  // Forgets a connection being closed: its count and backend.
  void Drop(const pqxx::connection& connection) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect(const std::string& what);

  const PgPoolOptions options_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + in use
  // The backend pid of each open connection (read when it opened: a broken one reports none).
  std::map<const pqxx::connection*, int> backends_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> connected_{false};
};

}  // namespace attattr::store
