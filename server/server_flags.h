// The attattr-server command line: every flag, its ATTATTR_* environment variable and its key in
// an INI/TOML --config file (CLI11), parsed into a validated ServerConfig. Kept apart from main.cc
// so that --help, the fuzz target for --config files (tests/fuzz/server_flags_fuzz.cc) and tests
// parse exactly what the server parses. Stateless; thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server_config.h"

namespace attattr::server {

struct ServerFlags {
  ServerConfig config;
  // On SIGTERM: how long running jobs and calls get to finish.
  int grace_seconds = 30;
  // --help was asked for: `help` holds the text to print, and nothing else was parsed.
  bool help_requested = false;
  std::string help;
};

// Parses `args` (argv without the program name), the ATTATTR_* environment and the --config file
// it names. InvalidArgument with CLI11's message (an unknown flag, a value of the wrong type, an
// unreadable or malformed --config file) followed by a usage line, or with ServerConfig::Validate's
// (a value out of range, naming the option); sizes given in MiB are refused above 2^40 MiB rather
// than overflowing bytes.
absl::StatusOr<ServerFlags> ParseServerFlags(const std::vector<std::string>& args);

}  // namespace attattr::server
