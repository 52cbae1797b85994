// ServerConfig: every setting of attattr-server in one plain struct with in-class defaults, validated
// once (Validate names the offending option). Read from flags/env/file only in main.cc, then passed
// by const reference. Thread-compatible value type.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace attattr::server {

struct ServerConfig {
  // Directory holding one Hugging Face model directory per served model (named by directory name).
  // Required.
  std::string models_dir;
  // gRPC listen address. Default: 127.0.0.1:50051 (port 0 = any free port).
  std::string listen = "127.0.0.1:50051";
  // Prometheus /metrics HTTP address; empty = no HTTP endpoint. Default: 127.0.0.1:9464
  // (the Prometheus exporter convention; 9090 is Prometheus' own port).
  std::string metrics_listen = "127.0.0.1:9464";
  // Threads that run Explain calls. Default: 1 (each engine call already uses every intra-op thread).
  int workers = 1;
  // LibTorch intra-op threads (0 = all cores). Default: 0.
  int intra_op_threads = 0;
  // Longest Explain input in word pieces (further bounded by each model's maximum). Default: 128.
  int max_explain_tokens = 128;
  // Largest accepted integration steps m. Default: 256.
  int max_steps = 256;
  // Explain calls waiting for a worker before RESOURCE_EXHAUSTED. Default: 64.
  int max_pending_explains = 64;
  // Memory budget for one attribution batch's activations, bytes. Default: 1 GiB.
  int64_t memory_budget_bytes = int64_t{1} << 30;
  // Log format: "text" or "json". Default: text.
  std::string log_format = "text";
  // Log level: trace, debug, info, warn, error. Default: info.
  std::string log_level = "info";

  // InvalidArgument naming the option ("--listen: ...") when a value is out of range.
  absl::Status Validate() const;
};

}  // namespace attattr::server
