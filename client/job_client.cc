// gRPC side of the job commands (see job_client.h).
#include "job_client.h"

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attattr/base/status_macros.h"
#include "attattr/v1/attattr_service.grpc.pb.h"
#include "grpc_call.h"

namespace attattr::client {
namespace {

// Case- and quote-insensitive: "job 'jobs/x' not found" contains "job jobs/x not found".
bool ContainsIgnoreCase(const std::string& haystack, const std::string& needle) {
  auto norm = [](const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c != '\'' && c != '"') out += absl::ascii_tolower(static_cast<unsigned char>(c));
    }
    return out;
  };
  return absl::StrContains(norm(haystack), norm(needle));
}

// `ours`, with the server's message after it unless one already says the other.
std::string Combine(const std::string& ours, const std::string& theirs) {
  if (theirs.empty() || ContainsIgnoreCase(ours, theirs)) return ours;
  if (ContainsIgnoreCase(theirs, ours)) return theirs;
  return absl::StrCat(ours, ": ", theirs);
}

std::string Seconds(double s) { return absl::StrFormat("%g s", s); }

// gRPC's own words when no connection could be made (as opposed to a server that answered
// UNAVAILABLE itself, e.g. while draining).
bool IsConnectFailure(const std::string& message) {
  for (const char* m : {"connect", "Connection", "DNS", "resolve", "Socket", "unreachable",
                        "No route", "Broken pipe", "GOAWAY", "channel"}) {
    if (ContainsIgnoreCase(message, m)) return true;
  }
  return message.empty();
}

}  // namespace

std::string CanonicalJobName(const std::string& name) {
  if (name.empty() || absl::StartsWith(name, "jobs/")) return name;
  return absl::StrCat("jobs/", name);
}

struct JobClient::Impl {
  std::string server;
  double deadline_seconds = 0;
  std::unique_ptr<v1::Attattr::Stub> stub;

  // Deadline: the configured one plus `extra_ms` (a WaitJob's own wait); none when 0.
  void SetDeadline(grpc::ClientContext* ctx, int64_t extra_ms = 0) const {
    SetCallDeadline(ctx, deadline_seconds, extra_ms);
  }

  // One unary call: a fresh context with the per-call deadline (plus `extra_ms`), the reply or
  // the status as FromGrpc words it.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Unary(
      grpc::Status (v1::Attattr::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
      const Request& request, const std::string& subject, int64_t extra_ms = 0) const {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, extra_ms);
    Response response;
    ATTATTR_RETURN_IF_ERROR(
        FromGrpc((stub.get()->*method)(&ctx, request, &response), ctx, subject, extra_ms));
    return response;
  }

  // The one place a gRPC status becomes the CLI's message. `subject` names what the call was
  // about ("job jobs/x", "model m"); `waited_ms` is added to the deadline reported.
  absl::Status FromGrpc(const grpc::Status& s, const grpc::ClientContext& ctx,
                        const std::string& subject, int64_t waited_ms = 0,
                        bool stream = false) const {
    if (s.ok()) return absl::OkStatus();
    const std::string theirs = s.error_message();
    std::string message;
    switch (s.error_code()) {
      case grpc::StatusCode::NOT_FOUND:
        message = subject.empty() ? theirs : Combine(absl::StrCat(subject, " not found"), theirs);
        break;
      case grpc::StatusCode::UNAVAILABLE:
        message = IsConnectFailure(theirs)
                      ? Combine(absl::StrCat("cannot reach server at ", server), theirs)
                      : Combine(absl::StrCat("server at ", server, " is unavailable"), theirs);
        break;
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        message = stream ? absl::StrCat(subject, " did not finish within ",
                                        Seconds(deadline_seconds), " (--deadline-seconds)")
                         : absl::StrCat("no answer from ", server, " within ",
                                        Seconds(deadline_seconds + waited_ms / 1000.0),
                                        " (raise --deadline-seconds)");
        if (!theirs.empty() && theirs != "Deadline Exceeded") message = Combine(message, theirs);
        break;
      case grpc::StatusCode::RESOURCE_EXHAUSTED: {
        message = Combine("the server is busy", theirs);
        const auto& trailers = ctx.GetServerTrailingMetadata();
        const auto it = trailers.find("grpc-retry-pushback-ms");
        int64_t ms = 0;
        const bool has_hint = ContainsIgnoreCase(theirs, "retry");
        if (it != trailers.end() &&
            absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &ms) &&
            ms >= 0) {
          absl::StrAppend(&message,
                          has_hint ? " " : absl::StrCat("; retry in ", Seconds(ms / 1000.0), " "),
                          "(grpc-retry-pushback-ms: ", ms, ")");
        } else if (!has_hint) {
          absl::StrAppend(&message, "; retry later");
        }
        break;
      }
      case grpc::StatusCode::UNAUTHENTICATED:
      case grpc::StatusCode::PERMISSION_DENIED:
        message = AccessDeniedMessage(s);
        break;
      case grpc::StatusCode::UNIMPLEMENTED:
        message = Combine(absl::StrCat("the server at ", server, " does not implement this call"),
                          theirs);
        break;
      default:
        message = theirs.empty() ? "(no message from the server)" : theirs;
        break;
    }
    // gRPC's and absl's canonical codes share their numbers.
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), message);
  }
};

