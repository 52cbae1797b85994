// See malformed_request.h.
#include "malformed_request.h"

#include <google/protobuf/descriptor.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace attattr::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

// "/attattr.v1.Attattr/Explain" -> "attattr.v1.ExplainRequest"; "" when the method is unknown.
std::string RequestTypeOf(absl::string_view method) {
  if (method.empty() || method.front() != '/') return "";
  method.remove_prefix(1);
  const size_t slash = method.find('/');
  if (slash == absl::string_view::npos) return "";
  const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
      std::string(method.substr(0, slash)));
  if (service == nullptr) return "";
  const auto* rpc = service->FindMethodByName(std::string(method.substr(slash + 1)));
  return rpc == nullptr ? "" : rpc->input_type()->full_name();
}

class MalformedRequestInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit MalformedRequestInterceptor(const char* method) : method_(method ? method : "") {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      malformed_ = true;
    }
    if (malformed_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        !methods->GetSendStatus().ok()) {
      const std::string type = RequestTypeOf(method_);
      if (!type.empty()) {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("request: not a valid ", type,
                         " (malformed protobuf bytes, or a string field that is not UTF-8)")));
      }
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  bool malformed_ = false;
};

}  // namespace

grpc::experimental::Interceptor* MalformedRequestInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MalformedRequestInterceptor(info->method());
}

}  // namespace attattr::server
