// PostgresServer (see postgres_server.h): fork/exec of initdb and postgres with the credentials
// dropped in the child, readiness by connecting, SIGINT/SIGKILL to stop.
#include "support/postgres_server.h"

#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "support/test_paths.h"

namespace attattr::testing {
namespace {

// The newest /usr/lib/postgresql/<version>/bin holding postgres and initdb (or ATTATTR_PG_BIN).
std::string FindBinDir() {
  if (const char* env = std::getenv("ATTATTR_PG_BIN"); env != nullptr && *env != '\0') {
    return PathExists(std::string(env) + "/postgres") ? env : "";
  }
  glob_t found{};
  std::vector<std::string> dirs;
  if (glob("/usr/lib/postgresql/*/bin/postgres", 0, nullptr, &found) == 0) {
    for (size_t i = 0; i < found.gl_pathc; ++i) {
      dirs.push_back(std::filesystem::path(found.gl_pathv[i]).parent_path().string());
    }
  }
  globfree(&found);
  std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) {
    return std::atoi(a.c_str() + 20) < std::atoi(b.c_str() + 20);  // after "/usr/lib/postgresql/"
  });
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    if (PathExists(*it + "/initdb")) return *it;
  }
  return "";
}

std::string RunAsUser() {
  const char* env = std::getenv("ATTATTR_PG_USER");
  return env != nullptr && *env != '\0' ? env : "nobody";
}

// Forks `argv` with stdout/stderr appended to `log`, as uid/gid when `drop` (the parent-death
// signal set after the switch, which clears it). Returns the child's pid or -1.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log, bool drop, uid_t uid,
            gid_t gid) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out >= 0) {
    dup2(out, 1);
    dup2(out, 2);
  }
  const int null = open("/dev/null", O_RDONLY);
  if (null >= 0) dup2(null, 0);
  if (drop && (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) _exit(126);
  prctl(PR_SET_PDEATHSIG, SIGQUIT);
  execv(args[0], args.data());
  _exit(127);
}

