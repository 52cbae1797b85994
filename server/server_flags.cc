// ParseServerFlags (see server_flags.h): the flag table and the conversion of MiB flags to bytes.
#include "server_flags.h"

#include <algorithm>
#include <cstdint>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"

namespace attattr::server {
namespace {

constexpr int64_t kMaxMib = int64_t{1} << 40;  // 2^60 bytes: far above any real limit, no overflow

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
  CLI::App app{"attattr-server: self-attention attribution as a gRPC service"};
  app.name("attattr-server");
  app.set_config("--config", "", "Read options from an INI/TOML file");
  app.add_option("--models", config.models_dir,
                 "Directory with one Hugging Face model directory per served model")
      ->envname("ATTATTR_MODELS")
      ->required();
  app.add_option("--listen", config.listen, "gRPC listen address HOST:PORT (port 0 = any free)")
      ->envname("ATTATTR_LISTEN")
      ->capture_default_str();
  app.add_option("--metrics-listen", config.metrics_listen,
                 "Prometheus /metrics HTTP address HOST:PORT (empty = none)")
      ->envname("ATTATTR_METRICS_LISTEN")
      ->capture_default_str();
  app.add_option("--store", config.store_path,
                 "SQLite file holding jobs and results (created when missing)")
      ->envname("ATTATTR_STORE")
      ->capture_default_str();
  app.add_option(
         "--data-root", config.data_root,
         "Directory that job dataset paths are resolved under (empty = dataset refs refused)")
      ->envname("ATTATTR_DATA_ROOT")
      ->capture_default_str();
  app.add_option("--export-root", config.export_root,
                 "Directory head-importance jobs write pruned checkpoints under (empty = exports "
                 "refused)")
      ->envname("ATTATTR_EXPORT_ROOT")
      ->capture_default_str();
  app.add_option("--workers", config.workers,
                 "Engine workers per device: threads running attribution batches")
      ->envname("ATTATTR_WORKERS")
      ->capture_default_str();
  app.add_option("--job-runners", config.job_runners, "Jobs running at the same time")
      ->envname("ATTATTR_JOB_RUNNERS")
      ->capture_default_str();
  app.add_option("--batch-max-examples", config.batch_max_examples,
                 "Dynamic batching: most examples per engine call (1 = none; 0 = by device: 8 on "
                 "cuda, 1 on "
                 "cpu)")
      ->envname("ATTATTR_BATCH_MAX_EXAMPLES")
      ->capture_default_str();
  app.add_option("--batch-max-delay-us", config.batch_max_delay_us,
                 "Dynamic batching: longest wait of the oldest item for others, microseconds")
      ->envname("ATTATTR_BATCH_MAX_DELAY_US")
      ->capture_default_str();
  app.add_option("--max-text-bytes", config.max_text_bytes,
                 "Longest text (example, pair, reference) in bytes, refused before tokenizing")
      ->envname("ATTATTR_MAX_TEXT_BYTES")
      ->capture_default_str();
  app.add_option("--max-request-mib", request_mib, "Largest request message gRPC accepts, MiB")
      ->envname("ATTATTR_MAX_REQUEST_MIB")
      ->capture_default_str();
  app.add_option("--validation-workers", config.validation_workers,
                 "Threads validating SubmitJob specs (reading datasets, tokenizing)")
      ->envname("ATTATTR_VALIDATION_WORKERS")
      ->capture_default_str();
  app.add_option("--max-pending-validations", config.max_pending_validations,
                 "SubmitJob calls waiting for validation before RESOURCE_EXHAUSTED")
      ->envname("ATTATTR_MAX_PENDING_VALIDATIONS")
      ->capture_default_str();
  app.add_option("--max-job-seconds", config.max_job_seconds,
                 "Longest a job may run, whatever its own timeout asks")
      ->envname("ATTATTR_MAX_JOB_SECONDS")
      ->capture_default_str();
  app.add_option("--max-job-work", config.max_job_work,
                 "Largest job: examples x steps x attributed layers")
      ->envname("ATTATTR_MAX_JOB_WORK")
      ->capture_default_str();
  app.add_option("--max-job-attempts", config.max_job_attempts,
                 "Starts after which a job the server died under fails instead of running again")
      ->envname("ATTATTR_MAX_JOB_ATTEMPTS")
      ->capture_default_str();
  app.add_option("--max-queued-jobs", config.max_queued_jobs,
                 "Jobs waiting to run before SubmitJob answers RESOURCE_EXHAUSTED")
      ->envname("ATTATTR_MAX_QUEUED_JOBS")
      ->capture_default_str();
  app.add_option("--max-dataset-mib", dataset_mib,
                 "Most MiB read from one dataset file (only as far as a job's examples need)")
      ->envname("ATTATTR_MAX_DATASET_MIB")
      ->capture_default_str();
  app.add_option("--max-job-examples", config.max_job_examples, "Most examples in one job")
      ->envname("ATTATTR_MAX_JOB_EXAMPLES")
      ->capture_default_str();
  app.add_option("--max-result-mib", result_mib, "Largest result one job may produce, MiB")
      ->envname("ATTATTR_MAX_RESULT_MIB")
      ->capture_default_str();
  app.add_option("--retention-seconds", config.retention_seconds,
                 "Finished jobs and their results are deleted this long after they end")
      ->envname("ATTATTR_RETENTION_SECONDS")
      ->capture_default_str();
  app.add_option("--threads", config.intra_op_threads, "LibTorch intra-op threads (0 = all cores)")
      ->envname("ATTATTR_THREADS")
      ->capture_default_str();
  app.add_option("--device", config.device,
                 "Device of the models and attribution: cpu, or cuda / cuda:N (CUDA LibTorch)")
      ->envname("ATTATTR_DEVICE")
      ->capture_default_str();
  app.add_option("--max-explain-tokens", config.max_explain_tokens,
                 "Longest Explain input in word pieces")
      ->envname("ATTATTR_MAX_EXPLAIN_TOKENS")
      ->capture_default_str();
  app.add_option("--max-steps", config.max_steps, "Largest accepted integration steps m")
      ->envname("ATTATTR_MAX_STEPS")
      ->capture_default_str();
  app.add_option("--max-pending-explains", config.max_pending_explains,
                 "Explain calls waiting for an engine worker before RESOURCE_EXHAUSTED")
      ->envname("ATTATTR_MAX_PENDING_EXPLAINS")
      ->capture_default_str();
  app.add_option("--memory-budget-mib", budget_mib, "Activation memory per attribution batch, MiB")
      ->envname("ATTATTR_MEMORY_BUDGET_MIB")
      ->capture_default_str();
  app.add_option("--grace-seconds", grace_seconds,
                 "On SIGTERM: time running jobs and calls get to finish (then jobs are re-queued)")
      ->envname("ATTATTR_GRACE_SECONDS")
      ->capture_default_str();
  app.add_option("--log-format", config.log_format, "text | json")
      ->envname("ATTATTR_LOG_FORMAT")
      ->capture_default_str();
  app.add_option("--log-level", config.log_level, "trace | debug | info | warn | error")
      ->envname("ATTATTR_LOG_LEVEL")
      ->capture_default_str();
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
  for (const auto& [name, mib] :
       {std::pair<const char*, int64_t>{"--memory-budget-mib", budget_mib},
        {"--max-result-mib", result_mib},
        {"--max-request-mib", request_mib},
        {"--max-dataset-mib", dataset_mib}}) {
    if (mib < 0 || mib > kMaxMib) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " must be between 0 and ", kMaxMib, " (got ", mib, ")"));
    }
  }
  config.memory_budget_bytes = budget_mib << 20;
  config.max_result_bytes = result_mib << 20;
  config.max_request_bytes = request_mib << 20;
  config.max_dataset_bytes = dataset_mib << 20;
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  return flags;
}

}  // namespace attattr::server
