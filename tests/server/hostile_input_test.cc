// Hostile input against a real server on loopback (an in-process Server with small limits): each
// case reproduces a finding of the hardening review and checks the clean status. A tokenizer bomb
// is refused before any tokenizing while health and ListModels keep answering; a text with no word
// pieces, an oversized text in a job, an oversized request, a 1 MiB model name (answered with a
// short message) and a dataset far larger than its limit needs are all handled without work; a
// submit-then-cancel loop meets the caller's stored-bytes quota; request bytes that do not parse
// (malformed protobuf, strings that are not UTF-8) get INVALID_ARGUMENT naming the message.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "attattr/v1/attattr_service.grpc.pb.h"
#include "server.h"
#include "spdlog/sinks/null_sink.h"
#include "spdlog/spdlog.h"
#include "support/job_rpc.h"
#include "support/test_paths.h"

namespace attattr::server {
namespace {

namespace fs = std::filesystem;
using ::attattr::testing::ExpectStatus;

constexpr int kMaxTextBytes = 4096;

class HostileInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::attattr::testing::PathExists(::attattr::testing::Sst2ModelDir())) return;
    dir_ = new std::string(::attattr::testing::MakeTempDir("attattr-hostile"));
    fs::create_directories(*dir_ + "/models");
    fs::create_directories(*dir_ + "/data");
    fs::create_directory_symlink(::attattr::testing::Sst2ModelDir(), *dir_ + "/models/sst2");
    // A dataset of ~3 MiB: a few rows are all a small limit needs.
    std::ofstream big(*dir_ + "/data/big.tsv");
    big << "sentence\tlabel\n";
    for (int i = 0; i < 60000; ++i) big << "a fine , warm and witty film number " << i << " \t1\n";
    big.close();
    ServerConfig config;
    config.models_dir = *dir_ + "/models";
    config.data_root = *dir_ + "/data";
    config.store = *dir_ + "/jobs.db";
    config.listen = "127.0.0.1:0";
    config.metrics_listen = "";
    config.max_text_bytes = kMaxTextBytes;
    config.max_request_bytes = int64_t{2} << 20;
    config.max_dataset_bytes = int64_t{1} << 20;
    config.max_job_examples = 100000;  // so the dataset cap, not the example cap, is what binds
    config.max_stored_bytes_per_principal = int64_t{1} << 20;
    auto log =
        std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>());
    auto server = Server::Start(config, log);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    if (dir_ != nullptr) fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(::attattr::testing::Sst2ModelDir());
    ASSERT_NE(server_, nullptr);
    stub_ = ::attattr::testing::Connect("127.0.0.1:" + std::to_string(server_->port()));
  }

  grpc::Status Explain(const v1::ExplainRequest& request, std::chrono::seconds deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    v1::ExplainResponse response;
    return stub_->Explain(&ctx, request, &response);
  }
  static v1::ExplainRequest Request(const std::string& text) {
    v1::ExplainRequest request;
    request.set_model("sst2");
    request.mutable_example()->set_text(text);
    return request;
  }

  static Server* server_;
  static std::string* dir_;
  std::unique_ptr<v1::Attattr::Stub> stub_;
};

Server* HostileInputTest::server_ = nullptr;
std::string* HostileInputTest::dir_ = nullptr;

// U+0301 / U+0316 alternating: the canonical-ordering worst case.
std::string Bomb(size_t bytes) {
  std::string text = "a";
  while (text.size() < bytes) text += "\xcc\x81\xcc\x96";
  return text;
}

TEST_F(HostileInputTest, TokenizerBombsAreRefusedBeforeTokenizingWhileHealthKeepsAnswering) {
  // Eight concurrent half-megabyte bombs (the review's reproduction).
  std::vector<std::future<grpc::Status>> bombs;
  for (int i = 0; i < 8; ++i) {
    bombs.push_back(std::async(std::launch::async, [this] {
      return Explain(Request(Bomb(512 << 10)), std::chrono::seconds(30));
    }));
  }
  // Meanwhile the server answers other calls within their deadlines.
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ListModelsResponse models;
    EXPECT_TRUE(stub_->ListModels(&ctx, {}, &models).ok());
  }
  for (auto& bomb : bombs) {
    ExpectStatus(bomb.get(), grpc::StatusCode::INVALID_ARGUMENT, "--max-text-bytes");
  }
  // Just under the limit, the bomb is an ordinary text: tokenized (in linear time) and explained.
  EXPECT_TRUE(Explain(Request(Bomb(kMaxTextBytes - 8)), std::chrono::seconds(60)).ok());
}

