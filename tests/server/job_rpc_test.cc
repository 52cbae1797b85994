// The job RPCs end to end: the real attattr-server binary on an ephemeral loopback port, called
// through the generated stubs. Submit → wait → result equal to Explain; idempotent submit; list
// with filters and page tokens; the watch stream; cancel and deadline mid-job; every error path
// with its code and field; a full queue with the retry pushback; restart after kill -9 and after a
// SIGTERM drain with nothing lost; 32 concurrent clients; a BERT-base-sized result streamed in
// chunks under 1 MiB; streams whose clients give up while they start.
#include "support/job_rpc.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "attattr/v1/attattr_service.grpc.pb.h"
#include "support/golden.h"
#include "support/golden_tree.h"
#include "support/random_checkpoint.h"
#include "support/server_process.h"
#include "support/test_paths.h"

namespace {

namespace v1 = attattr::v1;
namespace fs = std::filesystem;
using ::attattr::testing::Connect;
using ::attattr::testing::Delete;
using ::attattr::testing::ExpectStatus;
using ::attattr::testing::Get;
using ::attattr::testing::ReadResult;
using ::attattr::testing::ServerProcess;
using ::attattr::testing::Sst2ModelDir;
using ::attattr::testing::StreamedResult;
using ::attattr::testing::Submit;
using ::attattr::testing::WaitDone;
using ::attattr::testing::WaitForState;
using Clock = std::chrono::steady_clock;

constexpr char kModel[] = "sst2";

v1::JobSpec TextJob(const std::vector<std::string>& texts, int steps = 4) {
  v1::JobSpec spec;
  spec.set_model(kModel);
  auto* a = spec.mutable_attribution();
  for (const auto& t : texts) a->mutable_examples()->mutable_inline_()->add_examples()->set_text(t);
  a->mutable_options()->set_steps(steps);
  return spec;
}

// Texts of SST-2 length, distinct, for jobs that should take a while.
std::vector<std::string> ManyTexts(int count) {
  std::vector<std::string> texts;
  for (int i = 0; i < count; ++i) {
    texts.push_back("the film number " + std::to_string(i) +
                    " is a gorgeous , witty , seductive movie that never quite works .");
  }
  return texts;
}

class JobRpcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::attattr::testing::PathExists(Sst2ModelDir())) return;
    data_root_ = new std::string(::attattr::testing::MakeTempDir("attattr-data"));
    std::ifstream in(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv");
    std::ofstream out(*data_root_ + "/sst2-dev.tsv");
    std::string line;
    for (int i = 0; i < 6 && std::getline(in, line); ++i) out << line << "\n";
    out.close();
    fs::create_directories(*data_root_ + "/../outside-" +
                           fs::path(*data_root_).filename().string());
    server_ = new ServerProcess({{kModel, Sst2ModelDir()}},
                                {"--data-root=" + *data_root_, "--job-runners=2"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    if (data_root_) {
      fs::remove_all(*data_root_ + "/../outside-" + fs::path(*data_root_).filename().string());
      fs::remove_all(*data_root_);
    }
    delete data_root_;
    data_root_ = nullptr;
  }
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    ASSERT_TRUE(server_ && server_->ok());
    stub_ = Connect(server_->address());
  }

  static ServerProcess* server_;
  static std::string* data_root_;
  std::unique_ptr<v1::Attattr::Stub> stub_;
};

ServerProcess* JobRpcTest::server_ = nullptr;
std::string* JobRpcTest::data_root_ = nullptr;

