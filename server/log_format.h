// The server's log lines: spdlog with either a text pattern or JSON lines. A JSON line carries
// time, level and the message (escaped) and lifts the message's `key=value` pairs — the access log's
// method, code, latency_ms, request_id, job_id, peer, and error (which takes the rest of the line) —
// into fields of their own, so log pipelines can filter on job and request ids without parsing.
// Written here because spdlog 1.10 has no structured (MDC) fields; this is a custom flag formatter.
#pragma once

#include <memory>
#include <string>

#include "spdlog/logger.h"

namespace attattr::server {

// A logger named "attattr" writing to `sink` in `format` ("text" or "json") at `level` (spdlog
// level name).
std::shared_ptr<spdlog::logger> MakeServerLogger(const std::string& format, const std::string& level,
                                                 spdlog::sink_ptr sink);

}  // namespace attattr::server
