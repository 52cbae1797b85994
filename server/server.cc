// Server assembly and lifecycle (see server.h).
#include "server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "job_report_http.h"
#include "jobs/job_convert.h"
#include "jobs/job_kinds.h"
#include "store/sqlite_job_store.h"

namespace attattr::server {
namespace {

// Stored result chunks stay under 1 MiB with the ResultChunk framing around them.
constexpr int64_t kResultChunkBytes = (int64_t{1} << 20) - 4096;

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerConfig& config,
                                                      std::shared_ptr<spdlog::logger> log) {
  ATTATTR_RETURN_IF_ERROR(config.Validate());
  auto server = std::unique_ptr<Server>(new Server(config, std::move(log)));
  // /metrics comes up first, so a scrape shows the process while models load.
  if (!config.metrics_listen.empty()) {
    ATTATTR_ASSIGN_OR_RETURN(
        auto http, metrics::MetricsHttpServer::Start(config.metrics_listen, &server->registry_));
    server->metrics_http_ = std::move(http);
    // /healthz says what grpc.health.v1 says: 503 while models load and while draining.
    Server* self = server.get();
    server->metrics_http_->SetHealthCheck([self] {
      switch (self->phase_.load()) {
        case Phase::kStarting:
          return absl::UnavailableError("starting: loading models");
        case Phase::kDraining:
          return absl::UnavailableError("draining: shutting down");
        default:
          return absl::OkStatus();
      }
    });
    server->log_.Info("serving Prometheus metrics", {{"port", server->metrics_http_->port()}});
  }
  ATTATTR_ASSIGN_OR_RETURN(auto collector, metrics::ProcessCollector::Register(&server->registry_));
  server->process_collector_ = std::move(collector);
  ATTATTR_ASSIGN_OR_RETURN(auto gpu, metrics::GpuMemoryCollector::Register(&server->registry_));
  server->gpu_collector_ = std::move(gpu);
  if (server->gpu_collector_) {
    server->log_.Info("GPU memory metrics (NVML)",
                      {{"devices", server->gpu_collector_->device_count()}});
  }
  server->metrics_ = std::make_unique<ServiceMetrics>(server->registry_);

  server->log_.Info("loading models", {{"models_dir", config.models_dir}});
  ATTATTR_ASSIGN_OR_RETURN(
      auto models, ModelRegistry::Load(config.models_dir, engine::LoadOptions{config.device}));
  server->models_ = std::move(models);
  for (const auto& name : server->models_->Names()) {
    const auto& info = (*server->models_->Find(name))->info();
    server->log_.Info("model loaded",
                      {{"model", name},
                       {"layers", info.num_layers},
                       {"heads", info.num_heads},
                       {"hidden", info.hidden_size},
                       {"max_length", info.max_length},
                       {"head", info.has_classifier ? "classifier" : "encoder-only"}});
  }
  ATTATTR_RETURN_IF_ERROR(server->StartJobs());
  // HTML job reports beside /metrics, served on the HTTP server's threads (job_report_http.h).
  if (server->metrics_http_) {
    auto s =
        server->metrics_http_->AddHandler(kJobReportPrefix, MakeJobReportHandler(*server->store_));
    if (!s.ok()) return s;
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes));
  builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(server->service_.get());
  server->grpc_ = builder.BuildAndStart();
  if (server->grpc_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("--listen: cannot listen on ", config.listen, " (in use or not local?)"));
  }
  auto* health = server->grpc_->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus("attattr.v1.Attattr", true);
  server->scheduler_->Start();
  server->phase_ = Phase::kServing;
  server->log_.Info("serving attattr.v1.Attattr", {{"port", server->port_}});
  return server;
}

