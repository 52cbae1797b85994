// SVG heat maps for the reports (see heat_map_svg.h).
#include "heat_map_svg.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "html_text.h"

namespace attattr::report {
namespace {

constexpr int kLabelChars = 14;  // longer axis labels are cut with "…"
constexpr int kTitleChars = 48;  // and cell tooltips' labels
constexpr int kCharPx = 7;       // rough width of one 11 px character
constexpr int kLegendPx = 18;

std::string Shorten(const std::string& label) { return ShortenLabel(label, kLabelChars); }

// A token in a cell's tooltip: the whole token unless the model's vocabulary holds long ones.
std::string TitleLabel(const std::string& label) { return ShortenLabel(label, kTitleChars); }

int64_t Digits(int64_t value) {
  int64_t digits = value < 0 ? 2 : 1;
  for (value = value < 0 ? -value : value; value >= 10; value /= 10) ++digits;
  return digits;
}

// Bytes of the escaped labels, as `label` turns each into text.
int64_t LabelBytes(const std::vector<std::string>& labels,
                   std::string (*label)(const std::string&)) {
  int64_t bytes = 0;
  for (const auto& l : labels) bytes += static_cast<int64_t>(EscapeHtml(label(l)).size());
  return bytes;
}

int LabelSpace(const std::vector<std::string>& labels) {
  size_t longest = 0;
  for (const auto& l : labels)
    longest = std::max(longest, std::min<size_t>(l.size(), kLabelChars + 1));
  return labels.empty() ? 0 : static_cast<int>(longest) * kCharPx + 6;
}

int Mix(int from, int to, double t) {
  return static_cast<int>(std::lround(from + (to - from) * t));
}

}  // namespace

std::string HeatColor(double value, double max_abs, ColorScale scale) {
  double t = (std::isfinite(value) && max_abs > 0) ? value / max_abs : 0.0;
  t = std::clamp(t, -1.0, 1.0);
  int r = 255, g = 255, b = 255;
  if (scale == ColorScale::kSequential) {
    t = std::max(t, 0.0);
    r = Mix(255, 0, t);
    g = Mix(255, 90, t);
    b = Mix(255, 50, t);
  } else if (t >= 0) {
    r = Mix(255, 178, t);
    g = Mix(255, 24, t);
    b = Mix(255, 43, t);
  } else {
    r = Mix(255, 33, -t);
    g = Mix(255, 102, -t);
    b = Mix(255, 172, -t);
  }
  return absl::StrFormat("#%02x%02x%02x", r, g, b);
}

std::string HeatMapSvg(absl::Span<const float> values, int rows, int cols,
                       const HeatMapOptions& options) {
  const bool row_labels = static_cast<int>(options.row_labels.size()) == rows && rows > 0;
  const bool col_labels = static_cast<int>(options.col_labels.size()) == cols && cols > 0;
  const int left = row_labels ? LabelSpace(options.row_labels) : 0;
  const int top = col_labels ? LabelSpace(options.col_labels) : 0;
  const int cell = std::max(1, options.cell_px);
  const int width = std::max(left + cols * cell, options.legend ? 110 : 0);
  const int height = top + rows * cell + (options.legend ? kLegendPx : 0);

  double extreme = 0;
  for (float v : values) {
    if (!std::isfinite(v)) continue;
    extreme = std::max(extreme,
                       options.scale == ColorScale::kDiverging ? std::fabs(double{v}) : double{v});
  }
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heat-map%s%s\" width=\"%d\" "
      "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" data-rows=\"%d\" data-cols=\"%d\">",
      options.css_class.empty() ? "" : " ", EscapeHtml(options.css_class), width, height, width,
      height, rows, cols);
  if (!options.title.empty())
    absl::StrAppend(&svg, "<title>", EscapeHtml(options.title), "</title>");
  if (row_labels) {
    absl::StrAppend(&svg, "<g class=\"row-labels\" font-size=\"11\" text-anchor=\"end\">");
    for (int i = 0; i < rows; ++i) {
      absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"%d\">%s</text>", left - 4,
                            top + i * cell + cell / 2 + 4,
                            EscapeHtml(Shorten(options.row_labels[i])));
    }
    absl::StrAppend(&svg, "</g>");
  }
  if (col_labels) {
    absl::StrAppend(&svg, "<g class=\"col-labels\" font-size=\"11\" text-anchor=\"start\">");
    for (int j = 0; j < cols; ++j) {
      const int x = left + j * cell + cell / 2 + 4;
      absl::StrAppendFormat(&svg, "<text transform=\"translate(%d %d) rotate(-90)\">%s</text>", x,
                            top - 4, EscapeHtml(Shorten(options.col_labels[j])));
    }
    absl::StrAppend(&svg, "</g>");
  }
  absl::StrAppendFormat(&svg, "<g class=\"cells\" shape-rendering=\"crispEdges\">");
  const size_t n = std::min(values.size(), static_cast<size_t>(rows) * cols);
  for (size_t k = 0; k < n; ++k) {
    const int i = static_cast<int>(k / cols);
    const int j = static_cast<int>(k % cols);
    absl::StrAppendFormat(&svg, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"",
                          left + j * cell, top + i * cell, cell, cell,
                          HeatColor(values[k], extreme, options.scale));
    if (options.cell_titles) {
      const std::string row = row_labels ? TitleLabel(options.row_labels[i]) : std::to_string(i);
      const std::string col = col_labels ? TitleLabel(options.col_labels[j]) : std::to_string(j);
      absl::StrAppend(&svg, "><title>", i, " ", EscapeHtml(row), " \u2190 ", j, " ",
                      EscapeHtml(col), ": ", FormatNumber(values[k]), "</title></rect>");
    } else {
      absl::StrAppend(&svg, "/>");
    }
  }
  absl::StrAppend(&svg, "</g>");
  if (options.legend) {
    absl::StrAppendFormat(
        &svg, "<text class=\"legend\" x=\"%d\" y=\"%d\" font-size=\"11\">%s %s</text>", left,
        top + rows * cell + 13, options.scale == ColorScale::kDiverging ? "max |v|" : "max",
        FormatNumber(extreme));
  }
  absl::StrAppend(&svg, "</svg>");
  return svg;
}

