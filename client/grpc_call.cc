// gRPC call helpers of the CLI (see grpc_call.h). The bearer token goes on every call through a
// client interceptor rather than gRPC's call credentials, which gRPC refuses to send over a plain
// channel (a loopback server, or one behind a service mesh's mTLS).
#include "grpc_call.h"

#include <grpcpp/support/client_interceptor.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "attattr/base/loopback_address.h"
#include "attattr/base/quote.h"

namespace attattr::client {
namespace {

absl::Status ReadFlagFile(const char* flag, const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf())) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  }
  *out = text.str();
  return absl::OkStatus();
}

// Adds `authorization: Bearer <token>` to each call's metadata.
class BearerInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit BearerInterceptor(const std::string& token) : value_("Bearer " + token) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", value_);
    }
    methods->Proceed();
  }

 private:
  const std::string value_;
};

class BearerInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerInterceptorFactory(std::string token) : token_(std::move(token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new BearerInterceptor(token_);
  }

 private:
  const std::string token_;
};

}  // namespace

absl::Status ChannelSecurity::Load() {
  if (tls_cert.empty() != tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key: give both or neither");
  }
  if (!tls_ca.empty()) {
    if (auto s = ReadFlagFile("--tls-ca", tls_ca, &ca_pem); !s.ok()) return s;
  }
  if (!tls_cert.empty()) {
    if (auto s = ReadFlagFile("--tls-cert", tls_cert, &cert_pem); !s.ok()) return s;
    if (auto s = ReadFlagFile("--tls-key", tls_key, &key_pem); !s.ok()) return s;
  }
  const char* source = "--token-file";
  if (!token_file.empty()) {
    if (auto s = ReadFlagFile("--token-file", token_file, &token); !s.ok()) return s;
  } else if (const char* env = std::getenv("ATTATTR_TOKEN"); env != nullptr) {
    token = env;
    source = "ATTATTR_TOKEN";
  } else {
    return absl::OkStatus();
  }
  if (!token.empty() && token.back() == '\n') token.pop_back();
  if (!token.empty() && token.back() == '\r') token.pop_back();
  if (token.empty())
    return absl::InvalidArgumentError(absl::StrCat(source, ": the token is empty"));
  for (unsigned char c : token) {
    if (c <= ' ' || c >= 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": the token must be printable ASCII without spaces"));
    }
  }
  return absl::OkStatus();
}

absl::Status ChannelSecurity::CheckTokenTransport(const std::string& server) const {
  if (token.empty() || UseTls() || plaintext_token || IsLoopbackAddress(server)) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "--server ", QuoteInput(server),
      ": refusing to send the bearer token (--token-file or ATTATTR_TOKEN) in plain text to a "
      "host that is not loopback, where anyone on the path could read it; connect with --tls or "
      "--tls-ca, or pass --plaintext-token inside a service mesh that encrypts for you"));
}

void AddChannelSecurityFlags(CLI::App* app, ChannelSecurity* security) {
  app->add_flag("--tls", security->tls, "Connect with TLS, trusting the system's CAs");
  app->add_option("--tls-ca", security->tls_ca, "Connect with TLS, trusting the CAs of this PEM");
  app->add_option("--tls-cert", security->tls_cert,
                  "PEM client certificate (mTLS), with --tls-key");
  app->add_option("--tls-key", security->tls_key, "PEM private key of --tls-cert");
  app->add_option("--tls-server-name", security->tls_server_name,
                  "The name the server's certificate must carry (when not the host of --server)");
  app->add_option("--token-file", security->token_file,
                  "File holding the bearer token sent on every call (else $ATTATTR_TOKEN)");
  app->add_flag("--plaintext-token", security->plaintext_token,
                "Send the token even over plain text to a host that is not loopback (only inside "
                "a service mesh that encrypts for you)");
}

std::shared_ptr<grpc::Channel> OpenChannel(const std::string& server,
                                           const ChannelSecurity& security) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (security.UseTls()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = security.ca_pem;
    ssl.pem_cert_chain = security.cert_pem;
    ssl.pem_private_key = security.key_pem;
    credentials = grpc::SslCredentials(ssl);
    if (!security.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(security.tls_server_name);
    }
  }
  if (security.token.empty()) return grpc::CreateCustomChannel(server, credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<BearerInterceptorFactory>(security.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(server, credentials, args,
                                                                 std::move(interceptors));
}

std::unique_ptr<v1::Attattr::Stub> NewAttattrStub(const std::string& server,
                                                  const ChannelSecurity& security) {
  return v1::Attattr::NewStub(OpenChannel(server, security));
}

std::string AccessDeniedMessage(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    return absl::StrCat("UNAUTHENTICATED: ", status.error_message(),
                        " (send a token with --token-file or ATTATTR_TOKEN, or a client "
                        "certificate with --tls-cert and --tls-key)");
  }
  if (status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    return absl::StrCat("PERMISSION_DENIED: ", status.error_message());
  }
  return "";
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
