// Tests MetricsHttpServer on loopback: /metrics content type and body over a real socket, /healthz,
// 404 and 405, extra handlers by prefix, streamed bodies, security headers, ephemeral ports and
// listen-address errors; and the hostile clients HttpListener bounds (regression tests for the
// hardening review): trickling and oversized heads, too many connections from one peer, a full
// queue, none of which may keep /healthz from answering.
// Thread-safety: the server serves on its own threads; the test only talks to it over sockets.
#include "metrics/metrics_http.h"

#include <openssl/x509v3.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "metrics/tls_context.h"
#include "support/http_get.h"
#include "support/test_certs.h"
#include "support/test_paths.h"

namespace attattr::metrics {
namespace {

using ::attattr::testing::HttpGet;
using ::attattr::testing::HttpResult;
using Clock = std::chrono::steady_clock;

// A raw loopback connection to `port` from `source` (any 127.x.y.z address), or -1.
int Connect(int port, const char* source = "127.0.0.1") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void SendText(int fd, const std::string& text) {
  (void)send(fd, text.data(), text.size(), MSG_NOSIGNAL);
}

// Everything the server sends until it closes the connection or `limit` passes.
std::string ReadUntilClosed(int fd, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  std::string out;
  const auto deadline = Clock::now() + limit;
  char buf[4096];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count()))) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Whether the server has closed `fd` (or answered and closed) within `limit`.
bool ClosedWithin(int fd, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  char buf[4096];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return true;
  }
  return false;
}

// A server on an ephemeral loopback port with `limits` (null, failing the test, when it cannot).
std::unique_ptr<MetricsHttpServer> StartServer(Registry& registry,
                                               const HttpListener::Options& limits) {
  auto server = MetricsHttpServer::Start("127.0.0.1:0", &registry, limits);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(*server) : nullptr;
}

// /healthz answers 200 within `limit`.
bool HealthyWithin(int port, std::chrono::milliseconds limit) {
  const auto before = Clock::now();
  const HttpResult health = HttpGet(port, "/healthz");
  return health.status == 200 && Clock::now() - before < limit;
}

