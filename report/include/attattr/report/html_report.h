// The HTML report of one job: a single self-contained page (inline CSS and SVG, no scripts, fonts
// or other network resources) with the job's summary and, once it SUCCEEDED, its result drawn for
// people: attribution heat maps beside the raw attention, per-head small multiples, the attribution
// tree; head-importance maps and pruning curves; trigger tables. Served by attattr-server at
// GET /jobs/{id}/report and written by `attattr report JOB -o FILE.html`: both call this function,
// so they produce the same bytes for the same job. Every string from the job or result is
// HTML-escaped. Pure, thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "attattr/v1/job.pb.h"

namespace attattr::report {

// `result` may be null (a job that has not finished, failed or was cancelled): the page then shows
// the state, progress and error. Stable hooks for tests and styling: #job-summary, #attribution
// (.example, .prediction, .tokens, .completeness-gaps, .attribution-tree, .layer,
// svg.attribution-map, svg.attention-map, .head-maps, .top-connections, .options-note),
// #head-importance (svg.importance-map, .correlations, #pruning-curves), #trigger-search
// (table.trigger-pattern). InvalidArgument when the result does not match the job's kind or is
// inconsistent (a tensor whose size does not match its shape, importance scores not L×H).
absl::StatusOr<std::string> RenderJobReport(const v1::Job& job, const v1::JobResult* result);

}  // namespace attattr::report
