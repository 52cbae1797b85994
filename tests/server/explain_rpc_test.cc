// The gRPC service end to end: a real Server on an ephemeral loopback port, called through the
// generated stub — models, Explain (results equal the engine's, honest errors naming the field,
// deadlines), grpc.health.v1, and draining.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <thread>

#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/attribution_tree.h"
#include "attattr/engine/half_float.h"
#include "attattr/engine/precision.h"
#include "attattr/engine/runtime.h"
#include "attattr/v1/attattr_service.grpc.pb.h"
#include "proto_convert.h"
#include "server.h"
#include "spdlog/sinks/null_sink.h"
#include "spdlog/spdlog.h"
#include "support/golden.h"
#include "support/golden_tree.h"
#include "support/http_get.h"
#include "support/job_rpc.h"
#include "support/test_paths.h"

namespace attattr::server {
namespace {

using engine::FloatToHalf;
using engine::HalfToFloat;

// The intra-op threads of the test server's engine workers, set explicitly: Explain is compared
// bit for bit with the engine run on a thread with as many.
constexpr int kWorkerThreads = 1;

// The engine's attribution of `text` run on a thread with kWorkerThreads intra-op threads, as the
// server's workers run it: float sums split over another thread count round differently (and so
// do bf16 products on CPUs that emulate them).
absl::StatusOr<std::vector<engine::ExampleAttribution>> AttributeOnWorkerThreads(
    const engine::Model& model, const std::string& text, const engine::AttributionOptions& o) {
  std::optional<absl::StatusOr<std::vector<engine::ExampleAttribution>>> local;
  std::thread([&] {
    engine::SetThreadIntraOpThreads(kWorkerThreads);
    local = engine::AttributeExamples(model, {{text, std::nullopt, -1}}, o);
  }).join();
  return *std::move(local);
}

namespace fs = std::filesystem;

class ExplainRpcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::attattr::testing::PathExists(::attattr::testing::Sst2ModelDir())) return;
    models_dir_ = new std::string(::attattr::testing::MakeTempDir("attattr-models"));
    fs::create_directory_symlink(::attattr::testing::Sst2ModelDir(), *models_dir_ + "/sst2");
    ServerConfig config;
    config.models_dir = *models_dir_;
    config.store = *models_dir_ + "/jobs.db";
    config.listen = "127.0.0.1:0";
    config.metrics_listen = "127.0.0.1:0";
    config.max_steps = 512;
    config.intra_op_threads = kWorkerThreads;
    auto log =
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    auto server = Server::Start(config, log);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    if (models_dir_) fs::remove_all(*models_dir_);
    delete models_dir_;
  }
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(::attattr::testing::Sst2ModelDir());
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::Attattr::NewStub(channel_);
  }
  grpc::Status Explain(const v1::ExplainRequest& req, v1::ExplainResponse* resp,
                       std::chrono::milliseconds deadline = std::chrono::seconds(60)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    return stub_->Explain(&ctx, req, resp);
  }
  static v1::ExplainRequest Request(const std::string& text) {
    v1::ExplainRequest req;
    req.set_model("sst2");
    req.mutable_example()->set_text(text);
    return req;
  }
  void ExpectError(const v1::ExplainRequest& req, grpc::StatusCode code, const std::string& field) {
    v1::ExplainResponse resp;
    auto s = Explain(req, &resp);
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_NE(s.error_message().find(field), std::string::npos) << s.error_message();
  }
  static Server* server_;
  static std::string* models_dir_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Attattr::Stub> stub_;
};
Server* ExplainRpcTest::server_ = nullptr;
std::string* ExplainRpcTest::models_dir_ = nullptr;

TEST_F(ExplainRpcTest, ListsAndDescribesModels) {
  grpc::ClientContext ctx;
  v1::ListModelsResponse list;
  ASSERT_TRUE(stub_->ListModels(&ctx, {}, &list).ok());
  ASSERT_EQ(list.models_size(), 1);
  EXPECT_EQ(list.models(0).name(), "sst2");
  EXPECT_EQ(list.models(0).num_layers(), 4);
  EXPECT_EQ(list.models(0).labels_size(), 2);
  EXPECT_TRUE(list.models(0).has_classifier());

  grpc::ClientContext ctx2;
  v1::GetModelRequest get;
  get.set_name("nope");
  v1::Model model;
  auto s = stub_->GetModel(&ctx2, get, &model);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("nope"), std::string::npos);
}

