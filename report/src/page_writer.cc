// PageWriter (see page_writer.h).
#include "page_writer.h"

namespace attattr::report::internal {

absl::Status PageWriter::Flush() {
  if (buffer_.empty()) return absl::OkStatus();
  if (!sink_(buffer_)) return absl::CancelledError("the report's reader went away");
  sent_ += static_cast<int64_t>(buffer_.size());
  buffer_.clear();
  return absl::OkStatus();
}

}  // namespace attattr::report::internal