JobClient::JobClient(const std::string& server, const ChannelSecurity& security,
                     double deadline_seconds)
    : impl_(std::make_unique<Impl>()) {
  impl_->server = server;
  impl_->deadline_seconds = deadline_seconds;
  impl_->stub = NewAttattrStub(server, security);
}

JobClient::~JobClient() = default;

absl::StatusOr<v1::Job> JobClient::Submit(const v1::SubmitJobRequest& request) {
  return impl_->Unary(&v1::Attattr::Stub::SubmitJob, request,
                      absl::StrCat("model ", request.spec().model()));
}

absl::StatusOr<v1::Job> JobClient::Get(const std::string& name) {
  v1::GetJobRequest req;
  req.set_name(name);
  return impl_->Unary(&v1::Attattr::Stub::GetJob, req, "job " + name);
}

absl::StatusOr<v1::ListJobsResponse> JobClient::List(const v1::ListJobsRequest& request) {
  return impl_->Unary(&v1::Attattr::Stub::ListJobs, request, "");
}

absl::StatusOr<v1::Job> JobClient::Wait(const std::string& name, int64_t timeout_ms) {
  timeout_ms = std::clamp<int64_t>(timeout_ms, 0, kMaxWaitTimeoutMs);
  v1::WaitJobRequest req;
  req.set_name(name);
  req.set_timeout_ms(timeout_ms);
  return impl_->Unary(&v1::Attattr::Stub::WaitJob, req, "job " + name, timeout_ms);
}

absl::StatusOr<v1::Job> JobClient::Cancel(const std::string& name) {
  v1::CancelJobRequest req;
  req.set_name(name);
  return impl_->Unary(&v1::Attattr::Stub::CancelJob, req, "job " + name);
}

absl::Status JobClient::Delete(const std::string& name) {
  v1::DeleteJobRequest req;
  req.set_name(name);
  return impl_->Unary(&v1::Attattr::Stub::DeleteJob, req, "job " + name).status();
}

absl::Status JobClient::Watch(const std::string& name,
                              const std::function<void(const v1::Job&)>& on_update) {
  grpc::ClientContext ctx;
  impl_->SetDeadline(&ctx);
  v1::WatchJobRequest req;
  req.set_name(name);
  req.set_view(v1::JOB_VIEW_BASIC);  // progress and state; the spec's contents are not shown
  auto reader = impl_->stub->WatchJob(&ctx, req);
  v1::Job job;
  while (reader->Read(&job)) on_update(job);
  return impl_->FromGrpc(reader->Finish(), ctx, "job " + name, 0, /*stream=*/true);
}

