// Authenticator: turns a call's credentials into a Principal (principal.h). Credentials are a
// bearer token (`authorization: Bearer <token>`, looked up in the --auth-tokens TokenTable) and/or
// the identity of a client certificate the TLS layer has verified against --tls-client-ca (its
// first subject alternative name, else its common name). A token wins when both are present.
// Roles come from the principal's name: --admin-principals, --export-principals,
// --dataset-principals ("*" = every principal), --max-user-priority. With neither tokens nor
// client certificates configured, authentication is off and every call is kAnonymousPrincipal, an
// administrator. Used by the gRPC service and the HTTP reports alike; knows nothing of either.
// Thread-safe.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "auth/principal.h"
#include "auth/token_table.h"

namespace attattr::server {

struct AuthOptions {
  std::string tokens_path;                  // --auth-tokens; empty = no bearer tokens
  bool client_certificates = false;         // --tls-client-ca given: verified certificates identify
  std::vector<std::string> admins;          // --admin-principals
  std::vector<std::string> exporters = {};  // --export-principals; admins always may
  std::vector<std::string> dataset_readers = {"*"};  // --dataset-principals; admins always may
  int32_t max_user_priority = 0;                     // --max-user-priority
  TokenTable::ReloadObserver on_token_reload;        // logs re-reads of the token file
};

// What a call presents; empty = absent.
struct Credentials {
  absl::string_view authorization;         // the authorization metadata / header value
  absl::string_view certificate_identity;  // set only for a certificate TLS verified
};

class Authenticator {
 public:
  // Opens the token file (errors name --auth-tokens).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(const AuthOptions& options);

  // Whether calls must authenticate (tokens or client certificates configured).
  bool enabled() const { return tokens_ != nullptr || client_certificates_; }

  // The caller, or Unauthenticated saying what is missing or wrong (never echoing a token).
  absl::StatusOr<Principal> Authenticate(const Credentials& credentials) const;

  // The principal named `name` with its roles.
  Principal Resolve(const std::string& name) const;

  // Re-reads the token file if it changed (TokenTable::ReloadIfChanged); nothing without one.
  void ReloadTokensIfChanged() {
    if (tokens_ != nullptr) tokens_->ReloadIfChanged();
  }

 private:
  Authenticator() = default;
  static bool Listed(const std::set<std::string>& names, const std::string& name) {
    return names.count("*") > 0 || names.count(name) > 0;
  }

  std::unique_ptr<TokenTable> tokens_;  // null without --auth-tokens
  bool client_certificates_ = false;
  std::set<std::string> admins_;
  std::set<std::string> exporters_;
  std::set<std::string> dataset_readers_;
  int32_t max_user_priority_ = 0;
};

}  // namespace attattr::server
