// Tests MetricsHttpServer on loopback: /metrics content type and body over a real socket, /healthz,
// 404 and 405, extra handlers by prefix, ephemeral ports and listen-address errors.
// Thread-safety: the server serves on its own threads; the test only talks to it over sockets.
#include "metrics/metrics_http.h"

#include <chrono>

#include "gtest/gtest.h"
#include "support/http_get.h"

namespace attattr::metrics {
namespace {

using ::attattr::testing::HttpGet;
using ::attattr::testing::HttpResult;

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

}  // namespace
}  // namespace attattr::metrics
