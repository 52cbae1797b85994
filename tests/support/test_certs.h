// Certificates for TLS tests, made by OpenSSL (libcrypto) in the test itself: a CA, and leaf
// certificates it signs with chosen subject alternative names and validity — including expired
// ones. Written as PEM files into a directory. Not thread-safe; one per test.
#pragma once

#include <string>
#include <vector>

namespace attattr::testing {

struct PemFiles {
  std::string cert;  // path of the PEM certificate
  std::string key;   // path of the PEM private key
};

class TestCa {
 public:
  // A self-signed CA named `name`, its files `dir`/`name`.{crt,key}.
  TestCa(const std::string& dir, const std::string& name);
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  const std::string& cert_path() const { return files_.cert; }

  // A leaf certificate signed by this CA: subject CN `common_name`, the given subject alternative
  // names ("DNS:localhost", "IP:127.0.0.1", "URI:spiffe://team-a"), valid from
  // now + `not_before_s` to now + `not_after_s`, written as `dir`/`file_name`.{crt,key}.
  PemFiles Issue(const std::string& file_name, const std::string& common_name,
                 const std::vector<std::string>& alt_names, long not_before_s = -60,
                 long not_after_s = 3600) const;

 private:
  struct Impl;
  Impl* impl_;
  std::string dir_;
  PemFiles files_;
};

// The SHA-256 of `text` in lowercase hex (what an --auth-tokens line holds for a token).
std::string Sha256Hex(const std::string& text);

}  // namespace attattr::testing
