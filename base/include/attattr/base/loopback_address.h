// Whether a gRPC target or listen address names this machine only: the server warns when its
// plain-text ports listen elsewhere, and the clients refuse to send a bearer token in plain text
// elsewhere. Pure, thread-safe.
#pragma once

#include "absl/strings/string_view.h"

namespace attattr {

// True for HOST:PORT (or a gRPC target: "dns:///HOST:PORT", "ipv4:…", "ipv6:…") whose host is
// "localhost", an IPv4 address in 127.0.0.0/8 or the IPv6 ::1 (bracketed or not), and for Unix
// domain sockets ("unix:…", "unix-abstract:…"). False for everything else, names that merely
// resolve to a loopback address included (what they resolve to can change).
bool IsLoopbackAddress(absl::string_view address);

}  // namespace attattr
