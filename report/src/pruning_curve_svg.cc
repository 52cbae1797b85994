// Pruning-curve chart (see pruning_curve_svg.h).
#include "attattr/report/pruning_curve_svg.h"

#include <algorithm>
#include <array>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "html_text.h"

namespace attattr::report {
namespace {

constexpr double kWidth = 640, kHeight = 400;
constexpr double kLeft = 60, kRight = 150, kTop = 30, kBottom = 50;
constexpr double kPlotW = kWidth - kLeft - kRight, kPlotH = kHeight - kTop - kBottom;
// Colour-blind-safe (Okabe–Ito).
constexpr std::array<const char*, 6> kColours = {"#0072B2", "#E69F00", "#009E73",
                                                 "#CC79A7", "#56B4E9", "#D55E00"};

std::string MethodName(v1::ImportanceMethod method) {
  std::string name = v1::ImportanceMethod_Name(method);
  const std::string prefix = "IMPORTANCE_METHOD_";
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  return absl::AsciiStrToLower(name);
}

double X(double ratio) { return kLeft + kPlotW * std::clamp(ratio, 0.0, 100.0) / 100.0; }
double Y(double accuracy) { return kTop + kPlotH * (1.0 - std::clamp(accuracy, 0.0, 1.0)); }

}  // namespace

std::string PruningCurvesSvg(const v1::HeadImportanceResult& result) {
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"pruning-curves-chart\" width=\"%.0f\" "
      "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">"
      "<title>Accuracy against heads pruned, per ranking</title>"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>",
      kWidth, kHeight, kWidth, kHeight);
  // Grid and ticks: every 10 % of heads, every 0.1 of accuracy.
  for (int i = 0; i <= 10; ++i) {
    const double x = X(i * 10.0), y = Y(i / 10.0);
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>"
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>",
        x, kTop, x, kTop + kPlotH, kLeft, y, kLeft + kPlotW, y, x, kTop + kPlotH + 16, i * 10,
        kLeft - 6, y + 4, i / 10.0);
  }
  absl::StrAppendFormat(
      &svg,
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>"
      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">heads pruned (%%)</text>"
      "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">accuracy</text>",
      kLeft, kTop, kPlotW, kPlotH, kLeft + kPlotW / 2, kHeight - 12, kTop + kPlotH / 2);
  for (int m = 0; m < result.methods_size(); ++m) {
    const auto& method = result.methods(m);
    const std::string name = EscapeHtml(MethodName(method.method()));
    const char* colour = kColours[m % kColours.size()];
    std::vector<const v1::CurvePoint*> points;
    for (const auto& p : method.curve()) points.push_back(&p);
    std::sort(points.begin(), points.end(),
              [](const auto* a, const auto* b) { return a->ratio() < b->ratio(); });
    std::string coords;
    for (const auto* p : points) {
      absl::StrAppendFormat(&coords, "%s%.1f,%.1f", coords.empty() ? "" : " ", X(p->ratio()),
                            Y(p->accuracy()));
    }
    absl::StrAppendFormat(&svg,
                          "<g class=\"curve\" data-method=\"%s\"><polyline points=\"%s\" "
                          "fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>",
                          name, coords, colour);
    for (const auto* p : points) {
      absl::StrAppendFormat(&svg,
                            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%s: %s "
                            "pruned, accuracy %s</title></circle>",
                            X(p->ratio()), Y(p->accuracy()), colour, name,
                            absl::StrCat(FormatNumber(p->ratio()), " %"),
                            FormatNumber(p->accuracy()));
    }
    const double ly = kTop + 10 + 20 * m;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                          "stroke-width=\"2\"/><text x=\"%.1f\" y=\"%.1f\">%s</text></g>",
                          kLeft + kPlotW + 12, ly, kLeft + kPlotW + 36, ly, colour,
                          kLeft + kPlotW + 42, ly + 4, name);
  }
  svg += "</svg>";
  return svg;
}

}  // namespace attattr::report
