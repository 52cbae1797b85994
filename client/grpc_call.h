// What every gRPC call of the CLI shares: the stub over one channel to an attattr-server, and the
// per-call deadline — the one meaning --deadline-seconds has in every command (0 = none). Thread-
// compatible free functions.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "attattr/v1/attattr_service.grpc.pb.h"

namespace attattr::client {

// A stub over a new channel to `server` (HOST:PORT) that accepts replies up to 256 MiB (a
// BERT-base Explain reply with every matrix is ~10 MB; job results come in chunks under 1 MiB).
std::unique_ptr<v1::Attattr::Stub> NewAttattrStub(const std::string& server);

// Sets ctx's deadline to now + `seconds` + `extra_ms` (a WaitJob's own wait); none when
// `seconds` <= 0.
void SetCallDeadline(grpc::ClientContext* ctx, double seconds, int64_t extra_ms = 0);

// Registers --deadline-seconds (and its older spelling --deadline) on `cmd`: "Seconds each call
// to the server may take (0 = no limit)", with `help_extra` appended.
void AddDeadlineFlag(CLI::App* cmd, double* seconds, const std::string& help_extra = "");

}  // namespace attattr::client
