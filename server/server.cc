// Server assembly and lifecycle (see server.h).
#include "server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attattr/base/host_resources.h"
#include "attattr/base/loopback_address.h"
#include "attattr/base/status_macros.h"
#include "attattr/engine/precision.h"
#include "attattr/engine/runtime.h"
#include "engine_parallelism.h"
#include "job_report_http.h"
#include "jobs/job_convert.h"
#include "jobs/job_kinds.h"
#include "malformed_request.h"
#include "measured_job_store.h"
#include "store/postgres_job_store.h"
#include "store/shard_store.h"
#include "store/sqlite_job_store.h"

namespace attattr::server {
namespace {

// The store pool: threads running GetJob/ListJobs/CancelJob/DeleteJob's store calls, and how many
// such calls may wait for one (more are RESOURCE_EXHAUSTED). SQLite serializes writers, so more
// threads would only queue inside the store.
constexpr int kStoreWorkers = 4;
constexpr int kMaxPendingStoreCalls = 256;

// Stored result chunks stay under 1 MiB with the ResultChunk framing around them.
constexpr int64_t kResultChunkBytes = (int64_t{1} << 20) - 4096;

// This process's name in job leases: host name (the pod's on Kubernetes), pid, random suffix.
std::string DefaultReplicaName() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  uint32_t suffix = 0;
  if (getrandom(&suffix, sizeof(suffix), 0) != static_cast<ssize_t>(sizeof(suffix))) {
    suffix = static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return absl::StrFormat("%s-%d-%08x", host, getpid(), suffix);
}

// The gRPC port's credentials: TLS from the PEM files, re-read by gRPC's file watcher every
// tls_reload_seconds (mTLS with a client CA: certificates required and verified), else plain text.
std::shared_ptr<grpc::ServerCredentials> GrpcCredentials(const ServerConfig& config) {
  if (config.tls_cert.empty()) return grpc::InsecureServerCredentials();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      config.tls_key, config.tls_cert, config.tls_client_ca,
      static_cast<unsigned int>(config.tls_reload_seconds));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (config.tls_client_ca.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerConfig& config,
                                                      std::shared_ptr<spdlog::logger> log) {
  ATTATTR_RETURN_IF_ERROR(config.Validate());
  auto server = std::unique_ptr<Server>(new Server(config, std::move(log)));
  // 1 while the latest version of a re-read file could not be used and the previous one is kept:
  // a rotated certificate or a revoked token that did not take effect is worth an alert.
  auto& reload_failed = metrics::BuildGauge()
                            .Name("attattr_config_reload_failed")
                            .Help(
                                "1 while a changed file (TLS, auth tokens) does not load and "
                                "its previous version stays in use")
                            .Register(server->registry_);
  server->tls_reload_failed_ = &reload_failed.Add({{"file", "tls"}});
  server->tokens_reload_failed_ = &reload_failed.Add({{"file", "auth_tokens"}});
  metrics::HttpListener::Options http_options;
  if (!config.tls_cert.empty()) {
    // Loaded now, so a missing or mismatched file fails the start with its name (gRPC's own file
    // watcher, below, would only log it).
    const EventLog* log = &server->log_;
    metrics::Gauge* failed = server->tls_reload_failed_;
    ATTATTR_ASSIGN_OR_RETURN(
        server->tls_,
        metrics::TlsContext::Open({config.tls_cert, config.tls_key, config.tls_client_ca},
                                  [log, failed](const absl::Status& s) {
                                    failed->Set(s.ok() ? 0 : 1);
                                    if (s.ok()) {
                                      log->Info("TLS files re-read: new connections use them");
                                    } else {
                                      log->Error(
                                          "TLS files changed but do not load; keeping the "
                                          "previous ones",
                                          {{"error", s.message()}});
                                    }
                                  }));
    http_options.tls = server->tls_;
  }
  // /metrics comes up first, so a scrape shows the process while models load.
  if (!config.metrics_listen.empty()) {
    ATTATTR_ASSIGN_OR_RETURN(
        auto http,
        metrics::MetricsHttpServer::Start(config.metrics_listen, &server->registry_, http_options));
    server->metrics_http_ = std::move(http);
    // /healthz (liveness) says what grpc.health.v1's "" says: 503 while models load and while
    // draining; /readyz (readiness) what "attattr.v1.Attattr" says: also 503 while the job store
    // is unreachable (a database outage takes replicas out of the Service, it does not restart
    // them).
    Server* self = server.get();
    server->metrics_http_->SetHealthCheck([self] { return self->Liveness(); });
    ATTATTR_RETURN_IF_ERROR(server->metrics_http_->AddHandler(
        "/readyz", [self](const metrics::MetricsHttpServer::Request&) {
          metrics::MetricsHttpServer::Response response;
          absl::Status ready = self->Liveness();
          if (ready.ok() && !self->store_reachable_.load()) {
            ready = absl::UnavailableError("the job store is unreachable");
          }
          response.status = ready.ok() ? 200 : 503;
          response.body = ready.ok() ? "ok\n" : absl::StrCat(ready.message(), "\n");
          return response;
        }));
    server->log_.Info("serving Prometheus metrics",
                      {{"port", server->metrics_http_->port()},
                       {"scheme", config.tls_cert.empty() ? "http" : "https"}});
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
  engine::LoadOptions load;
  load.device = config.device;
  load.weights = config.weights;
  if (const std::string warning =
          engine::EmulatedBf16Warning(config.default_precision, config.weights);
      config.device == "cpu" && !warning.empty()) {
    server->log_.Warn("bf16 on a CPU without bf16 arithmetic", {{"why", warning}});
  }
  ATTATTR_ASSIGN_OR_RETURN(auto models, ModelRegistry::Load(config.models_dir, load));
  server->models_ = std::move(models);
  for (const auto& name : server->models_->Names()) {
    const auto& info = (*server->models_->Find(name))->info();
    server->log_.Info("model loaded",
                      {{"model", name},
                       {"layers", info.num_layers},
                       {"heads", info.num_heads},
                       {"hidden", info.hidden_size},
                       {"max_length", info.max_length},
                       {"head", info.has_classifier ? "classifier" : "encoder-only"},
                       {"weights", std::string(engine::PrecisionName(info.weights))},
                       {"weight_mib", info.weight_bytes >> 20}});
  }
  ATTATTR_RETURN_IF_ERROR(server->StartJobs());
  // HTML job reports on their own port (--report-listen) or beside /metrics, served on the HTTP
  // server's threads (job_report_http.h), with the same credentials as gRPC.
  metrics::MetricsHttpServer* reports = server->metrics_http_.get();
  if (!config.report_listen.empty()) {
    ATTATTR_ASSIGN_OR_RETURN(server->report_http_, metrics::MetricsHttpServer::Start(
                                                       config.report_listen, &server->registry_,
                                                       http_options, /*serve_metrics=*/false));
    reports = server->report_http_.get();
    server->log_.Info("serving job reports", {{"port", reports->port()}});
  }
  if (reports != nullptr && config.tls_cert.empty() && !config.auth_tokens.empty()) {
    const std::string& listen =
        config.report_listen.empty() ? config.metrics_listen : config.report_listen;
    if (!IsLoopbackAddress(listen)) {
      server->log_.Warn(
          "job reports are served over plain HTTP on a non-loopback address: bearer tokens and "
          "reports cross the network unencrypted; use --tls-cert/--tls-key, or a service mesh's "
          "mTLS",
          {{"listen", listen}});
    }
  }
  if (reports != nullptr) {
    ATTATTR_RETURN_IF_ERROR(reports->AddHandler(
        kJobReportPrefix, MakeJobReportHandler(*server->store_, JobReportAccess{server->auth_.get(),
                                                                                &server->log_})));
  }

  grpc::EnableDefaultHealthCheckService(true);
  // Reflection is a process-wide plugin in gRPC: once on, every server built in the process has it.
  if (config.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes));
  builder.AddListeningPort(config.listen, GrpcCredentials(config), &server->port_);
  if (config.tls_cert.empty() && !IsLoopbackAddress(config.listen)) {
    server->log_.Warn(
        "the gRPC port is plain text on a non-loopback address: calls, texts, results and bearer "
        "tokens cross the network unencrypted; use --tls-cert/--tls-key, or a service mesh's mTLS",
        {{"listen", config.listen}});
  }
  if (config.AuthEnabled()) {
    server->log_.Info("callers authenticate",
                      {{"bearer_tokens", config.auth_tokens.empty() ? "off" : "on"},
                       {"client_certificates", config.tls_client_ca.empty() ? "off" : "on"},
                       {"admins", config.admin_principals.size()}});
  } else {
    server->log_.Warn(
        "authentication is off: every caller is the administrator \"anonymous\" and sees every "
        "job (--auth-tokens, --tls-client-ca)");
  }
  builder.RegisterService(server->service_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<MalformedRequestInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->grpc_ = builder.BuildAndStart();
  if (server->grpc_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("--listen: cannot listen on ", config.listen, " (in use or not local?)"));
  }
  {
    absl::MutexLock lock(&server->health_mu_);
    server->SetServing(true);
  }
  server->scheduler_->Start();
  server->phase_ = Phase::kServing;
  server->WatchStoreHealth();
  server->log_.Info("serving attattr.v1.Attattr", {{"port", server->port_}});
  return server;
}

absl::StatusOr<std::unique_ptr<store::JobStore>> Server::OpenJobStore() {
  const auto with_flag = [](const absl::Status& status) {
    return absl::Status(status.code(), absl::StrCat("--store: ", status.message()));
  };
  if (!store::IsPostgresUri(config_.store)) {
    store::SqliteJobStoreOptions options;
    options.path = config_.store;
    options.result_chunk_bytes = kResultChunkBytes;
    auto opened = store::SqliteJobStore::Open(options);
    if (!opened.ok()) return with_flag(opened.status());
    log_.Info("job store opened", {{"store", config_.store}});
    return std::unique_ptr<store::JobStore>(std::move(*opened));
  }
  store::PostgresJobStoreOptions options;
  options.uri = config_.store;
  options.connections = config_.store_connections;
  options.result_chunk_bytes = kResultChunkBytes;
  if (!config_.store_password_file.empty()) {
    std::ifstream file(config_.store_password_file, std::ios::binary);
    std::string password((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (!file.good() && !file.eof()) {
      return absl::FailedPreconditionError(
          absl::StrCat("--store-password-file: cannot read '", config_.store_password_file, "'"));
    }
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
      password.pop_back();
    }
    options.password = std::move(password);
  }
  auto opened = store::PostgresJobStore::Open(options);
  if (!opened.ok()) return with_flag(opened.status());
  log_.Info("job store opened",
            {{"store", store::RedactUri(config_.store)},
             {"schema", (*opened)->schema_change().empty() ? std::string("current")
                                                           : (*opened)->schema_change()}});
  return std::unique_ptr<store::JobStore>(std::move(*opened));
}

absl::Status Server::StartJobs() {
  ATTATTR_ASSIGN_OR_RETURN(auto opened, OpenJobStore());
  store_ = std::make_unique<MeasuredJobStore>(std::move(opened), *metrics_);
  timers_ = std::make_unique<TimerQueue>();
  store_timers_ = std::make_unique<TimerQueue>();

  AuthOptions auth;
  auth.tokens_path = config_.auth_tokens;
  auth.client_certificates = !config_.tls_client_ca.empty();
  auth.admins = config_.admin_principals;
  auth.exporters = config_.export_principals;
  auth.dataset_readers = config_.dataset_principals;
  auth.max_user_priority = config_.max_user_priority;
  const EventLog* log = &log_;
  metrics::Gauge* failed = tokens_reload_failed_;
  auth.on_token_reload = [log, failed](const absl::Status& s, size_t entries) {
    failed->Set(s.ok() ? 0 : 1);
    if (s.ok()) {
      log->Info("auth tokens re-read", {{"tokens", entries}});
    } else {
      log->Error("auth token file changed but does not parse; keeping the previous tokens",
                 {{"tokens", entries}, {"error", s.message()}});
    }
  };
  ATTATTR_ASSIGN_OR_RETURN(auth_, Authenticator::Create(auth));
  explain_limiter_ = std::make_unique<PrincipalRateLimiter>(config_.explain_rate_per_principal,
                                                            config_.explain_burst_per_principal);

  // Engine workers and each one's intra-op threads, chosen together (0 = auto).
  const EngineParallelism parallelism = ChooseEngineParallelism(
      config_.workers, config_.intra_op_threads, config_.OnCuda(),
      {config_.EffectiveCpus(), UsableMemoryBytes()}, config_.memory_budget_bytes);
  AttributionBatcher::Options batch;
  batch.workers = parallelism.workers;
  batch.intra_op_threads = parallelism.intra_op_threads;
  batch.max_examples = config_.EffectiveBatchMaxExamples();
  batch.max_delay = std::chrono::microseconds(config_.batch_max_delay_us);
  batch.max_pending = config_.max_pending_explains;
  // With authentication one principal's Explain calls hold at most a quarter of the waiting places,
  // so its flood of calls cannot refuse every other tenant's (as on the validation queue).
  batch.max_pending_per_owner =
      auth_->enabled() ? std::max(1, config_.max_pending_explains / 4) : 0;
  log_.Info("engine workers started",
            {{"workers", batch.workers},
             {"intra_op_threads", batch.intra_op_threads},
             {"why", parallelism.reason},
             {"job_threads", engine::IntraOpThreads()},
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
  observer.on_lease_takeover = [metrics] { metrics->LeaseTakeovers().Increment(); };
  job_kinds_ = std::make_unique<JobKinds>(JobKindDeps{*models_, config_, *batcher_, *metrics_});
  {
    // Every job kind and RPC method, for the counters' series created at 0.
    std::vector<std::string> kinds, methods;
    for (v1::JobKind kind : {v1::ATTRIBUTION, v1::HEAD_IMPORTANCE, v1::TRIGGER_SEARCH}) {
      kinds.push_back(JobKindName(kind));
    }
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            v1::Attattr::service_full_name());
    for (int i = 0; service != nullptr && i < service->method_count(); ++i) {
      methods.push_back(service->method(i)->name());
    }
    metrics_->DeclareSeries(kinds, methods);
  }
  JobExecutor executor = job_kinds_->Executor();
  JobScheduler::Options scheduling;
  scheduling.runners = config_.job_runners;
  scheduling.max_queued = config_.max_queued_jobs;
  scheduling.max_attempts = config_.max_job_attempts;
  scheduling.max_stored_bytes_per_owner = config_.max_stored_bytes_per_principal;
  scheduling.max_queued_per_owner = config_.max_queued_jobs_per_principal;
  scheduling.max_running_per_owner = config_.max_running_jobs_per_principal;
  scheduling.holder = config_.replica_name.empty() ? DefaultReplicaName() : config_.replica_name;
  scheduling.lease = std::chrono::seconds(config_.lease_seconds);
  scheduling.heartbeat = std::chrono::seconds(config_.heartbeat_seconds);
  scheduling.sharding = job_kinds_->Sharding();
  scheduler_ = std::make_unique<JobScheduler>(*store_, events_, std::move(executor), scheduling,
                                              std::move(observer), log_);
  ATTATTR_RETURN_IF_ERROR(scheduler_->Recover());
  store::ChangeCallbacks changes;
  changes.on_change = [this](const std::string& id) { OnStoreChange(id); };
  changes.on_work = [this] { scheduler_->Wake(); };
  changes.on_resync = [this] { OnStoreResync(); };
  if (store_->SubscribeChanges(std::move(changes))) {
    log_.Info("shared job store: following other replicas' changes",
              {{"replica", scheduling.holder}});
  }

  // What a scrape reads is in memory; the gauges read from the store (queued jobs, shards) are
  // set by WatchStoreHealth, never during a scrape.
  JobScheduler* scheduler = scheduler_.get();
  AttributionBatcher* batcher = batcher_.get();
  metrics::Gauge& item_depth = metrics_->QueueDepth("attribution_items");
  metrics::Gauge& running = metrics_->JobsRunning();
  collect_callbacks_.push_back(
      registry_.AddCollectCallback([&item_depth, &running, scheduler, batcher] {
        item_depth.Set(batcher->Pending());
        running.Set(scheduler->Running());
      }));

  // Callers take turns on the validation queue (worker_pool.h): principals, or addresses without
  // authentication. With authentication one principal also holds at most a quarter of it; without,
  // there are no tenants to keep apart (one client's 32 concurrent submissions must all queue).
  validation_pool_ = std::make_unique<WorkerPool>(
      config_.validation_workers, config_.max_pending_validations,
      auth_->enabled() ? std::max(1, config_.max_pending_validations / 4) : 0);
  // The store pool likewise: with authentication one principal's flood of job calls holds at most
  // a quarter of its queue, so it cannot refuse every other tenant's calls (or cut their result
  // downloads short).
  store_pool_ = std::make_unique<WorkerPool>(kStoreWorkers, kMaxPendingStoreCalls,
                                             auth_->enabled() ? kMaxPendingStoreCalls / 4 : 0);
  streams_ = std::make_unique<StreamSlots>(config_.max_streams_per_principal);
  service_ = std::make_unique<AttattrService>(ServiceDeps{
      config_, *models_, *batcher_, *job_kinds_, *validation_pool_, *store_pool_, *scheduler_,
      *store_, events_, *timers_, *metrics_, log_, *auth_, *explain_limiter_, *streams_});
  SchedulePeriodicWork();
  return absl::OkStatus();
}

void Server::OnStoreChange(const std::string& id) {
  // The scheduler needs the job's state and lease, not its spec (up to megabytes, read by every
  // replica on every change otherwise). Watchers get whole records, so they are published only
  // when someone here watched the job before the read; one who subscribes later reads the job
  // itself after subscribing (job_streams.cc), and misses nothing.
  const bool watched = events_.HasSubscribers(id);
  absl::StatusOr<store::JobRecord> record = store_->Get(id, /*include_spec=*/watched);
  if (record.ok()) {
    if (watched) events_.Publish(*record);
    scheduler_->OnStoreChange(id, *record);
  } else if (absl::IsNotFound(record.status())) {
    store::JobRecord gone;
    gone.id = id;
    events_.Publish(gone, JobEvents::Kind::kDeleted);
    scheduler_->OnStoreChange(id, std::nullopt);
  }
}

void Server::OnStoreResync() {
  log_.Info("job store change stream is back; re-reading the jobs waited on");
  scheduler_->Wake();
  for (const std::string& id : events_.SubscribedJobs()) OnStoreChange(id);
}

absl::Status Server::Liveness() const {
  switch (phase_.load()) {
    case Phase::kStarting:
      return absl::UnavailableError("starting: loading models");
    case Phase::kDraining:
      return absl::UnavailableError("draining: shutting down");
    default:
      return absl::OkStatus();
  }
}

void Server::SetServing(bool serving) {
  auto* health = grpc_->GetHealthCheckService();
  const bool api_serving = serving && store_reachable_.load();
  health->SetServingStatus("", serving);
  health->SetServingStatus("attattr.v1.Attattr", api_serving);
  metrics_->Serving("").Set(serving ? 1 : 0);
  metrics_->Serving("attattr.v1.Attattr").Set(api_serving ? 1 : 0);
}

void Server::WatchStoreHealth() {
  std::array<metrics::Gauge*, store::kShardStateCount> shard_gauges{};
  for (int i = 0; i < store::kShardStateCount; ++i) {
    shard_gauges[i] = &metrics_->Shards(store::ShardStateName(static_cast<store::ShardState>(i)));
  }
  metrics::Gauge& job_depth = metrics_->QueueDepth("jobs");
  Every(*store_timers_, std::chrono::seconds(1), [this, shard_gauges, &job_depth] {
    absl::StatusOr<store::QueueCounts> queued = store_->CountQueued("");
    const absl::Status answered = queued.status();
    const bool reachable = answered.ok();
    metrics_->StoreUp().Set(reachable ? 1 : 0);
    if (reachable) job_depth.Set(static_cast<double>(queued->queued));
    if (store::ShardStore* shards = store_->shards(); reachable && shards != nullptr) {
      if (auto counts = shards->CountShards(); counts.ok()) {
        for (int i = 0; i < store::kShardStateCount; ++i) shard_gauges[i]->Set((*counts)[i]);
      }
    }
    if (reachable == store_reachable_.exchange(reachable)) return;
    absl::MutexLock lock(&health_mu_);
    if (phase_.load() != Phase::kServing) return;
    SetServing(true);
    if (reachable) {
      log_.Info("job store reachable again: attattr.v1.Attattr SERVING");
    } else {
      log_.Error(
          "job store unreachable: attattr.v1.Attattr NOT_SERVING (and /readyz 503) until it "
          "answers",
          {{"error", answered.message()}});
    }
  });
}

void Server::Every(TimerQueue& timers, std::chrono::milliseconds period,
                   std::function<void()> work) {
  timers.Schedule(std::chrono::steady_clock::now() + period,
                  [this, &timers, period, work = std::move(work)]() mutable {
                    work();
                    Every(timers, period, std::move(work));
                  });
}

void Server::SchedulePeriodicWork() {
  // The retention sweep: every tenth of the retention, at most hourly and at least every second.
  const auto sweep_period = std::chrono::milliseconds(
      std::clamp<int64_t>(config_.retention_seconds * 100, 1000, 3600 * 1000));
  Every(*store_timers_, sweep_period, [this] {
    auto expired = store_->ExpireResults(store_->NowMs(), config_.retention_seconds * 1000);
    if (!expired.ok()) {
      log_.Warn("retention sweep failed", {{"error", expired.status().message()}});
    } else if (*expired > 0) {
      log_.Info("retention: deleted finished jobs",
                {{"jobs", *expired}, {"retention_seconds", int64_t{config_.retention_seconds}}});
    }
  });
  // New versions of the token file and the HTTP ports' TLS files, read here on the timer thread so
  // no call and no accept ever waits on a file (gRPC's own file watcher covers the gRPC port).
  if (!config_.auth_tokens.empty()) {
    Every(*timers_, std::chrono::seconds(1), [this] { auth_->ReloadTokensIfChanged(); });
  }
  if (tls_ != nullptr) {
    Every(*timers_, std::chrono::seconds(config_.tls_reload_seconds),
          [this] { tls_->ReloadIfChanged(); });
  }
}

Server::~Server() {
  if (grpc_) Shutdown(std::chrono::milliseconds(0));
  if (validation_pool_) validation_pool_->Stop();
  if (store_pool_) store_pool_->Stop();  // finishes the calls it holds
  grpc_.reset();
  service_.reset();
  validation_pool_.reset();
  store_pool_.reset();
  report_http_.reset();
  metrics_http_.reset();
  gpu_collector_.reset();
  for (auto id : collect_callbacks_) registry_.RemoveCollectCallback(id);
  store_timers_.reset();  // the store watch and sweep use the store and the health service
  timers_.reset();
  if (store_) store_->StopChanges();  // its callbacks use the scheduler and the events
  scheduler_.reset();                 // stops running jobs (re-queued) before the batcher goes
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
  {
    absl::MutexLock lock(&health_mu_);
    SetServing(false);
  }
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
