// The HTML report of one job: a single self-contained page (inline CSS and SVG, no scripts, fonts
// or other network resources) with the job's summary and, once it SUCCEEDED, its result drawn for
// people: attribution heat maps beside the raw attention, per-head small multiples, the attribution
// tree; head-importance maps and pruning curves; trigger tables. Served by attattr-server at
// GET /jobs/{id}/report and written by `attattr report JOB -o FILE.html`: both call this function,
// so they produce the same bytes for the same job. Every string from the job or result is
// HTML-escaped. Every section has a budget: heat-map cells per report, rows per top-connection
// table, and a page size past which the remaining examples are listed as left out, so a page stays
// near ReportOptions::max_page_bytes whatever the result holds. WriteJobReport sends the page in
// pieces as it is drawn (the server streams it); RenderJobReport collects them. Pure,
// thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "attattr/v1/job.pb.h"

namespace attattr::report {

// Receives the page piece by piece; returns false when the reader is gone (drawing stops).
using ReportSink = std::function<bool(absl::string_view piece)>;

struct ReportOptions {
  // Heat maps are drawn only where they fit in what is left of this many bytes (a note says what
  // was left out); once the page passes it, the attribution section lists the examples still to
  // come as left out (`attattr get` has them all). The page ends at most one example's text past
  // it (tokens, tree and tables, bounded by their own budgets).
  int64_t max_page_bytes = int64_t{16} << 20;
  // Shown in place of the result section when `result` is null, when not empty (why the result is
  // not drawn, e.g. that it is too large for a page).
  std::string result_note;
};

// `result` may be null (a job that has not finished, failed or was cancelled): the page then shows
// the state, progress and error. Stable hooks for tests and styling: #job-summary, #attribution
// (.example, .prediction, .tokens, .completeness-gaps, .attribution-tree, .layer,
// svg.attribution-map, svg.attention-map, .head-maps, .top-connections, .options-note,
// .left-out), #head-importance (svg.importance-map, .correlations, #pruning-curves),
// #trigger-search (table.trigger-pattern). InvalidArgument when the result does not match the
// job's kind or is inconsistent (a tensor whose size does not match its shape, importance scores
// not L×H) — possibly after part of the page was sent; Cancelled when `sink` refused a piece.
absl::Status WriteJobReport(const v1::Job& job, const v1::JobResult* result,
                            const ReportOptions& options, const ReportSink& sink);

// The whole page as one string (WriteJobReport into a string).
absl::StatusOr<std::string> RenderJobReport(const v1::Job& job, const v1::JobResult* result,
                                            const ReportOptions& options = {});

}  // namespace attattr::report
