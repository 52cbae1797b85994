// gRPC call helpers of the CLI (see grpc_call.h).
#include "grpc_call.h"

#include <chrono>

namespace attattr::client {

std::unique_ptr<v1::Attattr::Stub> NewAttattrStub(const std::string& server) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  return v1::Attattr::NewStub(
      grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args));
}

void SetCallDeadline(grpc::ClientContext* ctx, double seconds, int64_t extra_ms) {
  if (!(seconds > 0)) return;
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(extra_ms) +
                    std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
}

void AddDeadlineFlag(CLI::App* cmd, double* seconds, const std::string& help_extra) {
  cmd->add_option("--deadline-seconds,--deadline", *seconds,
                  "Seconds each call to the server may take (0 = no limit)" + help_extra)
      ->capture_default_str();
}

}  // namespace attattr::client
