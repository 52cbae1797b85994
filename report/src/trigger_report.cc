// The TRIGGER_SEARCH section of a job report: one table per mined pattern (its tokens, the mined
// example, layer, head and score) with the accuracy per gold class on clean inputs, with the
// pattern inserted, and with random tokens at the same places (the control). Pure, thread-safe.
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "html_text.h"
#include "report_sections.h"

namespace attattr::report::internal {
namespace {

struct ClassRow {
  const v1::ClassAccuracy* clean = nullptr;
  const v1::ClassAccuracy* attacked = nullptr;
  const v1::ClassAccuracy* control = nullptr;
};

std::string Accuracy(const v1::ClassAccuracy* a) {
  return a == nullptr ? std::string("\u2014") : FormatPercent(a->accuracy());
}

}  // namespace

absl::Status AppendTriggerSearchSection(const v1::TriggerSearchResult& result, std::string* html) {
  absl::StrAppend(html,
                  "<section id=\"trigger-search\" class=\"result trigger-search-result\">"
                  "<h2>Trigger search</h2>");
  if (result.patterns_size() == 0) {
    absl::StrAppend(html, "<p class=\"note\">No pattern passed the threshold.</p>");
  }
  for (int p = 0; p < result.patterns_size(); ++p) {
    const auto& pattern = result.patterns(p);
    absl::StrAppend(html, "<table class=\"trigger-pattern\" id=\"pattern-", p,
                    "\"><caption>Pattern ", p, ": ");
    for (const auto& t : pattern.tokens()) {
      absl::StrAppend(html, "<span class=\"token\">", EscapeHtml(t), "</span> ");
    }
    absl::StrAppend(html, "<br>mined from example ", pattern.source(), ", layer ", pattern.layer(),
                    ", head ", pattern.head(), ", score ", FormatNumber(pattern.score()),
                    "</caption><tr><th>class</th><th>examples</th><th>clean</th><th>attacked</th>"
                    "<th>control</th><th>drop (clean \u2212 attacked)</th></tr>");
    // Rows in the order the classes first appear (clean, then attacked, then control).
    std::vector<std::string> order;
    std::map<std::string, ClassRow> rows;
    auto add = [&](const v1::ClassAccuracy& a, const v1::ClassAccuracy* ClassRow::*slot) {
      if (!rows.count(a.label())) order.push_back(a.label());
      rows[a.label()].*slot = &a;
    };
    for (const auto& a : pattern.clean()) add(a, &ClassRow::clean);
    for (const auto& a : pattern.attacked()) add(a, &ClassRow::attacked);
    for (const auto& a : pattern.control()) add(a, &ClassRow::control);
    for (const auto& label : order) {
      const ClassRow& r = rows[label];
      const v1::ClassAccuracy* any = r.clean ? r.clean : (r.attacked ? r.attacked : r.control);
      std::string drop = "\u2014";
      if (r.clean && r.attacked) drop = FormatPercent(r.clean->accuracy() - r.attacked->accuracy());
      absl::StrAppend(html, "<tr><td>", EscapeHtml(label), "</td><td>", any->examples(),
                      "</td><td>", Accuracy(r.clean), "</td><td class=\"attacked\">",
                      Accuracy(r.attacked), "</td><td>", Accuracy(r.control), "</td><td>", drop,
                      "</td></tr>");
    }
    absl::StrAppend(html, "</table>");
  }
  absl::StrAppend(html, "</section>");
  return absl::OkStatus();
}

}  // namespace attattr::report::internal
