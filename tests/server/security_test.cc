// Security end to end (issue 14): the real attattr-server binary with TLS from certificates this
// test makes with OpenSSL, bearer tokens and client certificates, called through real gRPC and
// HTTPS clients. Handshakes (wrong CA, expired certificate, mTLS without or with a foreign client
// certificate refused), rotation picked up without a restart, UNAUTHENTICATED without a valid
// token, tenancy (another principal's job is NOT_FOUND everywhere, the report included; request
// ids are per principal; admins see all), roles (export, datasets, priority) and quotas (queued
// jobs, Explain rate) with the retry pushback while other tenants are served.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>

#include "httplib.h"
#include "nlohmann/json.hpp"
#include "support/job_rpc.h"
#include "support/server_process.h"
#include "support/test_certs.h"
#include "support/test_paths.h"

namespace {

namespace v1 = attattr::v1;
namespace fs = std::filesystem;
using ::attattr::testing::ExpectStatus;
using ::attattr::testing::FreeLoopbackPort;
using ::attattr::testing::PemFiles;
using ::attattr::testing::ReadFile;
using ::attattr::testing::ServerProcess;
using ::attattr::testing::Sha256Hex;
using ::attattr::testing::Sst2ModelDir;
using ::attattr::testing::TestCa;

constexpr char kModel[] = "sst2";

struct ClientOptions {
  std::string ca;     // PEM file the client trusts
  std::string token;  // bearer token; "" = none
  PemFiles cert;      // client certificate; empty = none
};

std::unique_ptr<v1::Attattr::Stub> SecureStub(const std::string& address, const ClientOptions& o) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(o.ca);
  if (!o.cert.cert.empty()) {
    ssl.pem_cert_chain = ReadFile(o.cert.cert);
    ssl.pem_private_key = ReadFile(o.cert.key);
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::SslCredentials(ssl);
  if (!o.token.empty()) {
    creds = grpc::CompositeChannelCredentials(creds, grpc::AccessTokenCredentials(o.token));
  }
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a fresh connection per stub
  return v1::Attattr::NewStub(grpc::CreateCustomChannel(address, creds, args));
}

grpc::Status ListModels(v1::Attattr::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListModelsRequest request;
  v1::ListModelsResponse response;
  return stub.ListModels(&ctx, request, &response);
}

// A text that would be markup if any page echoed it unescaped.
constexpr char kHostileText[] =
    "<script>alert('owned')</script> \"><img src=x onerror=alert(1)> a gorgeous film";

v1::JobSpec TextJob(int examples = 1, int steps = 4, const std::string& text = "") {
  v1::JobSpec spec;
  spec.set_model(kModel);
  auto* a = spec.mutable_attribution();
  for (int i = 0; i < examples; ++i) {
    a->mutable_examples()->mutable_inline_()->add_examples()->set_text(
        !text.empty() ? text
                      : "the film number " + std::to_string(i) +
                            " is a gorgeous , witty , seductive movie .");
  }
  a->mutable_options()->set_steps(steps);
  return spec;
}

// A token file of principals alice, bob and root (the admin); tokens are "<name>-token-secret".
std::string WriteTokens(const std::string& dir) {
  const std::string path = dir + "/tokens";
  std::ofstream out(path);
  out << "# principal<TAB>sha256 of the token\n";
  for (const char* name : {"alice", "bob", "root"}) {
    out << name << "\t" << Sha256Hex(std::string(name) + "-token-secret") << "\n";
  }
  return path;
}

std::string Token(const std::string& name) { return name + "-token-secret"; }

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    dir_ = ::attattr::testing::MakeTempDir("attattr-security");
    ca_ = std::make_unique<TestCa>(dir_, "ca");
    other_ca_ = std::make_unique<TestCa>(dir_, "other-ca");
    server_cert_ = ca_->Issue("server", "attattr", {"DNS:localhost", "IP:127.0.0.1"});
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // Starts the server with TLS (server_cert_) and `extra` flags; its JSON log goes to log_path_.
  void StartServer(std::vector<std::string> extra) {
    extra.push_back("--tls-cert=" + server_cert_.cert);
    extra.push_back("--tls-key=" + server_cert_.key);
    extra.push_back("--tls-reload-seconds=1");
    extra.push_back("--log-level=info");
    extra.push_back("--log-format=json");
    log_path_ = dir_ + "/server.log";
    server_ = std::make_unique<ServerProcess>(
        std::map<std::string, std::string>{{kModel, Sst2ModelDir()}}, extra, log_path_);
    ASSERT_TRUE(server_->ok());
  }
  // The server's audit log lines so far (JSON objects with an "audit" field).
  std::vector<nlohmann::json> AuditLines() const {
    std::vector<nlohmann::json> lines;
    std::istringstream log(ReadFile(log_path_));
    std::string line;
    while (std::getline(log, line)) {
      const auto start = line.find('{');
      if (start == std::string::npos) continue;
      auto json = nlohmann::json::parse(line.substr(start), nullptr, /*allow_exceptions=*/false);
      if (json.is_object() && json.contains("audit")) lines.push_back(std::move(json));
    }
    return lines;
  }
  // Whether an audit line has `event` and every field of `fields`.
  bool Audited(const std::string& event, const nlohmann::json& fields) const {
    for (const auto& line : AuditLines()) {
      if (line.value("audit", "") != event) continue;
      bool all = true;
      for (const auto& [key, value] : fields.items())
        all = all && line.value(key, nlohmann::json()) == value;
      if (all) return true;
    }
    return false;
  }
  std::unique_ptr<v1::Attattr::Stub> As(const std::string& principal) {
    return SecureStub(server_->address(), {ca_->cert_path(), Token(principal), {}});
  }