int64_t HeatMapSvgBytes(int rows, int cols, const HeatMapOptions& options) {
  rows = std::max(rows, 0);
  cols = std::max(cols, 0);
  const int64_t cells = int64_t{rows} * cols;
  const int64_t cell = std::max(1, options.cell_px);
  // Every number HeatMapSvg prints is at most this wide: coordinates, sizes, indices.
  const int64_t extent = 4096 + (int64_t{std::max(rows, cols)} + 1) * cell +
                         int64_t{kLabelChars + 1} * kCharPx + kLegendPx;
  const int64_t number = Digits(std::max<int64_t>(extent, std::max(rows, cols)));
  constexpr int64_t kValue = 11;  // FormatNumber's %.4g at its widest: "-1.234e+308"
  int64_t bytes = 200 + 6 * number + static_cast<int64_t>(EscapeHtml(options.css_class).size()) +
                  static_cast<int64_t>(EscapeHtml(options.title).size()) + 64;
  // Axis labels: <text x="" y="">…</text> and <text transform="translate( ) rotate(-90)">…</text>.
  const bool row_labels = static_cast<int>(options.row_labels.size()) == rows && rows > 0;
  const bool col_labels = static_cast<int>(options.col_labels.size()) == cols && cols > 0;
  if (row_labels) bytes += 64 + rows * (32 + 2 * number) + LabelBytes(options.row_labels, Shorten);
  if (col_labels) bytes += 64 + cols * (56 + 2 * number) + LabelBytes(options.col_labels, Shorten);
  // <rect x="" y="" width="" height="" fill="#rrggbb"/>
  bytes += 64 + cells * (51 + 4 * number);
  if (options.cell_titles) {
    // ><title>i ROW ← j COL: VALUE</title></rect> in place of "/>"; the labels once per cell of
    // their row or column.
    const int64_t row_titles =
        row_labels ? LabelBytes(options.row_labels, TitleLabel) : int64_t{rows} * number;
    const int64_t col_titles =
        col_labels ? LabelBytes(options.col_labels, TitleLabel) : int64_t{cols} * number;
    bytes += cells * (8 + 2 * number + 1 + 5 + 1 + 2 + kValue + 15) + cols * row_titles +
             rows * col_titles;
  }
  if (options.legend) bytes += 80 + 2 * number + 8 + kValue;
  return bytes;
}

}  // namespace attattr::report
