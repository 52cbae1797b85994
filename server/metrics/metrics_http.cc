// cpp-httplib glue for MetricsHttpServer (see metrics_http.h): the listening socket, a
// httplib::Stream over a connection HttpListener has read the head of (replaying that head, then
// writing under the response deadline), and one catch-all pre-routing handler that dispatches
// /metrics, /healthz and the added prefixes, so httplib's own routes, file mounts and error pages
// never run. HTTPS when HttpListener has a TlsContext (reads and writes through its session); no
// files served from disk. Why not civetweb: it starts workers with a fixed
// 100 KiB stack, which our libraries' static TLS (openblas + glog + torch) outgrows, so its
// pthread_create fails with EINVAL; these are std::threads. Thread-safety: requests run on the
// listener's workers; the handler table has its own mutex.
#include "metrics/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
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

// A bound, listening socket for `address` (SO_REUSEADDR only: SO_REUSEPORT would let a second
// server bind a port that is already in use instead of failing), or the reason it cannot be.
absl::StatusOr<int> CreateListenSocket(const ListenAddress& address) {
  const int fd = socket(address.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(std::strerror(errno));
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
  if (rc != 0 || listen(fd, 128) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    return absl::UnavailableError(why);
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  return addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                    : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

// Carries HttpConnection::peer_identity from Serve to the handler (see Serve).
constexpr char kPeerIdentityHeader[] = "X-Attattr-Verified-Client-Identity";

// Responses allow no scripts, frames, forms or network resources: reports are self-contained
// pages with inline CSS and SVG.
constexpr char kContentSecurityPolicy[] =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

// A connection whose head HttpListener has read: reads replay that head (httplib asks for no
// more: every request is answered before a body would be read); writes wait for the socket at
// most until the response deadline, which never resets.
// `head` without its Range header lines. Every answer here is whole: httplib would build a
// multipart body of one copy of the response per range asked for (thousands fit in a head, on any
// path, without credentials), and parse the list with a recursive std::regex first.
std::string WithoutRangeHeaders(const std::string& head) {
  const size_t end = head.find("\r\n\r\n");
  const size_t headers_end = end == std::string::npos ? head.size() : end + 2;
  std::string out;
  out.reserve(head.size());
  size_t line = 0;
  while (line < headers_end) {
    size_t next = head.find('\n', line);
    next = next == std::string::npos || next >= headers_end ? headers_end : next + 1;
    const absl::string_view text(head.data() + line, next - line);
    const size_t colon = text.find(':');
    const bool range =
        line > 0 && colon != absl::string_view::npos &&
        absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(text.substr(0, colon)), "range");
    if (!range) out.append(text.data(), text.size());
    line = next;
  }
  out.append(head, headers_end, std::string::npos);
  return out;
}

class ConnectionStream : public httplib::Stream {
 public:
  explicit ConnectionStream(const HttpConnection& connection)
      : c_(connection), head_(WithoutRangeHeaders(connection.head)) {}

  bool is_readable() const override { return read_ < head_.size(); }
  bool is_writable() const override { return Wait(POLLOUT); }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, head_.size() - read_);
    std::memcpy(ptr, head_.data() + read_, n);
    read_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    size_t written = 0;
    while (written < size) {
      if (c_.ssl != nullptr) {
        ERR_clear_error();
        const int n = SSL_write(c_.ssl.get(), ptr + written,
                                static_cast<int>(std::min<size_t>(size - written, 1 << 30)));
        if (n > 0) {
          written += static_cast<size_t>(n);
          continue;
        }
        const int error = SSL_get_error(c_.ssl.get(), n);
        if (error == SSL_ERROR_WANT_WRITE && Wait(POLLOUT)) continue;
        if (error == SSL_ERROR_WANT_READ && Wait(POLLIN)) continue;
        ERR_clear_error();
        return -1;
      }
      const ssize_t n = send(c_.fd, ptr + written, size - written, MSG_NOSIGNAL);
      if (n > 0) {
        written += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!Wait(POLLOUT)) return -1;
      } else {
        return -1;
      }
    }
    return static_cast<ssize_t>(written);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.peer_ip;
    port = c_.peer_port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    char text[INET6_ADDRSTRLEN] = {};
    port = 0;
    if (getsockname(c_.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    if (addr.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
      port = ntohs(a->sin6_port);
    } else {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
      inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
      port = ntohs(a->sin_port);
    }
    ip = text;
  }
  socket_t socket() const override { return c_.fd; }

 private:
  // Whether the socket is ready for `events` (more bytes to send, or TLS records to read) before
  // the response deadline.
  bool Wait(short events) const {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        c_.write_deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{c_.fd, events, 0};
    int rc;
    do {
      rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
    } while (rc < 0 && errno == EINTR);
    return rc > 0 && (p.revents & events) != 0;
  }

  const HttpConnection& c_;
  const std::string head_;  // c_.head without Range headers
  size_t read_ = 0;
};

}  // namespace

