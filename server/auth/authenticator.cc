// Authenticator (see authenticator.h): the Bearer scheme, the token table, certificate identities
// and roles.
#include "auth/authenticator.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "jobs/job_priority.h"

namespace attattr::server {
namespace {

constexpr size_t kMaxIdentityBytes = 256;

}  // namespace

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(const AuthOptions& options) {
  std::unique_ptr<Authenticator> auth(new Authenticator());
  if (!options.tokens_path.empty()) {
    ATTATTR_ASSIGN_OR_RETURN(auth->tokens_,
                             TokenTable::Open(options.tokens_path, options.on_token_reload));
  }
  auth->client_certificates_ = options.client_certificates;
  auth->admins_ = {options.admins.begin(), options.admins.end()};
  auth->exporters_ = {options.exporters.begin(), options.exporters.end()};
  auth->dataset_readers_ = {options.dataset_readers.begin(), options.dataset_readers.end()};
  auth->max_user_priority_ = options.max_user_priority;
  return auth;
}

Principal Authenticator::Resolve(const std::string& name) const {
  Principal p;
  p.name = name;
  p.admin = !enabled() || Listed(admins_, name);
  p.may_export = p.admin || Listed(exporters_, name);
  p.may_read_datasets = p.admin || Listed(dataset_readers_, name);
  p.max_priority = p.admin ? kMaxJobPriority : max_user_priority_;
  return p;
}

absl::StatusOr<Principal> Authenticator::Authenticate(const Credentials& credentials) const {
  if (!enabled()) return Resolve(kAnonymousPrincipal);
  if (!credentials.authorization.empty()) {
    absl::string_view value = absl::StripAsciiWhitespace(credentials.authorization);
    constexpr absl::string_view kScheme = "bearer ";
    if (!absl::StartsWithIgnoreCase(value, kScheme)) {
      return absl::UnauthenticatedError(
          "authorization: only the Bearer scheme is accepted ('authorization: Bearer <token>')");
    }
    if (tokens_ == nullptr) {
      return absl::UnauthenticatedError(
          "authorization: this server takes no bearer tokens (it identifies callers by their "
          "client certificate)");
    }
    const absl::string_view token = absl::StripLeadingAsciiWhitespace(value.substr(kScheme.size()));
    auto principal = tokens_->Lookup(token);
    if (!principal.has_value()) {
      return absl::UnauthenticatedError("authorization: the bearer token is not valid");
    }
    return Resolve(*principal);
  }
  if (client_certificates_ && !credentials.certificate_identity.empty()) {
    if (credentials.certificate_identity.size() > kMaxIdentityBytes) {
      return absl::UnauthenticatedError(absl::StrCat(
          "client certificate: its identity is longer than ", kMaxIdentityBytes, " bytes"));
    }
    return Resolve(std::string(credentials.certificate_identity));
  }
  return absl::UnauthenticatedError(
      tokens_ != nullptr
          ? "no credentials: send 'authorization: Bearer <token>' metadata (attattr: "
            "--token-file or ATTATTR_TOKEN)"
          : "no credentials: connect with a client certificate (attattr: --tls-cert, --tls-key)");
}

}  // namespace attattr::server
