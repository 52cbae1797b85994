// The attattr.v1.Attattr gRPC service (callback API): handlers validate, convert and hand engine
// work to the WorkerPool; they never run the engine on a reaction thread. Implemented today:
// ListModels, GetModel, Explain. The job RPCs answer UNIMPLEMENTED until the scheduler and job store
// are wired in. Thread-safe: one instance serves every call.
#pragma once

#include <chrono>
#include <memory>

#include "attattr/v1/attattr_service.grpc.pb.h"
#include "server/model_registry.h"
#include "server/server_config.h"
#include "server/service_metrics.h"
#include "server/worker_pool.h"
#include "spdlog/logger.h"

namespace attattr::server {

class AttattrService final : public v1::Attattr::CallbackService {
 public:
  // Borrows everything; the owner (Server) outlives the service.
  AttattrService(const ServerConfig& config, const ModelRegistry& models, WorkerPool& workers,
                 ServiceMetrics& metrics, std::shared_ptr<spdlog::logger> log)
      : config_(config), models_(models), workers_(workers), metrics_(metrics), log_(std::move(log)) {}

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx,
                                     const v1::GetModelRequest* request,
                                     v1::Model* response) override;
  grpc::ServerUnaryReactor* Explain(grpc::CallbackServerContext* ctx,
                                    const v1::ExplainRequest* request,
                                    v1::ExplainResponse* response) override;

 private:
  // Writes the access-log line, records the RPC metrics and finishes the reactor.
  void FinishRpc(const char* method, grpc::CallbackServerContext* ctx,
                 std::chrono::steady_clock::time_point start, grpc::ServerUnaryReactor* reactor,
                 const grpc::Status& status);

  const ServerConfig& config_;
  const ModelRegistry& models_;
  WorkerPool& workers_;
  ServiceMetrics& metrics_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace attattr::server