TEST_F(ExplainRpcTest, ExplainEqualsTheEngine) {
  auto req = Request("a gorgeous , witty , seductive movie .");
  req.mutable_options()->set_rule(v1::LEFT_RIEMANN);
  req.mutable_options()->set_steps(20);
  req.mutable_result()->set_full_matrices(true);
  req.mutable_result()->set_head_summed(true);
  req.mutable_result()->set_top_k(5);
  v1::ExplainResponse resp;
  auto s = Explain(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const auto& a = resp.attribution();
  EXPECT_EQ(a.tokens(0), "[CLS]");
  EXPECT_EQ(a.prediction().label(), "positive");
  ASSERT_EQ(a.layers_size(), 4);

  auto model = engine::Model::Load(::attattr::testing::Sst2ModelDir());
  ASSERT_TRUE(model.ok());
  engine::AttributionOptions o;
  o.rule = engine::QuadratureRule::kLeftRiemann;
  o.steps = 20;
  // Bit for bit, with the intra-op threads of the server's workers.
  const auto local = AttributeOnWorkerThreads(**model, req.example().text(), o);
  ASSERT_TRUE(local.ok()) << local.status();
  const size_t n = a.tokens_size();
  for (int l = 0; l < 4; ++l) {
    const auto& layer = a.layers(l);
    const auto& want = (*local)[0].layers[l];
    EXPECT_NEAR(layer.completeness_gap(), want.completeness_gap, 1e-6);
    ASSERT_EQ(layer.attribution().shape_size(), 3);
    ASSERT_EQ(static_cast<size_t>(layer.attribution().f32().values_size()),
              want.attribution.size());
    for (size_t k = 0; k < want.attribution.size(); ++k) {
      EXPECT_EQ(layer.attribution().f32().values(k), want.attribution[k]);
    }
    EXPECT_EQ(static_cast<size_t>(layer.head_summed().f32().values_size()), n * n);
    ASSERT_EQ(layer.top_connections_size(), 5);
    EXPECT_GE(layer.top_connections(0).score(), layer.top_connections(4).score());
    const auto& top = layer.top_connections(0);
    EXPECT_EQ(top.score(), want.attribution[(top.head() * n + top.query()) * n + top.key()]);
  }
}

TEST_F(ExplainRpcTest, Fp16MatricesRoundTrip) {
  auto req = Request("the plot is a mess");
  req.mutable_options()->add_layers(3);
  req.mutable_result()->set_full_matrices(true);
  req.mutable_result()->set_fp16(true);
  v1::ExplainResponse f16;
  ASSERT_TRUE(Explain(req, &f16).ok());
  req.mutable_result()->set_fp16(false);
  v1::ExplainResponse f32;
  ASSERT_TRUE(Explain(req, &f32).ok());
  const auto& bytes = f16.attribution().layers(0).attribution().f16();
  const auto& values = f32.attribution().layers(0).attribution().f32().values();
  ASSERT_EQ(bytes.size(), static_cast<size_t>(values.size()) * 2);
  for (int i = 0; i < values.size(); ++i) {
    const uint16_t h =
        static_cast<uint8_t>(bytes[2 * i]) | (static_cast<uint8_t>(bytes[2 * i + 1]) << 8);
    EXPECT_NEAR(HalfToFloat(h), values[i], std::fabs(values[i]) * 1e-3 + 1e-7);
  }
}

TEST_F(ExplainRpcTest, BadRequestsNameTheField) {
  ExpectError(Request(""), grpc::StatusCode::INVALID_ARGUMENT, "example.text");
  auto unknown = Request("fine");
  unknown.set_model("bert-large");
  ExpectError(unknown, grpc::StatusCode::NOT_FOUND, "bert-large");
  auto steps = Request("fine");
  steps.mutable_options()->set_steps(5000);
  ExpectError(steps, grpc::StatusCode::INVALID_ARGUMENT, "options.steps");
  auto layer = Request("fine");
  layer.mutable_options()->add_layers(7);
  ExpectError(layer, grpc::StatusCode::INVALID_ARGUMENT, "options.layers[0]");
  auto cls = Request("fine");
  cls.mutable_options()->mutable_target()->set_kind(v1::Target::CLASS_PROB);
  cls.mutable_options()->mutable_target()->set_class_index(3);
  ExpectError(cls, grpc::StatusCode::INVALID_ARGUMENT, "options.target.class_index");
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "word ";
  ExpectError(Request(long_text), grpc::StatusCode::INVALID_ARGUMENT, "example.text");
  auto pair = Request("fine");
  pair.mutable_example()->set_text_pair("");
  ExpectError(pair, grpc::StatusCode::INVALID_ARGUMENT, "example.text_pair");
}

// Unset precision is the server's default (fp32 here); BF16 equals the engine's bf16 integrand and
// stays within the documented tolerance of fp32; an unknown value names the field.
TEST_F(ExplainRpcTest, PrecisionIsTheRequestsOrTheServersDefault) {
  auto req = Request("a gorgeous , witty , seductive movie .");
  req.mutable_options()->set_steps(20);
  req.mutable_result()->set_full_matrices(true);
  v1::ExplainResponse exact, low;
  ASSERT_TRUE(Explain(req, &exact).ok());
  EXPECT_EQ(exact.attribution().precision(), v1::FP32);
  req.mutable_options()->set_precision(v1::BF16);
  auto s = Explain(req, &low);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(low.attribution().precision(), v1::BF16);

  auto model = engine::Model::Load(::attattr::testing::Sst2ModelDir());
  ASSERT_TRUE(model.ok());
  engine::AttributionOptions o;
  o.steps = 20;
  o.precision = engine::Precision::kBf16;
  const auto local = AttributeOnWorkerThreads(**model, req.example().text(), o);
  ASSERT_TRUE(local.ok()) << local.status();
  for (int l = 0; l < 4; ++l) {
    const auto& got = low.attribution().layers(l).attribution().f32().values();
    const auto& fp32 = exact.attribution().layers(l).attribution().f32().values();
    const auto& want = (*local)[0].layers[l].attribution;
    ASSERT_EQ(static_cast<size_t>(got.size()), want.size());
    double max_ref = 0, to_engine = 0, to_fp32 = 0;
    for (int k = 0; k < got.size(); ++k) {
      max_ref = std::max(max_ref, std::fabs(static_cast<double>(fp32[k])));
      to_engine = std::max(to_engine, std::fabs(static_cast<double>(got[k]) - want[k]));
      to_fp32 = std::max(to_fp32, std::fabs(static_cast<double>(got[k]) - fp32[k]));
    }
    EXPECT_LE(to_engine, 1e-6 * max_ref) << "layer " << l;
    // README "Precision": within 1e-2 of the layer's max where the CPU multiplies bf16; LibTorch
    // 1.13 (the sanitizer build) emulating bf16 on an AVX2-only CPU erred up to 2.2e-2.
    const double tolerance = engine::CpuHasNativeBf16().value_or(true) ? 1e-2 : 3e-2;
    EXPECT_LE(to_fp32, tolerance * max_ref) << "layer " << l;
    EXPECT_GT(to_fp32, 0) << "layer " << l;
  }
  auto unknown = Request("fine");
  unknown.mutable_options()->set_precision(static_cast<v1::Precision>(7));
  ExpectError(unknown, grpc::StatusCode::INVALID_ARGUMENT, "options.precision");
}

// The proto tree as the engine's struct, for comparisons.
engine::AttributionTree TreeFromProto(const v1::ExampleAttribution& a) {
  engine::AttributionTree t;
  t.tau = a.tree().tau();
  t.root = a.tree().root();
  t.root_token = a.tokens(0);
  t.top = a.tree().top();
  t.root_edge_score = a.tree().root_edge_score();
  for (const auto& n : a.tree().nodes()) t.nodes.push_back({n.position(), n.token(), n.layer()});
  for (const auto& e : a.tree().edges()) {
    t.edges.push_back({e.parent(), e.child(), e.layer(), e.score()});
  }
  return t;
}

TEST_F(ExplainRpcTest, ExplainWithTreeEqualsTheEngineAndTheGolden) {
  ATTATTR_SKIP_IF_MISSING(::attattr::testing::GoldenPath());
  const auto golden = ::attattr::testing::LoadGolden(::attattr::testing::GoldenPath());
  const auto& g = golden.examples.at(0);
  auto req = Request(g.text);
  req.mutable_options()->set_rule(v1::LEFT_RIEMANN);
  req.mutable_options()->set_steps(golden.steps);
  req.mutable_result()->set_tree(true);
  v1::ExplainResponse resp;
  auto s = Explain(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const auto& a = resp.attribution();
  ASSERT_TRUE(a.has_tree());
  EXPECT_DOUBLE_EQ(a.tree().tau(), engine::kDefaultTreeTau);
  const engine::AttributionTree got = TreeFromProto(a);
  ::attattr::testing::ExpectTreeMatchesGolden(got, g);

  auto model = engine::Model::Load(::attattr::testing::Sst2ModelDir());
  ASSERT_TRUE(model.ok());
  engine::AttributionOptions o;
  o.rule = engine::QuadratureRule::kLeftRiemann;
  o.steps = golden.steps;
  auto local = engine::AttributeExamples(**model, {{g.text, std::nullopt, -1}}, o);
  ASSERT_TRUE(local.ok());
  auto want = engine::BuildAttributionTree((*local)[0], 4, engine::kDefaultTreeTau);
  ASSERT_TRUE(want.ok()) << want.status();
  EXPECT_EQ(got.top, want->top);
  ASSERT_EQ(got.nodes.size(), want->nodes.size());
  for (size_t k = 0; k < got.nodes.size(); ++k) {
    EXPECT_EQ(got.nodes[k].position, want->nodes[k].position);
    EXPECT_EQ(got.nodes[k].token, want->nodes[k].token);
    EXPECT_EQ(got.nodes[k].layer, want->nodes[k].layer);
  }
  ASSERT_EQ(got.edges.size(), want->edges.size());
  for (size_t k = 0; k < got.edges.size(); ++k) {
    EXPECT_EQ(got.edges[k].parent, want->edges[k].parent);
    EXPECT_EQ(got.edges[k].child, want->edges[k].child);
    EXPECT_EQ(got.edges[k].layer, want->edges[k].layer);
    EXPECT_NEAR(got.edges[k].score, want->edges[k].score, 1e-5);
  }

  // A higher τ keeps fewer edges; no tree unless asked.
  req.mutable_result()->set_tree_tau(0.9);
  v1::ExplainResponse strict;
  ASSERT_TRUE(Explain(req, &strict).ok());
  EXPECT_DOUBLE_EQ(strict.attribution().tree().tau(), 0.9);
  EXPECT_LE(strict.attribution().tree().edges_size(), a.tree().edges_size());
  req.mutable_result()->set_tree(false);
  v1::ExplainResponse plain;
  ASSERT_TRUE(Explain(req, &plain).ok());
  EXPECT_FALSE(plain.attribution().has_tree());
}

TEST_F(ExplainRpcTest, BadTreeRequestsNameTheField) {
  for (double tau : {-0.5, 1.5}) {
    auto req = Request("fine");
    req.mutable_result()->set_tree(true);
    req.mutable_result()->set_tree_tau(tau);
    ExpectError(req, grpc::StatusCode::INVALID_ARGUMENT, "result.tree_tau");
  }
  auto subset = Request("fine");
  subset.mutable_result()->set_tree(true);
  subset.mutable_options()->add_layers(0);
  subset.mutable_options()->add_layers(3);
  ExpectError(subset, grpc::StatusCode::INVALID_ARGUMENT, "options.layers");
  // All layers listed explicitly is fine.
  auto all = Request("fine");
  all.mutable_result()->set_tree(true);
  for (int l = 0; l < 4; ++l) all.mutable_options()->add_layers(l);
  v1::ExplainResponse resp;
  auto s = Explain(all, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(resp.attribution().has_tree());
}

TEST_F(ExplainRpcTest, DeadlineExceededMidRun) {
  auto req = Request("an astonishing , moving piece of work that never lets go of its audience");
  req.mutable_options()->set_steps(512);
  v1::ExplainResponse resp;
  auto s = Explain(req, &resp, std::chrono::milliseconds(50));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  // The server is still healthy afterwards.
  v1::ExplainResponse ok;
  EXPECT_TRUE(Explain(Request("fine"), &ok).ok());
}

TEST_F(ExplainRpcTest, MetricsCountRpcsAndCompleteness) {
  v1::ExplainResponse resp;
  ASSERT_TRUE(Explain(Request("a fine film"), &resp).ok());
  ExpectError(Request(""), grpc::StatusCode::INVALID_ARGUMENT, "example.text");
  ASSERT_GT(server_->metrics_port(), 0);
  auto got = ::attattr::testing::HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_EQ(got.status, 200);
  for (const char* line :
       {"attattr_rpc_requests_total{code=\"OK\",method=\"Explain\"}",
        "attattr_rpc_requests_total{code=\"INVALID_ARGUMENT\",method=\"Explain\"}",
        "attattr_rpc_duration_seconds_bucket{method=\"Explain\",le=\"+Inf\"}",
        "attattr_completeness_gap_count", "attattr_examples_processed_total{kind=\"explain\"}",
        // Created at 0, with the kind attattr_jobs_total names ATTRIBUTION jobs by.
        "attattr_examples_processed_total{kind=\"ATTRIBUTION\"} 0",
        "attattr_jobs_total{kind=\"ATTRIBUTION\",state=\"SUCCEEDED\"} 0",
        "attattr_integration_steps_total", "attattr_queue_depth{queue=\"attribution_items\"} 0",
        "attattr_queue_depth{queue=\"jobs\"} 0", "attattr_batch_size_count",
        "attattr_jobs_running 0", "process_resident_memory_bytes"}) {
    EXPECT_NE(got.body.find(line), std::string::npos) << line << "\n" << got.body;
  }
}

TEST(ServerLifecycleTest, HealthServesOverallAndPerServiceStatusThenShutsDown) {
  ATTATTR_SKIP_IF_MISSING(::attattr::testing::Sst2ModelDir());
  const std::string dir = ::attattr::testing::MakeTempDir("attattr-models");
  fs::create_directory_symlink(::attattr::testing::Sst2ModelDir(), dir + "/sst2");
  ServerConfig config;
  config.models_dir = dir;
  config.store = dir + "/jobs.db";
  config.listen = "127.0.0.1:0";
  config.metrics_listen = "";
  auto log = std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto server = Server::Start(config, log);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = "127.0.0.1:" + std::to_string((*server)->port());
  const auto check = [&](const std::string& service) {
    return ::attattr::testing::HealthStatus(address, service);
  };
  EXPECT_EQ(check(""), 1);
  EXPECT_EQ(check("attattr.v1.Attattr"), 1);
  EXPECT_EQ(check("no.such.Service"), -1);  // NOT_FOUND
  (*server)->Shutdown(std::chrono::milliseconds(100));
  (*server)->Wait();
  fs::remove_all(dir);
}

// A server storing its models' weights in bf16 (--weights bf16): GetModel says so and counts the
// bytes (half the fp32 model's, and norms and biases stay fp32), requests leaving precision unset
// run at bf16 and equal the engine on a bf16-stored model bit for bit, and FP32 is refused naming
// the field.
TEST(Bf16WeightsRpcTest, ServesTheBf16StoredModel) {
  ATTATTR_SKIP_IF_MISSING(::attattr::testing::Sst2ModelDir());
  ::attattr::testing::TempDir dir("attattr-bf16-models");
  fs::create_directory_symlink(::attattr::testing::Sst2ModelDir(), dir.path() + "/sst2");
  ServerConfig config;
  config.models_dir = dir.path();
  config.store = dir.path() + "/jobs.db";
  config.listen = "127.0.0.1:0";
  config.intra_op_threads = kWorkerThreads;
  config.weights = engine::Precision::kBf16;
  config.default_precision = engine::Precision::kBf16;
  auto log =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto server = Server::Start(config, log);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::Attattr::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*server)->port()), grpc::InsecureChannelCredentials()));

  v1::Model described;
  {
    grpc::ClientContext ctx;
    v1::GetModelRequest get;
    get.set_name("sst2");
    ASSERT_TRUE(stub->GetModel(&ctx, get, &described).ok());
  }
  EXPECT_EQ(described.weights(), v1::BF16);
  EXPECT_GT(described.weight_bytes(), 2 * described.parameter_count());
  EXPECT_LT(described.weight_bytes(), 2.2 * described.parameter_count());

  v1::ExplainRequest req;
  req.set_model("sst2");
  req.mutable_example()->set_text("a gorgeous , witty , seductive movie .");
  req.mutable_options()->set_steps(20);
  req.mutable_result()->set_full_matrices(true);
  v1::ExplainResponse resp;
  {
    grpc::ClientContext ctx;
    auto s = stub->Explain(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(resp.attribution().precision(), v1::BF16);
  engine::LoadOptions load;
  load.weights = engine::Precision::kBf16;
  auto model = engine::Model::Load(::attattr::testing::Sst2ModelDir(), load);
  ASSERT_TRUE(model.ok()) << model.status();
  engine::AttributionOptions o;
  o.steps = 20;
  o.precision = engine::Precision::kBf16;
  const auto local = AttributeOnWorkerThreads(**model, req.example().text(), o);
  ASSERT_TRUE(local.ok()) << local.status();
  for (int l = 0; l < 4; ++l) {
    const auto& got = resp.attribution().layers(l).attribution().f32().values();
    const auto& want = (*local)[0].layers[l].attribution;
    ASSERT_EQ(static_cast<size_t>(got.size()), want.size());
    for (int k = 0; k < got.size(); ++k) ASSERT_EQ(got[k], want[k]) << "layer " << l;
  }

  req.mutable_options()->set_precision(v1::FP32);
  grpc::ClientContext ctx;
  auto refused = stub->Explain(&ctx, req, &resp);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.error_message();
  // The engine's own refusal, named by its path in the request (not "options: precision: ...").
  EXPECT_EQ(refused.error_message().rfind("options.precision: fp32 needs the model's weights", 0),
            0u)
      << refused.error_message();
}

}  // namespace
}  // namespace attattr::server