  std::string dir_;
  std::string log_path_;
  std::unique_ptr<TestCa> ca_, other_ca_;
  PemFiles server_cert_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(SecurityTest, TlsAndTokens) {
  StartServer({"--auth-tokens=" + WriteTokens(dir_)});
  EXPECT_TRUE(ListModels(*As("alice")).ok());
  // A client that trusts another CA never gets through the handshake.
  auto foreign = SecureStub(server_->address(), {other_ca_->cert_path(), Token("alice"), {}});
  EXPECT_EQ(ListModels(*foreign).error_code(), grpc::StatusCode::UNAVAILABLE);
  // No token, a wrong token: UNAUTHENTICATED, and the message never echoes the token.
  auto anonymous = SecureStub(server_->address(), {ca_->cert_path(), "", {}});
  ExpectStatus(ListModels(*anonymous), grpc::StatusCode::UNAUTHENTICATED, "Bearer");
  auto wrong = SecureStub(server_->address(), {ca_->cert_path(), "not-a-token-at-all", {}});
  const grpc::Status refused = ListModels(*wrong);
  ExpectStatus(refused, grpc::StatusCode::UNAUTHENTICATED, "not valid");
  EXPECT_EQ(refused.error_message().find("not-a-token"), std::string::npos);
  v1::Job job;
  ExpectStatus(attattr::testing::Submit(*wrong, TextJob(), &job), grpc::StatusCode::UNAUTHENTICATED,
               "");
  // Plain text to a TLS port is not spoken.
  auto plain = attattr::testing::Connect(server_->address());
  EXPECT_EQ(ListModels(*plain).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(Audited("call.denied", {{"method", "ListModels"}, {"code", "UNAUTHENTICATED"}}));
  EXPECT_EQ(ReadFile(log_path_).find("not-a-token-at-all"), std::string::npos);
  // A new token file (renamed into place, as a Secret volume updates) is picked up without a
  // restart: carol's token works within seconds, alice's, now gone, no longer does.
  { std::ofstream(dir_ + "/tokens.next") << "carol\t" << Sha256Hex(Token("carol")) << "\n"; }
  fs::rename(dir_ + "/tokens.next", dir_ + "/tokens");
  bool rotated = false;
  for (int i = 0; i < 50 && !rotated; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rotated = ListModels(*As("carol")).ok();
  }
  EXPECT_TRUE(rotated);
  EXPECT_EQ(ListModels(*As("alice")).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// Regression (security review): a token file that stopped parsing kept every previous token — one
// being revoked included — and said so only in a log line. attattr_config_reload_failed now says
// it on /metrics until a good file arrives.
TEST_F(SecurityTest, ATokenFileThatDoesNotParseShowsOnMetrics) {
  const int metrics_port = FreeLoopbackPort();
  StartServer({"--auth-tokens=" + WriteTokens(dir_),
               "--metrics-listen=127.0.0.1:" + std::to_string(metrics_port)});
  auto gauge = [&]() -> std::string {
    httplib::SSLClient client("127.0.0.1", metrics_port);
    client.set_ca_cert_path(ca_->cert_path().c_str());
    client.enable_server_certificate_verification(true);
    auto metrics = client.Get("/metrics");
    if (!metrics || metrics->status != 200) return "?";
    const std::string series = "attattr_config_reload_failed{file=\"auth_tokens\"} ";
    const size_t at = metrics->body.find(series);
    return at == std::string::npos ? "?" : metrics->body.substr(at + series.size(), 1);
  };
  EXPECT_EQ(gauge(), "0");
  auto replace = [&](const std::string& text) {
    { std::ofstream(dir_ + "/tokens.next") << text; }
    fs::rename(dir_ + "/tokens.next", dir_ + "/tokens");
  };
  auto wait_for = [&](const std::string& value) {
    for (int i = 0; i < 50 && gauge() != value; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return gauge();
  };
  replace(std::string(300, 'x') + "\t" + Sha256Hex(Token("carol")) + "\n");  // a name too long
  EXPECT_EQ(wait_for("1"), "1");
  EXPECT_TRUE(ListModels(*As("alice")).ok()) << "the previous tokens stay in use";
  replace("carol\t" + Sha256Hex(Token("carol")) + "\n");
  EXPECT_EQ(wait_for("0"), "0");
  EXPECT_TRUE(ListModels(*As("carol")).ok());
}

TEST_F(SecurityTest, ExpiredServerCertificateIsRefusedByClients) {
  server_cert_ = ca_->Issue("expired-server", "attattr", {"DNS:localhost"}, -7200, -3600);
  StartServer({"--auth-tokens=" + WriteTokens(dir_)});
  EXPECT_EQ(ListModels(*As("alice")).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecurityTest, JobsArePrivateToTheirOwner) {
  const int report_port = FreeLoopbackPort();
  const int metrics_port = FreeLoopbackPort();
  StartServer({"--auth-tokens=" + WriteTokens(dir_), "--admin-principals=root",
               "--report-listen=127.0.0.1:" + std::to_string(report_port),
               "--metrics-listen=127.0.0.1:" + std::to_string(metrics_port)});
  auto alice = As("alice");
  auto bob = As("bob");
  auto root = As("root");
  v1::Job job;
  ASSERT_TRUE(
      attattr::testing::Submit(*alice, TextJob(1, 4, kHostileText), &job, "request-1").ok());
  EXPECT_EQ(job.owner(), "alice");
  const std::string name = job.name();
  const v1::Job done = attattr::testing::WaitDone(*alice, name);
  ASSERT_EQ(done.state(), v1::SUCCEEDED);

  // Bob: NOT_FOUND everywhere, worded exactly as for a job that does not exist.
  const std::string missing = "jobs/00000000000000000000000000000000";
  grpc::ClientContext get_missing;
  v1::GetJobRequest get_request;
  get_request.set_name(missing);
  v1::Job unused;
  const grpc::Status absent = bob->GetJob(&get_missing, get_request, &unused);
  ASSERT_EQ(absent.error_code(), grpc::StatusCode::NOT_FOUND);
  get_request.set_name(name);
  {
    grpc::ClientContext ctx;
    const grpc::Status s = bob->GetJob(&ctx, get_request, &unused);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    std::string expected = absent.error_message();
    expected.replace(expected.find(missing), missing.size(), name);
    EXPECT_EQ(s.error_message(), expected);
  }
  {
    grpc::ClientContext ctx;
    v1::WaitJobRequest wait;
    wait.set_name(name);
    EXPECT_EQ(bob->WaitJob(&ctx, wait, &unused).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::WatchJobRequest watch;
    watch.set_name(name);
    auto reader = bob->WatchJob(&ctx, watch);
    v1::Job update;
    EXPECT_FALSE(reader->Read(&update));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_EQ(attattr::testing::ReadResult(*bob, name).status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(attattr::testing::Cancel(*bob, name).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(attattr::testing::Delete(*bob, name).error_code(), grpc::StatusCode::NOT_FOUND);
  {
    grpc::ClientContext ctx;
    v1::ListJobsRequest list;
    v1::ListJobsResponse page;
    ASSERT_TRUE(bob->ListJobs(&ctx, list, &page).ok());
    EXPECT_EQ(page.jobs_size(), 0);
  }
  // The same request id is bob's own: a new job, not alice's.
  v1::Job bobs;
  ASSERT_TRUE(attattr::testing::Submit(*bob, TextJob(), &bobs, "request-1").ok());
  EXPECT_NE(bobs.name(), name);
  EXPECT_EQ(bobs.owner(), "bob");
  // Alice's retry with her request id is idempotent.
  v1::Job again;
  ASSERT_TRUE(
      attattr::testing::Submit(*alice, TextJob(1, 4, kHostileText), &again, "request-1").ok());
  EXPECT_EQ(again.name(), name);
  // The admin sees both.
  {
    grpc::ClientContext ctx;
    v1::ListJobsRequest list;
    v1::ListJobsResponse page;
    ASSERT_TRUE(root->ListJobs(&ctx, list, &page).ok());
    EXPECT_EQ(page.jobs_size(), 2);
  }
  EXPECT_TRUE(attattr::testing::ReadResult(*alice, name).status.ok());
  EXPECT_EQ(attattr::testing::Get(*root, name).owner(), "alice");

  // The report over HTTPS, with the same credentials.
  httplib::SSLClient https("127.0.0.1", report_port);
  https.set_ca_cert_path(ca_->cert_path().c_str());
  https.enable_server_certificate_verification(true);
  const std::string path = "/" + name + "/report";
  auto no_token = https.Get(path.c_str());
  ASSERT_TRUE(no_token) << httplib::to_string(no_token.error());
  EXPECT_EQ(no_token->status, 401);
  EXPECT_NE(no_token->get_header_value("WWW-Authenticate").find("Bearer"), std::string::npos);
  auto as_bob = https.Get(path.c_str(), {{"Authorization", "Bearer " + Token("bob")}});
  ASSERT_TRUE(as_bob);
  EXPECT_EQ(as_bob->status, 404);
  auto as_alice = https.Get(path.c_str(), {{"Authorization", "Bearer " + Token("alice")}});
  ASSERT_TRUE(as_alice);
  EXPECT_EQ(as_alice->status, 200);
  EXPECT_NE(as_alice->body.find("<html"), std::string::npos);
  // The hostile text is on the page, escaped: no markup of its own.
  EXPECT_NE(as_alice->body.find("&lt;"), std::string::npos);
  EXPECT_EQ(as_alice->body.find("<script"), std::string::npos);
  EXPECT_EQ(as_alice->body.find("<img"), std::string::npos);
  // The reports' port serves no metrics; the metrics port (HTTPS too) carries no user data.
  auto no_metrics = https.Get("/metrics");
  ASSERT_TRUE(no_metrics);
  EXPECT_EQ(no_metrics->status, 404);
  httplib::SSLClient metrics_client("127.0.0.1", metrics_port);
  metrics_client.set_ca_cert_path(ca_->cert_path().c_str());
  metrics_client.enable_server_certificate_verification(true);
  auto metrics = metrics_client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("attattr_jobs_total"), std::string::npos);
  for (const std::string& secret :
       {std::string("alice"), std::string("bob"), name, std::string("<script"),
        std::string("onerror"), std::string("gorgeous")}) {
    EXPECT_EQ(metrics->body.find(secret), std::string::npos) << secret;
  }
  auto reports_on_metrics = metrics_client.Get(path.c_str());
  ASSERT_TRUE(reports_on_metrics);
  EXPECT_EQ(reports_on_metrics->status, 404);
  EXPECT_NE(as_alice->get_header_value("Content-Security-Policy").find("default-src 'none'"),
            std::string::npos);
  // Bob may delete his own job; alice's stays.
  EXPECT_TRUE(attattr::testing::Delete(*bob, bobs.name()).ok());
  EXPECT_EQ(attattr::testing::Get(*alice, name).state(), v1::SUCCEEDED);

  // The audit log: lifecycle events and denied calls, each with its principal.
  EXPECT_TRUE(Audited("job.submitted", {{"principal", "alice"}, {"job_id", name}}));
  EXPECT_TRUE(Audited("job.started", {{"principal", "alice"}, {"job_id", name}}));
  EXPECT_TRUE(Audited("job.succeeded", {{"principal", "alice"}, {"job_id", name}}));
  EXPECT_TRUE(Audited("job.deleted", {{"principal", "bob"}, {"job_id", bobs.name()}}));
  EXPECT_TRUE(
      Audited("call.denied",
              {{"principal", "bob"}, {"method", "GetJob"}, {"job_id", name}, {"owner", "alice"}}));
  EXPECT_TRUE(
      Audited("call.denied",
              {{"principal", "bob"}, {"method", "GET /jobs/{id}/report"}, {"job_id", name}}));
  EXPECT_TRUE(Audited("call.denied", {{"method", "GET /jobs/{id}/report"}, {"code", "401"}}));
  // Tokens never reach the log.
  const std::string log = ReadFile(log_path_);
  for (const char* who : {"alice", "bob", "root"}) {
    EXPECT_EQ(log.find(Token(who)), std::string::npos) << who;
  }
}

TEST_F(SecurityTest, RolesDecideExportsDatasetsAndPriority) {
  const std::string exports = dir_ + "/exports";
  fs::create_directories(exports);
  StartServer({"--auth-tokens=" + WriteTokens(dir_), "--admin-principals=root",
               "--export-root=" + exports, "--data-root=" + dir_, "--dataset-principals=alice",
               "--max-user-priority=2"});
  v1::JobSpec heads;
  heads.set_model(kModel);
  auto* h = heads.mutable_head_importance();
  h->mutable_importance_set()->mutable_inline_()->add_examples()->set_text("a fine film .");
  h->mutable_evaluation_set()->mutable_inline_()->add_examples()->set_text("a dull film .");
  h->set_export_path("pruned/model");
  h->set_export_ratio(50);
  v1::Job job;
  ExpectStatus(attattr::testing::Submit(*As("bob"), heads, &job),
               grpc::StatusCode::PERMISSION_DENIED, "spec.head_importance.export_path");
  EXPECT_FALSE(fs::exists(exports + "/pruned"));

  v1::JobSpec dataset = TextJob();
  *dataset.mutable_attribution()->mutable_examples() = attattr::testing::DatasetSource("tokens", 1);
  ExpectStatus(attattr::testing::Submit(*As("bob"), dataset, &job),
               grpc::StatusCode::PERMISSION_DENIED, "--dataset-principals");

  v1::JobSpec urgent = TextJob();
  urgent.set_priority(5);
  ExpectStatus(attattr::testing::Submit(*As("alice"), urgent, &job),
               grpc::StatusCode::PERMISSION_DENIED, "spec.priority");
  EXPECT_TRUE(attattr::testing::Submit(*As("root"), urgent, &job).ok());
}

TEST_F(SecurityTest, QuotasPushBackOneTenantWhileOthersAreServed) {
  const int metrics_port = FreeLoopbackPort();
  StartServer({"--auth-tokens=" + WriteTokens(dir_), "--job-runners=1",
               "--max-queued-jobs-per-principal=2", "--explain-rate-per-principal=0.05",
               "--explain-burst-per-principal=1", "--max-streams-per-principal=2",
               "--metrics-listen=127.0.0.1:" + std::to_string(metrics_port)});
  // attattr_quota_refusals_total{quota}: each refusal below is counted as the tenant's quota (the
  // alert on server-side errors leaves these out), from 0 at the start.
  auto refusals = [&](const std::string& quota) -> std::string {
    httplib::SSLClient client("127.0.0.1", metrics_port);
    client.set_ca_cert_path(ca_->cert_path().c_str());
    client.enable_server_certificate_verification(true);
    auto metrics = client.Get("/metrics");
    if (!metrics || metrics->status != 200) return "?";
    const std::string series = "attattr_quota_refusals_total{quota=\"" + quota + "\"} ";
    const size_t at = metrics->body.find(series);
    if (at == std::string::npos) return "?";
    const size_t end = metrics->body.find('\n', at);
    return metrics->body.substr(at + series.size(), end - at - series.size());
  };
  for (const char* quota : {"queued_jobs", "stored_bytes", "explain_rate", "explains", "streams"}) {
    EXPECT_EQ(refusals(quota), "0") << quota;
  }
  auto alice = As("alice");
  auto bob = As("bob");
  // Alice: one job running (long), two waiting, the next refused with a pushback.
  v1::Job job;
  ASSERT_TRUE(attattr::testing::Submit(*alice, TextJob(40, 32), &job).ok());
  attattr::testing::WaitForState(*alice, job.name(), v1::RUNNING);

  // Streams (WaitJob, WatchJob, GetJobResult): alice holds two WatchJob streams open on her running
  // job; a third is refused at once, naming the flag, while bob's is served; once she closes one,
  // its slot is hers again.
  struct Watch {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<v1::Job>> reader;
    v1::Job first;
    bool open = false;
  };
  const auto watch = [&job](v1::Attattr::Stub& stub) {
    auto w = std::make_unique<Watch>();
    v1::WatchJobRequest request;
    request.set_name(job.name());
    request.set_view(v1::JOB_VIEW_BASIC);
    w->reader = stub.WatchJob(&w->ctx, request);
    w->open = w->reader->Read(&w->first);
    return w;
  };
  auto first = watch(*alice);
  auto second = watch(*alice);
  ASSERT_TRUE(first->open && second->open);
  EXPECT_EQ(first->first.spec().model(), kModel);  // BASIC: model and priority, no examples
  EXPECT_EQ(first->first.spec().attribution().examples().inline_().examples_size(), 0);
  {
    auto third = watch(*alice);
    EXPECT_FALSE(third->open);
    ExpectStatus(third->reader->Finish(), grpc::StatusCode::RESOURCE_EXHAUSTED,
                 "--max-streams-per-principal");
  }
  {
    auto bobs_watch = watch(*bob);  // not bob's job: NOT_FOUND, but not refused for alice's streams
    EXPECT_FALSE(bobs_watch->open);
    ExpectStatus(bobs_watch->reader->Finish(), grpc::StatusCode::NOT_FOUND, "not found");
  }
  first->ctx.TryCancel();
  EXPECT_EQ(first->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  bool reopened = false;
  for (int i = 0; i < 100 && !reopened; ++i) {  // the slot returns once the server lets go
    auto again = watch(*alice);
    reopened = again->open;
    again->ctx.TryCancel();
    (void)again->reader->Finish();
    if (!reopened) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(reopened);
  second->ctx.TryCancel();
  (void)second->reader->Finish();
  v1::Job alices_second, alices_third;
  ASSERT_TRUE(attattr::testing::Submit(*alice, TextJob(), &alices_second).ok());
  ASSERT_TRUE(attattr::testing::Submit(*alice, TextJob(), &alices_third).ok());
  grpc::ClientContext refused;
  ExpectStatus(attattr::testing::Submit(*alice, TextJob(), &job, "", &refused),
               grpc::StatusCode::RESOURCE_EXHAUSTED, "--max-queued-jobs-per-principal");
  EXPECT_EQ(refused.GetServerTrailingMetadata().count("grpc-retry-pushback-ms"), 1u);
  // Bob's job is accepted, and runs before alice's two waiting ones (owners take turns).
  v1::Job bobs;
  ASSERT_TRUE(attattr::testing::Submit(*bob, TextJob(), &bobs).ok());

  // Explain: one call per 20 s each; alice's second is refused, bob's first is served.
  v1::ExplainRequest explain;
  explain.set_model(kModel);
  explain.mutable_example()->set_text("a gorgeous film .");
  explain.mutable_options()->set_steps(2);
  v1::ExplainResponse response;
  {
    grpc::ClientContext ctx;
    EXPECT_TRUE(alice->Explain(&ctx, explain, &response).ok());
  }
  {
    grpc::ClientContext ctx;
    ExpectStatus(alice->Explain(&ctx, explain, &response), grpc::StatusCode::RESOURCE_EXHAUSTED,
                 "--explain-rate-per-principal");
    EXPECT_EQ(ctx.GetServerTrailingMetadata().count("grpc-retry-pushback-ms"), 1u);
  }
  {
    grpc::ClientContext ctx;
    EXPECT_TRUE(bob->Explain(&ctx, explain, &response).ok());
  }
  const v1::Job bobs_done = attattr::testing::WaitDone(*bob, bobs.name());
  EXPECT_EQ(bobs_done.state(), v1::SUCCEEDED);
  for (const v1::Job* waiting : {&alices_second, &alices_third}) {
    const v1::Job later = attattr::testing::WaitDone(*alice, waiting->name());
    EXPECT_EQ(later.state(), v1::SUCCEEDED);
    EXPECT_GE(later.start_time_ms(), bobs_done.start_time_ms()) << waiting->name();
  }
  // The third watch, and any reopening tried before the server let go of the closed one.
  const std::string streams = refusals("streams");
  EXPECT_TRUE(streams != "0" && streams != "?") << streams;
  EXPECT_EQ(refusals("queued_jobs"), "1");
  EXPECT_EQ(refusals("explain_rate"), "1");
  EXPECT_EQ(refusals("stored_bytes"), "0");
}

// Regression (hostile-input review): only --max-pending-explains bounded the Explain calls waiting
// for the engine, so one principal's flood could hold every place and the other tenants' calls
// were refused. With authentication one principal holds a quarter of them (here 1 of 4): with the
// one engine worker busy on a job, one of alice's two calls waits and the other is refused with a
// pushback, while bob's call is taken and served.
TEST_F(SecurityTest, OneTenantsExplainCallsHoldAQuarterOfTheWaitingPlaces) {
  StartServer({"--auth-tokens=" + WriteTokens(dir_), "--max-pending-explains=4", "--workers=1",
               "--batch-max-examples=1", "--max-steps=1024"});
  auto alice = As("alice");
  auto bob = As("bob");
  // Root's job keeps the worker busy: each of its examples takes seconds.
  std::string text;
  for (int i = 0; i < 12; ++i) text += "a gorgeous , witty , seductive and moving film . ";
  v1::Job busy;
  ASSERT_TRUE(attattr::testing::Submit(*As("root"), TextJob(4, 1024, text), &busy).ok());
  for (int i = 0; i < 600; ++i) {  // its examples are in the engine queue once it reports them
    grpc::ClientContext ctx;
    v1::GetJobRequest get;
    get.set_name(busy.name());
    ASSERT_TRUE(As("root")->GetJob(&ctx, get, &busy).ok());
    if (busy.progress().total() > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(busy.progress().total(), 0) << busy.DebugString();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  v1::ExplainRequest quick;
  quick.set_model(kModel);
  quick.mutable_example()->set_text("a gorgeous film .");
  quick.mutable_options()->set_steps(2);
  struct Call {
    grpc::ClientContext ctx;
    v1::ExplainResponse response;
    std::future<grpc::Status> status;
  };
  const auto call = [&quick](v1::Attattr::Stub& stub) {
    auto c = std::make_unique<Call>();
    c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    Call* raw = c.get();
    c->status = std::async(std::launch::async, [&stub, &quick, raw] {
      return stub.Explain(&raw->ctx, quick, &raw->response);
    });
    return c;
  };
  auto first = call(*alice);
  auto second = call(*alice);
  // The refused one answers at once; the other waits for the worker.
  Call* refused = nullptr;
  for (int i = 0; i < 600 && refused == nullptr; ++i) {
    for (Call* c : {first.get(), second.get()}) {
      if (c->status.wait_for(std::chrono::milliseconds(10)) == std::future_status::ready)
        refused = c;
    }
  }
  ASSERT_NE(refused, nullptr) << "neither of alice's calls was answered";
  Call* waiting = refused == first.get() ? second.get() : first.get();
  ExpectStatus(refused->status.get(), grpc::StatusCode::RESOURCE_EXHAUSTED,
               "has its share of --max-pending-explains");
  EXPECT_EQ(refused->ctx.GetServerTrailingMetadata().count("grpc-retry-pushback-ms"), 1u);
  EXPECT_EQ(waiting->status.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout)
      << "alice's other call did not wait for the worker";
  auto bobs = call(*bob);  // another tenant's call is taken while alice's waits
  // Stop the job; both waiting calls are then served.
  {
    grpc::ClientContext ctx;
    v1::CancelJobRequest cancel;
    cancel.set_name(busy.name());
    ASSERT_TRUE(As("root")->CancelJob(&ctx, cancel, &busy).ok());
  }
  const grpc::Status alices = waiting->status.get();
  EXPECT_TRUE(alices.ok()) << alices.error_message();
  const grpc::Status bobs_status = bobs->status.get();
  EXPECT_TRUE(bobs_status.ok()) << bobs_status.error_message();
}

TEST_F(SecurityTest, MutualTlsIdentifiesCallersByCertificate) {
  StartServer({"--tls-client-ca=" + ca_->cert_path()});
  const PemFiles team_a = ca_->Issue("team-a", "team-a", {"URI:spiffe://cluster/team-a"});
  const PemFiles team_b = ca_->Issue("team-b", "team-b-cn", {});
  const PemFiles expired = ca_->Issue("expired", "old", {"DNS:old"}, -7200, -3600);
  const PemFiles foreign = other_ca_->Issue("foreign", "foreign", {"DNS:foreign"});
  auto a = SecureStub(server_->address(), {ca_->cert_path(), "", team_a});
  auto b = SecureStub(server_->address(), {ca_->cert_path(), "", team_b});
  // No client certificate, an expired one, one from another CA: no handshake.
  for (const PemFiles& cert : {PemFiles{}, expired, foreign}) {
    auto stub = SecureStub(server_->address(), {ca_->cert_path(), "", cert});
    EXPECT_EQ(ListModels(*stub).error_code(), grpc::StatusCode::UNAVAILABLE) << cert.cert;
  }
  v1::Job job;
  ASSERT_TRUE(attattr::testing::Submit(*a, TextJob(), &job).ok());
  EXPECT_EQ(job.owner(), "spiffe://cluster/team-a");  // the first subject alternative name
  v1::Job other;
  ASSERT_TRUE(attattr::testing::Submit(*b, TextJob(), &other).ok());
  EXPECT_EQ(other.owner(), "team-b-cn");  // no SAN: the common name
  grpc::ClientContext ctx;
  v1::GetJobRequest get;
  get.set_name(job.name());
  EXPECT_EQ(b->GetJob(&ctx, get, &other).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SecurityTest, RotatedCertificatesAreServedWithoutRestart) {
  const int report_port = FreeLoopbackPort();
  StartServer({"--auth-tokens=" + WriteTokens(dir_),
               "--report-listen=127.0.0.1:" + std::to_string(report_port)});
  ASSERT_TRUE(ListModels(*As("alice")).ok());
  // cert-manager's way: new files in place (here: renamed over the old ones), no restart.
  const PemFiles next = other_ca_->Issue("next", "attattr", {"DNS:localhost", "IP:127.0.0.1"});
  fs::rename(next.key, server_cert_.key);
  fs::rename(next.cert, server_cert_.cert);
  bool grpc_rotated = false;
  bool https_rotated = false;
  for (int i = 0; i < 100 && !(grpc_rotated && https_rotated); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto stub = SecureStub(server_->address(), {other_ca_->cert_path(), Token("alice"), {}});
    grpc_rotated = grpc_rotated || ListModels(*stub).ok();
    httplib::SSLClient https("127.0.0.1", report_port);
    https.set_ca_cert_path(other_ca_->cert_path().c_str());
    https.enable_server_certificate_verification(true);
    auto health = https.Get("/healthz");
    https_rotated = https_rotated || (health && health->status == 200);
  }
  EXPECT_TRUE(grpc_rotated);
  EXPECT_TRUE(https_rotated);
  // The old CA no longer verifies the server.
  auto old = SecureStub(server_->address(), {ca_->cert_path(), Token("alice"), {}});
  EXPECT_EQ(ListModels(*old).error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
