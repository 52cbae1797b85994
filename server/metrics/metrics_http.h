// Serves a metrics Registry over HTTP: GET /metrics (text format 0.0.4), GET /healthz (the owner's
// health check), and GET handlers the owner adds by path prefix (HTML reports). Connections are
// accepted and their heads read within bounds by HttpListener (http_listener.h); cpp-httplib
// parses and answers each complete request. Every answer carries Cache-Control: no-store and the
// security headers (a Content-Security-Policy that allows no scripts, frames or network
// resources; X-Content-Type-Options: nosniff; X-Frame-Options: DENY; Referrer-Policy:
// no-referrer). HTTPS when started with a TlsContext; handlers see the Authorization header and the
// verified client certificate's identity and decide on access themselves. No POST. Thread-safety:
// handlers run on the listener's worker threads, several at once; AddHandler and SetHealthCheck may
// be called at any time from any thread; handlers must be thread-safe themselves. prometheus-cpp
// equivalent: prometheus::Exposer(listen).RegisterCollectable(registry).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "metrics/http_listener.h"
#include "metrics/metrics.h"

namespace attattr::metrics {

class MetricsHttpServer {
 public:
  struct Request {
    std::string path;           // decoded, e.g. "/reports/job-1"
    std::string query;          // raw query string without '?', may be empty
    std::string authorization;  // the Authorization header, "" when absent
    std::string peer_identity;  // the verified client certificate's identity, "" when none
    std::string peer_ip;        // the client's address
  };
  // Sends one piece of a streamed body; false when the client is gone (stop writing).
  using BodyWriter = std::function<bool(absl::string_view piece)>;
  struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    // Extra response headers (e.g. WWW-Authenticate).
    std::vector<std::pair<std::string, std::string>> headers;
    // When set, the body is written by this instead, piece by piece as it is produced (chunked
    // transfer encoding), so a large page is never held whole; it returns false to abort.
    std::function<bool(const BodyWriter& write)> stream;
  };
  using Handler = std::function<Response(const Request& request)>;
  // OK: /healthz answers 200 "ok"; otherwise 503 with the status message.
  using HealthCheck = std::function<absl::Status()>;

  // Listens on `listen` ("HOST:PORT"; HOST an IPv4 literal, "localhost", "[IPv6]", or "" / "*" /
  // "0.0.0.0" for all interfaces; PORT 0 picks a free port, see port()). `registry` is not owned
  // and must outlive the server. A malformed address is InvalidArgument naming metrics_listen; an
  // address that cannot be bound (in use, not local) is Unavailable with the address and the
  // reason. `limits` bound connections, heads and queueing (HttpListener::Options).
  // With limits.tls set, the port speaks HTTPS only. `serve_metrics` false: /metrics is not served
  // here (a port for reports only; /healthz still is).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, Registry* registry, const HttpListener::Options& limits = {},
      bool serve_metrics = true);
  // Stops accepting (closes the listening socket at once), serves the requests already read,
  // then joins the listener's threads.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The bound port (the real one when Start was given port 0).
  int port() const { return port_; }

  // Serves GET/HEAD requests whose path is `prefix` or starts with `prefix` + "/" (a prefix ending
  // in
  // "/" matches everything under it); the longest matching prefix wins. `prefix` must start with
  // '/' and cannot be "/metrics" or "/healthz" (InvalidArgument); a prefix already added is
  // AlreadyExists.
  absl::Status AddHandler(const std::string& prefix, Handler handler);

  // What /healthz reports from now on. Until one is set, /healthz answers 200 "ok" (the process
  // is up and serving HTTP; the owner knows what else "healthy" means).
  void SetHealthCheck(HealthCheck check);

 private:
  class RequestProcessor;  // cpp-httplib's request parsing and response writing
  explicit MetricsHttpServer(Registry* registry);
  Response Dispatch(const Request& request);

  Registry* const registry_;
  bool serve_metrics_ = true;  // set by Start
  std::unique_ptr<RequestProcessor> processor_;
  int port_ = 0;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const Handler>> handlers_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const HealthCheck> health_ ABSL_GUARDED_BY(mu_);
  // Last: destroyed first, so no request runs once the rest goes.
  std::unique_ptr<HttpListener> listener_;
};

}  // namespace attattr::metrics