TEST_F(JobRpcTest, SubmitWaitAndTheResultEqualsExplainOfEachExample) {
  const std::vector<std::string> texts = {"a gorgeous , witty , seductive movie .",
                                          "the plot is nothing but boilerplate clichés .",
                                          "it 's a charming and often affecting journey ."};
  v1::JobSpec spec = TextJob(texts, 8);
  spec.mutable_attribution()->mutable_result()->set_head_summed(true);
  spec.mutable_attribution()->mutable_result()->set_top_k(5);
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, spec, &job).ok());
  EXPECT_EQ(job.kind(), v1::ATTRIBUTION);
  EXPECT_TRUE(job.state() == v1::QUEUED || job.state() == v1::RUNNING);
  EXPECT_EQ(job.name().rfind("jobs/", 0), 0u) << job.name();
  const v1::Job done = WaitDone(*stub_, job.name());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error_message();
  EXPECT_EQ(done.progress().done(), 3);
  EXPECT_EQ(done.progress().total(), 3);
  EXPECT_GT(done.result_size_bytes(), 0);
  EXPECT_GT(done.end_time_ms(), 0);
  auto streamed = ReadResult(*stub_, job.name());
  ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  EXPECT_EQ(static_cast<int64_t>(streamed.bytes.size()), done.result_size_bytes());
  ASSERT_EQ(streamed.result.attribution().examples_size(), 3);
  for (int e = 0; e < 3; ++e) {
    v1::ExplainRequest req;
    req.set_model(kModel);
    req.mutable_example()->set_text(texts[e]);
    *req.mutable_options() = spec.attribution().options();
    *req.mutable_result() = spec.attribution().result();
    v1::ExplainResponse alone;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->Explain(&ctx, req, &alone).ok());
    const auto& a = alone.attribution();
    const auto& b = streamed.result.attribution().examples(e);
    ASSERT_EQ(a.tokens_size(), b.tokens_size());
    EXPECT_EQ(a.prediction().predicted(), b.prediction().predicted());
    ASSERT_EQ(a.layers_size(), b.layers_size());
    for (int l = 0; l < a.layers_size(); ++l) {
      const auto& x = a.layers(l).head_summed().f32().values();
      const auto& y = b.layers(l).head_summed().f32().values();
      ASSERT_EQ(x.size(), y.size());
      float scale = 1e-12f;
      for (float v : x) scale = std::max(scale, std::abs(v));
      for (int i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], y[i], 1e-5 * scale) << e << "/" << l;
      EXPECT_NEAR(a.layers(l).completeness_gap(), b.layers(l).completeness_gap(), 1e-5);
      EXPECT_EQ(b.layers(l).top_connections_size(), 5);
    }
  }
}

TEST_F(JobRpcTest, SubmitIsIdempotentOnRequestId) {
  const std::string id = "idem-" + std::to_string(::getpid());
  v1::Job first, second, other;
  ASSERT_TRUE(Submit(*stub_, TextJob({"fine"}), &first, id).ok());
  ASSERT_TRUE(Submit(*stub_, TextJob({"fine"}), &second, id).ok());
  EXPECT_EQ(first.name(), second.name());
  EXPECT_EQ(second.request_id(), id);
  ExpectStatus(Submit(*stub_, TextJob({"different"}), &other, id), grpc::StatusCode::ALREADY_EXISTS,
               "request_id");
  WaitDone(*stub_, first.name());
}

TEST_F(JobRpcTest, ListJobsFiltersByStateAndKindAndPages) {
  std::vector<std::string> names;
  for (int i = 0; i < 3; ++i) {
    v1::Job job;
    ASSERT_TRUE(Submit(*stub_, TextJob({"list me " + std::to_string(i)}, 2), &job).ok());
    names.push_back(job.name());
  }
  for (const auto& n : names) ASSERT_EQ(WaitDone(*stub_, n).state(), v1::SUCCEEDED);
  std::vector<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    v1::ListJobsRequest req;
    req.set_state(v1::SUCCEEDED);
    req.set_kind(v1::ATTRIBUTION);
    req.set_page_size(2);
    req.set_page_token(token);
    v1::ListJobsResponse resp;
    ASSERT_TRUE(stub_->ListJobs(&ctx, req, &resp).ok());
    EXPECT_LE(resp.jobs_size(), 2);
    for (const auto& j : resp.jobs()) {
      EXPECT_EQ(j.state(), v1::SUCCEEDED);
      listed.push_back(j.name());
    }
    token = resp.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 100);
  EXPECT_GE(pages, 2);
  for (const auto& n : names) EXPECT_EQ(std::count(listed.begin(), listed.end(), n), 1) << n;
  {
    grpc::ClientContext ctx;
    v1::ListJobsRequest req;
    req.set_state(v1::RUNNING);
    req.set_kind(v1::HEAD_IMPORTANCE);
    v1::ListJobsResponse resp;
    ASSERT_TRUE(stub_->ListJobs(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.jobs_size(), 0);
  }
  grpc::ClientContext ctx;
  v1::ListJobsRequest req;
  req.set_page_token("garbage");
  v1::ListJobsResponse resp;
  ExpectStatus(stub_->ListJobs(&ctx, req, &resp), grpc::StatusCode::INVALID_ARGUMENT, "page_token");
}

// Regression (hostile-input review): WatchJob read a view it did not know as FULL; it is refused,
// naming the field, as ListJobs refuses it.
TEST_F(JobRpcTest, WatchJobRefusesAnUnknownView) {
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, TextJob(ManyTexts(1), 8), &job).ok());
  grpc::ClientContext ctx;
  v1::WatchJobRequest req;
  req.set_name(job.name());
  req.set_view(static_cast<v1::JobView>(99));
  auto reader = stub_->WatchJob(&ctx, req);
  v1::Job update;
  EXPECT_FALSE(reader->Read(&update));
  ExpectStatus(reader->Finish(), grpc::StatusCode::INVALID_ARGUMENT, "view: unknown value 99");
}

