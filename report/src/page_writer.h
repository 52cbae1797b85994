// PageWriter: where a report's sections append their HTML, sent to the reader in pieces (after the
// summary, and after each layer of each example) rather than held whole, and the page's size budget
// the sections consult. Internal to attattr_report. Not thread-safe: one per page.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "attattr/report/html_report.h"

namespace attattr::report::internal {

class PageWriter {
 public:
  // `sink` must outlive the writer.
  PageWriter(const ReportSink& sink, int64_t max_bytes) : sink_(sink), max_bytes_(max_bytes) {}

  // Append here; Flush sends it.
  std::string* html() { return &buffer_; }
  // The page's bytes so far, sent or not.
  int64_t size() const { return sent_ + static_cast<int64_t>(buffer_.size()); }
  int64_t max_bytes() const { return max_bytes_; }
  bool OverBudget() const { return size() > max_bytes_; }
  // Sends what is buffered; Cancelled when the sink refuses it (the reader went away).
  absl::Status Flush();

 private:
  const ReportSink& sink_;
  const int64_t max_bytes_;
  std::string buffer_;
  int64_t sent_ = 0;
};

}  // namespace attattr::report::internal
