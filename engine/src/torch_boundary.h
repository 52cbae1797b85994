// The engine's one exception boundary around LibTorch (STYLE.md §2.3). Public entry points that run
// torch code end their try block with
//     } catch (...) {
//       return TorchExceptionToStatus("predict");
//     }
// and this turns the exception in flight into absl::InternalError("predict: <what>"): c10::Error
// without its C++ backtrace, any std::exception with its message. Nothing else in the engine
// catches torch exceptions, and none crosses the engine's public API. Call only from a catch block.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace attattr::engine {

absl::Status TorchExceptionToStatus(absl::string_view context);

}  // namespace attattr::engine
