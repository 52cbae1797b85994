// Server: owns everything one attattr-server process runs — config, loaded models, the job store,
// the dynamic batcher (engine workers), the job scheduler, the gRPC server with the Attattr
// service, grpc.health.v1 and reflection, /metrics — and its lifecycle: NOT_SERVING while models
// load, SERVING once ready, NOT_SERVING again while draining. No globals: tests build several
// Servers in one process. Start/Shutdown from one thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "attattr/base/worker_pool.h"
#include "attattr_service.h"
#include "attribution_batcher.h"
#include "auth/authenticator.h"
#include "auth/rate_limiter.h"
#include "event_log.h"
#include "jobs/job_events.h"
#include "jobs/job_kinds.h"
#include "jobs/job_scheduler.h"
#include "metrics/gpu_memory_collector.h"
#include "metrics/metrics.h"
#include "metrics/metrics_http.h"
#include "metrics/process_collector.h"
#include "metrics/tls_context.h"
#include "model_registry.h"
#include "server_config.h"
#include "service_metrics.h"
#include "spdlog/logger.h"
#include "store/job_store.h"
#include "timer_queue.h"

namespace attattr::server {

class Server {
 public:
  // Validates the config, loads the models, opens the job store (re-queueing jobs a crash
  // interrupted) and starts listening. Logs through `logger` (MakeLogger) as config.log_format
  // says. The models are loaded before the port opens, so a client that can connect sees SERVING.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerConfig& config,
                                                       std::shared_ptr<spdlog::logger> log);
  ~Server();

  // The gRPC port actually bound (useful with port 0).
  int port() const { return port_; }
  // The /metrics HTTP port actually bound; 0 when --metrics-listen is empty.
  int metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }
  // The job reports' HTTP port: --report-listen's, else the metrics port.
  int report_port() const { return report_http_ ? report_http_->port() : metrics_port(); }
  // Graceful drain: health goes NOT_SERVING, new Explain calls and jobs are refused (UNAVAILABLE),
  // running jobs get `grace` to finish and are then stopped and re-queued in the store (they run
  // after the next start), WaitJob/WatchJob calls end with UNAVAILABLE, in-flight Explain calls
  // finish. Then the gRPC server stops.
  void Shutdown(std::chrono::milliseconds grace);
  // Blocks until Shutdown completes.
  void Wait();

 private:
  Server(const ServerConfig& config, std::shared_ptr<spdlog::logger> logger)
      : config_(config), log_(std::move(logger), config.log_format) {}
  absl::Status StartJobs();
  // The --store: an SqliteJobStore for a file, a PostgresJobStore for a postgresql:// URI.
  absl::StatusOr<std::unique_ptr<store::JobStore>> OpenJobStore();
  // Runs `work` on `timers`' thread every `period`, until those timers stop.
  void Every(TimerQueue& timers, std::chrono::milliseconds period, std::function<void()> work);
  // The retention sweep (store_timers_) and the re-reads of the token and TLS files (timers_).
  void SchedulePeriodicWork();
  // Every second (store_timers_): whether the job store answers — health is NOT_SERVING while it
  // does not — and the queue and shard gauges, read from the store here so that a scrape of
  // /metrics never waits on the store (a slow database would otherwise fail the scrape and take
  // every metric, attattr_store_up included, with it).
  void WatchStoreHealth();
  // Another process changed job `id` in the shared store: the waiters here hear of it, and the
  // scheduler (a cancelled job running here stops, a queued one is claimed).
  void OnStoreChange(const std::string& id);
  // The store's change stream was interrupted: re-read what is waited on, look for work.
  void OnStoreResync();
  // Sets grpc.health.v1: "" (liveness) to `serving`, attattr.v1.Attattr (readiness) to `serving`
  // while the job store answers.
  void SetServing(bool serving) ABSL_EXCLUSIVE_LOCKS_REQUIRED(health_mu_);
  // What /healthz and grpc.health.v1's "" say: starting, serving or draining.
  absl::Status Liveness() const;

  const ServerConfig config_;
  const EventLog log_;
  // Declaration order is construction order; destruction runs in reverse: the gRPC server and
  // service go first, then the submit pool (its tasks finish calls), the scheduler (which stops
  // running jobs), the job kinds and the batcher (which the scheduler's jobs use), the timers,
  // the events and the store; the HTTP server and collectors before the registry they read.
  metrics::Registry registry_;
  // attattr_config_reload_failed{file}: owned by registry_.
  metrics::Gauge* tls_reload_failed_ = nullptr;
  metrics::Gauge* tokens_reload_failed_ = nullptr;
  std::unique_ptr<metrics::ProcessCollector> process_collector_;
  std::unique_ptr<metrics::GpuMemoryCollector> gpu_collector_;  // null without an NVIDIA driver
  std::unique_ptr<ServiceMetrics> metrics_;
  std::vector<metrics::Registry::CallbackId> collect_callbacks_;
  std::shared_ptr<metrics::TlsContext> tls_;  // the HTTP ports' TLS; null without --tls-cert
  std::unique_ptr<metrics::MetricsHttpServer> metrics_http_;
  std::unique_ptr<ModelRegistry> models_;
  std::unique_ptr<store::JobStore> store_;
  JobEvents events_;
  std::unique_ptr<TimerQueue> timers_;
  // The periodic work that calls the store (its health probe, the gauges read from it, the
  // retention sweep), on a thread of its own: a store that hangs never delays timers_' deadlines
  // (WaitJob timeouts, the token and TLS file re-reads).
  std::unique_ptr<TimerQueue> store_timers_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<PrincipalRateLimiter> explain_limiter_;
  std::unique_ptr<metrics::MetricsHttpServer> report_http_;  // --report-listen; reads store_, auth_
  std::unique_ptr<AttributionBatcher> batcher_;
  std::unique_ptr<JobKinds> job_kinds_;
  std::unique_ptr<JobScheduler> scheduler_;
  std::unique_ptr<WorkerPool> validation_pool_;
  std::unique_ptr<WorkerPool> store_pool_;
  // Before service_ and grpc_: the stream reactors give their slots back as gRPC lets them go.
  std::unique_ptr<StreamSlots> streams_;
  std::unique_ptr<AttattrService> service_;
  std::unique_ptr<grpc::Server> grpc_;
  int port_ = 0;
  bool shut_down_ = false;
  // What /healthz reports (the same as grpc.health.v1): read on the HTTP server's threads.
  enum class Phase { kStarting, kServing, kDraining };
  std::atomic<Phase> phase_{Phase::kStarting};
  std::atomic<bool> store_reachable_{true};
  // Serialises the health changes of the store watch and of Shutdown.
  absl::Mutex health_mu_;
};

}  // namespace attattr::server
