// The one place an absl::Status becomes a grpc::Status (STYLE.md §2.4): one switch over the
// canonical codes, message kept as is. Pure functions, thread-safe.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace attattr::server {

grpc::StatusCode ToGrpcCode(absl::StatusCode code);
grpc::Status ToGrpcStatus(const absl::Status& status);
// "OK", "INVALID_ARGUMENT", ... (the canonical spelling, for metric labels and logs).
std::string GrpcCodeName(grpc::StatusCode code);

}  // namespace attattr::server
