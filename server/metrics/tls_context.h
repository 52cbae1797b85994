// TlsContext: the OpenSSL server context of the HTTP ports when the server runs with TLS (the gRPC
// port uses gRPC's own TLS credentials with the same files). ReloadIfChanged rebuilds it from the
// PEM files when their FileStamps changed (the server calls it every --tls-reload-seconds from its
// timer thread, never on the accepting thread), so a certificate rotated by cert-manager takes
// effect on the next connection without a restart; a new version that does not load is refused
// and the previous context kept. With a client CA, a client certificate is asked for and, when
// sent, must verify (the HTTP ports serve probes and scrapers that have none, so it is not
// required). TLS 1.2 is the minimum. Thread-safe.
#pragma once

#include <openssl/ssl.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "attattr/base/file_stamp.h"

namespace attattr::metrics {

struct TlsFiles {
  std::string cert;       // PEM certificate chain, leaf first
  std::string key;        // PEM private key of the leaf
  std::string client_ca;  // PEM CA bundle for client certificates; empty = none asked for
};

class TlsContext {
 public:
  // Called after each re-read: OK when the new files were taken, else why they were refused.
  using ReloadObserver = std::function<void(const absl::Status& status)>;

  // Loads the files; InvalidArgument naming the file and OpenSSL's reason when one does not load
  // or the key does not match the certificate.
  static absl::StatusOr<std::shared_ptr<TlsContext>> Open(const TlsFiles& files,
                                                          ReloadObserver on_reload = nullptr);

  // The context for a new connection.
  std::shared_ptr<SSL_CTX> Current();

  // Rebuilds the context if a file's stamp changed (a file missing for a moment, as during a
  // rotation, keeps the context as it is).
  void ReloadIfChanged();

 private:
  TlsContext(TlsFiles files, ReloadObserver on_reload)
      : files_(std::move(files)), on_reload_(std::move(on_reload)) {}
  // The combined stamp of the files; nullopt when one cannot be stat'ed.
  std::optional<std::string> Stamp() const;

  const TlsFiles files_;
  const ReloadObserver on_reload_;
  absl::Mutex mu_;
  std::shared_ptr<SSL_CTX> ctx_ ABSL_GUARDED_BY(mu_);
  std::optional<std::string> stamp_ ABSL_GUARDED_BY(mu_);
};

// A server context from `files`, or why it cannot be made (naming the file).
absl::StatusOr<std::shared_ptr<SSL_CTX>> MakeServerContext(const TlsFiles& files);

// Who a verified client certificate names, as gRPC names it for the RPCs: its first subject
// alternative name (DNS, URI, email or IP address, in the certificate's order; "" when that one is
// empty or an IP address of the wrong length), else its subject's common name; "" when neither.
std::string CertificateIdentity(X509* certificate);

}  // namespace attattr::metrics