absl::StatusOr<JobClient::FollowEnd> JobClient::Follow(
    const std::string& name, const std::function<void(const v1::Job&)>& on_update,
    double timeout_seconds, const std::function<bool()>& interrupted) {
  using Clock = std::chrono::steady_clock;
  const bool bounded = timeout_seconds > 0;
  const Clock::time_point until =
      bounded
          ? Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1e3))
          : Clock::time_point::max();
  v1::WatchJobRequest req;
  req.set_name(name);
  req.set_view(v1::JOB_VIEW_BASIC);  // progress and state; the spec's contents are not shown
  // Reads block; a second thread turns an interrupt into a cancelled stream (the one open now).
  std::mutex mu;
  grpc::ClientContext* open = nullptr;   // guarded by mu
  bool done = false, cancelled = false;  // guarded by mu
  std::thread watchdog([&] {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (done) return;
        if (interrupted && interrupted()) {
          cancelled = true;
          if (open != nullptr) open->TryCancel();
          return;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  const auto is_cancelled = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return cancelled;
  };
  // A stream that breaks before the job ends — the replica draining in a rolling update (its job
  // goes to another), a dropped connection, a proxy cutting an idle stream — is opened again: the
  // first message of a new stream is the job as it is now, so nothing is missed. Given up only when
  // nothing was heard for kSilence of tries, or on an error a retry cannot mend.
  constexpr auto kSilence = std::chrono::seconds(120);
  auto pause = std::chrono::milliseconds(250);
  Clock::time_point last_heard = Clock::now();
  absl::StatusOr<FollowEnd> end = FollowEnd::kFinished;
  for (;;) {
    grpc::ClientContext ctx;
    if (bounded) {
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::duration_cast<std::chrono::system_clock::duration>(
                           std::max(until - Clock::now(), Clock::duration::zero())));
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      if (cancelled) {
        end = FollowEnd::kInterrupted;
        break;
      }
      open = &ctx;
    }
    auto reader = impl_->stub->WatchJob(&ctx, req);
    v1::Job job;
    bool finished = false;
    while (reader->Read(&job)) {
      on_update(job);
      last_heard = Clock::now();
      pause = std::chrono::milliseconds(250);
      finished =
          job.state() == v1::SUCCEEDED || job.state() == v1::FAILED || job.state() == v1::CANCELLED;
    }
    const grpc::Status status = reader->Finish();
    {
      std::lock_guard<std::mutex> lock(mu);
      open = nullptr;
    }
    if (is_cancelled()) {
      end = FollowEnd::kInterrupted;
      break;
    }
    if (status.ok() && finished) break;
    if (bounded && Clock::now() >= until) {
      end = FollowEnd::kTimedOut;
      break;
    }
    // CANCELLED here is the server's (our own interrupt was caught above): a server shutting down
    // cancels the calls its grace did not see end.
    const auto code = status.error_code();
    const bool transient = status.ok() || code == grpc::StatusCode::UNAVAILABLE ||
                           code == grpc::StatusCode::INTERNAL ||
                           code == grpc::StatusCode::UNKNOWN || code == grpc::StatusCode::CANCELLED;
    if (!transient || Clock::now() - last_heard >= kSilence) {
      end = status.ok() ? absl::UnavailableError(absl::StrCat(
                              "job ", name, ": the server ended the watch before the job ended"))
                        : impl_->FromGrpc(status, ctx, "job " + name, 0, /*stream=*/true);
      break;
    }
    // Wait before the next try (a restarting replica, a Service without ready endpoints).
    const Clock::time_point retry = std::min(Clock::now() + pause, until);
    while (Clock::now() < retry && !is_cancelled()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    pause = std::min(pause * 2, std::chrono::milliseconds(4000));
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  watchdog.join();
  return end;
}

absl::StatusOr<v1::JobResult> JobClient::GetResult(const std::string& name) {
  grpc::ClientContext ctx;
  impl_->SetDeadline(&ctx);
  v1::GetJobResultRequest req;
  req.set_name(name);
  auto reader = impl_->stub->GetJobResult(&ctx, req);
  // A JobResult is one protobuf message: under 2 GiB, in chunks the server keeps under 1 MiB.
  // A reply past these bounds is refused at once (the call cancelled), not collected.
  constexpr int64_t kMaxResultBytes = (int64_t{1} << 31) - 1;
  constexpr int kMaxChunks = 1 << 20;
  std::map<int, std::string> chunks;
  int count = -1;
  int64_t bytes = 0;
  bool oversized = false;  // this side cancelled the call
  std::string problem;
  v1::ResultChunk chunk;
  while (reader->Read(&chunk)) {
    if (!problem.empty()) continue;  // drain the stream, report the first problem
    if (count < 0) count = chunk.count();
    bytes += static_cast<int64_t>(chunk.data().size());
    if (count > kMaxChunks || bytes > kMaxResultBytes) {
      problem = absl::StrCat("more than ", count > kMaxChunks ? kMaxChunks : kMaxResultBytes,
                             count > kMaxChunks ? " chunks" : " bytes", ": not a JobResult");
      ctx.TryCancel();
      oversized = true;
    } else if (chunk.count() != count) {
      problem = absl::StrCat("chunk ", chunk.index(), " says count ", chunk.count(),
                             ", an earlier one said ", count);
    } else if (chunk.index() < 0 || chunk.index() >= count) {
      problem = absl::StrCat("chunk index ", chunk.index(), " outside [0, ", count, ")");
    } else if (!chunks.emplace(chunk.index(), std::move(*chunk.mutable_data())).second) {
      problem = absl::StrCat("chunk ", chunk.index(), " sent twice");
    }
  }
  const grpc::Status finished = reader->Finish();
  if (!oversized) ATTATTR_RETURN_IF_ERROR(impl_->FromGrpc(finished, ctx, "job " + name));
  if (problem.empty() && static_cast<int>(chunks.size()) != std::max(count, 0)) {
    problem = absl::StrCat("received ", chunks.size(), " of ", std::max(count, 0), " chunks");
  }
  if (!problem.empty()) {
    return absl::DataLossError(absl::StrCat("result of ", name, " is incomplete: ", problem));
  }
  // Parsed from the chunks in place: concatenating them first held the result twice.
  std::vector<std::unique_ptr<google::protobuf::io::ArrayInputStream>> parts;
  std::vector<google::protobuf::io::ZeroCopyInputStream*> streams;
  for (const auto& [index, data] : chunks) {
    parts.push_back(std::make_unique<google::protobuf::io::ArrayInputStream>(
        data.data(), static_cast<int>(data.size())));
    streams.push_back(parts.back().get());
  }
  google::protobuf::io::ConcatenatingInputStream whole(streams.data(),
                                                       static_cast<int>(streams.size()));
  v1::JobResult result;
  if (!result.ParseFromZeroCopyStream(&whole)) {
    return absl::DataLossError(absl::StrCat("result of ", name, " (", bytes, " bytes in ",
                                            chunks.size(), " chunks) does not parse as JobResult"));
  }
  return result;
}

absl::StatusOr<std::vector<std::string>> JobClient::ModelLabels(const std::string& model) {
  v1::GetModelRequest req;
  req.set_name(model);
  ATTATTR_ASSIGN_OR_RETURN(const v1::Model m,
                           impl_->Unary(&v1::Attattr::Stub::GetModel, req, "model " + model));
  return std::vector<std::string>(m.labels().begin(), m.labels().end());
}

}  // namespace attattr::client
