// TestCa (see test_certs.h): RSA-2048 keys (EVP_RSA_gen), X.509 v3 certificates with basic
// constraints and subject alternative names, signed with SHA-256.
#include "support/test_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <stdexcept>

namespace attattr::testing {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificates: ") + what);
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  Check(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509* NewCertificate(EVP_PKEY* key, const std::string& common_name, long not_before_s,
                     long not_after_s) {
  static long serial = 1;
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(cert), not_after_s);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  return cert;
}

void Write(const std::string& path, X509* cert, EVP_PKEY* key, const std::string& key_path) {
  FILE* f = std::fopen(path.c_str(), "w");
  Check(f != nullptr && PEM_write_X509(f, cert) == 1, "writing a certificate");
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  Check(f != nullptr && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "writing a key");
  std::fclose(f);
}

}  // namespace

struct TestCa::Impl {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
};

TestCa::TestCa(const std::string& dir, const std::string& name) : impl_(new Impl), dir_(dir) {
  impl_->key = EVP_RSA_gen(2048);
  Check(impl_->key != nullptr, "CA key");
  impl_->cert = NewCertificate(impl_->key, name, -60, 86400);
  X509_set_issuer_name(impl_->cert, X509_get_subject_name(impl_->cert));
  AddExtension(impl_->cert, impl_->cert, NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(impl_->cert, impl_->cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(impl_->cert, impl_->cert, NID_subject_key_identifier, "hash");
  Check(X509_sign(impl_->cert, impl_->key, EVP_sha256()) > 0, "signing the CA");
  files_ = {dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  Write(files_.cert, impl_->cert, impl_->key, files_.key);
}

TestCa::~TestCa() {
  X509_free(impl_->cert);
  EVP_PKEY_free(impl_->key);
  delete impl_;
}

PemFiles TestCa::Issue(const std::string& file_name, const std::string& common_name,
                       const std::vector<std::string>& alt_names, long not_before_s,
                       long not_after_s) const {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  Check(key != nullptr, "leaf key");
  X509* cert = NewCertificate(key, common_name, not_before_s, not_after_s);
  X509_set_issuer_name(cert, X509_get_subject_name(impl_->cert));
  AddExtension(cert, impl_->cert, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert, impl_->cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
  AddExtension(cert, impl_->cert, NID_ext_key_usage, "serverAuth,clientAuth");
  AddExtension(cert, impl_->cert, NID_authority_key_identifier, "keyid");
  if (!alt_names.empty()) {
    std::string sans;
    for (const auto& n : alt_names) sans += (sans.empty() ? "" : ",") + n;
    AddExtension(cert, impl_->cert, NID_subject_alt_name, sans);
  }
  Check(X509_sign(cert, impl_->key, EVP_sha256()) > 0, "signing a leaf");
  PemFiles files{dir_ + "/" + file_name + ".crt", dir_ + "/" + file_name + ".key"};
  Write(files.cert, cert, key, files.key);
  X509_free(cert);
  EVP_PKEY_free(key);
  return files;
}

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[32];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  char hex[65];
  for (int i = 0; i < 32; ++i) std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  return std::string(hex, 64);
}

}  // namespace attattr::testing
