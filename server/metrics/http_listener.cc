// HttpListener (see http_listener.h): accept and head reading on one poll() thread, serving on a
// WorkerPool. poll() rather than epoll: at most max_connections + 2 descriptors, rebuilt each turn,
// which is simpler and costs microseconds at these sizes.
#include "metrics/http_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <list>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"

namespace attattr::metrics {

struct HttpListener::Pending {
  HttpConnection connection;
  std::chrono::steady_clock::time_point deadline;
  bool handshake_done = false;  // always true without TLS
  short events = POLLIN;        // what the connection waits for (TLS may need to write)
  // What the per-peer limit counts: the address, or an IPv6 address's /64 (one host holds a
  // whole /64, and could otherwise open max_connections_per_peer from each of its addresses).
  std::string peer_key;
};

namespace {

using Clock = std::chrono::steady_clock;

// How long accepting pauses when the process is out of descriptors or memory.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

const char* Reason(int status) {
  switch (status) {
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// The end of a request head ("\r\n\r\n", or "\n\n" from lenient clients), searched from `from`.
bool HeadComplete(const std::string& bytes, size_t from) {
  const size_t start = from >= 3 ? from - 3 : 0;
  return bytes.find("\r\n\r\n", start) != std::string::npos ||
         bytes.find("\n\n", start) != std::string::npos;
}

void PeerOf(const sockaddr_storage& addr, HttpConnection* connection, std::string* key) {
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
    connection->peer_port = ntohs(a->sin6_port);
    if (!IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      in6_addr prefix = a->sin6_addr;
      std::fill(prefix.s6_addr + 8, prefix.s6_addr + 16, 0);
      char network[INET6_ADDRSTRLEN] = {};
      inet_ntop(AF_INET6, &prefix, network, sizeof(network));
      connection->peer_ip = text;
      *key = absl::StrCat(network, "/64");
      return;
    }
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    connection->peer_port = ntohs(a->sin_port);
  }
  connection->peer_ip = text;
  *key = text;
}

}  // namespace

void RefuseConnection(const HttpConnection& connection, int status) {
  const std::string answer = absl::StrCat("HTTP/1.1 ", status, " ", Reason(status),
                                          "\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  if (connection.ssl != nullptr) {
    (void)SSL_write(connection.ssl.get(), answer.data(), static_cast<int>(answer.size()));
    (void)SSL_shutdown(connection.ssl.get());
  } else {
    (void)send(connection.fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  shutdown(connection.fd, SHUT_RDWR);
  close(connection.fd);
}

HttpListener::HttpListener(int listen_fd, int wake_fd, const Options& options, Handler handler)
    : listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      options_(options),
      handler_(std::move(handler)),
      workers_(options.workers, options.max_queued) {}

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(int listen_fd,
                                                                  const Options& options,
                                                                  Handler handler) {
  if (options.workers < 1 || options.max_queued < 1 || options.max_connections < 1 ||
      options.max_connections_per_peer < 1 || options.max_dispatched_per_peer < 1 ||
      options.max_head_bytes < 64) {
    close(listen_fd);
    return absl::InvalidArgumentError("HttpListener: every limit must be positive");
  }
  const int flags = fcntl(listen_fd, F_GETFL, 0);
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0 || wake_fd < 0) {
    const std::string why = std::strerror(errno);
    close(listen_fd);
    if (wake_fd >= 0) close(wake_fd);
    return absl::InternalError(absl::StrCat("HttpListener: ", why));
  }
  std::unique_ptr<HttpListener> listener(
      new HttpListener(listen_fd, wake_fd, options, std::move(handler)));
  HttpListener* self = listener.get();
  listener->poller_ = std::thread([self] { self->PollLoop(); });
  return listener;
}

HttpListener::~HttpListener() {
  stopping_ = true;
  const uint64_t one = 1;
  (void)write(wake_fd_, &one, sizeof(one));
  if (poller_.joinable()) poller_.join();
  workers_.Stop();  // serves what was queued, then joins
  close(wake_fd_);
}

void HttpListener::Dispatch(HttpConnection connection, const std::string& peer_key) {
  connection.write_deadline = Clock::now() + options_.response_timeout;
  {
    absl::MutexLock lock(&dispatched_mu_);
    int& from_peer = dispatched_[peer_key];
    if (from_peer >= options_.max_dispatched_per_peer) {
      RefuseConnection(connection, 503);
      return;
    }
    ++from_peer;
  }
  auto done = [this, peer_key] {
    absl::MutexLock lock(&dispatched_mu_);
    auto it = dispatched_.find(peer_key);
    if (it != dispatched_.end() && --it->second == 0) dispatched_.erase(it);
  };
  auto shared = std::make_shared<HttpConnection>(std::move(connection));
  const bool queued = workers_.TrySchedule([this, shared, done] {
    handler_(*shared);
    if (shared->ssl != nullptr) (void)SSL_shutdown(shared->ssl.get());  // close_notify, best effort
    shutdown(shared->fd, SHUT_RDWR);
    close(shared->fd);
    done();
  });
  if (!queued) {
    RefuseConnection(*shared, 503);
    done();
  }
}

HttpListener::Outcome HttpListener::TlsWait(SSL* ssl, int rc, short* events) {
  const int error = SSL_get_error(ssl, rc);
  if (error == SSL_ERROR_WANT_READ) return Outcome::kWaiting;
  if (error == SSL_ERROR_WANT_WRITE) {
    *events = POLLOUT;
    return Outcome::kWaiting;
  }
  ERR_clear_error();
  return Outcome::kGone;
}

HttpListener::Outcome HttpListener::ReadHead(Pending& p, char* buffer, size_t size) {
  HttpConnection& c = p.connection;
  SSL* ssl = c.ssl.get();
  p.events = POLLIN;
  if (!p.handshake_done) {
    ERR_clear_error();
    const int rc = SSL_accept(ssl);
    // Not done: waiting for the client, or a failed handshake (wrong protocol, a refused
    // certificate, ...).
    if (rc != 1) return TlsWait(ssl, rc, &p.events);
    p.handshake_done = true;
    X509* certificate = SSL_get0_peer_certificate(ssl);
    if (certificate != nullptr && SSL_get_verify_result(ssl) == X509_V_OK) {
      c.peer_identity = CertificateIdentity(certificate);
    }
  }
  for (;;) {
    const size_t room = std::min(options_.max_head_bytes + 1 - c.head.size(), size);
    ssize_t n;
    if (ssl != nullptr) {
      ERR_clear_error();
      const int rc = SSL_read(ssl, buffer, static_cast<int>(room));
      if (rc <= 0) return TlsWait(ssl, rc, &p.events);
      n = rc;
    } else {
      n = recv(c.fd, buffer, room, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Outcome::kWaiting;
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Outcome::kGone;  // the client went away (0) or the socket failed
    }
    const size_t before = c.head.size();
    c.head.append(buffer, static_cast<size_t>(n));
    // (bytes after the head are the start of a body, unread)
    if (HeadComplete(c.head, before)) return Outcome::kComplete;
    if (c.head.size() > options_.max_head_bytes) return Outcome::kTooLarge;
  }
}

void HttpListener::PollLoop() {
  std::list<Pending> pending;
  std::map<std::string, int> per_peer;  // pending connections by Pending::peer_key
  std::vector<pollfd> fds;
  std::vector<std::list<Pending>::iterator> polled;  // fds[i + 2] <-> polled[i]
  char buffer[4096];

  auto forget = [&per_peer](const Pending& p) {
    auto it = per_peer.find(p.peer_key);
    if (it != per_peer.end() && --it->second == 0) per_peer.erase(it);
  };

  // While the process is out of descriptors, new connections wait in the backlog: accept() would
  // fail at once, and polling the listening socket would spin.
  Clock::time_point accept_again = Clock::time_point::min();
  while (!stopping_) {
    fds.clear();
    polled.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    const bool accepting = Clock::now() >= accept_again;
    fds.push_back({listen_fd_, static_cast<short>(accepting ? POLLIN : 0), 0});
    Clock::time_point next_deadline = accepting ? Clock::time_point::max() : accept_again;
    for (auto it = pending.begin(); it != pending.end(); ++it) {
      fds.push_back({it->connection.fd, it->events, 0});
      polled.push_back(it);
      next_deadline = std::min(next_deadline, it->deadline);
    }
    int timeout_ms = -1;
    if (next_deadline != Clock::time_point::max()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(next_deadline - Clock::now());
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left.count() + 1));
    }
    const int ready = poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) break;
    if (stopping_) break;

    // Heads arriving: read what is there; dispatch a complete head; refuse an oversized one.
    for (size_t i = 0; ready > 0 && i < polled.size(); ++i) {
      if (fds[i + 2].revents == 0) continue;
      auto it = polled[i];
      const Outcome outcome = ReadHead(*it, buffer, sizeof(buffer));
      if (outcome == Outcome::kWaiting) continue;
      forget(*it);
      HttpConnection& c = it->connection;
      if (outcome == Outcome::kComplete) {
        Dispatch(std::move(c), it->peer_key);
      } else if (outcome == Outcome::kTooLarge) {
        RefuseConnection(c, 431);
      } else {
        close(c.fd);
      }
      pending.erase(it);
    }

    // Heads that did not arrive in time.
    const auto now = Clock::now();
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->deadline > now) {
        ++it;
        continue;
      }
      RefuseConnection(it->connection, 408);
      forget(*it);
      it = pending.erase(it);
    }

