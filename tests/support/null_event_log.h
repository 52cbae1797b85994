// An EventLog that discards every line, for tests of server parts that log (scheduler, stores)
// and do not check what. Header-only: only tests that link attattr_server_core include it.
#pragma once

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <memory>

#include "event_log.h"

namespace attattr::testing {

inline server::EventLog NullEventLog() {
  return server::EventLog(
      std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>()),
      server::LogFormat::kText);
}

}  // namespace attattr::testing