TEST(MetricsHttpServerTest, ServesMetricsAndHealth) {
  Registry registry;
  BuildCounter()
      .Name("demo_total")
      .Help("A demo.")
      .Register(registry)
      .Add({{"a", "b"}})
      .Increment(7);
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);

  HttpResult metrics = HttpGet((*server)->port(), "/metrics");
  ASSERT_TRUE(metrics.ok);
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metrics.body,
            "# HELP demo_total A demo.\n# TYPE demo_total counter\ndemo_total{a=\"b\"} 7\n");
  EXPECT_EQ(metrics.headers["content-length"], std::to_string(metrics.body.size()));

  HttpResult health = HttpGet((*server)->port(), "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");

  HttpResult missing = HttpGet((*server)->port(), "/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(HttpGet((*server)->port(), "/metricsx").status, 404);

  HttpResult post = HttpGet((*server)->port(), "/metrics", "POST");
  EXPECT_EQ(post.status, 405);

  HttpResult head = HttpGet((*server)->port(), "/metrics", "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
}

TEST(MetricsHttpServerTest, ExtraHandlersByPrefix) {
  Registry registry;
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start("localhost:0", &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  MetricsHttpServer& s = **server;
  ASSERT_TRUE(s.AddHandler("/reports", [](const MetricsHttpServer::Request& request) {
                 MetricsHttpServer::Response response;
                 response.content_type = "text/html; charset=utf-8";
                 response.body = "<p>" + request.path + "?" + request.query + "</p>";
                 return response;
               }).ok());
  ASSERT_TRUE(s.AddHandler("/reports/special", [](const MetricsHttpServer::Request&) {
                 MetricsHttpServer::Response response;
                 response.status = 503;
                 response.body = "special";
                 return response;
               }).ok());
  EXPECT_EQ(
      s.AddHandler("/reports",
                   [](const MetricsHttpServer::Request&) { return MetricsHttpServer::Response{}; })
          .code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(
      s.AddHandler("/metrics",
                   [](const MetricsHttpServer::Request&) { return MetricsHttpServer::Response{}; })
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      s.AddHandler("nope",
                   [](const MetricsHttpServer::Request&) { return MetricsHttpServer::Response{}; })
          .code(),
      absl::StatusCode::kInvalidArgument);

  HttpResult report = HttpGet(s.port(), "/reports/job-1?format=html");
  EXPECT_EQ(report.status, 200);
  EXPECT_EQ(report.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_EQ(report.body, "<p>/reports/job-1?format=html</p>");
  EXPECT_EQ(HttpGet(s.port(), "/reports").body, "<p>/reports?</p>");
  EXPECT_EQ(HttpGet(s.port(), "/reportsx").status, 404);  // not a path-segment match
  HttpResult special = HttpGet(s.port(), "/reports/special/1");
  EXPECT_EQ(special.status, 503);
  EXPECT_EQ(special.body, "special");
}

TEST(MetricsHttpServerTest, BadListenAddressNamesTheFlag) {
  Registry registry;
  for (const char* bad : {"", "9090", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000",
                          "not a host:80", "300.1.1.1:80", "[zz]:80"}) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
        MetricsHttpServer::Start(bad, &registry);
    ASSERT_FALSE(server.ok()) << bad;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(server.status().message().find("metrics_listen"), std::string::npos)
        << server.status();
  }
}

TEST(MetricsHttpServerTest, PortInUseIsUnavailableWithTheAddress) {
  Registry registry;
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> first =
      MetricsHttpServer::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string address = "127.0.0.1:" + std::to_string((*first)->port());
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> second =
      MetricsHttpServer::Start(address, &registry);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find(address), std::string::npos) << second.status();
  EXPECT_NE(second.status().message().find("in use"), std::string::npos) << second.status();
}

TEST(MetricsHttpServerTest, DestructorReleasesThePort) {
  Registry registry;
  int port = 0;
  {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
        MetricsHttpServer::Start("127.0.0.1:0", &registry);
    ASSERT_TRUE(server.ok()) << server.status();
    port = (*server)->port();
    EXPECT_EQ(HttpGet(port, "/healthz").status, 200);
    // Shutdown closes the listening socket at once (civetweb polled it every 2 s).
    const auto before = std::chrono::steady_clock::now();
    server->reset();
    EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(1));
  }
  EXPECT_FALSE(HttpGet(port, "/healthz").ok);  // nobody listens any more
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> again =
      MetricsHttpServer::Start("127.0.0.1:" + std::to_string(port), &registry);
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST(MetricsHttpServerTest, EveryAnswerCarriesTheSecurityHeaders) {
  Registry registry;
  auto server = MetricsHttpServer::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  for (const char* path : {"/metrics", "/healthz", "/missing"}) {
    HttpResult r = HttpGet((*server)->port(), path);
    ASSERT_TRUE(r.ok) << path;
    EXPECT_EQ(r.headers["x-content-type-options"], "nosniff") << path;
    EXPECT_EQ(r.headers["x-frame-options"], "DENY") << path;
    EXPECT_EQ(r.headers["referrer-policy"], "no-referrer") << path;
    EXPECT_EQ(r.headers["cache-control"], "no-store") << path;
    const std::string csp = r.headers["content-security-policy"];
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << path << ": " << csp;
    EXPECT_EQ(csp.find("script-src"), std::string::npos) << csp;  // no scripts at all
  }
}

TEST(MetricsHttpServerTest, HealthzAnswersWhatTheOwnersCheckSays) {
  Registry registry;
  auto server = MetricsHttpServer::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  std::atomic<bool> draining{false};
  (*server)->SetHealthCheck([&draining] {
    return draining ? absl::UnavailableError("draining: shutting down") : absl::OkStatus();
  });
  EXPECT_EQ(HttpGet((*server)->port(), "/healthz").status, 200);
  draining = true;
  HttpResult health = HttpGet((*server)->port(), "/healthz");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.body, "draining: shutting down\n");
}

TEST(MetricsHttpServerTest, StreamedBodiesArriveWholeInBothHttpVersions) {
  Registry registry;
  auto server = MetricsHttpServer::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)
                  ->AddHandler("/page",
                               [](const MetricsHttpServer::Request&) {
                                 MetricsHttpServer::Response r;
                                 r.content_type = "text/html; charset=utf-8";
                                 r.stream = [](const MetricsHttpServer::BodyWriter& write) {
                                   for (int i = 0; i < 3; ++i) {
                                     if (!write(std::string(100000, 'a' + i))) return false;
                                   }
                                   return true;
                                 };
                                 return r;
                               })
                  .ok());
  const std::string expected =
      std::string(100000, 'a') + std::string(100000, 'b') + std::string(100000, 'c');
  HttpResult old = HttpGet((*server)->port(), "/page");  // HTTP/1.0: the close ends the body
  EXPECT_EQ(old.status, 200);
  EXPECT_EQ(old.headers.count("transfer-encoding"), 0u);
  EXPECT_EQ(old.body, expected);

  const int fd = Connect((*server)->port());
  ASSERT_GE(fd, 0);
  SendText(fd, "GET /page HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string raw = ReadUntilClosed(fd);
  close(fd);
  EXPECT_EQ(raw.compare(0, 15, "HTTP/1.1 200 OK"), 0) << raw.substr(0, 100);
  EXPECT_NE(raw.find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_NE(raw.find("\r\n0\r\n\r\n"), std::string::npos);  // the last chunk: the page is whole
}

// Regression: cpp-httplib's listener restarted its read timeout on every byte and handed
// connections to a worker before their head arrived, so a few clients trickling one byte a second
// held every worker and /healthz stopped answering (a failed liveness probe restarts the pod).
TEST(MetricsHttpServerTest, TricklingClientsDoNotKeepHealthzFromAnswering) {
  Registry registry;
  HttpListener::Options limits;
  limits.workers = 2;
  limits.head_timeout = std::chrono::milliseconds(1500);
  auto server = StartServer(registry, limits);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  std::vector<int> slow;
  for (int i = 0; i < 20; ++i) {
    const int fd = Connect(port, i % 2 == 0 ? "127.0.0.1" : "127.0.0.2");
    ASSERT_GE(fd, 0);
    SendText(fd, "GET /metrics HTTP/1.1\r\n");
    slow.push_back(fd);
  }
  const auto start = Clock::now();
  // Every 100 ms each slow client sends one more header byte (until just before its deadline);
  // /healthz answers all along.
  for (int tick = 0; Clock::now() - start < std::chrono::milliseconds(1200); ++tick) {
    for (int fd : slow) SendText(fd, "X");
    EXPECT_TRUE(HealthyWithin(port, std::chrono::milliseconds(500))) << "tick " << tick;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // The head deadline counts from the accept and never resets: every slow client got 408.
  for (int fd : slow) {
    const std::string answer = ReadUntilClosed(fd, std::chrono::seconds(5));
    EXPECT_EQ(answer.compare(0, 12, "HTTP/1.1 408"), 0) << answer;
    close(fd);
  }
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(6));
  EXPECT_TRUE(HealthyWithin(port, std::chrono::milliseconds(500)));
}

// Regression: a header line of any length was buffered before it was checked.
TEST(MetricsHttpServerTest, AnOversizedHeadIsRefusedWithoutBeingBuffered) {
  Registry registry;
  HttpListener::Options limits;
  limits.max_head_bytes = 1024;
  auto server = StartServer(registry, limits);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  {
    // Exactly one byte over: the server reads it all and answers 431.
    const int fd = Connect(port);
    ASSERT_GE(fd, 0);
    std::string head = "GET /metrics HTTP/1.1\r\nX-Long: ";
    head += std::string(1025 - head.size(), 'a');
    SendText(fd, head);
    const std::string answer = ReadUntilClosed(fd, std::chrono::seconds(5));
    EXPECT_EQ(answer.compare(0, 12, "HTTP/1.1 431"), 0) << answer;
    close(fd);
  }
  {
    // A 64 KiB header line: the connection ends long before the client has sent it.
    const int fd = Connect(port);
    ASSERT_GE(fd, 0);
    SendText(fd, "GET /metrics HTTP/1.1\r\nX-Long: " + std::string(64 * 1024, 'a'));
    EXPECT_TRUE(ClosedWithin(fd, std::chrono::seconds(2)));
    close(fd);
  }
  EXPECT_TRUE(HealthyWithin(port, std::chrono::milliseconds(500)));
}

TEST(MetricsHttpServerTest, OnePeerCannotTakeEveryConnection) {
  Registry registry;
  HttpListener::Options limits;
  limits.max_connections_per_peer = 3;
  auto server = StartServer(registry, limits);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(Connect(port, "127.0.0.3"));
    ASSERT_GE(idle.back(), 0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // all three accepted
  const int fourth = Connect(port, "127.0.0.3");
  ASSERT_GE(fourth, 0);
  const std::string refused = ReadUntilClosed(fourth, std::chrono::seconds(2));
  EXPECT_EQ(refused.compare(0, 12, "HTTP/1.1 503"), 0) << refused;
  close(fourth);
  EXPECT_TRUE(HealthyWithin(port, std::chrono::milliseconds(500)));  // another peer is served
  for (int fd : idle) close(fd);
}

// A Range header is ignored: the answer is whole (200), never one copy of the body per range (a
// head holds thousands of "-" ranges, and /metrics takes no credentials).
TEST(MetricsHttpServerTest, RangeHeadersGetTheWholeAnswer) {
  Registry registry;
  BuildCounter().Name("attattr_test_total").Help("A test.").Register(registry).Add({}).Increment();
  auto server = StartServer(registry, HttpListener::Options{});
  ASSERT_NE(server, nullptr);
  std::string ranges = "bytes=-";
  for (int i = 0; i < 1000; ++i) ranges += ",-";
  const int fd = Connect(server->port());
  ASSERT_GE(fd, 0);
  SendText(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\nrange: " + ranges + "\r\n\r\n");
  const std::string answer = ReadUntilClosed(fd);
  close(fd);
  EXPECT_EQ(answer.compare(0, 12, "HTTP/1.1 200"), 0) << answer.substr(0, 200);
  EXPECT_EQ(answer.find("multipart"), std::string::npos);
  EXPECT_LT(answer.size(), 64u * 1024) << "the body was repeated";
  EXPECT_NE(answer.find("attattr_test_total"), std::string::npos);
}

// One peer gets at most max_dispatched_per_peer answers at once: a client that sends requests and
// never reads the answers holds that many workers; other peers, /healthz included, are served.
TEST(MetricsHttpServerTest, OnePeerCannotHoldEveryWorker) {
  Registry registry;
  HttpListener::Options limits;
  limits.workers = 3;
  limits.max_dispatched_per_peer = 2;
  auto server = StartServer(registry, limits);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  absl::Notification release;
  std::atomic<int> started{0};
  ASSERT_TRUE(server
                  ->AddHandler("/slow",
                               [&](const MetricsHttpServer::Request&) {
                                 ++started;
                                 release.WaitForNotification();
                                 return MetricsHttpServer::Response{};
                               })
                  .ok());
  std::vector<int> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(Connect(port, "127.0.0.4"));
    ASSERT_GE(held.back(), 0);
    SendText(held.back(), "GET /slow HTTP/1.0\r\n\r\n");
  }
  for (int i = 0; i < 100 && started.load() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(started.load(), 2);
  const int third = Connect(port, "127.0.0.4");
  ASSERT_GE(third, 0);
  SendText(third, "GET /slow HTTP/1.0\r\n\r\n");
  const std::string refused = ReadUntilClosed(third, std::chrono::seconds(2));
  EXPECT_EQ(refused.compare(0, 12, "HTTP/1.1 503"), 0) << refused;
  close(third);
  EXPECT_TRUE(HealthyWithin(port, std::chrono::milliseconds(500)));  // another peer is served
  release.Notify();
  for (int fd : held) {
    EXPECT_EQ(ReadUntilClosed(fd).compare(0, 12, "HTTP/1.1 200"), 0);
    close(fd);
  }
  // Their answers sent, the peer may ask again.
  const int again = Connect(port, "127.0.0.4");
  ASSERT_GE(again, 0);
  SendText(again, "GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(ReadUntilClosed(again).compare(0, 12, "HTTP/1.1 200"), 0);
  close(again);
}

TEST(MetricsHttpServerTest, AFullQueueAnswers503AtOnce) {
  Registry registry;
  HttpListener::Options limits;
  limits.workers = 1;
  limits.max_queued = 1;
  auto server = StartServer(registry, limits);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  absl::Notification started, release;
  ASSERT_TRUE(server
                  ->AddHandler("/slow",
                               [&](const MetricsHttpServer::Request&) {
                                 if (!started.HasBeenNotified()) started.Notify();  // one worker
                                 release.WaitForNotification();
                                 return MetricsHttpServer::Response{};
                               })
                  .ok());
  const int running = Connect(port);
  SendText(running, "GET /slow HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(5)));
  const int queued = Connect(port);
  SendText(queued, "GET /slow HTTP/1.0\r\n\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // its head is read and queued
  const auto before = Clock::now();
  const HttpResult refused = HttpGet(port, "/metrics");
  EXPECT_EQ(refused.status, 503);
  EXPECT_LT(Clock::now() - before, std::chrono::seconds(1));
  release.Notify();
  EXPECT_EQ(ReadUntilClosed(running).compare(0, 12, "HTTP/1.1 200"), 0);
  EXPECT_EQ(ReadUntilClosed(queued).compare(0, 12, "HTTP/1.1 200"), 0);
  close(running);
  close(queued);
}

// HTTPS (a TlsContext): answers over TLS to a client that trusts the CA; a client that stalls the
// handshake is closed at the head deadline (which covers the handshake) while /healthz keeps
// answering; plain HTTP to the TLS port gets no HTTP at all; a client certificate the CA signed is
// seen by handlers as its identity, and one from another CA fails the handshake.
TEST(MetricsHttpServerTest, HttpsWithHandshakesWithinTheHeadDeadline) {
  const std::string dir = ::attattr::testing::MakeTempDir("attattr-https");
  ::attattr::testing::TestCa ca(dir, "ca");
  ::attattr::testing::TestCa other(dir, "other");
  const auto leaf = ca.Issue("server", "server", {"DNS:localhost", "IP:127.0.0.1"});
  const auto client = ca.Issue("client", "client", {"URI:spiffe://test/client"});
  const auto foreign = other.Issue("foreign", "foreign", {"DNS:foreign"});
  auto tls = TlsContext::Open({leaf.cert, leaf.key, ca.cert_path()});
  ASSERT_TRUE(tls.ok()) << tls.status();
  Registry registry;
  HttpListener::Options limits;
  limits.tls = *tls;
  limits.head_timeout = std::chrono::milliseconds(800);
  auto server = StartServer(registry, limits);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server
                  ->AddHandler("/whoami",
                               [](const MetricsHttpServer::Request& request) {
                                 MetricsHttpServer::Response r;
                                 r.body = "identity=" + request.peer_identity;
                                 return r;
                               })
                  .ok());
  const int port = server->port();
  auto https = [&](const ::attattr::testing::PemFiles& cert) {
    auto c = cert.cert.empty()
                 ? std::make_unique<httplib::SSLClient>("127.0.0.1", port)
                 : std::make_unique<httplib::SSLClient>("127.0.0.1", port, cert.cert, cert.key);
    c->set_ca_cert_path(ca.cert_path().c_str());
    c->enable_server_certificate_verification(true);
    return c;
  };
  auto health = https({})->Get("/healthz");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->get_header_value("X-Content-Type-Options"), "nosniff");
  auto anonymous = https({})->Get("/whoami");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->body, "identity=");
  auto known = https(client)->Get("/whoami");
  ASSERT_TRUE(known);
  EXPECT_EQ(known->body, "identity=spiffe://test/client");
  // The header that carries the verified identity to the handlers cannot be sent by a client:
  // without a certificate, or with another one, the client's copy is replaced (any spelling).
  for (const char* header :
       {"X-Attattr-Verified-Client-Identity", "x-attattr-verified-client-identity"}) {
    auto forged = https({})->Get("/whoami", {{header, "admin"}});
    ASSERT_TRUE(forged);
    EXPECT_EQ(forged->body, "identity=") << header;
    auto over = https(client)->Get("/whoami", {{header, "admin"}});
    ASSERT_TRUE(over);
    EXPECT_EQ(over->body, "identity=spiffe://test/client") << header;
  }
  EXPECT_FALSE(https(foreign)->Get("/whoami"));
  // A client that connects and never says hello is closed at the deadline.
  const int stalled = Connect(port);
  ASSERT_GE(stalled, 0);
  auto beside = https({})->Get("/healthz");
  EXPECT_TRUE(beside && beside->status == 200);
  EXPECT_TRUE(ClosedWithin(stalled, std::chrono::seconds(5)));
  close(stalled);
  // Plain HTTP to the TLS port: no HTTP answer comes back.
  const int plain = Connect(port);
  ASSERT_GE(plain, 0);
  SendText(plain, "GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(ReadUntilClosed(plain, std::chrono::seconds(5)).find("HTTP/1."), std::string::npos);
  close(plain);
  std::filesystem::remove_all(dir);
}

// A certificate built in memory: subject CN `common_name`, then the subject alternative names
// `sans` in order (types GEN_DNS, GEN_URI, GEN_EMAIL take text; GEN_IPADD raw bytes).
std::unique_ptr<X509, decltype(&X509_free)> CertificateWith(
    const std::string& common_name, const std::vector<std::pair<int, std::string>>& sans) {
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  if (!sans.empty()) {
    GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
    for (const auto& [type, value] : sans) {
      GENERAL_NAME* name = GENERAL_NAME_new();
      ASN1_STRING* data = type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
      ASN1_STRING_set(data, value.data(), static_cast<int>(value.size()));
      GENERAL_NAME_set0_value(name, type, data);
      sk_GENERAL_NAME_push(names, name);
    }
    X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT);
    GENERAL_NAMES_free(names);
  }
  return cert;
}

// The identity the HTTP ports take from a verified client certificate is the one gRPC gives the
// RPCs: its first subject alternative name even when empty, never a later one; an IP address of
// neither 4 nor 16 bytes names nobody (regression, security review: a 3-byte address was read
// as 4 and the empty first name skipped, so the two ports could name the caller differently).
TEST(CertificateIdentityTest, NamesThePeerAsGrpcDoes) {
  EXPECT_EQ(CertificateIdentity(nullptr), "");
  EXPECT_EQ(CertificateIdentity(CertificateWith("cn-name", {}).get()), "cn-name");
  EXPECT_EQ(
      CertificateIdentity(CertificateWith("cn", {{GEN_URI, "spiffe://a"}, {GEN_DNS, "b"}}).get()),
      "spiffe://a");
  EXPECT_EQ(CertificateIdentity(
                CertificateWith("cn", {{GEN_IPADD, std::string("\x0a\0\0\x01", 4)}, {GEN_DNS, "b"}})
                    .get()),
            "10.0.0.1");
  std::string v6(16, '\0');
  v6[15] = 1;
  EXPECT_EQ(CertificateIdentity(CertificateWith("cn", {{GEN_IPADD, v6}}).get()), "::1");
  EXPECT_EQ(
      CertificateIdentity(
          CertificateWith("cn", {{GEN_IPADD, std::string("\x0a\0\0", 3)}, {GEN_DNS, "b"}}).get()),
      "");
  EXPECT_EQ(CertificateIdentity(CertificateWith("cn", {{GEN_DNS, ""}, {GEN_DNS, "admin"}}).get()),
            "");
}

}  // namespace
}  // namespace attattr::metrics