// Waits up to `timeout` for `pid`; its exit code, or -1 when it did not exit (still running).
int WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (done < 0 || std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

std::string PostgresServer::Unavailable() {
  if (FindBinDir().empty()) {
    return "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin; scripts/setup.sh installs "
           "Debian's postgresql package)";
  }
  if (geteuid() == 0 && getpwnam(RunAsUser().c_str()) == nullptr) {
    return absl::StrCat("running as root and no user '", RunAsUser(),
                        "' to run PostgreSQL as (set ATTATTR_PG_USER)");
  }
  return "";
}

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start() {
  if (const std::string why = Unavailable(); !why.empty()) {
    return absl::FailedPreconditionError(why);
  }
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->bin_dir_ = FindBinDir();
  server->dir_ = MakeTempDir("attattr-pg");
  if (geteuid() == 0) {
    const passwd* user = getpwnam(RunAsUser().c_str());
    server->drop_privileges_ = true;
    server->uid_ = user->pw_uid;
    server->gid_ = user->pw_gid;
    if (chown(server->dir_.c_str(), server->uid_, server->gid_) != 0) {
      return absl::InternalError(absl::StrCat("cannot chown ", server->dir_));
    }
  }
  const std::string log = server->dir_ + "/initdb.log";
  const pid_t initdb = Spawn({server->bin_dir_ + "/initdb", "-D", server->dir_ + "/data", "-U",
                              "attattr", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"},
                             log, server->drop_privileges_, server->uid_, server->gid_);
  if (initdb < 0 || WaitFor(initdb, std::chrono::seconds(120)) != 0) {
    return absl::InternalError(absl::StrCat("initdb failed: ", ReadFile(log)));
  }
  {
    std::ofstream hba(server->dir_ + "/data/pg_hba.conf", std::ios::trunc);
    hba << "local all all trust\n"
           "host all attattr 127.0.0.1/32 trust\n"
           "host all all 127.0.0.1/32 scram-sha-256\n";
    if (!hba) return absl::InternalError("cannot write pg_hba.conf");
  }
  absl::Status launched;
  for (int attempt = 0; attempt < 3; ++attempt) {  // the free port may be taken meanwhile
    server->port_ = FreeLoopbackPort();
    launched = server->Launch();
    if (launched.ok()) return server;
  }
  return launched;
}

absl::Status PostgresServer::Launch() {
  pid_ = Spawn({bin_dir_ + "/postgres",
                "-D",
                dir_ + "/data",
                "-k",
                dir_,
                "-h",
                "127.0.0.1",
                "-p",
                std::to_string(port_),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=32MB",
                "-c",
                "log_min_messages=warning"},
               dir_ + "/postgres.log", drop_privileges_, uid_, gid_);
  if (pid_ < 0) return absl::InternalError("fork failed");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (WaitFor(pid_, std::chrono::milliseconds(0)) != -1) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("postgres exited: ", Log()));
    }
    try {
      pqxx::connection probe(Uri("postgres") + "?connect_timeout=2");
      return absl::OkStatus();
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return absl::DeadlineExceededError(
      absl::StrCat("postgres did not accept connections in 60 s: ", Log()));
}

PostgresServer::~PostgresServer() {
  Stop().IgnoreError();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string PostgresServer::Uri(const std::string& database) const {
  return absl::StrCat("postgresql://attattr@127.0.0.1:", port_, "/", database);
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase(const std::string& owner) {
  static std::atomic<int> counter{0};
  const std::string name = absl::StrCat("test_", getpid(), "_", counter++);
  try {
    pqxx::connection c(Uri("postgres"));
    pqxx::nontransaction txn(c);
    txn.exec(absl::StrCat("CREATE DATABASE ", name, " OWNER ", txn.quote_name(owner)));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("CREATE DATABASE ", name, ": ", e.what()));
  }
  return Uri(name);
}

absl::Status PostgresServer::CreateRole(const std::string& role, const std::string& password) {
  try {
    pqxx::connection c(Uri("postgres"));
    pqxx::nontransaction txn(c);
    txn.exec(absl::StrCat("CREATE ROLE ", txn.quote_name(role), " LOGIN PASSWORD ",
                          txn.quote(password)));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("CREATE ROLE ", role, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PostgresServer::Query(const std::string& database,
                                                  const std::string& sql) const {
  try {
    pqxx::connection c(Uri(database));
    pqxx::nontransaction txn(c);
    const pqxx::result rows = txn.exec(sql);
    if (rows.empty() || rows[0].empty() || rows[0][0].is_null()) return std::string();
    return rows[0][0].as<std::string>();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(sql, ": ", e.what()));
  }
}

absl::Status PostgresServer::Stop() {
  if (pid_ < 0) return absl::OkStatus();
  kill(pid_, SIGINT);
  if (WaitFor(pid_, std::chrono::seconds(30)) == -1) {
    kill(pid_, SIGKILL);
    WaitFor(pid_, std::chrono::seconds(10));
  }
  pid_ = -1;
  return absl::OkStatus();
}

absl::Status PostgresServer::Restart() {
  if (pid_ >= 0) return absl::FailedPreconditionError("PostgreSQL is running");
  return Launch();
}

PostgresServer* SharedPostgres(std::string* why_not, bool* installed) {
  struct Shared {
    Shared() {
      why_not = PostgresServer::Unavailable();
      if (!why_not.empty()) return;
      installed = true;
      auto started = PostgresServer::Start();
      if (started.ok()) {
        server = std::move(*started);
      } else {
        why_not = started.status().ToString();
      }
    }
    std::unique_ptr<PostgresServer> server;
    std::string why_not;
    bool installed = false;
  };
  static Shared shared;
  *why_not = shared.why_not;
  if (installed != nullptr) *installed = shared.installed;
  return shared.server.get();
}

std::string PostgresServer::Log() const {
  const std::string log = ReadFile(dir_ + "/postgres.log");
  return log.size() > 4000 ? log.substr(log.size() - 4000) : log;
}

}  // namespace attattr::testing
