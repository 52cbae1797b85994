// `attattr heads` (see heads_command.h).
#include "heads_command.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/attribution_convert.h"
#include "attattr/convert/head_importance_convert.h"
#include "attattr/engine/dataset.h"
#include "attattr/engine/gold_label.h"
#include "attattr/engine/head_importance_study.h"
#include "attattr/engine/model.h"
#include "attattr/engine/quadrature.h"
#include "attattr/engine/runtime.h"
#include "attattr/report/pruning_curve_svg.h"
#include "attribution_request.h"
#include "command_support.h"
#include "grpc_call.h"
#include "heads_render.h"
#include "job_commands.h"
#include "render.h"

namespace attattr::client {
namespace {

absl::StatusOr<std::vector<engine::HeadRanking>> ParseMethods(const std::string& spec) {
  std::vector<engine::HeadRanking> methods;
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    const std::string name(absl::StripAsciiWhitespace(part));
    auto ranking = engine::HeadRankingFromName(name);
    if (!ranking) {
      return InvalidFlag("--methods", absl::StrCat("unknown method '", name,
                                                   "' (attribution, attention, taylor, random)"));
    }
    methods.push_back(*ranking);
  }
  if (methods.empty()) return InvalidFlag("--methods", "at least one method is required");
  return methods;
}

absl::StatusOr<std::vector<double>> ParseRatios(const std::string& spec) {
  std::vector<double> ratios;
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    double r = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(part), &r)) {
      return InvalidFlag("--ratios", absl::StrCat("'", part, "' is not a number"));
    }
    if (!(r >= 0 && r <= 100))
      return InvalidFlag("--ratios", absl::StrCat(r, " is not in [0, 100]"));
    ratios.push_back(r);
  }
  if (ratios.empty()) return InvalidFlag("--ratios", "at least one ratio is required");
  return ratios;
}

// The flag an engine field names a set by.
std::string SetFlag(const std::string& field) {
  if (field == "importance_labels") return "--importance-set";
  if (field == "evaluation_labels") return "--eval-set";
  if (field == "agreement_labels") return "--agreement-set";
  return "";
}

absl::StatusOr<v1::HeadImportanceResult> RunLocal(const HeadsCommand::Flags& f,
                                                  const engine::HeadImportanceStudyOptions& options,
                                                  std::ostream& err) {
  ATTATTR_ASSIGN_OR_RETURN(auto importance,
                           ReadFlagSet(f.importance_set, f.importance_limit, "--importance-set"));
  ATTATTR_ASSIGN_OR_RETURN(auto evaluation, ReadFlagSet(f.eval_set, f.eval_limit, "--eval-set"));
  ATTATTR_ASSIGN_OR_RETURN(const auto model, LoadStudyModel(f.study, err));
  ATTATTR_ASSIGN_OR_RETURN(auto imp, EncodeFlagSet(*model, importance, "--importance-set"));
  ATTATTR_ASSIGN_OR_RETURN(auto eval, EncodeFlagSet(*model, evaluation, "--eval-set"));
  const std::vector<int> imp_labels = engine::GoldLabels(importance);
  const std::vector<int> eval_labels = engine::GoldLabels(evaluation);
  std::vector<engine::Encoding> agree;
  std::vector<int> agree_labels;
  engine::HeadImportanceStudyOptions with_sets = options;
  if (!f.agreement_set.empty()) {
    ATTATTR_ASSIGN_OR_RETURN(auto agreement,
                             ReadFlagSet(f.agreement_set, f.agreement_limit, "--agreement-set"));
    ATTATTR_ASSIGN_OR_RETURN(agree, EncodeFlagSet(*model, agreement, "--agreement-set"));
    agree_labels = engine::GoldLabels(agreement);
    with_sets.agreement_set = agree;
    with_sets.agreement_labels = agree_labels;
  }
  engine::RunControl control;
  control.on_progress = StageProgressPrinter(err);
  auto study = engine::RunHeadImportanceStudy(*model, imp, imp_labels, eval, eval_labels, with_sets,
                                              control);
  if (!study.ok()) return NameExampleByFlag(study.status(), SetFlag);
  v1::HeadImportanceResult result;
  convert::HeadImportanceStudyToProto(*study, f.export_dir, &result);
  return result;
}

// `*job_exit` is set when the job ran and did not succeed (job_commands.h's exit codes).
absl::StatusOr<v1::HeadImportanceResult> RunRemote(
    const HeadsCommand::Flags& f, const engine::HeadImportanceStudyOptions& options,
    std::ostream& err, int* job_exit) {
  v1::SubmitJobRequest request = StudyJobRequest(f.study);
  auto* h = request.mutable_spec()->mutable_head_importance();
  ATTATTR_RETURN_IF_ERROR(AddExampleSource(f.importance_set, f.importance_limit,
                                           f.study.server_data, "--importance-set",
                                           h->mutable_importance_set()));
  ATTATTR_RETURN_IF_ERROR(AddExampleSource(f.eval_set, f.eval_limit, f.study.server_data,
                                           "--eval-set", h->mutable_evaluation_set()));
  if (!f.agreement_set.empty()) {
    ATTATTR_RETURN_IF_ERROR(AddExampleSource(f.agreement_set, f.agreement_limit,
                                             f.study.server_data, "--agreement-set",
                                             h->mutable_agreement_set()));
  }
  for (auto m : options.methods) h->add_methods(convert::HeadRankingToProto(m));
  for (double r : options.ratios_percent) h->add_ratios(r);
  h->set_seed(options.importance.seed);
  h->mutable_attribution()->set_rule(convert::RuleToProto(options.importance.attribution.rule));
  h->mutable_attribution()->set_steps(options.importance.attribution.steps);
  h->mutable_attribution()->set_precision(PrecisionFlagToProto(StudyPrecision(f.study)));
  if (!f.export_dir.empty()) {
    h->set_export_path(f.export_dir);
    h->set_export_ratio(f.export_ratio);
  }
  ATTATTR_ASSIGN_OR_RETURN(auto result,
                           RunJobToResult(f.study.server, f.study.security, f.study.deadline,
                                          f.study.timeout_seconds, request, err, job_exit));
  if (!result.has_head_importance())
    return absl::DataLossError("the job's result is not a head-importance result");
  return result.head_importance();
}

}  // namespace

