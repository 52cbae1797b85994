// Head-importance output (see heads_render.h).
#include "heads_render.h"

#include <cmath>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace attattr::client {
namespace {

nlohmann::json Number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

std::string ImportanceMethodName(v1::ImportanceMethod method) {
  std::string name = v1::ImportanceMethod_Name(method);
  const std::string prefix = "IMPORTANCE_METHOD_";
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  return absl::AsciiStrToLower(name);
}

nlohmann::json HeadImportanceToJson(const v1::HeadImportanceResult& result) {
  const int L = result.num_layers(), H = result.num_heads();
  nlohmann::json methods = nlohmann::json::object();
  for (const auto& m : result.methods()) {
    nlohmann::json table = nlohmann::json::array();
    for (int l = 0; l < L; ++l) {
      nlohmann::json row = nlohmann::json::array();
      for (int h = 0; h < H && l * H + h < m.importance_size(); ++h)
        row.push_back(m.importance(l * H + h));
      table.push_back(std::move(row));
    }
    nlohmann::json curve = nlohmann::json::array();
    for (const auto& p : m.curve()) {
      curve.push_back({{"ratio", p.ratio()},
                       {"heads_pruned", p.heads_pruned()},
                       {"accuracy", p.accuracy()},
                       {"mean_gold_probability", p.mean_gold_probability()}});
    }
    nlohmann::json method = {{"importance", std::move(table)}, {"curve", std::move(curve)}};
    if (m.has_agreement()) {
      method["agreement"] = {{"pearson", Number(m.agreement().pearson())},
                             {"spearman", Number(m.agreement().spearman())}};
    }
    methods[ImportanceMethodName(m.method())] = std::move(method);
  }
  nlohmann::json correlations = nlohmann::json::array();
  for (const auto& c : result.correlations()) {
    correlations.push_back({{"a", ImportanceMethodName(c.a())},
                            {"b", ImportanceMethodName(c.b())},
                            {"pearson", Number(c.pearson())},
                            {"spearman", Number(c.spearman())}});
  }
  nlohmann::json out = {{"num_layers", L},
                        {"num_heads", H},
                        {"methods", std::move(methods)},
                        {"correlations", std::move(correlations)},
                        {"export", nullptr}};
  if (!result.export_path().empty()) {
    out["export"] = {{"path", result.export_path()},
                     {"heads_removed", result.export_heads_removed()},
                     {"weights_bytes", result.export_weights_bytes()},
                     {"parameter_count", result.export_parameter_count()}};
  }
  return out;
}

std::string HeadImportanceToText(const v1::HeadImportanceResult& result) {
  std::ostringstream out;
  const int L = result.num_layers(), H = result.num_heads();
  for (const auto& m : result.methods()) {
    out << "importance (" << ImportanceMethodName(m.method())
        << "), rows = layers, columns = heads\n";
    out << "       ";
    for (int h = 0; h < H; ++h) out << absl::StrFormat(" %8s", absl::StrCat("h", h));
    out << "\n";
    for (int l = 0; l < L; ++l) {
      out << absl::StrFormat("  L%-3d ", l);
      for (int h = 0; h < H && l * H + h < m.importance_size(); ++h) {
        out << absl::StrFormat(" %8.4g", m.importance(l * H + h));
      }
      out << "\n";
    }
    out << "\n";
  }
  // Curves side by side: one row per ratio, accuracy per method.
  std::map<double, std::map<int, const v1::CurvePoint*>> rows;
  for (int m = 0; m < result.methods_size(); ++m) {
    for (const auto& p : result.methods(m).curve()) rows[p.ratio()][m] = &p;
  }
  out << "pruning curves: accuracy (mean gold-label probability) with the lowest-ranked heads "
         "masked\n";
  out << absl::StrFormat("  %7s %6s", "pruned", "heads");
  for (const auto& m : result.methods())
    out << absl::StrFormat("  %-17s", ImportanceMethodName(m.method()));
  out << "\n";
  for (const auto& [ratio, by_method] : rows) {
    int heads = by_method.begin()->second->heads_pruned();
    out << absl::StrFormat("  %6g%% %6d", ratio, heads);
    for (int m = 0; m < result.methods_size(); ++m) {
      auto it = by_method.find(m);
      if (it == by_method.end()) {
        out << absl::StrFormat("  %-17s", "-");
      } else {
        out << absl::StrFormat("  %-17s", absl::StrFormat("%.4f (%.4f)", it->second->accuracy(),
                                                          it->second->mean_gold_probability()));
      }
    }
    out << "\n";
  }
  if (result.correlations_size() > 0) {
    out << "\nrank agreement (over the " << L * H << " heads)\n";
    out << absl::StrFormat("  %-12s %-12s %8s %8s\n", "a", "b", "pearson", "spearman");
    for (const auto& c : result.correlations()) {
      out << absl::StrFormat("  %-12s %-12s %8.3f %8.3f\n", ImportanceMethodName(c.a()),
                             ImportanceMethodName(c.b()), c.pearson(), c.spearman());
    }
  }
  bool agreement = false;
  for (const auto& m : result.methods()) agreement = agreement || m.has_agreement();
  if (agreement) {
    out << "\nsame ranking on the agreement set against the importance set\n";
    out << absl::StrFormat("  %-12s %8s %8s\n", "method", "pearson", "spearman");
    for (const auto& m : result.methods()) {
      if (!m.has_agreement()) continue;
      out << absl::StrFormat("  %-12s %8.3f %8.3f\n", ImportanceMethodName(m.method()),
                             m.agreement().pearson(), m.agreement().spearman());
    }
  }
  if (!result.export_path().empty()) {
    out << absl::StrFormat(
        "\npruned checkpoint: %s (%d heads removed, %d parameters, %.1f MB weights)\n",
        result.export_path(), result.export_heads_removed(), result.export_parameter_count(),
        result.export_weights_bytes() / 1e6);
  }
  return out.str();
}

std::string PruningCurvesCsv(const v1::HeadImportanceResult& result) {
  std::ostringstream out;
  out << "method,ratio,heads_pruned,accuracy,mean_gold_probability\n";
  for (const auto& m : result.methods()) {
    for (const auto& p : m.curve()) {
      out << absl::StrFormat("%s,%g,%d,%.6f,%.6f\n", ImportanceMethodName(m.method()), p.ratio(),
                             p.heads_pruned(), p.accuracy(), p.mean_gold_probability());
    }
  }
  return out.str();
}

}  // namespace attattr::client
