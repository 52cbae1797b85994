// cpp-httplib glue for MetricsHttpServer (see metrics_http.h): one catch-all pre-routing handler
// that dispatches /metrics, /healthz and the added prefixes. No TLS, no files served from disk. Why
// not civetweb: it starts workers with a fixed 100 KiB stack, which our libraries' static TLS
// (openblas + glog + torch) outgrows, so its pthread_create fails with EINVAL; these are
// std::threads. Thread-safety: requests run on the server's worker threads; the handler table has
// its own mutex.
#include "metrics/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "httplib.h"

namespace attattr::metrics {
namespace {

struct ListenAddress {
  std::string host;  // numeric, without brackets: what httplib binds and the bind probe uses
  bool ipv6 = false;
  int port = 0;
};

absl::Status BadListen(const std::string& listen, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("metrics_listen: invalid address '", listen, "': ", why,
                   " (expected HOST:PORT, e.g. 0.0.0.0:9090 or 127.0.0.1:0)"));
}

absl::StatusOr<ListenAddress> ParseListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return BadListen(listen, "no ':PORT'");
  std::string host = listen.substr(0, colon);
  const std::string port_text = listen.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    return BadListen(listen, "port is not a number");
  }
  ListenAddress out;
  out.port = std::atoi(port_text.c_str());
  if (out.port > 65535) return BadListen(listen, "port is above 65535");
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    out.ipv6 = true;
    host = host.substr(1, host.size() - 2);
    in6_addr addr6;
    if (inet_pton(AF_INET6, host.c_str(), &addr6) != 1) {
      return BadListen(listen, "not an IPv6 address");
    }
  } else {
    in_addr addr;
    if (inet_pton(AF_INET, host.c_str(), &addr) != 1) {
      return BadListen(listen, "host is not an IPv4 address, [IPv6] or localhost");
    }
  }
  out.host = host;
  return out;
}

// httplib reports only false / -1 from bind; bind once ourselves to learn why.
std::string BindFailureReason(const ListenAddress& address) {
  const int fd = socket(address.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::strerror(errno);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int rc;
  if (address.ipv6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(static_cast<uint16_t>(address.port));
    inet_pton(AF_INET6, address.host.c_str(), &sa.sin6_addr);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(address.port));
    inet_pton(AF_INET, address.host.c_str(), &sa.sin_addr);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  const int bind_errno = errno;
  close(fd);
  return rc == 0 ? "cpp-httplib could not listen" : std::strerror(bind_errno);
}

// SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which would let a second server bind
// a port that is already in use instead of failing.
void ListenSocketOptions(int fd) {
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(Registry* registry)
    : registry_(registry), http_(std::make_unique<httplib::Server>()) {}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, Registry* registry) {
  ATTATTR_ASSIGN_OR_RETURN(auto address, ParseListen(listen));
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer(registry));
  MetricsHttpServer* self = server.get();
  httplib::Server& http = *server->http_;

  http.new_task_queue = [] { return new httplib::ThreadPool(4); };
  http.set_socket_options(&ListenSocketOptions);
  http.set_keep_alive_max_count(1);  // one request per connection, "Connection: close"
  http.set_read_timeout(10, 0);
  http.set_write_timeout(10, 0);
  http.set_payload_max_length(64 * 1024);
  // Every request is answered here, so httplib's own routes, file mounts and error pages never run.
  http.set_pre_routing_handler([self](const httplib::Request& req, httplib::Response& res) {
    Response response;
    if (req.method != "GET" && req.method != "HEAD") {
      response.status = 405;
      response.body = "only GET and HEAD are supported\n";
      res.set_header("Allow", "GET, HEAD");
    } else {
      Request request;
      request.path = req.path.empty() ? "/" : req.path;
      const size_t question = req.target.find('?');
      if (question != std::string::npos) request.query = req.target.substr(question + 1);
      response = self->Dispatch(request);
    }
    res.status = response.status;
    res.set_header("Cache-Control", "no-store");
    res.set_content(response.body, response.content_type.c_str());
    return httplib::Server::HandlerResponse::Handled;
  });

  if (address.port == 0) {
    server->port_ = http.bind_to_any_port(address.host);
  } else if (http.bind_to_port(address.host, address.port)) {
    server->port_ = address.port;
  } else {
    server->port_ = -1;
  }
  if (server->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("metrics_listen: cannot listen on ", listen, ": ",
                                               BindFailureReason(address)));
  }

  // A std::thread gets the default (8 MiB) stack, and so do the ThreadPool workers it starts.
  server->listener_ = std::thread([self] {
    self->http_->listen_after_bind();
    self->listener_done_ = true;
  });
  // The socket already listens (connections queue in its backlog); wait until the accept loop runs
  // so that the destructor's stop() is never lost.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!http.is_running() && !server->listener_done_) {
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::InternalError(
          absl::StrCat("metrics_listen: ", listen, ": the HTTP server did not start within 5 s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (server->listener_done_ && !http.is_running()) {
    return absl::InternalError(
        absl::StrCat("metrics_listen: ", listen, ": the HTTP server stopped right after starting"));
  }
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (!listener_.joinable()) return;
  // stop() only acts on a running server and must be called once (it asserts a live socket): it
  // shuts the listening socket down, which wakes accept() at once; listen_after_bind() then joins
  // its workers, each finishing its current request.
  while (!listener_done_) {
    if (http_->is_running()) {
      http_->stop();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  listener_.join();
}

absl::Status MetricsHttpServer::AddHandler(const std::string& prefix, Handler handler) {
  if (prefix.empty() || prefix[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("handler prefix '", prefix, "' must start with '/'"));
  }
  if (prefix == "/metrics" || prefix == "/healthz") {
    return absl::InvalidArgumentError(absl::StrCat("handler prefix '", prefix, "' is built in"));
  }
  if (!handler) return absl::InvalidArgumentError("handler is empty");
  absl::MutexLock lock(&mu_);
  if (handlers_.count(prefix) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("a handler for '", prefix, "' already exists"));
  }
  handlers_.emplace(prefix, std::make_shared<const Handler>(std::move(handler)));
  return absl::OkStatus();
}

MetricsHttpServer::Response MetricsHttpServer::Dispatch(const Request& request) {
  if (request.path == "/metrics") {
    Response response;
    response.content_type = kTextContentType;
    response.body = SerializeText(registry_->Collect());
    return response;
  }
  if (request.path == "/healthz") {
    Response response;
    response.body = "ok\n";
    return response;
  }
  std::shared_ptr<const Handler> handler;
  {
    absl::MutexLock lock(&mu_);
    size_t best = 0;
    for (const auto& [prefix, candidate] : handlers_) {
      const bool matches = request.path.compare(0, prefix.size(), prefix) == 0 &&
                           (request.path.size() == prefix.size() || prefix.back() == '/' ||
                            request.path[prefix.size()] == '/');
      if (matches && prefix.size() > best) {
        best = prefix.size();
        handler = candidate;
      }
    }
  }
  if (handler != nullptr) return (*handler)(request);
  Response response;
  response.status = 404;
  response.body = absl::StrCat("not found: ", request.path, "\n");
  return response;
}

}  // namespace attattr::metrics
