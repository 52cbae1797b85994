// How `attattr heads` (and `attattr get` of a HEAD_IMPORTANCE job) prints a head-importance result:
// the JSON of the issue ({"methods": {NAME: {"importance": [L][H], "curve": [{ratio, accuracy,
// mean_gold_probability, heads_pruned}]}}, "correlations": [...], ...}), a text report (importance
// table per method, the curves side by side, the correlations), and the curves as CSV. Rendered
// from the public proto so the local and --server modes print the same thing. Pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "attattr/v1/head_importance.pb.h"

namespace attattr::client {

// "attribution", "attention", "taylor", "random".
std::string ImportanceMethodName(v1::ImportanceMethod method);

// Correlations that are undefined (NaN) are null. `result` has a checked shape
// (convert::CheckHeadImportanceShape).
nlohmann::json HeadImportanceToJson(const v1::HeadImportanceResult& result);
std::string HeadImportanceToText(const v1::HeadImportanceResult& result);
// Header "method,ratio,heads_pruned,accuracy,mean_gold_probability", one row per curve point.
std::string PruningCurvesCsv(const v1::HeadImportanceResult& result);

}  // namespace attattr::client
