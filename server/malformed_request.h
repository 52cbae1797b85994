// Answers a request whose bytes do not parse as the method's request message with
// INVALID_ARGUMENT naming that message. gRPC's callback handlers (1.51) drop the deserialization
// status and answer UNIMPLEMENTED with an empty message, which tells a caller with a broken encoder
// (or a string field that is not UTF-8) nothing; this server interceptor notices the missing
// request after the receive and rewrites the status the handler sends. Methods outside this
// process's protobuf descriptor pool keep gRPC's own answer.
#pragma once

#include <grpcpp/support/server_interceptor.h>

namespace attattr::server {

class MalformedRequestInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace attattr::server
