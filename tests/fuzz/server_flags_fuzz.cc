// libFuzzer entry point for attattr-server's --config file (INI/TOML, parsed by CLI11 through
// ParseServerFlags, exactly as the server reads it). The input is the file; --models is given on
// the command line so the file's other keys are reached. ParseServerFlags must return flags or a
// Status with a message for anything (no crash, uncaught exception or UB — e.g. no overflow turning
// MiB into bytes), and flags it returns must pass ServerConfig::Validate. Single-threaded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_file.h"
#include "server_flags.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static attattr::fuzz::ScratchFile file(".ini");
  file.Write(data, size);
  absl::StatusOr<attattr::server::ServerFlags> flags =
      attattr::server::ParseServerFlags({"--models", "/models", "--config", file.path()});
  if (flags.ok()) {
    if (!flags->help_requested && !flags->config.Validate().ok()) std::abort();
    if (flags->config.memory_budget_bytes < 0 || flags->config.max_result_bytes < 0 ||
        flags->config.max_request_bytes < 0 || flags->config.max_dataset_bytes < 0) {
      std::abort();
    }
  } else if (flags.status().message().empty()) {
    std::abort();
  }
  return 0;
}
