// The torch exception boundary (see torch_boundary.h).
#include "torch_boundary.h"

#include <c10/util/Exception.h>

#include <exception>

#include "absl/strings/str_cat.h"

namespace attattr::engine {

absl::Status TorchExceptionToStatus(absl::string_view context) {
  try {
    throw;  // the exception being handled by the caller's catch block
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(context, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(context, ": ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(context, ": unknown exception"));
  }
}

}  // namespace attattr::engine
