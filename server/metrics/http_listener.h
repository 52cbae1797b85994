// HttpListener: the socket side of the server's HTTP port. It accepts connections and reads each
// request's head (request line and headers) on one poll() thread, within fixed bounds, before any
// worker sees it: a head must arrive whole within `head_timeout` of the accept (a deadline that
// never resets, however slowly the client trickles bytes) and fit in `max_head_bytes`. Only
// complete heads reach the `workers`, through a queue of at most `max_queued`; slow or oversized
// clients therefore hold a poll slot, never a worker, and /healthz keeps answering beside them.
// One peer (an address; an IPv6 /64) has at most `max_dispatched_per_peer` heads queued or being
// answered, so a client that never reads its answers holds that many workers, not all of them.
// Connections past the limits (too many open, too many from one peer, a full queue) get a short
// 503 and are closed; a late head gets 408, an oversized one 431.
//
// With a TlsContext (Options::tls) every connection is TLS: the handshake runs on the same poll
// thread, non-blocking, inside the same never-reset head deadline (a client that stalls the
// handshake is closed like one that stalls its head); the head read is the decrypted one, and the
// verified client certificate's identity (if any) comes with it.
//
// Why not cpp-httplib's own listener: its read timeout restarts on every byte received, it buffers
// a header line of any length before checking it, and its thread pool's queue is unbounded (the
// hardening review's findings). cpp-httplib still parses and answers each request
// (metrics_http.cc); this class only decides which connections get that far. Thread-safety: the
// callback runs on the worker threads, several at once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "attattr/base/worker_pool.h"
#include "metrics/tls_context.h"

namespace attattr::metrics {

// One connection whose request head has arrived. Owns the socket (closed by the listener after the
// callback returns); the socket is non-blocking.
struct HttpConnection {
  int fd = -1;
  std::string peer_ip;
  int peer_port = 0;
  std::string head;  // everything read so far: the head, maybe the start of a body
  // The TLS session on `fd` (null without TLS): reads and writes go through it.
  std::shared_ptr<SSL> ssl;
  // CertificateIdentity of the client certificate the handshake verified; "" when none was sent.
  std::string peer_identity;
  // When the response must be written by (HttpListener::Options::response_timeout from dispatch).
  std::chrono::steady_clock::time_point write_deadline;
};

class HttpListener {
 public:
  struct Options {
    int workers = 8;
    int max_queued = 64;                // complete heads waiting for a worker
    int max_connections = 512;          // connections still sending their head
    int max_connections_per_peer = 64;  // of those, from one peer address
    int max_dispatched_per_peer = 4;    // complete heads of one peer queued or being answered
    size_t max_head_bytes = 16 * 1024;  // request line + headers
    std::chrono::milliseconds head_timeout{5000};       // from accept; never reset
    std::chrono::milliseconds response_timeout{30000};  // writing the response, from dispatch
    std::shared_ptr<TlsContext> tls;                    // null: plain HTTP
  };
  // Runs on a worker for each complete head; writes the response to the connection.
  using Handler = std::function<void(const HttpConnection& connection)>;

  // Takes ownership of `listen_fd` (bound and listening) and starts the poll thread and workers.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(int listen_fd, const Options& options,
                                                             Handler handler);
  // Closes the listening socket and every connection whose head has not arrived, serves the heads
  // already queued (each bounded by response_timeout), and joins every thread.
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

 private:
  struct Pending;  // a connection still sending its head
  // What ends a pending connection's wait: nothing yet, its whole head, too large, gone.
  enum class Outcome { kWaiting, kComplete, kTooLarge, kGone };
  HttpListener(int listen_fd, int wake_fd, const Options& options, Handler handler);
  void PollLoop();
  // Advances `p`'s handshake and reads what has arrived (into `buffer` first), without blocking.
  Outcome ReadHead(Pending& p, char* buffer, size_t size);
  // After an SSL_accept or SSL_read that returned `rc` without progress: kWaiting (with `events`
  // set to what the session waits for) or kGone.
  static Outcome TlsWait(SSL* ssl, int rc, short* events);
  // Hands a complete head to the workers, or answers 503 when max_queued already wait or the
  // peer `peer_key` has max_dispatched_per_peer in the workers' hands.
  void Dispatch(HttpConnection connection, const std::string& peer_key);

  const int listen_fd_;
  const int wake_fd_;  // eventfd: wakes the poll thread to stop
  const Options options_;
  const Handler handler_;
  std::atomic<bool> stopping_{false};
  absl::Mutex dispatched_mu_;
  std::map<std::string, int> dispatched_ ABSL_GUARDED_BY(dispatched_mu_);  // by peer key
  WorkerPool workers_;
  std::thread poller_;
};

// Writes a minimal "HTTP/1.1 <status> <reason>" answer without blocking (best effort: a client
// that does not read loses it; through the TLS session when there is one) and closes the socket.
void RefuseConnection(const HttpConnection& connection, int status);

}  // namespace attattr::metrics
