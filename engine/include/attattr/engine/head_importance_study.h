// The whole head-importance study of DESIGN.md §1 in one call, as a job or the CLI runs it: every
// requested ranking on an importance set, its pruning curve on an evaluation set, the agreement
// (Pearson and Spearman) between every pair of rankings, optionally the agreement of each ranking
// with itself computed on a second example set (the paper: similar data give nearly the same
// ranking), and optionally a pruned checkpoint that drops the lowest-ranked heads of the first
// ranking. Orchestration only: the numbers come from
// head_importance.h, rank_correlation.h and pruned_export.h. Thread-safety: as those (many calls
// may share one const Model).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "attattr/engine/example.h"
#include "attattr/engine/head_importance.h"
#include "attattr/engine/model.h"
#include "attattr/engine/pruned_export.h"
#include "attattr/engine/run_control.h"

namespace attattr::engine {

// The rankings a study compares when none are named: the paper's, then its baselines.
inline std::vector<HeadRanking> DefaultHeadRankings() {
  return {HeadRanking::kAttribution, HeadRanking::kAttention, HeadRanking::kTaylor,
          HeadRanking::kRandom};
}

// Pruning-curve points when none are given: 0, 10, …, 100 percent of the heads.
inline std::vector<double> DefaultPruningRatios() {
  std::vector<double> ratios;
  for (int p = 0; p <= 100; p += 10) ratios.push_back(p);
  return ratios;
}

// Most pruning-curve points one study accepts.
inline constexpr int kMaxPruningRatios = 101;

struct HeadImportanceStudyOptions {
  // Rankings to compute, in this order; each at most once; at least one.
  std::vector<HeadRanking> methods;
  // Percent of heads pruned at each curve point, each in [0, 100].
  std::vector<double> ratios_percent;
  HeadImportanceOptions importance;
  // Examples per forward pass of the curves at most (fewer where importance.attribution's memory
  // budget says so).
  int eval_batch_size = 64;
  // Write a checkpoint without the round(export_ratio_percent/100 · L·H) lowest-ranked heads of
  // methods[0] here (ExportPrunedCheckpoint); empty = no export.
  std::string export_dir;
  double export_ratio_percent = 0;
  // Whose export it is (a job id; ExportPrunedCheckpoint's owner): that owner's earlier export in
  // export_dir is replaced. Empty = none: export_dir must be empty.
  std::string export_owner;
  // Optional second labelled set, borrowed for the call: every ranking but RANDOM (whose seeded
  // table does not depend on the examples) is computed again on it and compared with the
  // importance set's. Empty = no agreement.
  absl::Span<const Encoding> agreement_set;
  absl::Span<const int> agreement_labels;
};

// Pearson and Spearman correlation over the L·H scores; NaN when either ranking is constant.
struct Correlation {
  double pearson = 0;
  double spearman = 0;
};

struct MethodStudy {
  HeadRanking method = HeadRanking::kAttribution;
  HeadTable importance;             // [L][H]
  std::vector<PruningPoint> curve;  // one point per ratio, in the given order
  // The same ranking on the agreement set against `importance`; unset without an agreement set
  // and for RANDOM.
  std::optional<Correlation> agreement;
};

struct RankAgreement {
  HeadRanking a = HeadRanking::kAttribution;
  HeadRanking b = HeadRanking::kAttribution;
  double pearson = 0;  // as Correlation
  double spearman = 0;
};

struct HeadImportanceStudy {
  int num_layers = 0;
  int num_heads = 0;
  std::vector<MethodStudy> methods;
  std::vector<RankAgreement> correlations;  // every pair (i < j) in method order
  std::optional<ExportedCheckpoint> exported;
};

// InvalidArgument naming the field for: no methods or a repeated one ("methods[i]"), a ratio
// outside [0, 100] ("ratios[i]"), an empty importance or evaluation set, a label outside the
// model's classes ("importance_labels[i]" / "evaluation_labels[i]" / "agreement_labels[i]"), an
// export ratio outside [0, 100]. Labels are checked before any work. CancelledError when `control`
// asks to stop. Progress stages: "importance: <method>", "pruning curve: <method>",
// "agreement: <method>" (with an agreement set), "export".
absl::StatusOr<HeadImportanceStudy> RunHeadImportanceStudy(
    const Model& model, const std::vector<Encoding>& importance_set,
    const std::vector<int>& importance_labels, const std::vector<Encoding>& evaluation_set,
    const std::vector<int>& evaluation_labels, const HeadImportanceStudyOptions& options,
    const RunControl& control = {});

// The study taken apart into two passes whose work splits over parts of the example sets (shards
// that several replicas run): the first sums every ranking over parts of the importance and
// agreement sets, the second tallies every pruning curve over parts of the evaluation set. The
// results of the parts add up, and FinishHeadImportanceStudy assembles what
// RunHeadImportanceStudy returns for the whole sets, up to float rounding (counts exactly).
// Options as RunHeadImportanceStudy's (its agreement spans unused: the parts are given instead);
// labels are the caller's to check first (RunHeadImportanceStudy's checks).
struct StudyImportanceSums {
  std::vector<HeadImportanceSums> importance;  // per options.methods entry (RANDOM: empty)
  std::vector<HeadImportanceSums> agreement;   // per entry; empty without agreement examples
};
absl::StatusOr<StudyImportanceSums> SumStudyImportance(const Model& model,
                                                       const std::vector<Encoding>& importance_part,
                                                       const std::vector<int>& importance_labels,
                                                       const std::vector<Encoding>& agreement_part,
                                                       const std::vector<int>& agreement_labels,
                                                       const HeadImportanceStudyOptions& options,
                                                       const RunControl& control = {});
// into += part; into may be empty. InvalidArgument when the method counts differ.
absl::Status AddStudyImportanceSums(StudyImportanceSums& into, const StudyImportanceSums& part);

// What the first pass decides: each method's ranking and its agreement with itself on the
// agreement set (unset for RANDOM and without agreement examples).
struct StudyRankings {
  std::vector<HeadTable> importance;
  std::vector<std::optional<Correlation>> agreement;
};
StudyRankings RankStudyHeads(const ModelInfo& info, const HeadImportanceStudyOptions& options,
                             const StudyImportanceSums& sums);

using StudyPruningTallies = std::vector<std::vector<PruningTally>>;  // [method][ratio]
absl::StatusOr<StudyPruningTallies> TallyStudyPruning(const Model& model,
                                                      const StudyRankings& rankings,
                                                      const std::vector<Encoding>& evaluation_part,
                                                      const std::vector<int>& evaluation_labels,
                                                      const HeadImportanceStudyOptions& options,
                                                      const RunControl& control = {});
// into += part; into may be empty. InvalidArgument when the shapes differ.
absl::Status AddStudyPruningTallies(StudyPruningTallies& into, const StudyPruningTallies& part);

// The study from both passes over the whole sets: curves, correlations, and the export (progress
// stage "export").
absl::StatusOr<HeadImportanceStudy> FinishHeadImportanceStudy(
    const Model& model, const HeadImportanceStudyOptions& options, const StudyRankings& rankings,
    const StudyPruningTallies& tallies, const RunControl& control = {});

}  // namespace attattr::engine