TEST_F(JobRpcTest, WatchJobStreamsProgressUntilSucceeded) {
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, TextJob(ManyTexts(12), 8), &job).ok());
  grpc::ClientContext ctx;
  v1::WatchJobRequest req;
  req.set_name(job.name());
  auto reader = stub_->WatchJob(&ctx, req);
  std::vector<v1::Job> updates;
  v1::Job update;
  while (reader->Read(&update)) updates.push_back(update);
  auto s = reader->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_GE(updates.size(), 2u);
  EXPECT_EQ(updates.back().state(), v1::SUCCEEDED);
  int64_t last_done = -1;
  bool saw_attribution = false;
  for (const auto& u : updates) {
    if (u.progress().stage() == "attribution") {
      saw_attribution = true;
      EXPECT_EQ(u.progress().total(), 12);
      EXPECT_GE(u.progress().done(), last_done);
      last_done = u.progress().done();
      if (u.progress().done() > 0 && u.progress().done() < 12) {
        EXPECT_GE(u.progress().eta_seconds(), 0);
      }
    }
  }
  EXPECT_TRUE(saw_attribution);
}

TEST_F(JobRpcTest, CancelMidJobLeavesItListedAsCancelled) {
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, TextJob(ManyTexts(64), 64), &job).ok());
  WaitForState(*stub_, job.name(), v1::RUNNING);
  grpc::ClientContext ctx;
  v1::CancelJobRequest req;
  req.set_name(job.name());
  v1::Job cancelled;
  ASSERT_TRUE(stub_->CancelJob(&ctx, req, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::CANCELLED);
  EXPECT_EQ(cancelled.error_code(), static_cast<int>(grpc::StatusCode::CANCELLED));
  const v1::Job later = WaitDone(*stub_, job.name());
  EXPECT_EQ(later.state(), v1::CANCELLED);
  EXPECT_LT(later.progress().done(), 64);
  ExpectStatus(ReadResult(*stub_, job.name()).status, grpc::StatusCode::FAILED_PRECONDITION,
               "CANCELLED");
  grpc::ClientContext again_ctx;
  v1::Job again;
  ExpectStatus(stub_->CancelJob(&again_ctx, req, &again), grpc::StatusCode::FAILED_PRECONDITION,
               job.name());
  // The runner is free again: a new job completes.
  v1::Job next;
  ASSERT_TRUE(Submit(*stub_, TextJob({"after the cancel"}), &next).ok());
  EXPECT_EQ(WaitDone(*stub_, next.name()).state(), v1::SUCCEEDED);
}

TEST_F(JobRpcTest, JobTimeoutEndsItWithDeadlineExceededMidRun) {
  v1::JobSpec spec = TextJob(ManyTexts(64), 64);
  spec.set_timeout_ms(1500);
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, spec, &job).ok());
  const v1::Job done = WaitDone(*stub_, job.name());
  EXPECT_EQ(done.state(), v1::FAILED);
  EXPECT_EQ(done.error_code(), static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED));
  EXPECT_NE(done.error_message().find("timeout_ms"), std::string::npos) << done.error_message();
}

TEST_F(JobRpcTest, DeleteJobRemovesItAndItsResult) {
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, TextJob({"delete me"}), &job).ok());
  WaitDone(*stub_, job.name());
  ASSERT_TRUE(Delete(*stub_, job.name()).ok());
  grpc::ClientContext get_ctx;
  v1::GetJobRequest get;
  get.set_name(job.name());
  v1::Job gone;
  ExpectStatus(stub_->GetJob(&get_ctx, get, &gone), grpc::StatusCode::NOT_FOUND, job.name());
  ExpectStatus(ReadResult(*stub_, job.name()).status, grpc::StatusCode::NOT_FOUND, job.name());
}

TEST_F(JobRpcTest, DatasetUnderTheDataRootRunsAndEscapesAreRefused) {
  v1::JobSpec spec;
  spec.set_model(kModel);
  auto* dataset = spec.mutable_attribution()->mutable_examples()->mutable_dataset();
  dataset->set_path("sst2-dev.tsv");
  dataset->set_limit(3);
  spec.mutable_attribution()->mutable_options()->set_steps(2);
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, spec, &job).ok());
  ASSERT_EQ(WaitDone(*stub_, job.name()).state(), v1::SUCCEEDED);
  auto streamed = ReadResult(*stub_, job.name());
  ASSERT_TRUE(streamed.status.ok());
  EXPECT_EQ(streamed.result.attribution().examples_size(), 3);

  for (const std::string& bad : std::vector<std::string>{
           "../outside-" + fs::path(*data_root_).filename().string() + "/x.tsv", "/etc/passwd",
           "a/../../x.tsv"}) {
    dataset->set_path(bad);
    ExpectStatus(Submit(*stub_, spec, &job), grpc::StatusCode::INVALID_ARGUMENT,
                 "spec.attribution.examples.dataset.path");
  }
  dataset->set_path("missing.tsv");
  ExpectStatus(Submit(*stub_, spec, &job), grpc::StatusCode::NOT_FOUND, "dataset.path");
}