// gRPC's callback handlers answer a request that does not parse with UNIMPLEMENTED and no message;
// the server says what was wrong instead, and keeps serving.
TEST_F(HostileInputTest, GarbageRequestBytesGetInvalidArgumentNamingTheMessage) {
  const std::string address = "127.0.0.1:" + std::to_string(server_->port());
  // A field 1 length-delimited record claiming more bytes than there are.
  const std::string truncated =
      "\x0a\x7f"
      "abc";
  // ExplainRequest.model (field 1, string) = bytes that are not UTF-8.
  const std::string not_utf8 = "\x0a\x02\xc3\x28";
  // A tag with a reserved wire type (7).
  const std::string bad_wire_type = "\x0f\x01";
  for (const std::string& bytes : {truncated, not_utf8, bad_wire_type}) {
    const auto reply =
        ::attattr::testing::RawUnaryCall(address, "/attattr.v1.Attattr/Explain", bytes);
    ExpectStatus(reply.status, grpc::StatusCode::INVALID_ARGUMENT,
                 "request: not a valid attattr.v1.ExplainRequest");
  }
  const auto job =
      ::attattr::testing::RawUnaryCall(address, "/attattr.v1.Attattr/SubmitJob", truncated);
  ExpectStatus(job.status, grpc::StatusCode::INVALID_ARGUMENT,
               "not a valid attattr.v1.SubmitJobRequest");
  // A well-formed empty request still reaches the service (which names the model it lacks), and an
  // unknown method is still UNIMPLEMENTED.
  const auto empty = ::attattr::testing::RawUnaryCall(address, "/attattr.v1.Attattr/Explain", "");
  EXPECT_NE(empty.status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(empty.status.error_message().find("model"), std::string::npos)
      << empty.status.error_message();
  EXPECT_EQ(empty.status.error_message().find("not a valid"), std::string::npos)
      << empty.status.error_message();
  const auto unknown = ::attattr::testing::RawUnaryCall(address, "/attattr.v1.Attattr/Nope", "");
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(::attattr::testing::HealthStatus(address, ""), 1);
}

TEST_F(HostileInputTest, ATextWithNoWordPiecesIsRefused) {
  ExpectStatus(Explain(Request("\x01\x02 \t\x7f"), std::chrono::seconds(30)),
               grpc::StatusCode::INVALID_ARGUMENT, "example.text: holds no tokens");
  v1::ExplainRequest pair = Request("a fine film");
  pair.mutable_example()->set_text_pair(" \x03 ");
  ExpectStatus(Explain(pair, std::chrono::seconds(30)), grpc::StatusCode::INVALID_ARGUMENT,
               "example.text_pair: holds no tokens");
}

TEST_F(HostileInputTest, AHugeModelNameGetsAShortAnswer) {
  v1::ExplainRequest request = Request("a fine film");
  request.set_model(std::string(1 << 20, 'm'));
  const grpc::Status s = Explain(request, std::chrono::seconds(30));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_LT(s.error_message().size(), 200u) << "the name is quoted, not echoed whole";
  EXPECT_NE(s.error_message().find("(1048576 bytes)"), std::string::npos) << s.error_message();
}

TEST_F(HostileInputTest, ARequestOverTheReceiveLimitIsRefusedByGrpc) {
  const grpc::Status s = Explain(Request(std::string(3 << 20, 'a')), std::chrono::seconds(30));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
}

TEST_F(HostileInputTest, AJobWithATooLongTextIsRefusedNamingTheExampleAndTheFlag) {
  v1::JobSpec spec;
  spec.set_model("sst2");
  auto* examples = spec.mutable_attribution()->mutable_examples()->mutable_inline_();
  examples->add_examples()->set_text("a fine film");
  examples->add_examples()->set_text(std::string(kMaxTextBytes + 1, 'a'));
  v1::Job job;
  ExpectStatus(::attattr::testing::Submit(*stub_, spec, &job), grpc::StatusCode::INVALID_ARGUMENT,
               "spec.attribution.examples.inline.examples[1].text: 4097 bytes, above the "
               "server's limit of 4096 (--max-text-bytes)");
}

// Regression (hostile-input review): a spec's inline examples were counted only after validation
// had copied them all (a 32 MiB request holds 16 million empty examples: gigabytes, and the
// validation workers busy for seconds). They are counted as the call arrives, before the spec
// waits for validation, which would have named the unknown model first.
TEST_F(HostileInputTest, TooManyInlineExamplesAreRefusedBeforeValidation) {
  v1::JobSpec spec;
  spec.set_model("no-such-model");
  auto* list = spec.mutable_attribution()->mutable_examples()->mutable_inline_();
  for (int i = 0; i <= 100000; ++i) list->add_examples();  // 2 bytes each on the wire
  v1::Job job;
  ExpectStatus(::attattr::testing::Submit(*stub_, spec, &job), grpc::StatusCode::INVALID_ARGUMENT,
               "spec.attribution.examples: more than 100000 examples (server limit "
               "--max-job-examples)");
}

TEST_F(HostileInputTest, ADatasetIsReadOnlyAsFarAsItsLimitNeeds) {
  // The file is ~3 MiB and the server reads at most 1 MiB of a dataset: a small limit is fine...
  ASSERT_GT(fs::file_size(*dir_ + "/data/big.tsv"), 2u << 20);
  v1::JobSpec spec;
  spec.set_model("sst2");
  *spec.mutable_attribution()->mutable_examples() = ::attattr::testing::DatasetSource("big.tsv", 3);
  spec.mutable_attribution()->mutable_options()->set_steps(1);
  v1::Job job;
  ASSERT_TRUE(::attattr::testing::Submit(*stub_, spec, &job).ok());
  EXPECT_EQ(::attattr::testing::WaitDone(*stub_, job.name()).state(), v1::SUCCEEDED);
  // ... all of it is refused without reading past the cap, naming the flag.
  *spec.mutable_attribution()->mutable_examples() = ::attattr::testing::DatasetSource("big.tsv", 0);
  ExpectStatus(::attattr::testing::Submit(*stub_, spec, &job), grpc::StatusCode::INVALID_ARGUMENT,
               "(--max-dataset-mib)");
}

// Regression (hardening review): submit-then-cancel bypassed the queue bound and cancelled jobs
// stayed stored for days (40 calls: 4.5 -> 144 MiB). The caller's stored bytes are bounded: the
// third ~370 KiB job is refused (RESOURCE_EXHAUSTED naming the flag, without a retry pushback,
// since waiting does not help), and deleting a cancelled job makes room again. A cancelled job
// holds its spec only; the job being submitted also reserves its result's estimate (top_k 1 keeps
// that small here: ~200 KiB).
TEST_F(HostileInputTest, SubmitThenCancelLoopsHitTheStoredBytesQuota) {
  v1::JobSpec spec;
  spec.set_model("sst2");
  auto* a = spec.mutable_attribution();
  a->mutable_options()->set_steps(1);
  a->mutable_result()->set_top_k(1);
  std::string text;
  while (text.size() + 12 < kMaxTextBytes) text += "a fine film ";
  for (int i = 0; i < 90; ++i)
    a->mutable_examples()->mutable_inline_()->add_examples()->set_text(text);
  std::vector<std::string> cancelled;
  grpc::Status refused;
  std::multimap<grpc::string_ref, grpc::string_ref> trailers;
  for (int i = 0; i < 10 && refused.ok(); ++i) {
    grpc::ClientContext ctx;
    v1::Job job;
    refused = ::attattr::testing::Submit(*stub_, spec, &job, "", &ctx);
    if (refused.ok()) {
      ASSERT_TRUE(::attattr::testing::Cancel(*stub_, job.name()).ok());
      cancelled.push_back(job.name());
    } else {
      trailers = ctx.GetServerTrailingMetadata();
    }
  }
  // 2 x ~370 KiB fit in 1 MiB with a reservation; the third does not.
  EXPECT_EQ(cancelled.size(), 2u) << refused.error_message();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("--max-stored-mib-per-principal"), std::string::npos)
      << refused.error_message();
  EXPECT_EQ(trailers.count("grpc-retry-pushback-ms"), 0u);
  ASSERT_FALSE(cancelled.empty());
  ASSERT_TRUE(::attattr::testing::Delete(*stub_, cancelled.front()).ok());
  v1::Job job;
  const grpc::Status again = ::attattr::testing::Submit(*stub_, spec, &job);
  EXPECT_TRUE(again.ok()) << again.error_message();
}

}  // namespace
}  // namespace attattr::server
