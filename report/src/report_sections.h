// The result sections of a job report, one file per job kind (attribution_report.cc,
// head_importance_report.cc, trigger_report.cc); html_report.cc puts them in the page. Internal to
// attattr_report. Each appends HTML to the page; InvalidArgument when the result is inconsistent
// (e.g. a tensor whose size does not match its shape). The attribution section, whose size grows
// with the examples, flushes the page after each example and keeps to its budget; the other two
// are bounded by the job limits (L×H heads, at most kMaxPruningRatios ratios, top_k <= 100
// patterns). Pure, thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "attattr/v1/job.pb.h"
#include "page_writer.h"

namespace attattr::report::internal {

// The result options the job asked for (what the notes about missing matrices refer to).
absl::Status AppendAttributionSection(const v1::ResultOptions& options,
                                      const v1::AttributionResult& result, PageWriter& page);
absl::Status AppendHeadImportanceSection(const v1::HeadImportanceResult& result, std::string* html);
absl::Status AppendTriggerSearchSection(const v1::TriggerSearchResult& result, std::string* html);

}  // namespace attattr::report::internal
