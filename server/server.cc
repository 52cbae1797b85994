// Server assembly and lifecycle (see server.h).
#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"

namespace attattr::server {

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerConfig& config,
                                                      std::shared_ptr<spdlog::logger> log) {
  if (auto s = config.Validate(); !s.ok()) return s;
  auto server = std::unique_ptr<Server>(new Server(config, std::move(log)));
  // /metrics comes up first, so a scrape shows the process while models load.
  if (!config.metrics_listen.empty()) {
    auto http = metrics::MetricsHttpServer::Start(config.metrics_listen, &server->registry_);
    if (!http.ok()) return http.status();
    server->metrics_http_ = std::move(*http);
    server->log_->info("serving Prometheus metrics on port {}", server->metrics_http_->port());
  }
  server->log_->info("loading models from {}", config.models_dir);
  auto models = ModelRegistry::Load(config.models_dir);
  if (!models.ok()) return models.status();
  server->models_ = std::move(*models);
  for (const auto& name : server->models_->Names()) {
    const auto& info = (*server->models_->Find(name))->info();
    server->log_->info("model {}: {} layers x {} heads, hidden {}, max length {}, {}", name,
                       info.num_layers, info.num_heads, info.hidden_size, info.max_length,
                       info.has_classifier ? "classifier" : "encoder-only");
  }
  server->workers_ = std::make_unique<WorkerPool>(config.workers, config.max_pending_explains);
  auto collector = metrics::ProcessCollector::Register(&server->registry_);
  if (!collector.ok()) return collector.status();
  server->process_collector_ = std::move(*collector);
  server->metrics_ = std::make_unique<ServiceMetrics>(server->registry_);
  metrics::Gauge& explain_depth = server->metrics_->QueueDepth("explain");
  WorkerPool* workers = server->workers_.get();
  server->queue_callback_ = server->registry_.AddCollectCallback(
      [&explain_depth, workers] { explain_depth.Set(workers->Pending()); });
  server->service_ = std::make_unique<AttattrService>(server->config_, *server->models_,
                                                      *server->workers_, *server->metrics_,
                                                      server->log_);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
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
  server->log_->info("serving attattr.v1.Attattr on port {}", server->port_);
  return server;
}

Server::~Server() {
  if (grpc_) Shutdown(std::chrono::milliseconds(0));
  metrics_http_.reset();
  if (queue_callback_ != 0) registry_.RemoveCollectCallback(queue_callback_);
  workers_.reset();  // joins workers before the service and models go away
}

void Server::Shutdown(std::chrono::milliseconds grace) {
  if (!grpc_) return;
  log_->info("draining: health NOT_SERVING, grace {} ms", grace.count());
  auto* health = grpc_->GetHealthCheckService();
  health->SetServingStatus("", false);
  health->SetServingStatus("attattr.v1.Attattr", false);
  grpc_->Shutdown(std::chrono::system_clock::now() + grace);
}

void Server::Wait() {
  if (grpc_) grpc_->Wait();
}

}  // namespace attattr::server
