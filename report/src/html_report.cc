// The report page: document shell with inline CSS, the job summary, and the result section of the
// job's kind (see html_report.h; the sections live in *_report.cc).
#include "attattr/report/html_report.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attattr/base/status_macros.h"
#include "html_text.h"
#include "report_sections.h"

namespace attattr::report {
namespace {

constexpr char kStyle[] = R"css(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;
 color:#1d2330;background:#fff;line-height:1.4}
h1{font-size:1.5em;margin:0 0 12px}h2{border-bottom:2px solid #d6dbe4;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0 14px}th,td{border:1px solid #d6dbe4;padding:3px 8px;
 text-align:left;font-variant-numeric:tabular-nums}th{background:#eef1f6}caption{text-align:left;
 font-weight:600;padding:4px 0}
.job-summary{background:#f6f8fb;border:1px solid #d6dbe4;border-radius:6px;padding:12px 16px}
.state{font-weight:700;padding:1px 8px;border-radius:10px;background:#e1e6ee}
.state-SUCCEEDED{background:#cdebd5}.state-FAILED{background:#f6cdcd}.state-CANCELLED{background:#eee0c4}
.state-RUNNING,.state-QUEUED{background:#d2e3f7}
.progress-bar{width:320px;height:12px;background:#e1e6ee;border-radius:6px;overflow:hidden}
.progress-bar>div{height:100%;background:#3a78c3}
.error{color:#9b1c1c;font-weight:600}
.note{color:#5b6473;font-style:italic}
.example{border-top:1px solid #d6dbe4;margin-top:18px}
.tokens .token,.trigger-pattern .token{display:inline-block;background:#eef1f6;border-radius:4px;
 padding:0 4px;margin:2px 1px;font-family:ui-monospace,"DejaVu Sans Mono",monospace}
.tokens sub{color:#8a93a3;margin-right:2px}
.map-pair{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
figure{margin:6px 0}figcaption{font-size:.9em;color:#3d4656;margin-bottom:4px}
.head-grid{display:flex;flex-wrap:wrap;gap:12px}.head-pair svg{margin-right:3px}
.importance-maps{display:flex;flex-wrap:wrap;gap:24px}
.scroll{overflow-x:auto}
svg text{fill:#1d2330;font-family:inherit}
)css";

void AppendSummary(const v1::Job& job, std::string* html) {
  const std::string state = v1::JobState_Name(job.state());
  absl::StrAppend(
      html, "<section id=\"job-summary\" class=\"job-summary\"><h1>", EscapeHtml(job.name()),
      "</h1><table class=\"summary\"><tr><th>kind</th><td class=\"kind\">",
      EscapeHtml(v1::JobKind_Name(job.kind())),
      "</td></tr><tr><th>state</th><td>"
      "<span class=\"state state-",
      EscapeHtml(state), "\">", EscapeHtml(state), "</span></td></tr><tr><th>model</th><td>",
      EscapeHtml(job.spec().model()), "</td></tr>");
  if (!job.request_id().empty()) {
    absl::StrAppend(html, "<tr><th>request id</th><td>", EscapeHtml(job.request_id()),
                    "</td></tr>");
  }
  absl::StrAppend(html, "<tr><th>priority</th><td>", job.spec().priority(), "</td></tr>");
  if (job.spec().has_attribution()) {
    const auto& o = job.spec().attribution().options();
    const auto& r = job.spec().attribution().result();
    std::vector<std::string> kept;
    if (r.full_matrices()) kept.push_back("full matrices");
    if (r.head_summed()) kept.push_back("head-summed");
    if (r.attention()) kept.push_back("attention");
    if (r.top_k() > 0) kept.push_back(absl::StrCat("top ", r.top_k()));
    if (r.tree()) kept.push_back("tree");
    if (r.fp16()) kept.push_back("fp16");
    absl::StrAppend(
        html, "<tr><th>integration</th><td>",
        o.rule() == v1::QUADRATURE_RULE_UNSPECIFIED ? std::string("GAUSS_LEGENDRE (default)")
                                                    : EscapeHtml(v1::QuadratureRule_Name(o.rule())),
        ", m = ", o.steps() == 0 ? std::string("8 (default)") : absl::StrCat(o.steps()),
        "</td></tr><tr><th>result options</th><td>",
        EscapeHtml(kept.empty() ? std::string("server default") : absl::StrJoin(kept, ", ")),
        "</td></tr>");
  }
  absl::StrAppend(html, "<tr><th>created</th><td>", FormatUnixMs(job.create_time_ms()),
                  "</td></tr><tr><th>started</th><td>", FormatUnixMs(job.start_time_ms()),
                  "</td></tr><tr><th>ended</th><td>", FormatUnixMs(job.end_time_ms()),
                  "</td></tr>");
  const auto& p = job.progress();
  absl::StrAppend(html, "<tr><th>progress</th><td class=\"progress\">", EscapeHtml(p.stage()));
  if (p.total() > 0) {
    const double fraction = std::clamp(static_cast<double>(p.done()) / p.total(), 0.0, 1.0);
    absl::StrAppend(html, " ", p.done(), "/", p.total(),
                    p.eta_seconds() >= 0 && job.state() == v1::RUNNING
                        ? absl::StrCat(", about ", FormatNumber(p.eta_seconds()), " s left")
                        : std::string(),
                    "<div class=\"progress-bar\"><div style=\"width:",
                    static_cast<int>(fraction * 100), "%\"></div></div>");
  }
  absl::StrAppend(html, "</td></tr>");
  if (job.error_code() != 0 || !job.error_message().empty()) {
    absl::StrAppend(html, "<tr><th>error</th><td class=\"error\">code ", job.error_code(), ": ",
                    EscapeHtml(job.error_message()), "</td></tr>");
  }
  if (job.result_size_bytes() > 0) {
    absl::StrAppend(html, "<tr><th>result size</th><td>", job.result_size_bytes(),
                    " bytes</td></tr>");
  }
  absl::StrAppend(html, "</table></section>");
}

}  // namespace

absl::Status WriteJobReport(const v1::Job& job, const v1::JobResult* result,
                            const ReportOptions& options, const ReportSink& sink) {
  internal::PageWriter page(sink, options.max_page_bytes);
  std::string* html = page.html();
  absl::StrAppend(
      html,
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
      "content=\"width=device-width, initial-scale=1\"><title>attattr report: ",
      EscapeHtml(job.name()), "</title><style>", kStyle, "</style></head><body>");
  AppendSummary(job, html);
  ATTATTR_RETURN_IF_ERROR(page.Flush());
  if (result == nullptr) {
    const std::string note =
        !options.result_note.empty() ? options.result_note
        : job.state() == v1::QUEUED || job.state() == v1::RUNNING
            ? "The job has not finished: this page shows its status; reload it later."
            : (job.state() == v1::SUCCEEDED ? "The result is not available."
                                            : "The job has no result.");
    absl::StrAppend(html, "<p class=\"note no-result\">", EscapeHtml(note), "</p>");
  } else {
    const int result_kind = static_cast<int>(result->kind_case());  // the same numbers as JobKind
    if (job.kind() != v1::JOB_KIND_UNSPECIFIED && result_kind != 0 && result_kind != job.kind()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the result of ", job.name(), " does not match its kind ", v1::JobKind_Name(job.kind())));
    }
    switch (result->kind_case()) {
      case v1::JobResult::kAttribution:
        ATTATTR_RETURN_IF_ERROR(internal::AppendAttributionSection(
            job.spec().attribution().result(), result->attribution(), page));
        break;
      case v1::JobResult::kHeadImportance:
        ATTATTR_RETURN_IF_ERROR(
            internal::AppendHeadImportanceSection(result->head_importance(), html));
        break;
      case v1::JobResult::kTriggerSearch:
        ATTATTR_RETURN_IF_ERROR(
            internal::AppendTriggerSearchSection(result->trigger_search(), html));
        break;
      default:
        absl::StrAppend(html, "<p class=\"note no-result\">The result is empty.</p>");
    }
  }
  absl::StrAppend(html,
                  "<footer class=\"note\">attattr: self-attention attribution (Hao et al., "
                  "AAAI 2021).</footer></body></html>\n");
  return page.Flush();
}

absl::StatusOr<std::string> RenderJobReport(const v1::Job& job, const v1::JobResult* result,
                                            const ReportOptions& options) {
  std::string page;
  ATTATTR_RETURN_IF_ERROR(WriteJobReport(job, result, options, [&page](absl::string_view piece) {
    page.append(piece.data(), piece.size());
    return true;
  }));
  return page;
}

}  // namespace attattr::report
