// Server: owns everything one attattr-server process runs — config, loaded models, worker pool,
// gRPC server with the Attattr service, grpc.health.v1 and reflection — and its lifecycle:
// NOT_SERVING while models load, SERVING once ready, NOT_SERVING again while draining.
// No globals: tests build several Servers in one process. Start/Shutdown from one thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/attattr_service.h"
#include "server/metrics/metrics.h"
#include "server/metrics/metrics_http.h"
#include "server/metrics/process_collector.h"
#include "server/service_metrics.h"
#include "server/model_registry.h"
#include "server/server_config.h"
#include "server/worker_pool.h"
#include "spdlog/logger.h"

namespace attattr::server {

class Server {
 public:
  // Validates the config, loads the models and starts listening. The health service reports
  // NOT_SERVING until the models are loaded (they are loaded before the port opens, so a client
  // that can connect sees SERVING).
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerConfig& config,
                                                       std::shared_ptr<spdlog::logger> log);
  ~Server();

  // The gRPC port actually bound (useful with port 0).
  int port() const { return port_; }
  // The /metrics HTTP port actually bound; 0 when --metrics-listen is empty.
  int metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }
  // Health goes NOT_SERVING, new calls are refused, running calls get up to `grace` to finish.
  void Shutdown(std::chrono::milliseconds grace);
  // Blocks until Shutdown completes.
  void Wait();

 private:
  Server(const ServerConfig& config, std::shared_ptr<spdlog::logger> log)
      : config_(config), log_(std::move(log)) {}

  const ServerConfig config_;
  std::shared_ptr<spdlog::logger> log_;
  // Declaration order is destruction order in reverse: the HTTP server and collectors go before
  // the registry they read.
  metrics::Registry registry_;
  std::unique_ptr<metrics::ProcessCollector> process_collector_;
  std::unique_ptr<ServiceMetrics> metrics_;
  metrics::Registry::CallbackId queue_callback_ = 0;
  std::unique_ptr<metrics::MetricsHttpServer> metrics_http_;
  std::unique_ptr<ModelRegistry> models_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<AttattrService> service_;
  std::unique_ptr<grpc::Server> grpc_;
  int port_ = 0;
};

}  // namespace attattr::server