std::string HeadsCommand::DefaultMethods() {
  std::vector<std::string> names;
  for (auto r : engine::DefaultHeadRankings()) names.push_back(engine::HeadRankingName(r));
  return absl::StrJoin(names, ",");
}

std::string HeadsCommand::DefaultRatios() {
  return absl::StrJoin(engine::DefaultPruningRatios(), ",");
}

HeadsCommand::HeadsCommand(CLI::App& app, const std::string& default_model) {
  flags_.study.model = default_model;
  Flags& f = flags_;
  cmd_ = app.add_subcommand(
      "heads",
      "Rank attention heads (attribution, attention, Taylor, random), draw pruning curves, and "
      "optionally export a pruned checkpoint");
  AddStudyFlags(cmd_, &f.study, "Integration points m of the attribution ranking");
  cmd_->add_option("--importance-set", f.importance_set,
                   "GLUE TSV (SST-2/RTE/MRPC) whose gold labels drive the rankings")
      ->required();
  cmd_->add_option("--eval-set", f.eval_set, "GLUE TSV the pruning curves are measured on")
      ->required();
  cmd_->add_option("--importance-limit", f.importance_limit,
                   "Use the first N importance examples (0 = all; the paper uses 200)")
      ->capture_default_str();
  cmd_->add_option("--eval-limit", f.eval_limit, "Use the first N evaluation examples (0 = all)")
      ->capture_default_str();
  cmd_->add_option("--agreement-set", f.agreement_set,
                   "GLUE TSV: rank again on it and print how each ranking (but random) agrees with "
                   "itself on the importance set (Pearson, Spearman)");
  cmd_->add_option("--agreement-limit", f.agreement_limit,
                   "Use the first N agreement examples (0 = all)")
      ->capture_default_str();
  cmd_->add_option("--methods", f.methods,
                   "Comma-separated rankings; the first one drives --export")
      ->capture_default_str();
  cmd_->add_option("--ratios", f.ratios,
                   "Comma-separated percents of heads to prune, each in [0, 100]")
      ->capture_default_str();
  cmd_->add_option("--seed", f.seed, "Seed of the random ranking")->capture_default_str();
  cmd_->add_option("--export", f.export_dir,
                   "Write a checkpoint without the lowest-ranked heads here (with --server: a path "
                   "under the server's --export-root)");
  cmd_->add_option("--export-ratio", f.export_ratio,
                   "Percent of heads --export removes, in [0, 100]")
      ->capture_default_str();
  cmd_->add_option("--csv", f.csv, "Also write the curves as CSV to this file");
  cmd_->add_option("--plot", f.plot, "Also write the curves as an SVG chart to this file");
}

int HeadsCommand::Run(std::ostream& out, std::ostream& err) const {
  const Flags& f = flags_;
  int job_exit = 0;
  auto fail = [&err, &job_exit](const absl::Status& s) { return FailStudy(err, s, job_exit); };
  auto rule = CheckStudyFlags(f.study);
  if (!rule.ok()) return fail(rule.status());

  if (!(f.export_ratio >= 0 && f.export_ratio <= 100)) {
    return fail(InvalidFlag("--export-ratio", absl::StrCat(f.export_ratio, " is not in [0, 100]")));
  }
  engine::HeadImportanceStudyOptions options;
  auto methods = ParseMethods(f.methods);
  if (!methods.ok()) return fail(methods.status());
  options.methods = *methods;
  auto ratios = ParseRatios(f.ratios);
  if (!ratios.ok()) return fail(ratios.status());
  options.ratios_percent = *ratios;
  options.importance.attribution.rule = *rule;
  options.importance.attribution.steps = f.study.steps;
  options.importance.attribution.precision =
      LocalPrecision(StudyPrecision(f.study), StudyWeights(f.study));
  options.importance.seed = f.seed;
  options.export_dir = f.export_dir;
  options.export_ratio_percent = f.export_ratio;
  auto result =
      f.study.server.empty() ? RunLocal(f, options, err) : RunRemote(f, options, err, &job_exit);
  if (!result.ok()) return fail(result.status());
  if (!f.csv.empty()) {
    if (auto s = WriteFlagFile("--csv", f.csv, PruningCurvesCsv(*result)); !s.ok()) return fail(s);
  }
  if (!f.plot.empty()) {
    if (auto s = WriteFlagFile("--plot", f.plot, report::PruningCurvesSvg(*result)); !s.ok())
      return fail(s);
  }
  if (f.study.format == "json") {
    out << JsonText(HeadImportanceToJson(*result)) << "\n";
  } else {
    out << HeadImportanceToText(*result);
  }
  out.flush();
  return kExitOk;
}

}  // namespace attattr::client
