// Job RPC helpers for end-to-end tests (see job_rpc.h).
#include "support/job_rpc.h"

#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace attattr::testing {

using Clock = std::chrono::steady_clock;

v1::JobSpec ReviewsJob(const std::string& model, int count, int steps) {
  v1::JobSpec spec;
  spec.set_model(model);
  auto* a = spec.mutable_attribution();
  for (int i = 0; i < count; ++i) {
    a->mutable_examples()->mutable_inline_()->add_examples()->set_text(
        "review number " + std::to_string(i) + " : a gorgeous , witty , seductive movie .");
  }
  a->mutable_options()->set_steps(steps);
  return spec;
}

v1::ExampleSource DatasetSource(const std::string& path, int limit) {
  v1::ExampleSource source;
  source.mutable_dataset()->set_path(path);
  source.mutable_dataset()->set_limit(limit);
  return source;
}

std::unique_ptr<v1::Attattr::Stub> Connect(const std::string& address) {
  return v1::Attattr::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

grpc::Status Submit(v1::Attattr::Stub& stub, const v1::JobSpec& spec, v1::Job* job,
                    const std::string& request_id, grpc::ClientContext* given) {
  grpc::ClientContext local;
  grpc::ClientContext* ctx = given ? given : &local;
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::SubmitJobRequest req;
  *req.mutable_spec() = spec;
  req.set_request_id(request_id);
  return stub.SubmitJob(ctx, req, job);
}

v1::Job Get(v1::Attattr::Stub& stub, const std::string& name) {
  grpc::ClientContext ctx;
  v1::GetJobRequest req;
  req.set_name(name);
  v1::Job job;
  auto s = stub.GetJob(&ctx, req, &job);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return job;
}

v1::Job WaitDone(v1::Attattr::Stub& stub, const std::string& name, int seconds) {
  const auto until = Clock::now() + std::chrono::seconds(seconds);
  v1::Job job;
  while (Clock::now() < until) {
    grpc::ClientContext ctx;
    v1::WaitJobRequest req;
    req.set_name(name);
    req.set_timeout_ms(10000);
    auto s = stub.WaitJob(&ctx, req, &job);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) break;
    if (job.state() >= v1::SUCCEEDED) return job;
  }
  ADD_FAILURE() << name << " did not finish; state " << v1::JobState_Name(job.state());
  return job;
}

v1::Job WaitForState(v1::Attattr::Stub& stub, const std::string& name, v1::JobState state) {
  const auto until = Clock::now() + std::chrono::seconds(60);
  v1::Job job;
  while (Clock::now() < until) {
    job = Get(stub, name);
    if (job.state() == state) return job;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << name << " never reached " << v1::JobState_Name(state);
  return job;
}

v1::Job WaitForProgress(v1::Attattr::Stub& stub, const std::string& name,
                        const std::string& stage) {
  const auto until = Clock::now() + std::chrono::seconds(60);
  v1::Job job;
  while (Clock::now() < until) {
    job = Get(stub, name);
    if (job.progress().stage() == stage && job.progress().done() > 0) return job;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return job;
}

grpc::Status Cancel(v1::Attattr::Stub& stub, const std::string& name) {
  grpc::ClientContext ctx;
  v1::CancelJobRequest req;
  req.set_name(name);
  v1::Job cancelled;
  return stub.CancelJob(&ctx, req, &cancelled);
}

grpc::Status Delete(v1::Attattr::Stub& stub, const std::string& name) {
  grpc::ClientContext ctx;
  v1::DeleteJobRequest req;
  req.set_name(name);
  v1::DeleteJobResponse response;
  return stub.DeleteJob(&ctx, req, &response);
}

StreamedResult ReadResult(v1::Attattr::Stub& stub, const std::string& name) {
  StreamedResult out;
  grpc::ClientContext ctx;
  v1::GetJobResultRequest req;
  req.set_name(name);
  auto reader = stub.GetJobResult(&ctx, req);
  v1::ResultChunk chunk;
  while (reader->Read(&chunk)) {
    EXPECT_EQ(chunk.index(), out.chunks);
    out.largest_message = std::max(out.largest_message, chunk.ByteSizeLong());
    out.bytes += chunk.data();
    ++out.chunks;
    EXPECT_GT(chunk.count(), chunk.index());
  }
  out.status = reader->Finish();
  if (out.status.ok()) {
    EXPECT_TRUE(out.result.ParseFromString(out.bytes));
  }
  return out;
}

RawReply RawUnaryCall(const std::string& address, const std::string& method,
                      const std::string& request) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1), out;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  RawReply reply;
  generic.UnaryCall(&ctx, method, grpc::StubOptions(), &in, &out, [&](grpc::Status s) {
    std::lock_guard<std::mutex> l(mu);
    reply.status = s;
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done; });
  if (!reply.status.ok()) return reply;
  std::vector<grpc::Slice> slices;
  (void)out.Dump(&slices);
  for (auto& s : slices) reply.body.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return reply;
}

int HealthStatus(const std::string& address, const std::string& service) {
  // HealthCheckRequest{service}: field 1, length-delimited.
  const std::string req = std::string(1, '\x0a') + static_cast<char>(service.size()) + service;
  const RawReply reply = RawUnaryCall(address, "/grpc.health.v1.Health/Check", req);
  if (!reply.status.ok()) return -1;
  // HealthCheckResponse{status}: 0x08 <enum> (proto3 omits UNKNOWN = 0).
  return reply.body.size() == 2 ? reply.body[1] : 0;
}

void ExpectStatus(const grpc::Status& s, grpc::StatusCode code, const std::string& text) {
  EXPECT_EQ(s.error_code(), code) << s.error_message();
  EXPECT_NE(s.error_message().find(text), std::string::npos)
      << "'" << text << "' not in: " << s.error_message();
}

}  // namespace attattr::testing