// httplib::Server used for its request parsing and response writing only: HttpListener owns the
// sockets, so httplib's listen loop never runs.
class MetricsHttpServer::RequestProcessor : public httplib::Server {
 public:
  // httplib ends a chunked (streamed) body early when its own listening socket is unset ("the
  // server is shutting down"); it has none here, so it gets a descriptor number no file has,
  // never used for I/O and never closed, and gets it back unset before httplib's destructor runs.
  RequestProcessor() { svr_sock_ = std::numeric_limits<int>::max(); }
  ~RequestProcessor() override { svr_sock_ = INVALID_SOCKET; }

  // Parses the request on `connection`, runs the handlers and writes the answer ("Connection:
  // close": one request per connection).
  void Serve(const HttpConnection& connection) {
    ConnectionStream stream(connection);
    bool closed = false;
    // The verified client certificate's identity travels to the handler as a header set here, after
    // the client's headers are parsed (any copy the client sent is dropped first).
    // Runs on a WorkerPool thread, which must not throw (a bad_alloc would end the process): a
    // request that fails that way loses only its connection.
    try {
      process_request(stream, /*close_connection=*/true, closed,
                      [&connection](httplib::Request& req) {
                        req.headers.erase(kPeerIdentityHeader);
                        req.ranges.clear();  // whole answers only (WithoutRangeHeaders)
                        if (!connection.peer_identity.empty()) {
                          req.set_header(kPeerIdentityHeader, connection.peer_identity);
                        }
                      });
    } catch (const std::exception&) {
      // Nothing more can be sent; the listener closes the connection.
    }
  }
};

MetricsHttpServer::MetricsHttpServer(Registry* registry)
    : registry_(registry), processor_(std::make_unique<RequestProcessor>()) {}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, Registry* registry, const HttpListener::Options& limits,
    bool serve_metrics) {
  ATTATTR_ASSIGN_OR_RETURN(auto address, ParseListen(listen));
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer(registry));
  server->serve_metrics_ = serve_metrics;
  MetricsHttpServer* self = server.get();
  RequestProcessor& http = *server->processor_;
  http.set_payload_max_length(limits.max_head_bytes);
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
      request.authorization = req.get_header_value("Authorization");
      request.peer_identity = req.get_header_value(kPeerIdentityHeader);
      request.peer_ip = req.remote_addr;
      response = self->Dispatch(request);
    }
    res.status = response.status;
    res.set_header("Cache-Control", "no-store");
    res.set_header("Content-Security-Policy", kContentSecurityPolicy);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Referrer-Policy", "no-referrer");
    for (const auto& [name, value] : response.headers) res.set_header(name.c_str(), value);
    if (response.stream) {
      auto stream = std::move(response.stream);
      auto provider = [stream](size_t /*offset*/, httplib::DataSink& sink) {
        const bool whole = stream([&sink](absl::string_view piece) {
          return piece.empty() || sink.write(piece.data(), piece.size());
        });
        if (whole) sink.done();
        return whole;
      };
      // HTTP/1.1 clients get chunks, so a page cut short shows as incomplete; HTTP/1.0 has no
      // chunks, and the end of the connection ends the body.
      if (req.version == "HTTP/1.0") {
        res.set_content_provider(response.content_type, std::move(provider));
      } else {
        res.set_chunked_content_provider(response.content_type, std::move(provider));
      }
    } else {
      res.set_content(response.body, response.content_type.c_str());
    }
    return httplib::Server::HandlerResponse::Handled;
  });

  auto fd = CreateListenSocket(address);
  if (!fd.ok()) {
    return absl::UnavailableError(
        absl::StrCat("metrics_listen: cannot listen on ", listen, ": ", fd.status().message()));
  }
  server->port_ = BoundPort(*fd);
  ATTATTR_ASSIGN_OR_RETURN(
      server->listener_, HttpListener::Start(*fd, limits, [self](const HttpConnection& connection) {
        self->processor_->Serve(connection);
      }));
  return server;
}

MetricsHttpServer::~MetricsHttpServer() { listener_.reset(); }

void MetricsHttpServer::SetHealthCheck(HealthCheck check) {
  auto shared = std::make_shared<const HealthCheck>(std::move(check));
  absl::MutexLock lock(&mu_);
  health_ = std::move(shared);
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
  if (request.path == "/metrics" && serve_metrics_) {
    Response response;
    response.content_type = kTextContentType;
    response.body = SerializeText(registry_->Collect());
    return response;
  }
  if (request.path == "/healthz") {
    std::shared_ptr<const HealthCheck> check;
    {
      absl::MutexLock lock(&mu_);
      check = health_;
    }
    const absl::Status health = check != nullptr && *check ? (*check)() : absl::OkStatus();
    Response response;
    response.status = health.ok() ? 200 : 503;
    response.body = health.ok() ? "ok\n" : absl::StrCat(health.message(), "\n");
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
