// `attattr health` (see health_command.h). grpc.health.v1 is called through grpc::GenericStub with
// the two tiny messages encoded by protobuf's coded streams (HealthCheckRequest { string service =
// 1; }, HealthCheckResponse { ServingStatus status = 1; }): Debian ships no generated health
// stubs for C++, and the wire format of two one-field messages is fixed by the gRPC spec.
#include "health_command.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "grpc_call.h"
#include "job_commands.h"
#include "nlohmann/json.hpp"
#include "render.h"

namespace attattr::client {
namespace {

constexpr char kCheckMethod[] = "/grpc.health.v1.Health/Check";

std::string EncodeRequest(const std::string& service) {
  std::string bytes;
  if (service.empty()) return bytes;  // proto3: the default is not sent
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream out(&stream);
  out.WriteTag(/*field 1, length-delimited*/ (1 << 3) | 2);
  out.WriteVarint32(static_cast<uint32_t>(service.size()));
  out.WriteString(service);
  return bytes;
}

// The ServingStatus of a HealthCheckResponse (0 when absent: UNKNOWN); -1 when it does not parse.
int DecodeStatus(const std::string& bytes) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  int status = 0;
  while (const uint32_t tag = in.ReadTag()) {
    if (tag == ((1 << 3) | 0)) {  // field 1, varint
      uint32_t value = 0;
      if (!in.ReadVarint32(&value)) return -1;
      status = static_cast<int>(value);
    } else if (!google::protobuf::internal::WireFormatLite::SkipField(&in, tag)) {
      return -1;
    }
  }
  return status;
}

const char* StatusName(int status) {
  switch (status) {
    case 0:
      return "UNKNOWN";
    case 1:
      return "SERVING";
    case 2:
      return "NOT_SERVING";
    case 3:
      return "SERVICE_UNKNOWN";
    default:
      return "INVALID";
  }
}

}  // namespace

HealthCommand::HealthCommand(CLI::App& app) {
  cmd_ = app.add_subcommand(
      "health",
      "grpc.health.v1 Check of a server, as Kubernetes' gRPC probes ask it (exit 0 when SERVING)");
  cmd_->add_option("--server", flags_.server, "HOST:PORT of an attattr-server")->required();
  cmd_->add_option("--service", flags_.service,
                   "Service to ask about: empty = the server, or attattr.v1.Attattr");
  cmd_->add_option("--format", flags_.format, "json | text")->capture_default_str();
  AddDeadlineFlag(cmd_, &flags_.deadline);
  cmd_->footer(
      "Exit codes: 0 SERVING; 6 NOT_SERVING, SERVICE_UNKNOWN or the server unreachable; "
      "7 no answer within --deadline-seconds; 2 bad arguments; 1 other errors.");
}

int HealthCommand::Run(std::ostream& out, std::ostream& err) const {
  const Flags& f = flags_;
  if (f.format != "json" && f.format != "text") {
    err << "error: --format: '" << f.format << "' is not json or text\n";
    return kExitUsage;
  }
  grpc::GenericStub stub(OpenChannel(f.server, f.security));
  const std::string request_bytes = EncodeRequest(f.service);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  grpc::ClientContext ctx;
  SetCallDeadline(&ctx, f.deadline);
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&ctx, kCheckMethod, grpc::StubOptions(), &request, &response,
                 [&status, &done](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) {
    err << "error: " << absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()))
        << ": grpc.health.v1 Check at " << f.server << ": " << status.error_message() << "\n";
    return status.error_code() == grpc::StatusCode::NOT_FOUND
               ? kExitUnavailable
               : ExitCodeFor(static_cast<absl::StatusCode>(status.error_code()));
  }
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  const int serving = DecodeStatus(bytes);
  if (f.format == "json") {
    out << JsonText(nlohmann::json{
               {"server", f.server}, {"service", f.service}, {"status", StatusName(serving)}})
        << "\n";
  } else {
    out << StatusName(serving) << "\n";
  }
  return serving == 1 ? kExitOk : kExitUnavailable;
}

}  // namespace attattr::client
