// The HEAD_IMPORTANCE section of a job report: per ranking method the [L×H] importance scores as a
// heat map, the rank correlations between methods, and the pruning curves (accuracy against the
// share of heads pruned, one line per method) as a chart and a table. Pure, thread-safe.
#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/head_importance_convert.h"
#include "attattr/report/pruning_curve_svg.h"
#include "heat_map_svg.h"
#include "html_text.h"
#include "report_sections.h"

namespace attattr::report::internal {
namespace {

std::string MethodName(v1::ImportanceMethod method) {
  std::string name = v1::ImportanceMethod_Name(method);
  if (name.empty()) return absl::StrCat("method ", static_cast<int>(method));
  constexpr absl::string_view kPrefix = "IMPORTANCE_METHOD_";
  if (absl::StartsWith(name, kPrefix)) name = name.substr(kPrefix.size());
  return absl::AsciiStrToLower(name);
}

void AppendCurveTable(const v1::HeadImportanceResult& result, std::string* html) {
  // One row per ratio, one column per method (ratios as the methods report them).
  std::map<double, std::map<int, const v1::CurvePoint*>> rows;
  for (int m = 0; m < result.methods_size(); ++m) {
    for (const auto& p : result.methods(m).curve()) rows[p.ratio()][m] = &p;
  }
  if (rows.empty()) return;
  absl::StrAppend(html,
                  "<table class=\"pruning-curve-table\"><caption>Accuracy with the "
                  "lowest-ranked heads pruned</caption><tr><th>pruned</th>");
  for (const auto& m : result.methods()) {
    absl::StrAppend(html, "<th>", EscapeHtml(MethodName(m.method())), "</th>");
  }
  absl::StrAppend(html, "</tr>");
  for (const auto& [ratio, points] : rows) {
    absl::StrAppend(html, "<tr><td>", FormatNumber(ratio), " %</td>");
    for (int m = 0; m < result.methods_size(); ++m) {
      auto it = points.find(m);
      absl::StrAppend(
          html, "<td>",
          it == points.end() ? std::string("\u2014") : FormatPercent(it->second->accuracy()),
          "</td>");
    }
    absl::StrAppend(html, "</tr>");
  }
  absl::StrAppend(html, "</table>");
}

void AppendPruningChart(const v1::HeadImportanceResult& result, std::string* html) {
  absl::StrAppend(html, "<figure class=\"pruning-chart\">", PruningCurvesSvg(result), "</figure>");
}

}  // namespace

absl::Status AppendHeadImportanceSection(const v1::HeadImportanceResult& result,
                                         std::string* html) {
  ATTATTR_RETURN_IF_ERROR(convert::CheckHeadImportanceShape(result));
  const int layers = result.num_layers();
  const int heads = result.num_heads();
  absl::StrAppend(html,
                  "<section id=\"head-importance\" class=\"result head-importance-result\">"
                  "<h2>Head importance</h2><p>",
                  layers, " layers \u00d7 ", heads, " heads; ", result.methods_size(),
                  " rankings.</p>");
  if (!result.export_path().empty()) {
    absl::StrAppend(html, "<p class=\"export-path\">Pruned checkpoint written to <code>",
                    EscapeHtml(result.export_path()), "</code></p>");
  }
  absl::StrAppend(html, "<div class=\"importance-maps\">");
  std::vector<std::string> row_labels, col_labels;
  for (int l = 0; l < layers; ++l) row_labels.push_back(absl::StrCat("layer ", l));
  for (int h = 0; h < heads; ++h) col_labels.push_back(absl::StrCat("head ", h));
  for (const auto& m : result.methods()) {
    std::vector<float> values(m.importance().begin(), m.importance().end());
    const bool signed_values =
        std::any_of(values.begin(), values.end(), [](float v) { return v < 0; });
    HeatMapOptions map;
    map.scale = signed_values ? ColorScale::kDiverging : ColorScale::kSequential;
    map.cell_px = 22;
    map.row_labels = row_labels;
    map.col_labels = col_labels;
    map.css_class = "importance-map";
    map.title = absl::StrCat(MethodName(m.method()), " importance per head");
    absl::StrAppend(html, "<figure class=\"importance\" data-method=\"",
                    EscapeHtml(MethodName(m.method())), "\"><figcaption>",
                    EscapeHtml(MethodName(m.method())), "</figcaption>",
                    HeatMapSvg(values, layers, heads, map), "</figure>");
  }
  absl::StrAppend(html, "</div>");

  if (result.correlations_size() > 0) {
    absl::StrAppend(html,
                    "<table class=\"correlations\"><caption>Rank correlations between "
                    "rankings</caption><tr><th>a</th><th>b</th><th>Pearson</th><th>Spearman"
                    "</th></tr>");
    for (const auto& c : result.correlations()) {
      absl::StrAppend(html, "<tr><td>", EscapeHtml(MethodName(c.a())), "</td><td>",
                      EscapeHtml(MethodName(c.b())), "</td><td>", FormatNumber(c.pearson()),
                      "</td><td>", FormatNumber(c.spearman()), "</td></tr>");
    }
    absl::StrAppend(html, "</table>");
  }
  bool agreement = false;
  for (const auto& m : result.methods()) agreement = agreement || m.has_agreement();
  if (agreement) {
    absl::StrAppend(html,
                    "<table class=\"agreement\"><caption>Each ranking on the agreement set "
                    "against the importance set</caption><tr><th>method</th><th>Pearson</th>"
                    "<th>Spearman</th></tr>");
    for (const auto& m : result.methods()) {
      if (!m.has_agreement()) continue;
      absl::StrAppend(html, "<tr><td>", EscapeHtml(MethodName(m.method())), "</td><td>",
                      FormatNumber(m.agreement().pearson()), "</td><td>",
                      FormatNumber(m.agreement().spearman()), "</td></tr>");
    }
    absl::StrAppend(html, "</table>");
  }

  absl::StrAppend(html,
                  "<section id=\"pruning-curves\" class=\"pruning-curves\"><h3>Pruning "
                  "curves</h3>");
  AppendPruningChart(result, html);
  AppendCurveTable(result, html);
  absl::StrAppend(html, "</section></section>");
  return absl::OkStatus();
}

}  // namespace attattr::report::internal
