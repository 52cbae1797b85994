// ServerConfig: every setting of attattr-server in one plain struct with in-class defaults,
// validated once (Validate names the offending option). Read from flags/env/file only by
// ParseServerFlags (server_flags.h), then passed by const reference. Thread-compatible value type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "attattr/engine/precision.h"

namespace attattr::server {

struct ServerConfig {
  // Directory holding one Hugging Face model directory per served model (named by directory name).
  // Required.
  std::string models_dir;
  // gRPC listen address. Default: 127.0.0.1:50051 (port 0 = any free port).
  std::string listen = "127.0.0.1:50051";
  // Prometheus /metrics HTTP address; empty = no HTTP endpoint. Default: 127.0.0.1:9464
  // (the Prometheus exporter convention; 9090 is Prometheus' own port).
  std::string metrics_listen = "127.0.0.1:9464";
  // Engine workers per device: threads that run attribution batches (Explain calls and job items
  // alike), each one engine call at a time. 0 = auto (engine_parallelism.h: on CPU one per usable
  // core ÷ intra_op_threads, bounded by memory; on CUDA 1). Default: 0.
  int workers = 0;
  // Jobs that run at the same time (each feeds its examples to the engine workers batch by batch,
  // so items of concurrent jobs share engine batches). Default: 2.
  int job_runners = 2;
  // LibTorch intra-op threads of each engine worker's computations (set per worker thread). 0 =
  // auto: on CPU the usable cores ÷ workers when workers is set, else 1; on CUDA every usable
  // core. Default: 0.
  int intra_op_threads = 0;
  // The process's intra-op threads, which HEAD_IMPORTANCE and TRIGGER_SEARCH jobs use: they run
  // whole studies (many examples per product) on their job runner's thread, where a second thread
  // pays (measured 1.8x on 2 cores). 0 = every usable core. Default: 0. Set by main() only (an
  // in-process Server leaves the process's threads to its host program).
  int job_threads = 0;
  // The cores this server sizes itself by (engine workers and threads, job_threads' auto): 0 =
  // auto, the CPUs it may run on (affinity) under the cgroup's CPU limit (cpu.max); N = at most N
  // of those. On Kubernetes without a CPU limit a pod sees every core of its node: the Helm chart
  // and the manifests pass the container's CPU request here (ATTATTR_CPUS from the downward API),
  // so that a pod requesting 2 CPUs on a 96-core node does not run 96 threads per job. Default: 0.
  int cpus = 0;
  // attattr::UsableCpus() under `cpus`.
  int EffectiveCpus() const;
  // Where the served models' weights live and attribution runs: "cpu", or "cuda" / "cuda:N" with a
  // CUDA LibTorch build (engine::LoadOptions::device). Default: cpu.
  std::string device = "cpu";
  // How the served models' weights are stored (engine::LoadOptions::weights): fp32, or bf16
  // (matrices and embedding tables in bfloat16: half the memory; every pass multiplies in bf16,
  // requests asking for fp32 precision are refused). Default: fp32.
  engine::Precision weights = engine::Precision::kFp32;
  // Longest text accepted anywhere (Explain's text and text_pair, a similarity target's
  // reference_text, every job example's texts), in bytes, checked before any tokenizing.
  // Default: 65536 (a model's 128–512 word pieces are a few KiB of text).
  int max_text_bytes = 65536;
  // Largest request message gRPC accepts, bytes (gRPC's default is 4 MiB; inline job examples
  // need more). Default: 32 MiB.
  int64_t max_request_bytes = int64_t{32} << 20;
  // Longest Explain input in word pieces (further bounded by each model's maximum). Default: 128.
  int max_explain_tokens = 128;
  // Largest accepted integration steps m. Default: 256.
  int max_steps = 256;
  // The integrand's precision of requests that leave AttributionOptions.precision unset (README
  // "Precision"). Default: fp32, or bf16 when `weights` is bf16 (fp32 is refused then).
  engine::Precision default_precision = engine::Precision::kFp32;
  // Explain calls waiting for a worker before RESOURCE_EXHAUSTED. Default: 64.
  int max_pending_explains = 64;
  // Dynamic batching (Triton-style): attribution items with the same model and options that are
  // waiting at the same time run in one engine call of at most this many examples; 1 = no dynamic
  // batching; 0 = by device: 8 on CUDA (measured 3.0-3.8x the calls/s at client concurrency 4-16 on
  // an H100), 1 on CPU (measured no gain on a 2-core CPU: padding eats what batching saves; see
  // bench/README.md). Default: 0.
  int batch_max_examples = 0;
  // The batch size batch_max_examples means for `device`.
  int EffectiveBatchMaxExamples() const;
  // Whether `device` is a CUDA device.
  bool OnCuda() const;
  // How long the oldest waiting item may wait for others to join its batch, microseconds.
  // Default: 1000 (1 ms; only a lone item on an idle worker waits it out).
  int64_t batch_max_delay_us = 1000;
  // Threads that validate SubmitJob specs (read dataset files, tokenize examples) off the gRPC
  // reaction threads. Default: 2.
  int validation_workers = 2;
  // SubmitJob calls waiting for a validation thread before RESOURCE_EXHAUSTED. Default: 64.
  int max_pending_validations = 64;
  // Longest a job may run (each start), seconds, whatever its spec.timeout_ms asks: a job still
  // running then fails with DEADLINE_EXCEEDED naming this flag. Default: 86400 (a day).
  int64_t max_job_seconds = 86400;
  // Largest job accepted, in attribution integration points: examples × steps × attributed
  // layers (the mining or importance set's for trigger search and head importance). Default:
  // 2,000,000 (10,000 examples × 8 steps × 12 layers is 960,000).
  int64_t max_job_work = 2000000;
  // Starts after which a job whose server died under it (found running at a restart, or its
  // lease lapsed) fails instead of running again. Default: 3.
  int max_job_attempts = 3;
  // A running job's lease: the replica running it renews it every heartbeat_seconds; one that
  // stops (killed, frozen, cut off from the store) loses its jobs to the other replicas after
  // lease_seconds. lease_seconds >= 2 x heartbeat_seconds. Defaults: 30 and 10.
  int lease_seconds = 30;
  int heartbeat_seconds = 10;
  // With a shared store: an ATTRIBUTION job of more than twice this many examples is split into
  // shards of this many that every replica's idle runners run (0 = never split). Default: 64.
  int shard_examples = 64;
  // This process's name in the leases it holds; unique per replica. Default (empty): the host
  // name (the pod's name on Kubernetes), the process id and a random suffix.
  std::string replica_name;
  // Jobs waiting to run before SubmitJob answers RESOURCE_EXHAUSTED. Default: 256.
  int max_queued_jobs = 256;
  // Most bytes read from one dataset file for a job (only as far as its examples need: a limit of
  // 10 reads a few KiB of any file). Default: 256 MiB.
  int64_t max_dataset_bytes = int64_t{256} << 20;
  // What one principal's stored jobs (specs and results, queued, running or finished and not yet
  // expired or deleted) may occupy before SubmitJob answers RESOURCE_EXHAUSTED: cancelling a job
  // does not free its place, deleting it does. Without authentication every caller is the one
  // principal "anonymous", so this bounds the whole store. Default: 4 GiB.
  int64_t max_stored_bytes_per_principal = int64_t{4} << 30;
  // Examples one job may hold. Default: 10000.
  int max_job_examples = 10000;
  // Largest result one job may produce, bytes, as estimated from what the result options ask for
  // (fp16 and top-k counted; see EstimateAttributionResultBytes in job_spec.h). Default: 1 GiB.
  int64_t max_result_bytes = int64_t{1} << 30;
  // Where jobs and results are kept: an SQLite file (created when missing), or a PostgreSQL
  // connection URI "postgresql://user@host:port/database?..." (its password not on the command
  // line: store_password_file, the ATTATTR_STORE environment variable or libpq's PGPASSWORD /
  // PGPASSFILE). Default: attattr-jobs.db in the working directory.
  std::string store = "attattr-jobs.db";
  // With a PostgreSQL store: a file holding its password (trailing newline ignored). Default:
  // none.
  std::string store_password_file;
  // With a PostgreSQL store: connections at most, 1..256. Default: 8.
  int store_connections = 8;
  // Directory dataset paths in job specs are resolved under; empty = dataset refs are refused.
  // Default: empty.
  std::string data_root;
  // Directory HEAD_IMPORTANCE jobs write pruned checkpoints under (export_path is relative to it);
  // empty = exports are refused. Default: empty.
  std::string export_root;
  // Finished jobs (and their results) are deleted this long after they end, seconds. Default:
  // 604800 (7 days).
  int64_t retention_seconds = 7 * 24 * 3600;
  // Memory budget for one attribution batch's activations, bytes. Default: 1 GiB.
  int64_t memory_budget_bytes = int64_t{1} << 30;
  // HTML job reports' HTTP address; empty = on the metrics_listen port. Default: empty.
  std::string report_listen;
  // TLS (PEM files) for the gRPC port and every HTTP port; both or neither. Re-read when they
  // change (checked every tls_reload_seconds), without a restart. Default: none (plain text).
  std::string tls_cert;
  std::string tls_key;
  // mTLS: the gRPC port requires a client certificate signed by this CA, and a verified
  // certificate identifies its caller (first subject alternative name, else common name); the
  // HTTP ports ask for one but do not require it. Needs tls_cert. Default: none.
  std::string tls_client_ca;
  // How often the TLS files are checked for a new version, seconds. Default: 10.
  int tls_reload_seconds = 10;
  // Bearer tokens: `principal<TAB>hex sha256 of the token` lines, re-read on change. With this or
  // tls_client_ca set, every Attattr call needs credentials (UNAUTHENTICATED otherwise) and sees
  // only its principal's jobs. Default: none (authentication off: every caller is "anonymous",
  // an administrator).
  std::string auth_tokens;
  // Principals that see and manage every job and may use any priority. Default: none.
  std::vector<std::string> admin_principals;
  // Principals (besides admins) that may submit head-importance jobs writing a pruned checkpoint
  // ("*" = every principal). Default: none.
  std::vector<std::string> export_principals;
  // Principals (besides admins) that may read datasets under data_root ("*" = every principal).
  // Default: "*".
  std::vector<std::string> dataset_principals = {"*"};
  // Highest JobSpec.priority a principal that is not an admin may ask for, in [-10, 10].
  // Default: 0.
  int max_user_priority = 0;
  // Jobs one principal may have waiting to run before SubmitJob answers RESOURCE_EXHAUSTED (with
  // a retry pushback); 0 = only max_queued_jobs bounds them. Default: 64.
  int max_queued_jobs_per_principal = 64;
  // Jobs of one principal running at the same time; the rest wait while other principals' jobs
  // run. 0 = no limit but job_runners. Default: 0.
  int max_running_jobs_per_principal = 0;
  // WaitJob, WatchJob and GetJobResult calls one principal (without authentication: one client
  // address) may hold open at once; past it such a call is answered RESOURCE_EXHAUSTED. Each open
  // stream is a subscription every change of its job is converted for (stream_slots.h).
  // Default: 64.
  int max_streams_per_principal = 64;
  // Explain calls per second one principal may make (a token bucket holding
  // explain_burst_per_principal); more are RESOURCE_EXHAUSTED with a retry pushback. 0 = no
  // limit. Default: 0.
  double explain_rate_per_principal = 0;
  int explain_burst_per_principal = 20;
  // Serve gRPC server reflection (grpc.reflection.v1alpha), which needs no credentials. Default:
  // true.
  bool reflection = true;
  // Log format: "text" or "json". Default: text.
  std::string log_format = "text";
  // Log level: trace, debug, info, warn, error. Default: info.
  std::string log_level = "info";

  // Whether calls must authenticate (auth_tokens or tls_client_ca set).
  bool AuthEnabled() const { return !auth_tokens.empty() || !tls_client_ca.empty(); }

  // InvalidArgument naming the option ("--listen: ...") when a value is out of range.
  absl::Status Validate() const;
};

}  // namespace attattr::server
