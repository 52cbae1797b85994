// The pruning-curve chart of a head-importance result (DESIGN.md §1): accuracy on the evaluation
// set against the percent of heads masked, one polyline per ranking, with axes, grid, legend and
// a <title> per point. A standalone SVG document (XML prolog-free, usable inline in HTML or as a
// .svg file a person opens). Drawn by hand: no charting library is packaged for C++ in Debian 12,
// and a line chart with a legend is a few dozen SVG elements. Pure function, thread-safe.
#pragma once

#include <string>

#include "attattr/v1/head_importance.pb.h"

namespace attattr::report {

std::string PruningCurvesSvg(const v1::HeadImportanceResult& result);

}  // namespace attattr::report
