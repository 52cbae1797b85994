// The head-importance study (see head_importance_study.h).
#include "attattr/engine/head_importance_study.h"

#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "attattr/engine/gold_label.h"
#include "attattr/engine/rank_correlation.h"

namespace attattr::engine {
namespace {

// The curves' forward batches: eval_batch_size at most, within the attribution memory budget.
ForwardBatching EvalBatching(const HeadImportanceStudyOptions& options) {
  return {options.eval_batch_size, options.importance.attribution.memory_budget_bytes};
}

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status CheckLabels(const ModelInfo& info, absl::Span<const Encoding> set,
                         absl::Span<const int> labels, const std::string& field) {
  if (set.empty()) return Invalid(field, "no examples");
  if (labels.size() != set.size()) {
    return Invalid(field, absl::StrCat(labels.size(), " labels for ", set.size(), " examples"));
  }
  return CheckGoldLabels(info, labels, field);
}

absl::Status CheckOptions(const HeadImportanceStudyOptions& options) {
  if (options.methods.empty()) return Invalid("methods", "at least one ranking is required");
  for (size_t i = 0; i < options.methods.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (options.methods[j] == options.methods[i]) {
        return Invalid(absl::StrCat("methods[", i, "]"),
                       absl::StrCat(HeadRankingName(options.methods[i]), " is given twice"));
      }
    }
  }
  if (options.ratios_percent.empty()) return Invalid("ratios", "at least one ratio is required");
  for (size_t i = 0; i < options.ratios_percent.size(); ++i) {
    const double r = options.ratios_percent[i];
    if (!(r >= 0 && r <= 100)) {
      return Invalid(absl::StrCat("ratios[", i, "]"), absl::StrCat(r, " is not in [0, 100]"));
    }
  }
  if (!(options.export_ratio_percent >= 0 && options.export_ratio_percent <= 100)) {
    return Invalid("export_ratio",
                   absl::StrCat(options.export_ratio_percent, " is not in [0, 100]"));
  }
  if (options.eval_batch_size < 1) return Invalid("eval_batch_size", "must be >= 1");
  return absl::OkStatus();
}

std::vector<double> Flatten(const HeadTable& table) {
  std::vector<double> flat;
  for (const auto& row : table) flat.insert(flat.end(), row.begin(), row.end());
  return flat;
}

Correlation Correlate(const HeadTable& a, const HeadTable& b) {
  constexpr double kUndefined = std::numeric_limits<double>::quiet_NaN();
  const auto x = Flatten(a);
  const auto y = Flatten(b);
  auto pearson = PearsonCorrelation(x, y);
  auto spearman = SpearmanCorrelation(x, y);
  return {pearson.ok() ? *pearson : kUndefined, spearman.ok() ? *spearman : kUndefined};
}

// A control whose progress reports carry `stage` instead of the callee's own stage name.
RunControl Relabelled(const RunControl& control, std::string stage) {
  RunControl out;
  out.should_stop = control.should_stop;
  if (control.on_progress) {
    out.on_progress = [&control, stage = std::move(stage)](const Progress& p) {
      control.Report({stage, p.done, p.total});
    };
  }
  return out;
}

// The correlations between every pair of rankings and the optional export, once every method's
// importance (and curve) is in `study`.
absl::Status CompleteStudy(const Model& model, const HeadImportanceStudyOptions& options,
                           const RunControl& control, HeadImportanceStudy& study) {
  for (size_t i = 0; i < study.methods.size(); ++i) {
    for (size_t j = i + 1; j < study.methods.size(); ++j) {
      const Correlation c = Correlate(study.methods[i].importance, study.methods[j].importance);
      study.correlations.push_back(
          {study.methods[i].method, study.methods[j].method, c.pearson, c.spearman});
    }
  }
  if (!options.export_dir.empty()) {
    if (control.ShouldStop()) return absl::CancelledError("stopped before the export");
    control.Report({"export", 0, 1});
    const auto mask = PruneLowest(study.methods.front().importance, options.export_ratio_percent);
    ATTATTR_ASSIGN_OR_RETURN(auto exported, ExportPrunedCheckpoint(model, mask, options.export_dir,
                                                                   options.export_owner));
    study.exported = std::move(exported);
    control.Report({"export", 1, 1});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HeadImportanceStudy> RunHeadImportanceStudy(
    const Model& model, const std::vector<Encoding>& importance_set,
    const std::vector<int>& importance_labels, const std::vector<Encoding>& evaluation_set,
    const std::vector<int>& evaluation_labels, const HeadImportanceStudyOptions& options,
    const RunControl& control) {
  const ModelInfo& info = model.info();
  ATTATTR_RETURN_IF_ERROR(RequireClassifier(info, "head importance"));
  ATTATTR_RETURN_IF_ERROR(CheckOptions(options));
  ATTATTR_RETURN_IF_ERROR(
      CheckLabels(info, importance_set, importance_labels, "importance_labels"));
  ATTATTR_RETURN_IF_ERROR(
      CheckLabels(info, evaluation_set, evaluation_labels, "evaluation_labels"));
  const bool agreement = !options.agreement_set.empty() || !options.agreement_labels.empty();
  if (agreement) {
    ATTATTR_RETURN_IF_ERROR(
        CheckLabels(info, options.agreement_set, options.agreement_labels, "agreement_labels"));
  }
  // ComputeHeadImportance takes vectors: one copy of the (small) encodings for all methods.
  const std::vector<Encoding> agreement_set(options.agreement_set.begin(),
                                            options.agreement_set.end());
  const std::vector<int> agreement_labels(options.agreement_labels.begin(),
                                          options.agreement_labels.end());
  HeadImportanceStudy study;
  study.num_layers = info.num_layers;
  study.num_heads = info.num_heads;
  for (HeadRanking method : options.methods) {
    const std::string name = HeadRankingName(method);
    MethodStudy m;
    m.method = method;
    ATTATTR_ASSIGN_OR_RETURN(
        auto table,
        ComputeHeadImportance(model, importance_set, importance_labels, method, options.importance,
                              Relabelled(control, "importance: " + name)));
    m.importance = std::move(table);
    ATTATTR_ASSIGN_OR_RETURN(
        auto curve,
        PruningCurve(model, m.importance, evaluation_set, evaluation_labels, options.ratios_percent,
                     EvalBatching(options), Relabelled(control, "pruning curve: " + name)));
    m.curve = std::move(curve);
    if (agreement && method != HeadRanking::kRandom) {
      ATTATTR_ASSIGN_OR_RETURN(
          auto again,
          ComputeHeadImportance(model, agreement_set, agreement_labels, method, options.importance,
                                Relabelled(control, "agreement: " + name)));
      m.agreement = Correlate(m.importance, again);
    }
    study.methods.push_back(std::move(m));
  }
  ATTATTR_RETURN_IF_ERROR(CompleteStudy(model, options, control, study));
  return study;
}

absl::StatusOr<StudyImportanceSums> SumStudyImportance(const Model& model,
                                                       const std::vector<Encoding>& importance_part,
                                                       const std::vector<int>& importance_labels,
                                                       const std::vector<Encoding>& agreement_part,
                                                       const std::vector<int>& agreement_labels,
                                                       const HeadImportanceStudyOptions& options,
                                                       const RunControl& control) {
  ATTATTR_RETURN_IF_ERROR(CheckOptions(options));
  StudyImportanceSums sums;
  for (HeadRanking method : options.methods) {
    HeadImportanceSums importance, agreement;
    // RANDOM's table does not depend on the examples, and an empty part adds nothing.
    if (method != HeadRanking::kRandom && !importance_part.empty()) {
      ATTATTR_ASSIGN_OR_RETURN(
          importance,
          SumHeadImportance(
              model, importance_part, importance_labels, method, options.importance,
              Relabelled(control, absl::StrCat("importance: ", HeadRankingName(method)))));
    }
    if (method != HeadRanking::kRandom && !agreement_part.empty()) {
      ATTATTR_ASSIGN_OR_RETURN(
          agreement,
          SumHeadImportance(
              model, agreement_part, agreement_labels, method, options.importance,
              Relabelled(control, absl::StrCat("agreement: ", HeadRankingName(method)))));
    }
    sums.importance.push_back(std::move(importance));
    sums.agreement.push_back(std::move(agreement));
  }
  return sums;
}

absl::Status AddStudyImportanceSums(StudyImportanceSums& into, const StudyImportanceSums& part) {
  if (into.importance.empty()) {
    into = part;
    return absl::OkStatus();
  }
  if (part.importance.size() != into.importance.size() ||
      part.agreement.size() != into.agreement.size()) {
    return absl::InvalidArgumentError(absl::StrCat("sums: ", part.importance.size(),
                                                   " methods, expected ", into.importance.size()));
  }
  for (size_t m = 0; m < into.importance.size(); ++m) {
    if (part.importance[m].examples > 0) {
      ATTATTR_RETURN_IF_ERROR(AddHeadImportanceSums(into.importance[m], part.importance[m]));
    }
    if (part.agreement[m].examples > 0) {
      ATTATTR_RETURN_IF_ERROR(AddHeadImportanceSums(into.agreement[m], part.agreement[m]));
    }
  }
  return absl::OkStatus();
}

StudyRankings RankStudyHeads(const ModelInfo& info, const HeadImportanceStudyOptions& options,
                             const StudyImportanceSums& sums) {
  StudyRankings rankings;
  for (size_t m = 0; m < options.methods.size() && m < sums.importance.size(); ++m) {
    const HeadRanking method = options.methods[m];
    rankings.importance.push_back(
        FinishHeadImportance(info, method, sums.importance[m], options.importance));
    std::optional<Correlation> agreement;
    if (method != HeadRanking::kRandom && m < sums.agreement.size() &&
        sums.agreement[m].examples > 0) {
      agreement =
          Correlate(rankings.importance.back(),
                    FinishHeadImportance(info, method, sums.agreement[m], options.importance));
    }
    rankings.agreement.push_back(agreement);
  }
  return rankings;
}

absl::StatusOr<StudyPruningTallies> TallyStudyPruning(const Model& model,
                                                      const StudyRankings& rankings,
                                                      const std::vector<Encoding>& evaluation_part,
                                                      const std::vector<int>& evaluation_labels,
                                                      const HeadImportanceStudyOptions& options,
                                                      const RunControl& control) {
  ATTATTR_RETURN_IF_ERROR(CheckOptions(options));
  if (rankings.importance.size() != options.methods.size()) {
    return absl::InvalidArgumentError(absl::StrCat("rankings: ", rankings.importance.size(),
                                                   " tables for ", options.methods.size(),
                                                   " methods"));
  }
  StudyPruningTallies tallies;
  for (size_t m = 0; m < options.methods.size(); ++m) {
    ATTATTR_ASSIGN_OR_RETURN(
        auto tally,
        TallyPruning(model, rankings.importance[m], evaluation_part, evaluation_labels,
                     options.ratios_percent, EvalBatching(options),
                     Relabelled(control, absl::StrCat("pruning curve: ",
                                                      HeadRankingName(options.methods[m])))));
    tallies.push_back(std::move(tally));
  }
  return tallies;
}

absl::Status AddStudyPruningTallies(StudyPruningTallies& into, const StudyPruningTallies& part) {
  if (into.empty()) {
    into = part;
    return absl::OkStatus();
  }
  if (part.size() != into.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tallies: ", part.size(), " methods, expected ", into.size()));
  }
  for (size_t m = 0; m < into.size(); ++m) {
    ATTATTR_RETURN_IF_ERROR(AddPruningTallies(into[m], part[m]));
  }
  return absl::OkStatus();
}

absl::StatusOr<HeadImportanceStudy> FinishHeadImportanceStudy(
    const Model& model, const HeadImportanceStudyOptions& options, const StudyRankings& rankings,
    const StudyPruningTallies& tallies, const RunControl& control) {
  ATTATTR_RETURN_IF_ERROR(CheckOptions(options));
  if (rankings.importance.size() != options.methods.size() ||
      rankings.agreement.size() != options.methods.size() ||
      tallies.size() != options.methods.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rankings and tallies: ", rankings.importance.size(), " and ", tallies.size(),
                     " for ", options.methods.size(), " methods"));
  }
  HeadImportanceStudy study;
  study.num_layers = model.info().num_layers;
  study.num_heads = model.info().num_heads;
  for (size_t m = 0; m < options.methods.size(); ++m) {
    MethodStudy method;
    method.method = options.methods[m];
    method.importance = rankings.importance[m];
    method.curve = FinishPruningCurve(method.importance, options.ratios_percent, tallies[m]);
    method.agreement = rankings.agreement[m];
    study.methods.push_back(std::move(method));
  }
  ATTATTR_RETURN_IF_ERROR(CompleteStudy(model, options, control, study));
  return study;
}

}  // namespace attattr::engine
