// Serves a metrics Registry over HTTP with cpp-httplib: GET /metrics (text format 0.0.4), GET
// /healthz, and GET handlers the owner adds by path prefix (HTML reports). It does not do TLS, auth
// or POST. Thread-safety: handlers run on the server's own worker threads; AddHandler may be called
// at any time from any thread; handlers must be thread-safe themselves. prometheus-cpp equivalent:
// prometheus::Exposer(listen).RegisterCollectable(registry).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "metrics/metrics.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace attattr::metrics {

class MetricsHttpServer {
 public:
  struct Request {
    std::string path;   // decoded, e.g. "/reports/job-1"
    std::string query;  // raw query string without '?', may be empty
  };
  struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };
  using Handler = std::function<Response(const Request& request)>;

  // Listens on `listen` ("HOST:PORT"; HOST an IPv4 literal, "localhost", "[IPv6]", or "" / "*" /
  // "0.0.0.0" for all interfaces; PORT 0 picks a free port, see port()). `registry` is not owned
  // and must outlive the server. A malformed address is InvalidArgument naming metrics_listen; an
  // address that cannot be bound (in use, not local) is Unavailable with the address and the
  // reason.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& listen,
                                                                  Registry* registry);
  // Stops accepting (closes the listening socket at once), waits for running handlers to finish,
  // then joins the listener thread.
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

 private:
  explicit MetricsHttpServer(Registry* registry);
  Response Dispatch(const Request& request);

  Registry* const registry_;
  std::unique_ptr<httplib::Server> http_;
  std::thread listener_;                    // runs http_->listen_after_bind()
  std::atomic<bool> listener_done_{false};  // set when listen_after_bind() returns
  int port_ = 0;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const Handler>> handlers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace attattr::metrics