TEST_F(JobRpcTest, BadRequestsGetTheirCodeAndNameTheField) {
  v1::Job job;
  auto expect_submit = [&](const v1::JobSpec& spec, grpc::StatusCode code,
                           const std::string& field) {
    ExpectStatus(Submit(*stub_, spec, &job), code, field);
  };
  v1::JobSpec no_kind;
  no_kind.set_model(kModel);
  expect_submit(no_kind, grpc::StatusCode::INVALID_ARGUMENT, "spec.kind");
  v1::JobSpec heads;
  heads.set_model(kModel);
  heads.mutable_head_importance();
  expect_submit(heads, grpc::StatusCode::INVALID_ARGUMENT, "spec.head_importance.importance_set");
  v1::JobSpec triggers;
  triggers.set_model(kModel);
  triggers.mutable_trigger_search();
  expect_submit(triggers, grpc::StatusCode::INVALID_ARGUMENT, "spec.trigger_search.mining_set");
  v1::JobSpec spec = TextJob({"fine"});
  spec.set_model("no-such-model");
  expect_submit(spec, grpc::StatusCode::NOT_FOUND, "spec.model");
  expect_submit(TextJob({""}), grpc::StatusCode::INVALID_ARGUMENT, "examples[0].text");
  expect_submit(TextJob({"fine"}, 100000), grpc::StatusCode::INVALID_ARGUMENT,
                "spec.attribution.options.steps");
  spec = TextJob({"fine"});
  spec.mutable_attribution()->mutable_options()->add_layers(7);
  expect_submit(spec, grpc::StatusCode::INVALID_ARGUMENT, "layers[0]");
  spec = TextJob({"fine"});
  spec.set_priority(99);
  expect_submit(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.priority");
  v1::SubmitJobRequest empty;
  grpc::ClientContext ctx;
  ExpectStatus(stub_->SubmitJob(&ctx, empty, &job), grpc::StatusCode::INVALID_ARGUMENT, "spec");

  auto get = [&](const std::string& name) {
    grpc::ClientContext c;
    v1::GetJobRequest r;
    r.set_name(name);
    return stub_->GetJob(&c, r, &job);
  };
  ExpectStatus(get("jobs/0123456789abcdef0123456789abcdef"), grpc::StatusCode::NOT_FOUND,
               "jobs/0123456789abcdef0123456789abcdef");
  ExpectStatus(get("nonsense"), grpc::StatusCode::INVALID_ARGUMENT, "name");
  ExpectStatus(get(""), grpc::StatusCode::INVALID_ARGUMENT, "name");
  grpc::ClientContext wait_ctx;
  v1::WaitJobRequest wait;
  wait.set_name("jobs/x");
  wait.set_timeout_ms(10000000);
  ExpectStatus(stub_->WaitJob(&wait_ctx, wait, &job), grpc::StatusCode::INVALID_ARGUMENT,
               "timeout_ms");
  grpc::ClientContext watch_ctx;
  v1::WatchJobRequest watch;
  watch.set_name("jobs/unknown");
  auto reader = stub_->WatchJob(&watch_ctx, watch);
  v1::Job unused;
  EXPECT_FALSE(reader->Read(&unused));
  ExpectStatus(reader->Finish(), grpc::StatusCode::NOT_FOUND, "jobs/unknown");
  grpc::ClientContext list_ctx;
  v1::ListJobsRequest list;
  list.set_page_size(5000);
  v1::ListJobsResponse listed;
  ExpectStatus(stub_->ListJobs(&list_ctx, list, &listed), grpc::StatusCode::INVALID_ARGUMENT,
               "page_size");
}

// The streams start on the store pool; a client that gives up while its call waits there (or
// mid-stream) must leave nothing behind that a later callback could reach (the ASan build runs this
// with the ASan server). Deadlines of 0-3 ms cancel calls at every point of their start.
TEST_F(JobRpcTest, StreamsCancelledWhileStartingLeaveTheServerServing) {
  v1::Job finished, running;
  ASSERT_TRUE(Submit(*stub_, TextJob({"read me back"}), &finished).ok());
  ASSERT_EQ(WaitDone(*stub_, finished.name()).state(), v1::SUCCEEDED);
  ASSERT_TRUE(Submit(*stub_, TextJob(ManyTexts(16), 16), &running).ok());
  std::atomic<int> unexpected{0};
  const auto ok_or_gave_up = [&](const grpc::Status& s) {
    if (s.ok() || s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
        s.error_code() == grpc::StatusCode::CANCELLED) {
      return;
    }
    ++unexpected;
    ADD_FAILURE() << s.error_code() << ": " << s.error_message();
  };
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(i % 4));
        if (t == 0) {
          v1::WaitJobRequest req;
          req.set_name(running.name());
          req.set_timeout_ms(10000);
          v1::Job out;
          ok_or_gave_up(stub_->WaitJob(&ctx, req, &out));
        } else {
          std::unique_ptr<grpc::ClientReaderInterface<v1::Job>> watch;
          std::unique_ptr<grpc::ClientReaderInterface<v1::ResultChunk>> result;
          if (t == 1) {
            v1::WatchJobRequest req;
            req.set_name(running.name());
            watch = stub_->WatchJob(&ctx, req);
            v1::Job out;
            while (watch->Read(&out)) {
            }
            ok_or_gave_up(watch->Finish());
          } else {
            v1::GetJobResultRequest req;
            req.set_name(finished.name());
            result = stub_->GetJobResult(&ctx, req);
            v1::ResultChunk out;
            while (result->Read(&out)) {
            }
            ok_or_gave_up(result->Finish());
          }
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(unexpected.load(), 0);
  // Still serving: the result reads back whole and the running job finishes.
  EXPECT_TRUE(ReadResult(*stub_, finished.name()).status.ok());
  EXPECT_EQ(WaitDone(*stub_, running.name()).state(), v1::SUCCEEDED);
}

TEST_F(JobRpcTest, WaitJobReturnsTheJobWhenItsTimeoutPasses) {
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, TextJob(ManyTexts(32), 32), &job).ok());
  grpc::ClientContext ctx;
  v1::WaitJobRequest req;
  req.set_name(job.name());
  req.set_timeout_ms(200);
  v1::Job waited;
  const auto start = Clock::now();
  ASSERT_TRUE(stub_->WaitJob(&ctx, req, &waited).ok());
  // It waited its timeout (a WaitJob that ignored it would answer at once) and the job is not
  // done yet: 32 examples of 32 steps take seconds.
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(200));
  EXPECT_LT(waited.state(), v1::SUCCEEDED);
  grpc::ClientContext cancel_ctx;
  v1::CancelJobRequest cancel;
  cancel.set_name(job.name());
  v1::Job cancelled;
  EXPECT_TRUE(stub_->CancelJob(&cancel_ctx, cancel, &cancelled).ok());
}

