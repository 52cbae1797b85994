// JSON-lines log formatting (see log_format.h).
#include "server/log_format.h"

#include <cctype>
#include <string_view>

#include "spdlog/pattern_formatter.h"

namespace attattr::server {
namespace {

void AppendEscaped(std::string_view s, spdlog::memory_buf_t& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : s) {
    switch (c) {
      case '"': out.append(std::string_view("\\\"")); break;
      case '\\': out.append(std::string_view("\\\\")); break;
      case '\n': out.append(std::string_view("\\n")); break;
      case '\r': out.append(std::string_view("\\r")); break;
      case '\t': out.append(std::string_view("\\t")); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          const char esc[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xf], kHex[c & 0xf]};
          out.append(esc, esc + 6);
        } else {
          out.push_back(c);
        }
    }
  }
}

void AppendField(std::string_view key, std::string_view value, spdlog::memory_buf_t& out) {
  out.append(std::string_view(",\""));
  AppendEscaped(key, out);
  out.append(std::string_view("\":\""));
  AppendEscaped(value, out);
  out.push_back('"');
}

bool IsKey(std::string_view key) {
  if (key.empty() || key == "time" || key == "level" || key == "message") return false;
  for (char c : key) {
    if (!std::islower(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// `%*`: "message":"…" followed by the message's key=value pairs as fields.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& out) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    out.append(std::string_view("\"message\":\""));
    AppendEscaped(text, out);
    out.push_back('"');
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t end = std::min(text.find(' ', pos), text.size());
      const std::string_view token = text.substr(pos, end - pos);
      const size_t eq = token.find('=');
      if (eq != std::string_view::npos && IsKey(token.substr(0, eq))) {
        const std::string_view key = token.substr(0, eq);
        if (key == "error") {  // the error message runs to the end of the line
          AppendField(key, text.substr(pos + eq + 1), out);
          break;
        }
        const std::string_view value = token.substr(eq + 1);
        if (value != "-") AppendField(key, value, out);
      }
      pos = end + 1;
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

}  // namespace

std::shared_ptr<spdlog::logger> MakeServerLogger(const std::string& format, const std::string& level,
                                                 spdlog::sink_ptr sink) {
  auto log = std::make_shared<spdlog::logger>("attattr", std::move(sink));
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l",%*})");
    log->set_formatter(std::move(formatter));
  } else {
    log->set_pattern("%Y-%m-%d %H:%M:%S.%e %l %v");
  }
  log->set_level(spdlog::level::from_str(level));
  return log;
}

}  // namespace attattr::server