absl::Status Server::StartJobs() {
  store::SqliteJobStoreOptions store_options;
  store_options.path = config_.store_path;
  store_options.result_chunk_bytes = kResultChunkBytes;
  auto store = store::SqliteJobStore::Open(store_options);
  if (!store.ok()) {
    return absl::Status(store.status().code(), absl::StrCat("--store: ", store.status().message()));
  }
  store_ = std::move(*store);
  log_.Info("job store opened", {{"store", config_.store_path}});
  timers_ = std::make_unique<TimerQueue>();

  AttributionBatcher::Options batch;
  batch.workers = config_.workers;
  batch.max_examples = config_.EffectiveBatchMaxExamples();
  batch.max_delay = std::chrono::microseconds(config_.batch_max_delay_us);
  batch.max_pending = config_.max_pending_explains;
  log_.Info("engine workers started",
            {{"workers", batch.workers},
             {"device", config_.device},
             {"batch_max_examples", batch.max_examples},
             {"batch_max_delay_us", int64_t{config_.batch_max_delay_us}}});
  ServiceMetrics* metrics = metrics_.get();
  batcher_ = std::make_unique<AttributionBatcher>(
      batch, [metrics](int items) { metrics->RecordBatch(items); });

  JobObserver observer;
  observer.on_start = [metrics](const std::string& kind, double seconds) {
    metrics->RecordJobStart(kind, seconds);
  };
  observer.on_finish = [metrics](const std::string& kind, store::JobState state, double seconds) {
    metrics->RecordJobFinish(kind, store::JobStateName(state), seconds);
  };
  job_kinds_ = std::make_unique<JobKinds>(JobKindDeps{*models_, config_, *batcher_, *metrics_});
  JobExecutor executor = job_kinds_->Executor();
  JobScheduler::Options scheduling;
  scheduling.runners = config_.job_runners;
  scheduling.max_queued = config_.max_queued_jobs;
  scheduling.max_attempts = config_.max_job_attempts;
  scheduling.max_stored_bytes_per_owner = config_.max_stored_bytes_per_principal;
  scheduler_ = std::make_unique<JobScheduler>(*store_, events_, std::move(executor), scheduling,
                                              std::move(observer), log_);
  ATTATTR_RETURN_IF_ERROR(scheduler_->Recover());

  JobScheduler* scheduler = scheduler_.get();
  AttributionBatcher* batcher = batcher_.get();
  metrics::Gauge& job_depth = metrics_->QueueDepth("jobs");
  metrics::Gauge& item_depth = metrics_->QueueDepth("attribution_items");
  metrics::Gauge& running = metrics_->JobsRunning();
  collect_callbacks_.push_back(
      registry_.AddCollectCallback([&job_depth, &item_depth, &running, scheduler, batcher] {
        job_depth.Set(scheduler->QueueDepth());
        item_depth.Set(batcher->Pending());
        running.Set(scheduler->Running());
      }));

  validation_pool_ =
      std::make_unique<WorkerPool>(config_.validation_workers, config_.max_pending_validations);
  service_ = std::make_unique<AttattrService>(ServiceDeps{config_, *models_, *batcher_, *job_kinds_,
                                                          *validation_pool_, *scheduler_, *store_,
                                                          events_, *timers_, *metrics_, log_});
  ScheduleRetentionSweep();
  return absl::OkStatus();
}

void Server::ScheduleRetentionSweep() {
  // Every tenth of the retention, at most hourly and at least every second.
  const auto period = std::chrono::milliseconds(
      std::clamp<int64_t>(config_.retention_seconds * 100, 1000, 3600 * 1000));
  timers_->Schedule(std::chrono::steady_clock::now() + period, [this] {
    auto expired = store_->ExpireResults(UnixNowMs(), config_.retention_seconds * 1000);
    if (!expired.ok()) {
      log_.Warn("retention sweep failed", {{"error", expired.status().message()}});
    } else if (*expired > 0) {
      log_.Info("retention: deleted finished jobs",
                {{"jobs", *expired}, {"retention_seconds", int64_t{config_.retention_seconds}}});
    }
    ScheduleRetentionSweep();
  });
}

Server::~Server() {
  if (grpc_) Shutdown(std::chrono::milliseconds(0));
  if (validation_pool_) validation_pool_->Stop();
  grpc_.reset();
  service_.reset();
  validation_pool_.reset();
  metrics_http_.reset();
  gpu_collector_.reset();
  for (auto id : collect_callbacks_) registry_.RemoveCollectCallback(id);
  scheduler_.reset();  // stops running jobs (re-queued) before the batcher goes
  job_kinds_.reset();
  if (batcher_) batcher_->Stop();
  batcher_.reset();
  timers_.reset();
}

void Server::Shutdown(std::chrono::milliseconds grace) {
  if (!grpc_ || shut_down_) return;
  shut_down_ = true;
  phase_ = Phase::kDraining;
  const auto deadline = std::chrono::system_clock::now() + grace;
  log_.Info("draining: health NOT_SERVING", {{"grace_ms", int64_t{grace.count()}}});
  auto* health = grpc_->GetHealthCheckService();
  health->SetServingStatus("", false);
  health->SetServingStatus("attattr.v1.Attattr", false);
  service_->BeginDrain();
  validation_pool_
      ->Stop();  // submissions already taken are validated and queued (run after restart)
  scheduler_->Drain(grace);
  events_.StopAll();
  // In-flight Explain calls finish within what is left of the grace period.
  grpc_->Shutdown(std::max(deadline, std::chrono::system_clock::now() + std::chrono::seconds(1)));
}

void Server::Wait() {
  if (grpc_) grpc_->Wait();
}

}  // namespace attattr::server