TEST_F(JobRpcTest, ThirtyTwoConcurrentClientsSubmitAndWatch) {
  constexpr int kClients = 32;
  std::atomic<int> succeeded{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto stub = Connect(server_->address());  // a channel per client
      v1::Job job;
      auto s =
          Submit(*stub, TextJob({"client " + std::to_string(c) + " likes this film ."}, 2), &job);
      if (!s.ok()) {
        ADD_FAILURE() << "client " << c << ": " << s.error_message();
        return;
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(240));
      v1::WatchJobRequest req;
      req.set_name(job.name());
      auto reader = stub->WatchJob(&ctx, req);
      v1::Job update, last;
      while (reader->Read(&update)) last = update;
      auto finished = reader->Finish();
      if (finished.ok() && last.state() == v1::SUCCEEDED)
        ++succeeded;
      else
        ADD_FAILURE() << "client " << c << ": " << finished.error_message() << " "
                      << v1::JobState_Name(last.state());
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(succeeded.load(), kClients);
}

// Servers of their own: small queues, restarts, a big model.
class JobServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    dir_ = ::attattr::testing::MakeTempDir("attattr-jobsrv");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::unique_ptr<ServerProcess> Start(std::vector<std::string> args) {
    args.push_back("--store=" + dir_ + "/jobs.db");
    args.push_back("--grace-seconds=1");  // a drain need not wait long in tests
    auto server = std::make_unique<ServerProcess>(
        std::map<std::string, std::string>{{kModel, Sst2ModelDir()}}, args);
    EXPECT_TRUE(server->ok());
    return server;
  }
  std::string dir_;
};

