// Client-side helpers for end-to-end job tests against a real attattr-server: connect, submit,
// get, wait until a job finishes, read a streamed result, and check an error's code and text.
// Failures are reported through GoogleTest (EXPECT/ADD_FAILURE), so callers can just assert on
// the returned values.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "attattr/v1/attattr_service.grpc.pb.h"

namespace attattr::testing {

// An ATTRIBUTION job on `model` of `count` distinct SST-2-like reviews, `steps` integration steps.
v1::JobSpec ReviewsJob(const std::string& model, int count, int steps);

// An ExampleSource naming a dataset under the server's --data-root (limit 0 = all).
v1::ExampleSource DatasetSource(const std::string& path, int limit);

std::unique_ptr<v1::Attattr::Stub> Connect(const std::string& address);

// SubmitJob with a 30 s deadline; `given` lets the caller read trailers.
grpc::Status Submit(v1::Attattr::Stub& stub, const v1::JobSpec& spec, v1::Job* job,
                    const std::string& request_id = "", grpc::ClientContext* given = nullptr);

v1::Job Get(v1::Attattr::Stub& stub, const std::string& name);

// WaitJob until the job is terminal (at most `seconds`).
v1::Job WaitDone(v1::Attattr::Stub& stub, const std::string& name, int seconds = 120);

// Polls GetJob until `state` (at most 60 s).
v1::Job WaitForState(v1::Attattr::Stub& stub, const std::string& name, v1::JobState state);

// Polls GetJob until its progress is in `stage` with at least one item done (at most 60 s); returns
// the last job seen either way, so the caller can check the stage and total.
v1::Job WaitForProgress(v1::Attattr::Stub& stub, const std::string& name, const std::string& stage);

// CancelJob; the call's status.
grpc::Status Cancel(v1::Attattr::Stub& stub, const std::string& name);

// DeleteJob; the call's status.
grpc::Status Delete(v1::Attattr::Stub& stub, const std::string& name);

struct StreamedResult {
  grpc::Status status;
  v1::JobResult result;
  std::string bytes;
  int chunks = 0;
  size_t largest_message = 0;
};

// GetJobResult, chunks concatenated and parsed; chunk indices checked.
StreamedResult ReadResult(v1::Attattr::Stub& stub, const std::string& name);

struct RawReply {
  grpc::Status status;
  std::string body;  // the serialized response when the status is OK
};

// A unary call of `method` ("/package.Service/Method") with `request` sent as it is (any bytes),
// through a generic stub; 5 s deadline.
RawReply RawUnaryCall(const std::string& address, const std::string& method,
                      const std::string& request);

// grpc.health.v1.Health/Check of `service` ("" = the whole server) at `address`, through a generic
// call (the health proto is not generated here): 1 SERVING, 2 NOT_SERVING, 0 UNKNOWN, -1 when
// the call failed (NOT_FOUND for an unknown service).
int HealthStatus(const std::string& address, const std::string& service);

// `s` has `code` and its message contains `text`.
void ExpectStatus(const grpc::Status& s, grpc::StatusCode code, const std::string& text);

}  // namespace attattr::testing
