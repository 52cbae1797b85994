// IsLoopbackAddress (see loopback_address.h). The address is parsed by inet_pton, not by prefix:
// "127.evil.example" is a DNS name, not a loopback address.
#include "attattr/base/loopback_address.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace attattr {
namespace {

// The host of HOST:PORT, "[V6]:PORT", "[V6]" or HOST (a bare IPv6 address has several colons).
absl::string_view HostOf(absl::string_view address) {
  if (absl::ConsumePrefix(&address, "[")) return address.substr(0, address.find(']'));
  const size_t colon = address.rfind(':');
  // No port, or a bare IPv6 address (more than one colon): the whole is the host.
  if (colon == absl::string_view::npos || address.find(':') != colon) return address;
  return address.substr(0, colon);
}

}  // namespace

bool IsLoopbackAddress(absl::string_view address) {
  if (absl::StartsWith(address, "unix:") || absl::StartsWith(address, "unix-abstract:")) {
    return true;
  }
  // A list of addresses (gRPC's ipv4:A:P,B:P and ipv6:[A]:P,[B]:P) is loopback only if every entry
  // is; it is refused as a whole, since the channel moves on to the next address when the first
  // refuses, and the rule stays one address to check.
  if (absl::StrContains(address, ',')) return false;
  // gRPC's naming schemes: dns:[//authority/]HOST:PORT, ipv4:ADDR:PORT, ipv6:[ADDR]:PORT.
  if (absl::ConsumePrefix(&address, "dns:")) {
    if (absl::ConsumePrefix(&address, "//")) address = address.substr(address.find('/') + 1);
  } else if (!absl::ConsumePrefix(&address, "ipv4:")) {
    absl::ConsumePrefix(&address, "ipv6:");
  }
  const std::string host(HostOf(address));
  if (absl::AsciiStrToLower(host) == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 &&
         std::memcmp(&v6, &in6addr_loopback, sizeof(v6)) == 0;
}

}  // namespace attattr