TEST_F(JobServerTest, FullQueueAnswersResourceExhaustedWithARetryHint) {
  auto server = Start({"--job-runners=1", "--max-queued-jobs=1"});
  auto stub = Connect(server->address());
  v1::Job running, queued, refused;
  ASSERT_TRUE(Submit(*stub, TextJob(ManyTexts(64), 64), &running).ok());
  WaitForState(*stub, running.name(), v1::RUNNING);
  ASSERT_TRUE(Submit(*stub, TextJob({"waits"}), &queued).ok());
  grpc::ClientContext ctx;
  auto s = Submit(*stub, TextJob({"no room"}), &refused, "", &ctx);
  ExpectStatus(s, grpc::StatusCode::RESOURCE_EXHAUSTED, "--max-queued-jobs");
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto hint = trailers.find("grpc-retry-pushback-ms");
  ASSERT_NE(hint, trailers.end());
  EXPECT_GT(std::stoll(std::string(hint->second.data(), hint->second.size())), 0);
  EXPECT_EQ(Get(*stub, queued.name()).state(), v1::QUEUED);
}

TEST_F(JobServerTest, KillNineThenRestartKeepsResultsAndCompletesQueuedAndRunningJobs) {
  std::string finished_name, running_name, queued_name, finished_bytes;
  {
    auto server = Start({"--job-runners=1"});
    auto stub = Connect(server->address());
    v1::Job finished, running, queued;
    ASSERT_TRUE(Submit(*stub, TextJob({"done before the crash"}), &finished).ok());
    ASSERT_EQ(WaitDone(*stub, finished.name()).state(), v1::SUCCEEDED);
    finished_bytes = ReadResult(*stub, finished.name()).bytes;
    ASSERT_TRUE(Submit(*stub, TextJob(ManyTexts(16), 16), &running).ok());
    ASSERT_TRUE(Submit(*stub, TextJob({"queued at the crash"}), &queued).ok());
    WaitForState(*stub, running.name(), v1::RUNNING);
    finished_name = finished.name();
    running_name = running.name();
    queued_name = queued.name();
    server->Kill();
  }
  auto server = Start({"--job-runners=1"});
  auto stub = Connect(server->address());
  EXPECT_EQ(Get(*stub, finished_name).state(), v1::SUCCEEDED);
  auto again = ReadResult(*stub, finished_name);
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(again.bytes, finished_bytes);
  const v1::Job running = WaitDone(*stub, running_name);
  EXPECT_EQ(running.state(), v1::SUCCEEDED) << running.error_message();
  EXPECT_EQ(ReadResult(*stub, running_name).result.attribution().examples_size(), 16);
  EXPECT_EQ(WaitDone(*stub, queued_name).state(), v1::SUCCEEDED);
}

// A poison job — the process dies under it every time it runs — fails after --max-job-attempts
// starts instead of crash-looping the server (the review's finding, reproduced with kill -9).
TEST_F(JobServerTest, AJobTheServerKeepsDyingUnderFailsAfterTheAttemptLimit) {
  std::string name;
  for (int start = 1; start <= 2; ++start) {
    auto server = Start({"--job-runners=1", "--max-job-attempts=2"});
    auto stub = Connect(server->address());
    if (name.empty()) {
      v1::Job job;
      ASSERT_TRUE(Submit(*stub, TextJob(ManyTexts(64), 64), &job).ok());
      name = job.name();
    }
    WaitForState(*stub, name, v1::RUNNING);
    server->Kill();
  }
  auto server = Start({"--job-runners=1", "--max-job-attempts=2"});
  auto stub = Connect(server->address());
  const v1::Job failed = Get(*stub, name);
  EXPECT_EQ(failed.state(), v1::FAILED);
  EXPECT_EQ(failed.error_code(), static_cast<int>(grpc::StatusCode::INTERNAL));
  EXPECT_NE(failed.error_message().find("stopped or lost it 2 times (--max-job-attempts 2)"),
            std::string::npos)
      << failed.error_message();
  // The server is fine and runs other work.
  v1::Job other;
  ASSERT_TRUE(Submit(*stub, TextJob({"after the poison job"}), &other).ok());
  EXPECT_EQ(WaitDone(*stub, other.name()).state(), v1::SUCCEEDED);
}

