// Tests the /jobs/{id}/report handler against a real SQLite job store, without a socket: the page
// of a finished job, a running job's estimate (on the store's clock), the note in place of a
// result too large to draw, and the bounds on pages drawn
// from results at the same time (each holds its parsed result until its page is sent), in all and
// per caller.
#include "job_report_http.h"

#include <memory>
#include <string>

#include "attattr/v1/job.pb.h"
#include "auth/authenticator.h"
#include "gtest/gtest.h"
#include "store/sqlite_job_store.h"
#include "support/test_paths.h"

namespace attattr::server {
namespace {

using Request = metrics::MetricsHttpServer::Request;
using Response = metrics::MetricsHttpServer::Response;

// The body a response sends (its stream, or its body when it has none).
std::string BodyOf(const Response& response) {
  if (!response.stream) return response.body;
  std::string body;
  EXPECT_TRUE(response.stream([&body](absl::string_view piece) {
    body.append(piece.data(), piece.size());
    return true;
  }));
  return body;
}

class JobReportHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
    store::SqliteJobStoreOptions options;
    options.path = dir_ + "/jobs.db";
    auto opened = store::SqliteJobStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);

    // A finished attribution job with a small result.
    v1::JobSpec spec;
    spec.set_model("sst2");
    spec.mutable_attribution()->mutable_examples()->mutable_inline_()->add_examples()->set_text(
        "a fine film");
    store::JobRecord record;
    record.kind = "ATTRIBUTION";
    record.model = "sst2";
    record.spec = spec.SerializeAsString();
    auto created = store_->Create(record);
    ASSERT_TRUE(created.ok()) << created.status();
    id_ = created->record.id;
    v1::JobResult result;
    auto* example = result.mutable_attribution()->add_examples();
    for (const char* t : {"[CLS]", "a", "fine", "film", "[SEP]"}) example->add_tokens(t);
    example->mutable_prediction()->set_predicted(1);
    ASSERT_TRUE(store_->MarkRunning(id_).ok());
    result_bytes_ = static_cast<int64_t>(result.ByteSizeLong());
    ASSERT_TRUE(store_->PutResult(id_, result.SerializeAsString()).ok());
    ASSERT_TRUE(store_->Finish(id_, store::JobState::kSucceeded, 0, "").ok());
  }

  Request ReportRequest() const {
    Request request;
    request.path = "/" + id_ + "/report";
    return request;
  }

  ::attattr::testing::TempDir tmp_{"attattr-report-http"};
  std::string dir_;
  std::unique_ptr<store::JobStore> store_;
  std::string id_;
  int64_t result_bytes_ = 0;
};

TEST_F(JobReportHttpTest, AFinishedJobIsDrawnWithItsResult) {
  auto handler = MakeJobReportHandler(*store_);
  const Response page = handler(ReportRequest());
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  const std::string html = BodyOf(page);
  EXPECT_NE(html.find("id=\"attribution\""), std::string::npos);
  EXPECT_NE(html.find("fine"), std::string::npos);
  EXPECT_NE(html.find("</html>"), std::string::npos);

  Request unknown;
  unknown.path = "/jobs/0000/report";
  const Response missing = handler(unknown);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "job 'jobs/0000' not found\n");
}

// A running job's "about N s left" is measured on the store's clock, the one that stamped its
// start: a store whose clock is far from this machine's (here 2001) still gives the estimate the
// progress implies. Measured on this machine's clock it would be about 25 years.
TEST_F(JobReportHttpTest, ARunningJobsEstimateIsOnTheStoresClock) {
  int64_t store_now = 1'000'000'000'000;  // 2001-09-09, far from any machine's clock
  store::SqliteJobStoreOptions options;
  options.path = dir_ + "/skewed.db";
  options.clock = [&store_now] { return store_now; };
  auto opened = store::SqliteJobStore::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<store::JobStore> skewed = std::move(*opened);
  store::JobRecord record;
  record.kind = "ATTRIBUTION";
  record.model = "sst2";
  auto created = skewed->Create(record);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string id = created->record.id;
  auto running = skewed->MarkRunning(id);
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(running->start_time_ms, store_now);
  ASSERT_TRUE(skewed->UpdateProgress(id, {"attributing", 1, 3}).ok());
  store_now += 10'000;  // one of three done after 10 s: about 20 s left

  Request request;
  request.path = "/" + id + "/report";
  const Response page = MakeJobReportHandler(*skewed)(request);
  ASSERT_EQ(page.status, 200) << page.body;
  const std::string html = BodyOf(page);
  EXPECT_NE(html.find("1/3, about 20 s left"), std::string::npos) << html;
}

