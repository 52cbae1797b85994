// PgConnectionPool and PgError (see pg_connection_pool.h). SQLSTATE classes follow PostgreSQL's
// "Appendix A. PostgreSQL Error Codes".
#include "store/pg_connection_pool.h"

#include <poll.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace attattr::store {
namespace {

absl::StatusCode CodeForSqlState(const std::string& state) {
  if (state == "23505") return absl::StatusCode::kAlreadyExists;  // unique_violation
  if (state == "57014" || state == "55P03") return absl::StatusCode::kUnavailable;  // timeouts
  if (state == "XX001" || state == "XX002") return absl::StatusCode::kDataLoss;     // corrupted
  const std::string cls = state.substr(0, 2);
  if (cls == "08" || cls == "40" || cls == "57" || cls == "58") {
    return absl::StatusCode::kUnavailable;  // connection, rollback/conflict, shutdown, system
  }
  if (cls == "22") return absl::StatusCode::kInvalidArgument;  // data exception
  if (cls == "53" || cls == "54") return absl::StatusCode::kResourceExhausted;
  if (cls == "28" || state == "42501") return absl::StatusCode::kPermissionDenied;
  return absl::StatusCode::kInternal;
}

// libpq's messages end with a newline and sometimes repeat "ERROR:  ".
std::string Words(const std::exception& error) {
  absl::string_view text = absl::StripAsciiWhitespace(error.what());
  absl::ConsumePrefix(&text, "ERROR:  ");
  return std::string(text);
}

// An idle connection (no query outstanding, no LISTEN) has nothing to read unless the server
// closed it or is telling it so (a restart, an idle timeout): then it is of no more use.
bool Stale(pqxx::connection& connection) {
  if (!connection.is_open()) return true;
  pollfd fd{connection.sock(), POLLIN, 0};
  return fd.fd < 0 || poll(&fd, 1, 0) != 0;
}

}  // namespace

absl::Status PgError(const std::exception& error, const std::string& what) {
  const std::string words = Words(error);
  if (dynamic_cast<const pqxx::broken_connection*>(&error) != nullptr) {
    return absl::UnavailableError(absl::StrCat(what, ": PostgreSQL unreachable: ", words));
  }
  if (dynamic_cast<const pqxx::in_doubt_error*>(&error) != nullptr) {
    return absl::UnavailableError(
        absl::StrCat(what, ": connection lost during COMMIT, outcome unknown: ", words));
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error); sql != nullptr) {
    return absl::Status(CodeForSqlState(sql->sqlstate()),
                        absl::StrCat(what, ": ", words, " (SQLSTATE ", sql->sqlstate(), ")"));
  }
  return absl::InternalError(absl::StrCat(what, ": ", words));
}

PgConnectionPool::PgConnectionPool(PgPoolOptions options) : options_(std::move(options)) {}

PgConnectionPool::~PgConnectionPool() {
  absl::MutexLock lock(&mu_);
  idle_.clear();
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> PgConnectionPool::Connect(
    const std::string& what) {
  try {
    auto connection = std::make_unique<pqxx::connection>(options_.conninfo);
    pqxx::nontransaction session(*connection);
    for (const std::string& sql : options_.session_sql) session.exec(sql);
    connected_ = true;
    absl::MutexLock lock(&mu_);
    backends_[connection.get()] = connection->backendpid();
    return connection;
  } catch (const std::exception& e) {
    connected_ = false;
    return PgError(e, what);
  }
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> PgConnectionPool::Acquire(
    const std::string& what) {
  {
    absl::MutexLock lock(&mu_);
    const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < options_.size;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), options_.acquire_timeout)) {
      return absl::UnavailableError(absl::StrCat(what, ": all ", options_.size,
                                                 " PostgreSQL connections stayed busy for ",
                                                 absl::FormatDuration(options_.acquire_timeout)));
    }
    while (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      if (!Stale(*connection)) return connection;
      Drop(*connection);
    }
    ++open_;  // reserved: connecting happens outside the lock
  }
  auto connection = Connect(what);
  if (!connection.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
  }
  return connection;
}

void PgConnectionPool::Drop(const pqxx::connection& connection) {
  --open_;
  backends_.erase(&connection);
}

void PgConnectionPool::Release(std::unique_ptr<pqxx::connection> connection, bool broken) {
  {
    absl::MutexLock lock(&mu_);
    if (!broken) {
      idle_.push_back(std::move(connection));
      return;
    }
    Drop(*connection);
  }
  connection.reset();  // closes the socket outside the lock
}

void PgConnectionPool::CloseIdle() {
  std::vector<std::unique_ptr<pqxx::connection>> closing;
  {
    absl::MutexLock lock(&mu_);
    closing.swap(idle_);
    for (const auto& connection : closing) Drop(*connection);
  }
  closing.clear();  // closes the sockets outside the lock
}

bool PgConnectionPool::IsOwnBackend(int backend_pid) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [connection, pid] : backends_) {
    if (pid == backend_pid) return true;
  }
  return false;
}

absl::Status PgConnectionPool::Run(const std::string& what,
                                   const std::function<absl::Status(pqxx::connection&)>& body) {
  auto connection = Acquire(what);
  if (!connection.ok()) return connection.status();
  absl::Status status;
  bool broken = false;
  try {
    status = body(**connection);
  } catch (const std::exception& e) {
    status = PgError(e, what);
  }
  if (!(*connection)->is_open()) broken = true;
  if (absl::IsUnavailable(status) && !broken) {
    // A timeout or conflict leaves the connection usable; a lost one does not: ask the server.
    try {
      pqxx::nontransaction ping(**connection);
      ping.exec("SELECT 1");
    } catch (const std::exception&) {
      broken = true;
    }
  }
  connected_ = !broken;
  Release(std::move(*connection), broken);
  return status;
}

}  // namespace attattr::store
