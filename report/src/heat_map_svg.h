// One matrix drawn as an inline SVG heat map: attribution (signed, blue–white–red around 0) or
// attention / importance (non-negative, white to dark), each scaled to its own largest magnitude,
// with optional token labels on the axes (rows = query i, columns = key j) and a tooltip per cell.
// Hand-written SVG rather than a plotting library: the report must be self-contained and no C++
// SVG/plotting library is packaged in Debian 12; a heat map is one <rect> per cell. Pure,
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"

namespace attattr::report {

enum class ColorScale {
  kDiverging,   // negative blue, 0 white, positive red; scaled by max |v|
  kSequential,  // 0 white to dark green at max v (negative values clamp to white)
};

struct HeatMapOptions {
  ColorScale scale = ColorScale::kDiverging;
  // Pixels per cell. Default: 14.
  int cell_px = 14;
  // Extra classes on the <svg> element (space-separated), after "heat-map".
  std::string css_class;
  // Accessible name of the figure (<title> of the SVG); escaped here.
  std::string title;
  // Axis labels (escaped here); empty = none. Sizes must match rows / columns when given.
  std::vector<std::string> row_labels;
  std::vector<std::string> col_labels;
  // A tooltip per cell ("row ← column: value"). Default: on.
  bool cell_titles = true;
  // The scale's extreme under the map ("max |v| 0.123"). Default: on.
  bool legend = true;
};

// `values` holds rows × cols floats, row-major. Returns an <svg> element.
std::string HeatMapSvg(absl::Span<const float> values, int rows, int cols,
                       const HeatMapOptions& options);

// At most how many bytes HeatMapSvg(values, rows, cols, options) returns, whatever `values` hold:
// what a page budget consults before drawing a map. Exact in its labels, a bound in its numbers.
int64_t HeatMapSvgBytes(int rows, int cols, const HeatMapOptions& options);

// The fill colour of `value` in `scale` with extreme `max_abs` (> 0), "#rrggbb".
std::string HeatColor(double value, double max_abs, ColorScale scale);

}  // namespace attattr::report