TEST_F(JobReportHttpTest, AResultAboveTheDrawingLimitIsNotParsedAndThePageSaysHowToGetIt) {
  JobReportLimits limits;
  limits.max_drawn_result_bytes = result_bytes_ - 1;
  const Response page = MakeJobReportHandler(*store_, {}, limits)(ReportRequest());
  EXPECT_EQ(page.status, 200);
  const std::string html = BodyOf(page);
  EXPECT_EQ(html.find("id=\"attribution\""), std::string::npos);
  EXPECT_NE(html.find("is larger than a report page draws"), std::string::npos) << html;
  EXPECT_NE(html.find("`attattr get " + id_ + "` fetches it"), std::string::npos) << html;
}

TEST_F(JobReportHttpTest, PagesDrawnAtOnceAreBounded) {
  JobReportLimits limits;
  limits.max_concurrent_pages = 1;
  auto handler = MakeJobReportHandler(*store_, {}, limits);
  auto first = std::make_unique<Response>(handler(ReportRequest()));
  ASSERT_EQ(first->status, 200);
  // The first page still holds its result (not yet sent): a second one waits its turn.
  const Response second = handler(ReportRequest());
  EXPECT_EQ(second.status, 503);
  EXPECT_NE(second.body.find("busy drawing other reports"), std::string::npos);
  EXPECT_FALSE(BodyOf(*first).empty());
  first.reset();  // sent and gone: its slot is free
  EXPECT_EQ(handler(ReportRequest()).status, 200);
}

// Regression (review): the drawing slots were shared by everyone, so one caller opening pages and
// never reading them held every slot until the write deadline. Each caller draws one at a time.
TEST_F(JobReportHttpTest, EachCallerDrawsOnePageAtATime) {
  AuthOptions options;
  options.client_certificates = true;
  options.admins = {"alice", "bob"};  // admins: the fixture's job is nobody's
  auto auth = Authenticator::Create(options);
  ASSERT_TRUE(auth.ok()) << auth.status();
  JobReportLimits limits;
  limits.max_concurrent_pages = 2;
  auto handler = MakeJobReportHandler(*store_, {auth->get(), nullptr}, limits);
  const auto as = [&](const std::string& who) {
    Request request = ReportRequest();
    request.peer_identity = who;
    return request;
  };
  auto alices = std::make_unique<Response>(handler(as("alice")));
  ASSERT_EQ(alices->status, 200) << alices->body;
  const Response again = handler(as("alice"));
  EXPECT_EQ(again.status, 503);
  EXPECT_NE(again.body.find("one at a time per caller"), std::string::npos) << again.body;
  auto bobs = std::make_unique<Response>(handler(as("bob")));
  EXPECT_EQ(bobs->status, 200) << bobs->body;
  alices.reset();
  EXPECT_EQ(handler(as("alice")).status, 200);
}

// Without authentication every caller is the administrator "anonymous": callers are told apart by
// their address, so one address that never reads its pages does not hold everyone's slot.
TEST_F(JobReportHttpTest, WithoutAuthenticationEachAddressDrawsOnePageAtATime) {
  auto auth = Authenticator::Create(AuthOptions{});
  ASSERT_TRUE(auth.ok()) << auth.status();
  ASSERT_FALSE(auth->get()->enabled());
  JobReportLimits limits;
  limits.max_concurrent_pages = 2;
  auto handler = MakeJobReportHandler(*store_, {auth->get(), nullptr}, limits);
  const auto from = [&](const std::string& ip) {
    Request request = ReportRequest();
    request.peer_ip = ip;
    return request;
  };
  auto first = std::make_unique<Response>(handler(from("10.0.0.1")));
  ASSERT_EQ(first->status, 200) << first->body;
  const Response again = handler(from("10.0.0.1"));
  EXPECT_EQ(again.status, 503);
  EXPECT_NE(again.body.find("one at a time per caller"), std::string::npos) << again.body;
  auto other = std::make_unique<Response>(handler(from("10.0.0.2")));
  EXPECT_EQ(other->status, 200) << other->body;
}

}  // namespace
}  // namespace attattr::server
