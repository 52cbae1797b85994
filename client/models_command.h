// `attattr models --server HOST:PORT`: lists the models an attattr-server serves (name,
// architecture, layers × heads, hidden size, maximum length, labels) as JSON or a text table.
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "grpc_call.h"

namespace attattr::client {

struct ModelsFlags {
  std::string server;           // HOST:PORT, required
  ChannelSecurity security;     // the global TLS and token flags
  std::string format = "text";  // json | text
  double deadline = 30;         // seconds
};

// InvalidArgument for bad flags (exit 2); the server's status otherwise.
absl::Status RunModels(const ModelsFlags& flags, std::ostream& out);

}  // namespace attattr::client
