// EventLog: the server's log lines as events — a short message and typed fields (job_id,
// request_id, method, code, latency_ms, peer, error, ...) — written through spdlog either as text
// ("2026-12-05 10:00:00.123 info rpc method=GetJob code=OK ...") or as JSON lines
// ({"time", "level", "message", <fields>...}). Fields stay data until a sink writes them: JSON
// lines are built from them with nlohmann::json, never parsed back out of a formatted message, so
// a client-supplied value (a request id, an error text) cannot forge fields. spdlog 1.10 has no
// structured fields of its own. Thread-safe (spdlog's _mt sinks); cheap to copy.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"
#include "spdlog/logger.h"

namespace attattr::server {

// One field of an event. An empty string value is left out (text shows "-").
struct LogField {
  LogField(absl::string_view k, absl::string_view v) : key(k), value(std::string(v)) {}
  LogField(absl::string_view k, const char* v) : key(k), value(std::string(v)) {}
  LogField(absl::string_view k, int64_t v) : key(k), value(v) {}
  LogField(absl::string_view k, int v) : key(k), value(int64_t{v}) {}
  LogField(absl::string_view k, size_t v) : key(k), value(static_cast<int64_t>(v)) {}
  // Text shows a double with two decimals (latencies in ms); JSON shows it as it is.
  LogField(absl::string_view k, double v) : key(k), value(v) {}

  std::string key;
  std::variant<std::string, int64_t, double> value;
};

enum class LogFormat { kText, kJson };

// "json" -> kJson; anything else (ServerConfig::Validate allows "text") -> kText.
LogFormat ParseLogFormat(const std::string& format);

// A logger named "attattr" writing to `sink` at `level` (spdlog level name), with the line
// pattern of `format` ("text" or "json"); wrap it in an EventLog of the same format.
std::shared_ptr<spdlog::logger> MakeLogger(const std::string& format, const std::string& level,
                                           spdlog::sink_ptr sink);

class EventLog {
 public:
  // Writes through `logger` (its sinks and level); `format` shapes each line's payload.
  EventLog(std::shared_ptr<spdlog::logger> logger, LogFormat format)
      : logger_(std::move(logger)), format_(format) {}

  // ParseLogFormat(format) over `logger`, whose pattern MakeLogger set for that format.
  EventLog(std::shared_ptr<spdlog::logger> logger, const std::string& format);

  // Text: "<message> k1=v1 k2=v2 ..." (an `error` field last, running to the end of the line),
  // control characters escaped (\n, \x01, …) so a value can never start a line of its own.
  // JSON: "message" is that same text line, and every field is a key of its own (strings as
  // strings, numbers as numbers; empty strings left out). Strings longer than 2 KiB are cut and
  // marked "…(N bytes)" in both.
  void Log(spdlog::level::level_enum level, absl::string_view message,
           std::initializer_list<LogField> fields = {}) const;
  void Debug(absl::string_view message, std::initializer_list<LogField> fields = {}) const {
    Log(spdlog::level::debug, message, fields);
  }
  void Info(absl::string_view message, std::initializer_list<LogField> fields = {}) const {
    Log(spdlog::level::info, message, fields);
  }
  void Warn(absl::string_view message, std::initializer_list<LogField> fields = {}) const {
    Log(spdlog::level::warn, message, fields);
  }
  void Error(absl::string_view message, std::initializer_list<LogField> fields = {}) const {
    Log(spdlog::level::err, message, fields);
  }

  spdlog::logger& logger() const { return *logger_; }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  LogFormat format_;
};

}  // namespace attattr::server
