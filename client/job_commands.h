// The job commands of `attattr`, each talking to an attattr-server (--server HOST:PORT):
//   submit  build an ATTRIBUTION JobSpec from flags (inline --text examples or a --dataset under
//           the server's data root) and SubmitJob it; prints the Job (with --wait: follows it to
//           its end, as heads and triggers do, and prints it then)
//   get     GetJob; when SUCCEEDED, stream GetJobResult and print or write (-o) the result
//   wait    WaitJob (in 600 s slices) until the job finishes or --timeout-seconds pass
//   watch   WatchJob: a progress bar on a terminal, one line per update otherwise
//   cancel, delete, list
// Exit codes (kExit* below; `attattr --help` lists them) tell scripts what happened without
// parsing messages. Errors are one line on stderr: "error: CODE: what happened". Single-threaded.
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "attattr/engine/attribution_tree.h"
#include "attattr/engine/quadrature.h"
#include "grpc_call.h"

namespace attattr::client {

// Exit codes of the job commands.
inline constexpr int kExitOk = 0;         // done; for get/wait/watch: the job SUCCEEDED
inline constexpr int kExitFailure = 1;    // any other error (INTERNAL, UNIMPLEMENTED, I/O, ...)
inline constexpr int kExitUsage = 2;      // bad arguments, or the server's INVALID_ARGUMENT
inline constexpr int kExitJobFailed = 3;  // the job ended FAILED or CANCELLED
inline constexpr int kExitJobNotFinished =
    4;  // still QUEUED/RUNNING (--timeout-seconds passed or Ctrl-C while waiting; get too early)
inline constexpr int kExitNotFound = 5;     // NOT_FOUND: no such job (or model)
inline constexpr int kExitUnavailable = 6;  // UNAVAILABLE: server unreachable or draining
inline constexpr int kExitDeadline = 7;  // DEADLINE_EXCEEDED: no answer within --deadline-seconds
inline constexpr int kExitBusy = 8;      // RESOURCE_EXHAUSTED: queue full, retry later
inline constexpr int kExitConflict = 9;  // FAILED_PRECONDITION / ALREADY_EXISTS / ABORTED: e.g.
                                         // cancelling a finished job, a reused --request-id

// The exit-code table as help text (for --help footers and README.md).
extern const char* const kJobExitCodesHelp;

// The exit code (kExit*) for a final status of a call or job.
int ExitCodeFor(absl::StatusCode code);

// Registers submit, get, wait, watch, cancel, delete and list on `app`; after app.parse(), Run()
// runs whichever was given. Keeps the flag values, so it must outlive parsing (do not move it).
class JobCommands {
 public:
  explicit JobCommands(CLI::App& app);
  JobCommands(const JobCommands&) = delete;
  JobCommands& operator=(const JobCommands&) = delete;

  // True when one of the job commands was parsed.
  bool Parsed() const;
  // Runs it: results on `out`, messages on `err`; `interactive` = stdout is a terminal (watch
  // draws a progress bar). Returns the exit code. Usage errors return kExitUsage after printing
  // "error: ..." (the caller adds the usage lines).
  int Run(std::ostream& out, std::ostream& err, bool interactive);
  // How every job command reaches the server (the global TLS and token flags, loaded).
  void SetChannelSecurity(const ChannelSecurity& security) {
    for (Common* c : {&submit_.common, &get_.common, &wait_.common, &watch_.common, &cancel_.common,
                      &delete_.common, &list_.common}) {
      c->security = security;
    }
  }

  struct Common {
    std::string server;
    ChannelSecurity security;  // the global TLS and token flags
    std::string format;
    double deadline_seconds = 30;
  };
  struct Submit {
    Common common;
    std::string model;
    std::vector<std::string> texts;
    // (index of the --text it follows, text) in command-line order.
    std::vector<std::pair<size_t, std::string>> pairs;
    std::string dataset;
    int limit = 0;
    int steps = engine::kDefaultQuadratureSteps;
    std::string rule = std::string(engine::QuadratureRuleName(engine::kDefaultQuadratureRule));
    std::string precision;  // "" = the server's --default-precision
    std::string layers;
    std::string target = "predicted";
    int top_k = 0;
    bool full_matrices = false;
    bool head_summed = false;
    bool attention = false;
    bool fp16 = false;
    bool tree = false;  // keep each example's attribution tree (needs all layers)
    double tau = engine::kDefaultTreeTau;  // its threshold τ, in (0, 1]
    int priority = 0;
    double job_timeout_seconds = 0;  // the job's own limit on the server (spec.timeout_ms)
    bool wait = false;               // follow the job to its end
    double timeout_seconds = 0;      // with wait: stop waiting after this long; 0 = until it ends
    std::string request_id;
  };
  struct Get {
    Common common;
    std::string job;
    std::string output;  // file; empty = stdout
    int top_k = 5;       // text format
  };
  struct Wait {
    Common common;
    std::string job;
    double timeout_seconds = -1;  // < 0: until the job finishes
  };
  struct Watch {
    Common common;
    std::string job;
  };
  struct OneJob {  // cancel, delete
    Common common;
    std::string job;
  };
  struct List {
    Common common;
    std::string state;
    std::string kind;
    int page_size = 0;
    std::string page_token;
    bool all = false;
  };

 private:
  // Pairs each --text-pair with the --text before it (CLI11 records the order options came in).
  int CollectPairs(std::ostream& err);

  CLI::App* submit_cmd_ = nullptr;
  CLI::App* get_cmd_ = nullptr;
  CLI::App* wait_cmd_ = nullptr;
  CLI::App* watch_cmd_ = nullptr;
  CLI::App* cancel_cmd_ = nullptr;
  CLI::App* delete_cmd_ = nullptr;
  CLI::App* list_cmd_ = nullptr;
  CLI::Option* text_opt_ = nullptr;
  CLI::Option* pair_opt_ = nullptr;
  std::vector<std::string> pair_values_;
  Submit submit_;
  Get get_;
  Wait wait_;
  Watch watch_;
  OneJob cancel_;
  OneJob delete_;
  List list_;
};

}  // namespace attattr::client
