// TlsContext (see tls_context.h): OpenSSL context building, re-reading on change, certificate
// identities.
#include "metrics/tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"

namespace attattr::metrics {
namespace {

// OpenSSL's queued errors as one line (and the queue emptied).
std::string OpenSslErrors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof(text));
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? "unknown error" : out;
}

absl::Status Bad(const std::string& flag, const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": ", path, ": ", what, " (", OpenSslErrors(), ")"));
}

}  // namespace

absl::StatusOr<std::shared_ptr<SSL_CTX>> MakeServerContext(const TlsFiles& files) {
  ERR_clear_error();
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (ctx == nullptr) return absl::InternalError(absl::StrCat("TLS: ", OpenSslErrors()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), files.cert.c_str()) != 1) {
    return Bad("--tls-cert", files.cert, "cannot load the certificate chain");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Bad("--tls-key", files.key, "cannot load the private key");
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return Bad("--tls-key", files.key, "does not match the certificate of --tls-cert");
  }
  if (!files.client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), files.client_ca.c_str(), nullptr) != 1) {
      return Bad("--tls-client-ca", files.client_ca, "cannot load the CA certificates");
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca.c_str());
    if (names == nullptr) {
      return Bad("--tls-client-ca", files.client_ca, "has no CA certificate");
    }
    SSL_CTX_set_client_CA_list(ctx.get(), names);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  return ctx;
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::Open(const TlsFiles& files,
                                                             ReloadObserver on_reload) {
  auto ctx = MakeServerContext(files);
  if (!ctx.ok()) return ctx.status();
  std::shared_ptr<TlsContext> tls(new TlsContext(files, std::move(on_reload)));
  absl::MutexLock lock(&tls->mu_);
  tls->ctx_ = std::move(*ctx);
  tls->stamp_ = tls->Stamp();
  return tls;
}

std::optional<std::string> TlsContext::Stamp() const {
  std::string out;
  for (const std::string* path : {&files_.cert, &files_.key, &files_.client_ca}) {
    if (path->empty()) continue;
    const auto stamp = StampOf(*path);
    if (!stamp.has_value()) return std::nullopt;
    absl::StrAppend(&out, stamp->device, ":", stamp->inode, ":", stamp->size, ":", stamp->mtime_ns,
                    ";");
  }
  return out;
}

std::shared_ptr<SSL_CTX> TlsContext::Current() {
  absl::MutexLock lock(&mu_);
  return ctx_;
}

void TlsContext::ReloadIfChanged() {
  const auto stamp = Stamp();
  {
    absl::MutexLock lock(&mu_);
    if (!stamp.has_value() || stamp == stamp_) return;
    stamp_ = stamp;
  }
  // Built outside the lock: new connections keep getting the current context meanwhile.
  auto ctx = MakeServerContext(files_);
  if (ctx.ok()) {
    absl::MutexLock lock(&mu_);
    ctx_ = std::move(*ctx);
  }
  if (on_reload_) on_reload_(ctx.status());
}

std::string CertificateIdentity(X509* certificate) {
  if (certificate == nullptr) return "";
  // As gRPC names the peer (its GetPeerIdentity, which the RPCs use): the first name of these
  // types in the certificate's order, even an empty one (which no principal matches); an IP
  // address of neither 4 nor 16 bytes names nobody (gRPC refuses that handshake).
  std::optional<std::string> identity;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names) && !identity; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS || name->type == GEN_URI || name->type == GEN_EMAIL) {
      const ASN1_STRING* text = name->d.ia5;
      identity.emplace(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                       static_cast<size_t>(ASN1_STRING_length(text)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      const int length = ASN1_STRING_length(ip);
      char text[INET6_ADDRSTRLEN] = {};
      identity.emplace();
      if ((length == 4 || length == 16) &&
          inet_ntop(length == 16 ? AF_INET6 : AF_INET, ASN1_STRING_get0_data(ip), text,
                    sizeof(text)) != nullptr) {
        *identity = text;
      }
    }
  }
  if (names != nullptr) GENERAL_NAMES_free(names);
  if (identity) return *identity;
  X509_NAME* subject = X509_get_subject_name(certificate);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return "";
  const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, cn);
  if (length < 0) return "";
  std::string common_name(reinterpret_cast<const char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return common_name;
}

}  // namespace attattr::metrics