// A job that asks for no timeout (or a long one) is still bounded by the server: with
// --max-job-seconds=1 it fails with DEADLINE_EXCEEDED naming the flag, and the runner is free.
TEST_F(JobServerTest, AJobWithoutATimeoutStopsAtTheServersBound) {
  auto server = Start({"--job-runners=1", "--max-job-seconds=1"});
  auto stub = Connect(server->address());
  v1::JobSpec spec = TextJob(ManyTexts(64), 64);
  spec.set_timeout_ms(3600 * 1000);
  v1::Job job;
  ASSERT_TRUE(Submit(*stub, spec, &job).ok());
  const v1::Job done = WaitDone(*stub, job.name());
  EXPECT_EQ(done.state(), v1::FAILED);
  EXPECT_EQ(done.error_code(), static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED));
  EXPECT_NE(done.error_message().find("ran longer than the server allows (1 s, --max-job-seconds)"),
            std::string::npos)
      << done.error_message();
  v1::Job small;
  ASSERT_TRUE(Submit(*stub, TextJob({"short"}, 1), &small).ok());
  EXPECT_EQ(WaitDone(*stub, small.name()).state(), v1::SUCCEEDED);
}

// ListJobs used to return every job's whole spec (130 MiB for one page of 1000): the default view
// now carries summaries, and the FULL view ends a page at the response budget (4 MiB).
TEST_F(JobServerTest, ListJobsReturnsSummariesAndKeepsFullPagesUnderTheBudget) {
  auto server = Start({"--job-runners=1"});
  auto stub = Connect(server->address());
  const std::vector<std::string> big(20, std::string(60000, 'a') + " film .");  // ~1.2 MB a spec
  std::set<std::string> names;
  for (int i = 0; i < 8; ++i) {
    v1::Job job;
    ASSERT_TRUE(Submit(*stub, TextJob(big, 1), &job).ok());
    names.insert(job.name());
  }
  {
    grpc::ClientContext ctx;
    v1::ListJobsRequest request;
    v1::ListJobsResponse page;
    ASSERT_TRUE(stub->ListJobs(&ctx, request, &page).ok());
    EXPECT_EQ(page.jobs_size(), 8);
    EXPECT_LT(page.ByteSizeLong(), 8000u);
    EXPECT_EQ(page.jobs(0).spec().model(), kModel);
    EXPECT_TRUE(page.jobs(0).spec().has_attribution());
    EXPECT_FALSE(page.jobs(0).spec().attribution().has_examples()) << "no examples in a summary";
  }
  std::set<std::string> seen;
  v1::ListJobsRequest request;
  request.set_view(v1::JOB_VIEW_FULL);
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    v1::ListJobsResponse page;
    ASSERT_TRUE(stub->ListJobs(&ctx, request, &page).ok());
    ++pages;
    EXPECT_GE(page.jobs_size(), 1);
    EXPECT_LE(page.ByteSizeLong(), size_t{6} << 20) << "one job over the 4 MiB budget at most";
    for (const auto& job : page.jobs()) {
      EXPECT_EQ(job.spec().attribution().examples().inline_().examples_size(), 20);
      seen.insert(job.name());
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty() && pages < 20);
  EXPECT_EQ(seen, names);
  EXPECT_GE(pages, 3) << "8 jobs of ~1.2 MB do not fit one 4 MiB page";
  grpc::ClientContext ctx;
  v1::ListJobsResponse refused;
  request.set_page_token(std::string(5000, 'x'));
  ExpectStatus(stub->ListJobs(&ctx, request, &refused), grpc::StatusCode::INVALID_ARGUMENT,
               "page_token: 5000 characters");
}

TEST_F(JobServerTest, SigtermDrainsWithinTheGraceAndTheNextStartFinishesTheJob) {
  std::string name;
  {
    auto server = Start({"--job-runners=1"});
    auto stub = Connect(server->address());
    v1::Job job;
    ASSERT_TRUE(Submit(*stub, TextJob(ManyTexts(16), 32), &job).ok());
    WaitForState(*stub, job.name(), v1::RUNNING);
    name = job.name();
    const auto start = Clock::now();
    EXPECT_EQ(server->Stop(), 0);
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(20));
  }
  auto server = Start({"--job-runners=1"});
  auto stub = Connect(server->address());
  EXPECT_EQ(WaitDone(*stub, name).state(), v1::SUCCEEDED);
}