    // New connections, each with its head deadline; past the limits, refused at once.
    if ((fds[1].revents & POLLIN) != 0) {
      for (;;) {
        sockaddr_storage addr{};
        socklen_t len = sizeof(addr);
        const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          // EAGAIN: accepted all. Out of descriptors or memory: pause accepting for a moment.
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            accept_again = Clock::now() + kAcceptBackoff;
          }
          break;  // anything else: try on the next turn
        }
        Pending p;
        p.connection.fd = fd;
        PeerOf(addr, &p.connection, &p.peer_key);
        p.deadline = Clock::now() + options_.head_timeout;
        int& from_peer = per_peer[p.peer_key];
        if (static_cast<int>(pending.size()) >= options_.max_connections ||
            from_peer >= options_.max_connections_per_peer) {
          if (from_peer == 0) per_peer.erase(p.peer_key);
          if (options_.tls != nullptr) {
            close(fd);  // no HTTP can be spoken before a handshake
          } else {
            RefuseConnection(p.connection, 503);
          }
          continue;
        }
        if (options_.tls != nullptr) {
          std::shared_ptr<SSL_CTX> ctx = options_.tls->Current();
          p.connection.ssl.reset(SSL_new(ctx.get()), SSL_free);
          if (p.connection.ssl == nullptr || SSL_set_fd(p.connection.ssl.get(), fd) != 1) {
            if (from_peer == 0) per_peer.erase(p.peer_key);
            close(fd);
            continue;
          }
        } else {
          p.handshake_done = true;
        }
        ++from_peer;
        pending.push_back(std::move(p));
      }
    }
  }
  for (auto& p : pending) close(p.connection.fd);
  close(listen_fd_);
}

}  // namespace attattr::metrics
