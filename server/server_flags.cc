// ParseServerFlags (see server_flags.h): the flag table and the conversion of MiB flags to bytes.
#include "server_flags.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "store/store_uri.h"

namespace attattr::server {
namespace {

constexpr int64_t kMaxMib = int64_t{1} << 40;  // 2^60 bytes: far above any real limit, no overflow

// Adds --NAME to `app`, also read from the environment variable ATTATTR_NAME (upper case, '-' as
// '_') and shown in --help with its default.
template <typename T>
CLI::Option* Flag(CLI::App& app, const std::string& name, T& value, const std::string& help) {
  std::string env = "ATTATTR_" + name.substr(2);
  for (char& c : env)
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return app.add_option(name, value, help)->envname(env)->capture_default_str();
}

constexpr char kUsage[] =
    "usage: attattr-server --models DIR [--listen HOST:PORT] [--metrics-listen HOST:PORT] (see "
    "--help)";

}  // namespace

absl::StatusOr<ServerFlags> ParseServerFlags(const std::vector<std::string>& args) {
  ServerFlags flags;
  ServerConfig& config = flags.config;
  int& grace_seconds = flags.grace_seconds;
  int64_t budget_mib = config.memory_budget_bytes >> 20;
  int64_t result_mib = config.max_result_bytes >> 20;
  int64_t request_mib = config.max_request_bytes >> 20;
  int64_t dataset_mib = config.max_dataset_bytes >> 20;
  int64_t stored_mib = config.max_stored_bytes_per_principal >> 20;
  CLI::App app{"attattr-server: self-attention attribution as a gRPC service"};
  app.name("attattr-server");
  app.set_config("--config", "", "Read options from an INI/TOML file");
  Flag(app, "--models", config.models_dir,
       "Directory with one Hugging Face model directory per served model")
      ->required();
  Flag(app, "--listen", config.listen, "gRPC listen address HOST:PORT (port 0 = any free)");
  Flag(app, "--metrics-listen", config.metrics_listen,
       "Prometheus /metrics HTTP address HOST:PORT (empty = none)");
  Flag(app, "--store", config.store,
       "Where jobs and results are kept: an SQLite file (created when missing), or a PostgreSQL "
       "URI postgresql://USER@HOST:PORT/DB?PARAMS (a password in it only through the "
       "ATTATTR_STORE environment variable or a --config file, not the command line)");
  Flag(app, "--store-password-file", config.store_password_file,
       "PostgreSQL store: file holding the password (else libpq's PGPASSWORD / PGPASSFILE)");
  Flag(app, "--store-connections", config.store_connections,
       "PostgreSQL store: connections at most");
  Flag(app, "--data-root", config.data_root,
       "Directory that job dataset paths are resolved under (empty = dataset refs refused)");
  Flag(app, "--export-root", config.export_root,
       "Directory head-importance jobs write pruned checkpoints under (empty = exports "
       "refused)");
  Flag(app, "--workers", config.workers,
       "Engine workers per device: threads running attribution batches, one engine call each "
       "(0 = auto: on cpu one per usable core / --threads, bounded by memory; on cuda 1)");
  Flag(app, "--job-runners", config.job_runners, "Jobs running at the same time");
  Flag(app, "--batch-max-examples", config.batch_max_examples,
       "Dynamic batching: most examples per engine call (1 = none; 0 = by device: 8 on "
       "cuda, 1 on "
       "cpu)");
  Flag(app, "--batch-max-delay-us", config.batch_max_delay_us,
       "Dynamic batching: longest wait of the oldest item for others, microseconds");
  Flag(app, "--max-text-bytes", config.max_text_bytes,
       "Longest text (example, pair, reference) in bytes, refused before tokenizing");
  Flag(app, "--max-request-mib", request_mib, "Largest request message gRPC accepts, MiB");
  Flag(app, "--validation-workers", config.validation_workers,
       "Threads validating SubmitJob specs and Explain calls (reading datasets, tokenizing)");
  Flag(app, "--max-pending-validations", config.max_pending_validations,
       "SubmitJob and Explain calls waiting for validation before RESOURCE_EXHAUSTED");
  Flag(app, "--max-job-seconds", config.max_job_seconds,
       "Longest a job may run, whatever its own timeout asks");
  Flag(app, "--max-job-work", config.max_job_work,
       "Largest job: examples x steps x attributed layers, plus example forward passes "
       "(evaluations, pruning curves, rankings) x the model's layers");
  Flag(app, "--max-job-attempts", config.max_job_attempts,
       "Starts after which a job the server died under fails instead of running again");
  Flag(app, "--lease-seconds", config.lease_seconds,
       "A running job's lease: after it lapses unrenewed (its replica died or froze) another "
       "replica runs the job");
  Flag(app, "--heartbeat-seconds", config.heartbeat_seconds,
       "How often a replica renews its jobs' leases (at most half of --lease-seconds)");
  Flag(app, "--shard-examples", config.shard_examples,
       "PostgreSQL store: split a job (ATTRIBUTION, or a stage of HEAD_IMPORTANCE or "
       "TRIGGER_SEARCH) of more than twice this many examples into shards this size that every "
       "replica runs (0 = never)");
  Flag(app, "--replica-name", config.replica_name,
       "This replica's name in job leases (empty = host name, pid and a random suffix)");
  Flag(app, "--max-queued-jobs", config.max_queued_jobs,
       "Jobs waiting to run before SubmitJob answers RESOURCE_EXHAUSTED");
  Flag(app, "--max-dataset-mib", dataset_mib,
       "Most MiB read from one dataset file (only as far as a job's examples need)");
  Flag(app, "--max-job-examples", config.max_job_examples, "Most examples in one job");
  Flag(app, "--max-stored-mib-per-principal", stored_mib,
       "Most MiB one principal's stored jobs (specs, results, and the result estimates of queued "
       "and running jobs) may occupy before SubmitJob answers RESOURCE_EXHAUSTED; DeleteJob "
       "frees it");
  Flag(app, "--max-result-mib", result_mib, "Largest result one job may produce, MiB");
  Flag(app, "--retention-seconds", config.retention_seconds,
       "Finished jobs and their results are deleted this long after they end");
  Flag(app, "--threads", config.intra_op_threads,
       "LibTorch intra-op threads of each engine worker (0 = auto: on cpu the usable cores / "
       "--workers when --workers is set, else 1; on cuda all usable cores)");
  Flag(app, "--job-threads", config.job_threads,
       "LibTorch intra-op threads of HEAD_IMPORTANCE and TRIGGER_SEARCH jobs, which run whole "
       "studies on their job runner's thread (0 = all usable cores)");
  Flag(app, "--cpus", config.cpus,
       "Usable cores the server sizes its workers and threads by (0 = auto: the CPUs it may run "
       "on under the cgroup's CPU limit; N = at most N of those). On Kubernetes without a CPU "
       "limit, pass the container's CPU request (the chart sets ATTATTR_CPUS from it)");
  Flag(app, "--device", config.device,
       "Device of the models and attribution: cpu, or cuda / cuda:N (CUDA LibTorch)");
  Flag(app, "--max-explain-tokens", config.max_explain_tokens,
       "Longest Explain input in word pieces");
  Flag(app, "--max-steps", config.max_steps, "Largest accepted integration steps m");
  std::string default_precision(engine::PrecisionName(config.default_precision));
  CLI::Option* default_precision_flag =
      Flag(app, "--default-precision", default_precision,
           "Attribution integrand precision of requests that leave it unset: fp32, or bf16 "
           "(matrix products in bfloat16 on AMX / tensor cores; on a CPU without AVX-512-BF16 or "
           "AMX it is emulated and slower than fp32: the server warns at start; see README "
           "\"Precision\"). Default: fp32, bf16 with --weights bf16")
          ->check(CLI::IsMember({"fp32", "bf16"}));
  std::string weights(engine::PrecisionName(config.weights));
  Flag(app, "--weights", weights,
       "How the models' weights are stored: fp32, or bf16 (matrices and embedding tables in "
       "bfloat16, half the memory; every pass multiplies in bf16 and requests for fp32 "
       "precision are refused)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  Flag(app, "--max-pending-explains", config.max_pending_explains,
       "Explain calls waiting for an engine worker before RESOURCE_EXHAUSTED (with "
       "authentication, a quarter of them per principal)");
  Flag(app, "--memory-budget-mib", budget_mib,
       "Activation memory per engine batch (attribution, study passes), MiB");
  Flag(app, "--report-listen", config.report_listen,
       "HTML job reports' HTTP address HOST:PORT (empty = on the --metrics-listen port)");
  Flag(app, "--tls-cert", config.tls_cert,
       "PEM certificate chain: TLS on the gRPC and HTTP ports (re-read when it changes)");
  Flag(app, "--tls-key", config.tls_key, "PEM private key of --tls-cert");
  Flag(app, "--tls-client-ca", config.tls_client_ca,
       "PEM CA bundle: mTLS, gRPC callers need a client certificate it signed, which "
       "identifies them (first SAN, else CN)");
  Flag(app, "--tls-reload-seconds", config.tls_reload_seconds,
       "How often the TLS files are checked for a new version");
  Flag(app, "--auth-tokens", config.auth_tokens,
       "File of `principal<TAB>hex sha256 of the token` lines (re-read on change): calls need "
       "'authorization: Bearer <token>'");
  Flag(app, "--admin-principals", config.admin_principals,
       "Principals that see and manage every job (comma-separated; '*' is refused)")
      ->delimiter(',');
  Flag(app, "--export-principals", config.export_principals,
       "Principals besides admins that may export pruned checkpoints ('*' = all)")
      ->delimiter(',');
  Flag(app, "--dataset-principals", config.dataset_principals,
       "Principals besides admins that may read --data-root datasets ('*' = all)")
      ->delimiter(',');
  Flag(app, "--max-user-priority", config.max_user_priority,
       "Highest job priority a principal that is not an admin may ask for");
  Flag(app, "--max-queued-jobs-per-principal", config.max_queued_jobs_per_principal,
       "Jobs one principal may have waiting before SubmitJob answers RESOURCE_EXHAUSTED (0 = "
       "no limit)");
  Flag(app, "--max-running-jobs-per-principal", config.max_running_jobs_per_principal,
       "Jobs of one principal running at once (0 = no limit but --job-runners)");
  Flag(app, "--max-streams-per-principal", config.max_streams_per_principal,
       "WaitJob, WatchJob and GetJobResult calls open at once per principal (without "
       "authentication: per client address) before RESOURCE_EXHAUSTED");
  Flag(app, "--explain-rate-per-principal", config.explain_rate_per_principal,
       "Explain calls per second per principal, token bucket (0 = no limit)");
  Flag(app, "--explain-burst-per-principal", config.explain_burst_per_principal,
       "Explain calls a principal may make at once before the rate applies");
  Flag(app, "--reflection", config.reflection,
       "Serve gRPC server reflection (open to every caller)");
  Flag(app, "--grace-seconds", grace_seconds,
       "On SIGTERM: time running jobs and calls get to finish (then jobs are re-queued)");
  Flag(app, "--log-format", config.log_format, "text | json");
  Flag(app, "--log-level", config.log_level, "trace | debug | info | warn | error");
  try {
    // CLI11 takes the arguments last first.
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    flags.help_requested = true;
    flags.help = app.help();
    return flags;
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(absl::StrCat(e.what(), "\n", kUsage));
  }
  // A password on the command line is visible to every local user (ps, /proc) and in logs of
  // the pod spec: refused there, accepted from the environment or a config file.
  for (size_t i = 0; i < args.size(); ++i) {
    std::string value;
    if (absl::StartsWith(args[i], "--store=")) value = args[i].substr(8);
    if (args[i] == "--store" && i + 1 < args.size()) value = args[i + 1];
    if (store::UriHasPassword(value)) {
      return absl::InvalidArgumentError(
          "--store: the PostgreSQL URI carries a password on the command line; use "
          "--store-password-file, the ATTATTR_STORE environment variable or PGPASSWORD");
    }
  }
  for (const auto& [name, mib] :
       {std::pair<const char*, int64_t>{"--memory-budget-mib", budget_mib},
        {"--max-result-mib", result_mib},
        {"--max-request-mib", request_mib},
        {"--max-dataset-mib", dataset_mib},
        {"--max-stored-mib-per-principal", stored_mib}}) {
    if (mib < 0 || mib > kMaxMib) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " must be between 0 and ", kMaxMib, " (got ", mib, ")"));
    }
  }
  config.weights = *engine::ParsePrecision(weights);  // checked by IsMember
  config.default_precision = default_precision_flag->count() > 0
                                 ? *engine::ParsePrecision(default_precision)
                                 : config.weights;  // unset: the weights' own precision
  config.memory_budget_bytes = budget_mib << 20;
  config.max_result_bytes = result_mib << 20;
  config.max_request_bytes = request_mib << 20;
  config.max_dataset_bytes = dataset_mib << 20;
  config.max_stored_bytes_per_principal = stored_mib << 20;
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  return flags;
}

}  // namespace attattr::server