TEST_F(JobServerTest, FinishedJobsExpireAfterTheRetention) {
  auto server = Start({"--retention-seconds=1"});
  auto stub = Connect(server->address());
  v1::Job job;
  ASSERT_TRUE(Submit(*stub, TextJob({"short-lived"}, 2), &job).ok());
  ASSERT_EQ(WaitDone(*stub, job.name()).state(), v1::SUCCEEDED);
  const auto until = Clock::now() + std::chrono::seconds(15);
  grpc::Status status;
  while (Clock::now() < until) {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_name(job.name());
    v1::Job now;
    status = stub->GetJob(&ctx, req, &now);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << "still there after 15 s";
}

TEST_F(JobServerTest, BertBaseFullMatricesAtLength128StreamInChunksUnderOneMiB) {
  ::attattr::testing::RandomCheckpointSpec spec;  // BERT-base dimensions
  spec.vocab_path = ::attattr::testing::SharedDir() + "/vocab/bert-base-uncased-vocab.txt";
  ATTATTR_SKIP_IF_MISSING(spec.vocab_path);
  ASSERT_TRUE(::attattr::testing::WriteRandomCheckpoint(dir_ + "/models/bertbase", spec));
  ServerProcess server({{"bertbase", dir_ + "/models/bertbase"}}, {"--store=" + dir_ + "/jobs.db"});
  ASSERT_TRUE(server.ok());
  auto stub = Connect(server.address());
  std::string text;
  for (int i = 0; i < 200; ++i) text += "word" + std::to_string(i % 10) + " ";
  v1::JobSpec job_spec = TextJob({text}, 1);
  job_spec.set_model("bertbase");
  job_spec.mutable_attribution()->mutable_result()->set_full_matrices(true);
  v1::Job job;
  ASSERT_TRUE(Submit(*stub, job_spec, &job).ok());
  const v1::Job done = WaitDone(*stub, job.name(), 600);
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error_message();
  auto streamed = ReadResult(*stub, job.name());
  ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  EXPECT_GE(streamed.chunks, 9);  // 12 layers x 12 heads x 128 x 128 x 4 bytes = 9.4 MB
  EXPECT_LT(streamed.largest_message, size_t{1} << 20);
  ASSERT_EQ(streamed.result.attribution().examples_size(), 1);
  const auto& example = streamed.result.attribution().examples(0);
  EXPECT_EQ(example.tokens_size(), 128);
  ASSERT_EQ(example.layers_size(), 12);
  for (const auto& layer : example.layers()) {
    ASSERT_EQ(layer.attribution().shape_size(), 3);
    EXPECT_EQ(layer.attribution().shape(0), 12);
    EXPECT_EQ(layer.attribution().shape(1), 128);
    EXPECT_EQ(layer.attribution().f32().values_size(), 12 * 128 * 128);
  }
}

TEST_F(JobRpcTest, AttributionJobWithTreeGivesTheGoldenTrees) {
  ATTATTR_SKIP_IF_MISSING(::attattr::testing::GoldenPath());
  const auto golden = ::attattr::testing::LoadGolden(::attattr::testing::GoldenPath());
  std::vector<std::string> texts;
  for (int e = 0; e < 3; ++e) texts.push_back(golden.examples.at(e).text);
  v1::JobSpec spec = TextJob(texts, golden.steps);
  spec.mutable_attribution()->mutable_options()->set_rule(v1::LEFT_RIEMANN);
  spec.mutable_attribution()->mutable_result()->set_tree(true);
  spec.mutable_attribution()->mutable_result()->set_top_k(1);
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, spec, &job).ok());
  const v1::Job done = WaitDone(*stub_, job.name());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error_message();
  auto streamed = ReadResult(*stub_, job.name());
  ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  ASSERT_EQ(streamed.result.attribution().examples_size(), 3);
  for (int e = 0; e < 3; ++e) {
    const auto& g = golden.examples.at(e);
    SCOPED_TRACE(g.text);
    const auto& a = streamed.result.attribution().examples(e);
    ASSERT_TRUE(a.has_tree());
    EXPECT_DOUBLE_EQ(a.tree().tau(), 0.4);
    attattr::engine::AttributionTree t;
    t.root = a.tree().root();
    t.top = a.tree().top();
    t.root_edge_score = a.tree().root_edge_score();
    for (const auto& n : a.tree().nodes()) t.nodes.push_back({n.position(), n.token(), n.layer()});
    for (const auto& x : a.tree().edges()) {
      t.edges.push_back({x.parent(), x.child(), x.layer(), x.score()});
    }
    ::attattr::testing::ExpectTreeMatchesGolden(t, g);
  }

  // A tree needs every layer; τ must be in (0, 1].
  v1::JobSpec subset = TextJob({"fine"});
  subset.mutable_attribution()->mutable_result()->set_tree(true);
  subset.mutable_attribution()->mutable_options()->add_layers(2);
  ExpectStatus(Submit(*stub_, subset, &job), grpc::StatusCode::INVALID_ARGUMENT,
               "spec.attribution.options.layers");
  v1::JobSpec bad_tau = TextJob({"fine"});
  bad_tau.mutable_attribution()->mutable_result()->set_tree(true);
  bad_tau.mutable_attribution()->mutable_result()->set_tree_tau(1.5);
  ExpectStatus(Submit(*stub_, bad_tau, &job), grpc::StatusCode::INVALID_ARGUMENT,
               "spec.attribution.result.tree_tau");
}

}  // namespace
