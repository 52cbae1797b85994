// Event logging (see event_log.h).
#include "event_log.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attattr/base/quote.h"
#include "nlohmann/json.hpp"

namespace attattr::server {
namespace {

// Longest value a log line shows (a client's request id, an error that quotes input): longer ones
// are cut and marked with their size.
constexpr size_t kMaxValueBytes = 2048;

std::string TextValue(const LogField& f) {
  if (const auto* s = std::get_if<std::string>(&f.value)) {
    return s->empty() ? "-" : EscapeForLog(*s, kMaxValueBytes);
  }
  if (const auto* i = std::get_if<int64_t>(&f.value)) return absl::StrCat(*i);
  return absl::StrFormat("%.2f", std::get<double>(f.value));
}

nlohmann::json JsonValue(const LogField& f) {
  if (const auto* s = std::get_if<std::string>(&f.value)) return ClipForLog(*s, kMaxValueBytes);
  if (const auto* i = std::get_if<int64_t>(&f.value)) return *i;
  return std::get<double>(f.value);
}

bool IsEmpty(const LogField& f) {
  const auto* s = std::get_if<std::string>(&f.value);
  return s != nullptr && s->empty();
}

}  // namespace

LogFormat ParseLogFormat(const std::string& format) {
  return format == "json" ? LogFormat::kJson : LogFormat::kText;
}

std::shared_ptr<spdlog::logger> MakeLogger(const std::string& format, const std::string& level,
                                           spdlog::sink_ptr sink) {
  auto logger = std::make_shared<spdlog::logger>("attattr", std::move(sink));
  // JSON: spdlog writes time and level; the payload (EventLog::Log) is the object's other members.
  logger->set_pattern(ParseLogFormat(format) == LogFormat::kJson
                          ? R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l",%v})"
                          : "%Y-%m-%d %H:%M:%S.%e %l %v");
  logger->set_level(spdlog::level::from_str(level));
  return logger;
}

EventLog::EventLog(std::shared_ptr<spdlog::logger> logger, const std::string& format)
    : EventLog(std::move(logger), ParseLogFormat(format)) {}

void EventLog::Log(spdlog::level::level_enum level, absl::string_view message,
                   std::initializer_list<LogField> fields) const {
  if (!logger_->should_log(level)) return;
  std::string text = EscapeForLog(message, kMaxValueBytes);
  const LogField* error = nullptr;
  for (const auto& f : fields) {
    if (f.key == "error") {
      error = &f;
      continue;
    }
    absl::StrAppend(&text, " ", f.key, "=", TextValue(f));
  }
  if (error != nullptr && !IsEmpty(*error)) absl::StrAppend(&text, " error=", TextValue(*error));
  if (format_ == LogFormat::kText) {
    logger_->log(level, "{}", text);
    return;
  }
  nlohmann::json members = nlohmann::json::object();
  members["message"] = text;
  for (const auto& f : fields) {
    if (IsEmpty(f) || f.key == "time" || f.key == "level" || f.key == "message") continue;
    members[f.key] = JsonValue(f);
  }
  // The members without the object's braces: the pattern wraps them with time and level. Invalid
  // UTF-8 (a client's bytes) is replaced rather than thrown on.
  const std::string object = members.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  logger_->log(level, "{}", object.substr(1, object.size() - 2));
}

}  // namespace attattr::server
