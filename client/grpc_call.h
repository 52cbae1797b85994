// What every gRPC call of the CLI shares: the channel to an attattr-server — plain, or TLS (with a
// client certificate for mTLS) and a bearer token sent on every call — and the per-call deadline,
// the one meaning --deadline-seconds has in every command (0 = none). Thread-compatible.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "attattr/v1/attattr_service.grpc.pb.h"

namespace attattr::client {

// How the CLI connects: the global flags --tls, --tls-ca, --tls-cert, --tls-key,
// --tls-server-name, --token-file (else $ATTATTR_TOKEN). Load() reads the files.
struct ChannelSecurity {
  bool tls = false;
  std::string tls_ca;    // PEM file of the CAs to trust; empty = the system's roots
  std::string tls_cert;  // PEM client certificate (mTLS), with tls_key
  std::string tls_key;
  std::string tls_server_name;  // the name the server's certificate must carry, if not the host
  std::string token_file;
  // --plaintext-token: send the token over a plain-text channel to a host that is not loopback
  // (inside a service mesh that encrypts for you).
  bool plaintext_token = false;

  // Filled by Load().
  std::string ca_pem, cert_pem, key_pem, token;

  // TLS asked for by any of the tls flags.
  bool UseTls() const {
    return tls || !tls_ca.empty() || !tls_cert.empty() || !tls_key.empty() ||
           !tls_server_name.empty();
  }
  // Reads the PEM files and the token (--token-file, else ATTATTR_TOKEN; one trailing newline
  // dropped); InvalidArgument naming the flag when a file cannot be read, --tls-cert comes without
  // --tls-key (or the reverse), or the token is empty or not printable ASCII.
  absl::Status Load();
  // FailedPrecondition when a token would travel in plain text to `server` (HOST:PORT) that is not
  // loopback without --plaintext-token: anyone on the path could read it and act as its
  // principal.
  absl::Status CheckTokenTransport(const std::string& server) const;
};

// Registers the ChannelSecurity flags on the top-level `app` (subcommands fall through to it, so
// they may come before or after the command name).
void AddChannelSecurityFlags(CLI::App* app, ChannelSecurity* security);

// A channel to `server` (HOST:PORT) as `security` says (loaded), accepting replies up to 256 MiB
// (a BERT-base Explain reply with every matrix is ~10 MB; job results come in chunks under 1 MiB).
std::shared_ptr<grpc::Channel> OpenChannel(const std::string& server,
                                           const ChannelSecurity& security);

// An Attattr stub over OpenChannel(server, security).
std::unique_ptr<v1::Attattr::Stub> NewAttattrStub(const std::string& server,
                                                  const ChannelSecurity& security);

// The CLI's message for a refused caller: UNAUTHENTICATED and PERMISSION_DENIED named, with how
// to send credentials for the first; "" for any other status.
std::string AccessDeniedMessage(const grpc::Status& status);

// Sets ctx's deadline to now + `seconds` + `extra_ms` (a WaitJob's own wait); none when
// `seconds` <= 0.
void SetCallDeadline(grpc::ClientContext* ctx, double seconds, int64_t extra_ms = 0);

// Registers --deadline-seconds (and its older spelling --deadline) on `cmd`: "Seconds each call
// to the server may take (0 = no limit)", with `help_extra` appended.
void AddDeadlineFlag(CLI::App* cmd, double* seconds, const std::string& help_extra = "");

}  // namespace attattr::client
