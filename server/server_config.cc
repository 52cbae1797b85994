// ServerConfig validation (see server_config.h).
#include "server_config.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "attattr/base/host_resources.h"
#include "jobs/job_priority.h"
#include "store/store_uri.h"

namespace attattr::server {
namespace {

bool LooksLikeHostPort(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= s.size()) return false;
  const absl::string_view port = absl::string_view(s).substr(colon + 1);
  if (port.size() > 5) return false;  // also keeps SimpleAtoi far from overflow
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  int value = 0;
  return absl::SimpleAtoi(port, &value) && value <= 65535;
}

}  // namespace

int ServerConfig::EffectiveBatchMaxExamples() const {
  if (batch_max_examples > 0) return batch_max_examples;
  return OnCuda() ? 8 : 1;
}

bool ServerConfig::OnCuda() const { return device.rfind("cuda", 0) == 0; }

absl::Status ServerConfig::Validate() const {
  if (models_dir.empty()) return absl::InvalidArgumentError("--models: required");
  if (!LooksLikeHostPort(listen)) {
    return absl::InvalidArgumentError(absl::StrCat("--listen: '", listen, "' is not HOST:PORT"));
  }
  if (!metrics_listen.empty() && !LooksLikeHostPort(metrics_listen)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen: '", metrics_listen, "' is not HOST:PORT"));
  }
  if (workers < 0 || workers > 64)
    return absl::InvalidArgumentError("--workers: must be in [0, 64] (0 = auto)");
  if (intra_op_threads < 0 || intra_op_threads > 1024) {
    return absl::InvalidArgumentError("--threads: must be in [0, 1024] (0 = auto)");
  }
  if (job_threads < 0 || job_threads > 1024) {
    return absl::InvalidArgumentError("--job-threads: must be in [0, 1024] (0 = auto)");
  }
  if (cpus < 0 || cpus > 4096) {
    return absl::InvalidArgumentError("--cpus: must be in [0, 4096] (0 = auto)");
  }
  if (weights == engine::Precision::kBf16 && default_precision == engine::Precision::kFp32) {
    return absl::InvalidArgumentError(
        "--default-precision: fp32 needs --weights fp32 (bf16 weights multiply in bf16)");
  }
  if (max_explain_tokens < 2) {
    return absl::InvalidArgumentError("--max-explain-tokens: must be >= 2");
  }
  if (max_text_bytes < 16 || max_text_bytes > (64 << 20)) {
    return absl::InvalidArgumentError("--max-text-bytes: must be in [16, 67108864]");
  }
  if (max_request_bytes < (int64_t{1} << 20) || max_request_bytes > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError("--max-request-mib: must be in [1, 1024]");
  }
  if (max_steps < 1 || max_steps > 1024) {
    return absl::InvalidArgumentError("--max-steps: must be in [1, 1024]");
  }
  if (max_pending_explains < 1) {
    return absl::InvalidArgumentError("--max-pending-explains: must be >= 1");
  }
  if (job_runners < 1 || job_runners > 64) {
    return absl::InvalidArgumentError("--job-runners: must be in [1, 64]");
  }
  if (batch_max_examples < 0 || batch_max_examples > 256) {
    return absl::InvalidArgumentError("--batch-max-examples: must be in [0, 256] (0 = by device)");
  }
  if (batch_max_delay_us < 0 || batch_max_delay_us > 1000000) {
    return absl::InvalidArgumentError("--batch-max-delay-us: must be in [0, 1000000]");
  }
  if (validation_workers < 1 || validation_workers > 64) {
    return absl::InvalidArgumentError("--validation-workers: must be in [1, 64]");
  }
  if (max_pending_validations < 1) {
    return absl::InvalidArgumentError("--max-pending-validations: must be >= 1");
  }
  if (max_queued_jobs < 1) return absl::InvalidArgumentError("--max-queued-jobs: must be >= 1");
  if (max_job_seconds < 1) return absl::InvalidArgumentError("--max-job-seconds: must be >= 1");
  if (max_job_work < 1) return absl::InvalidArgumentError("--max-job-work: must be >= 1");
  if (max_job_attempts < 1 || max_job_attempts > 100) {
    return absl::InvalidArgumentError("--max-job-attempts: must be in [1, 100]");
  }
  if (heartbeat_seconds < 1 || heartbeat_seconds > 3600) {
    return absl::InvalidArgumentError("--heartbeat-seconds: must be in [1, 3600]");
  }
  if (lease_seconds < 2 * heartbeat_seconds || lease_seconds > 86400) {
    return absl::InvalidArgumentError(
        absl::StrCat("--lease-seconds: must be at least twice --heartbeat-seconds (",
                     heartbeat_seconds, ") and at most 86400, got ", lease_seconds));
  }
  if (shard_examples < 0 || shard_examples > 1000000) {
    return absl::InvalidArgumentError("--shard-examples: must be in [0, 1000000]");
  }
  if (replica_name.size() > 200) {
    return absl::InvalidArgumentError("--replica-name: longer than 200 characters");
  }
  if (max_job_examples < 1) return absl::InvalidArgumentError("--max-job-examples: must be >= 1");
  if (max_dataset_bytes < (int64_t{1} << 20)) {
    return absl::InvalidArgumentError("--max-dataset-mib: must be at least 1");
  }
  if (max_result_bytes < (int64_t{1} << 20)) {
    return absl::InvalidArgumentError("--max-result-mib: must be at least 1");
  }
  if (max_stored_bytes_per_principal < (int64_t{1} << 20)) {
    return absl::InvalidArgumentError("--max-stored-mib-per-principal: must be at least 1");
  }
  if (store.empty()) return absl::InvalidArgumentError("--store: required");
  if (store::IsPostgresUri(store)) {
    if (store_connections < 1 || store_connections > 256) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--store-connections: must be between 1 and 256 (got ", store_connections, ")"));
    }
  } else if (!store_password_file.empty()) {
    return absl::InvalidArgumentError(
        "--store-password-file: only for a PostgreSQL --store (postgresql://...)");
  }
  if (retention_seconds < 1) return absl::InvalidArgumentError("--retention-seconds: must be >= 1");
  if (memory_budget_bytes < (int64_t{1} << 20)) {
    return absl::InvalidArgumentError("--memory-budget-mib: must be at least 1");
  }
  if (!report_listen.empty() && !LooksLikeHostPort(report_listen)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--report-listen: '", report_listen, "' is not HOST:PORT"));
  }
  if (!report_listen.empty() && report_listen == metrics_listen) {
    return absl::InvalidArgumentError(
        "--report-listen: the same address as --metrics-listen (leave it empty to serve reports "
        "there)");
  }
  if (tls_cert.empty() != tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key: give both or neither");
  }
  if (!tls_client_ca.empty() && tls_cert.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca: needs --tls-cert and --tls-key");
  }
  if (tls_reload_seconds < 1 || tls_reload_seconds > 86400) {
    return absl::InvalidArgumentError("--tls-reload-seconds: must be in [1, 86400]");
  }
  for (const auto& [flag, names] : {std::pair<const char*, const std::vector<std::string>*>{
                                        "--admin-principals", &admin_principals},
                                    {"--export-principals", &export_principals},
                                    {"--dataset-principals", &dataset_principals}}) {
    for (const auto& name : *names) {
      if (name.empty() || name.size() > 256) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, ": a principal name must be 1..256 characters"));
      }
      // '*' means every principal for the other two lists; every principal an administrator
      // would end tenant isolation by a typo (the chart's schema refuses it too).
      if (name == "*" && names == &admin_principals) {
        return absl::InvalidArgumentError(
            "--admin-principals: '*' would make every principal an administrator that sees and "
            "manages every job; name the administrators");
      }
    }
  }
  if (max_user_priority < kMinJobPriority || max_user_priority > kMaxJobPriority) {
    return absl::InvalidArgumentError("--max-user-priority: must be in [-10, 10]");
  }
  if (max_queued_jobs_per_principal < 0) {
    return absl::InvalidArgumentError("--max-queued-jobs-per-principal: must be >= 0");
  }
  if (max_running_jobs_per_principal < 0) {
    return absl::InvalidArgumentError("--max-running-jobs-per-principal: must be >= 0");
  }
  if (max_streams_per_principal < 1 || max_streams_per_principal > 100000) {
    return absl::InvalidArgumentError("--max-streams-per-principal: must be in [1, 100000]");
  }
  if (!(explain_rate_per_principal >= 0) || explain_rate_per_principal > 1e6) {
    return absl::InvalidArgumentError("--explain-rate-per-principal: must be in [0, 1000000]");
  }
  if (explain_burst_per_principal < 1 || explain_burst_per_principal > 1000000) {
    return absl::InvalidArgumentError("--explain-burst-per-principal: must be in [1, 1000000]");
  }
  if (log_format != "text" && log_format != "json") {
    return absl::InvalidArgumentError("--log-format: must be text or json");
  }
  return absl::OkStatus();
}

int ServerConfig::EffectiveCpus() const {
  const int usable = attattr::UsableCpus();
  return cpus > 0 ? std::min(cpus, usable) : usable;
}

}  // namespace attattr::server
