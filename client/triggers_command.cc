// `attattr triggers` (see triggers_command.h).
#include "triggers_command.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/attribution_convert.h"
#include "attattr/convert/trigger_search_convert.h"
#include "attattr/engine/dataset.h"
#include "attattr/engine/gold_label.h"
#include "attattr/engine/model.h"
#include "attattr/engine/quadrature.h"
#include "attattr/engine/runtime.h"
#include "attattr/engine/trigger_search.h"
#include "attribution_request.h"
#include "command_support.h"
#include "grpc_call.h"
#include "job_client.h"
#include "job_commands.h"
#include "render.h"

namespace attattr::client {
namespace {

constexpr int kMaxMineCount = 100000;

absl::StatusOr<v1::TriggerSearchResult> RunLocal(const TriggersCommand::Flags& f,
                                                 const engine::TriggerSearchOptions& options,
                                                 std::ostream& err) {
  ATTATTR_ASSIGN_OR_RETURN(auto mining, ReadFlagSet(f.mine_set, f.mine_count, "--mine-set"));
  ATTATTR_ASSIGN_OR_RETURN(auto evaluation, ReadFlagSet(f.eval_set, f.eval_limit, "--eval-set"));
  ATTATTR_ASSIGN_OR_RETURN(const auto model, LoadStudyModel(f.study, err));
  const auto& info = model->info();
  if (auto s = engine::RequireClassifier(info, "trigger search"); !s.ok())
    return InvalidFlag("--model", std::string(absl::StripPrefix(s.message(), "model: ")));
  if (auto i = engine::FirstUnplaceableExample(mining, evaluation)) {
    return InvalidFlag("--eval-set", engine::UnplaceableExampleMessage(*i, "--mine-set"));
  }
  const std::vector<int> labels = engine::GoldLabels(evaluation);
  if (auto s = engine::CheckGoldLabels(info, labels, "evaluation_labels"); !s.ok()) {
    return NameExampleByFlag(s, [](const std::string&) { return std::string("--eval-set"); });
  }
  ATTATTR_ASSIGN_OR_RETURN(auto mine, EncodeFlagSet(*model, mining, "--mine-set"));
  ATTATTR_ASSIGN_OR_RETURN(auto eval, EncodeFlagSet(*model, evaluation, "--eval-set"));
  engine::RunControl control;
  control.on_progress = StageProgressPrinter(err);
  ATTATTR_ASSIGN_OR_RETURN(auto report,
                           engine::RunTriggerSearch(*model, mine, eval, labels, options, control));
  v1::TriggerSearchResult result;
  convert::TriggerSearchReportToProto(report, &result);
  return result;
}

// `*job_exit` is set when the job ran and did not succeed (job_commands.h's exit codes).
absl::StatusOr<v1::TriggerSearchResult> RunRemote(const TriggersCommand::Flags& f,
                                                  const engine::TriggerSearchOptions& options,
                                                  std::ostream& err, int* job_exit) {
  v1::SubmitJobRequest request = StudyJobRequest(f.study);
  auto* t = request.mutable_spec()->mutable_trigger_search();
  ATTATTR_RETURN_IF_ERROR(AddExampleSource(f.mine_set, f.mine_count, f.study.server_data,
                                           "--mine-set", t->mutable_mining_set()));
  ATTATTR_RETURN_IF_ERROR(AddExampleSource(f.eval_set, f.eval_limit, f.study.server_data,
                                           "--eval-set", t->mutable_evaluation_set()));
  t->set_top_k(options.top_k);
  t->set_threshold(options.threshold);
  t->set_seed(options.seed);
  t->mutable_attribution()->set_rule(convert::RuleToProto(options.attribution.rule));
  t->mutable_attribution()->set_steps(options.attribution.steps);
  t->mutable_attribution()->set_precision(PrecisionFlagToProto(StudyPrecision(f.study)));
  ATTATTR_ASSIGN_OR_RETURN(auto result,
                           RunJobToResult(f.study.server, f.study.security, f.study.deadline,
                                          f.study.timeout_seconds, request, err, job_exit));
  if (!result.has_trigger_search()) {
    return absl::DataLossError("the job's result is not a trigger-search result");
  }
  return result.trigger_search();
}

nlohmann::json ByClass(const google::protobuf::RepeatedPtrField<v1::ClassAccuracy>& v) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& c : v) j[c.label()] = c.accuracy();
  return j;
}

std::string Percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%6.2f%%", 100 * v);
  return buf;
}

}  // namespace

nlohmann::json TriggerSearchToJson(const v1::TriggerSearchResult& result) {
  nlohmann::json patterns = nlohmann::json::array();
  for (const auto& p : result.patterns()) {
    nlohmann::json j;
    j["tokens"] = std::vector<std::string>(p.tokens().begin(), p.tokens().end());
    j["source"] = p.source();
    j["layer"] = p.layer();
    j["head"] = p.head();
    j["score"] = p.score();
    j["clean"] = ByClass(p.clean());
    j["attacked"] = ByClass(p.attacked());
    j["control"] = ByClass(p.control());
    j["segments"] = std::vector<int>(p.segments().begin(), p.segments().end());
    j["relative_positions"] =
        std::vector<double>(p.relative_positions().begin(), p.relative_positions().end());
    j["truncated_examples"] = p.truncated_examples();
    patterns.push_back(std::move(j));
  }
  return nlohmann::json{{"patterns", std::move(patterns)},
                        {"mined_examples", result.mined_examples()},
                        {"patterns_above_threshold", result.patterns_above_threshold()}};
}

std::string TriggerSearchToText(const v1::TriggerSearchResult& result) {
  std::ostringstream out;
  out << "mined " << result.mined_examples() << " examples; " << result.patterns_above_threshold()
      << " patterns at or above the threshold; " << result.patterns_size() << " evaluated\n";
  for (int k = 0; k < result.patterns_size(); ++k) {
    const auto& p = result.patterns(k);
    std::string tokens;
    for (int t = 0; t < p.tokens_size(); ++t) {
      absl::StrAppend(&tokens, t ? " " : "", p.tokens(t),
                      t < p.segments_size() && p.segments(t) == 1 ? " (B)" : "");
    }
    char head[160];
    std::snprintf(head, sizeof head, "\n#%d  [%s]  source %d  layer %d  head %d  score %.4f\n",
                  k + 1, tokens.c_str(), p.source(), p.layer(), p.head(), p.score());
    out << head;
    out << "    class                  n     clean  attacked   control\n";
    for (int c = 0; c < p.clean_size(); ++c) {
      char row[160];
      std::snprintf(row, sizeof row, "    %-18s %5d  %s  %s  %s\n", p.clean(c).label().c_str(),
                    p.clean(c).examples(), Percent(p.clean(c).accuracy()).c_str(),
                    c < p.attacked_size() ? Percent(p.attacked(c).accuracy()).c_str() : "",
                    c < p.control_size() ? Percent(p.control(c).accuracy()).c_str() : "");
      out << row;
    }
    if (p.truncated_examples() > 0) {
      out << "    (" << p.truncated_examples()
          << " evaluation examples lost a trigger token to re-truncation)\n";
    }
  }
  return out.str();
}

TriggersCommand::TriggersCommand(CLI::App& app, const std::string& default_model) {
  flags_.study.model = default_model;
  Flags& f = flags_;
  cmd_ = app.add_subcommand(
      "triggers",
      "Adversarial trigger search: mine attention patterns, insert the best into an evaluation "
      "set, compare accuracy per class with a random-token control");
  AddStudyFlags(cmd_, &f.study, "Integration points m of the mining attribution");
  cmd_->add_option("--mine-set", f.mine_set,
                   "GLUE TSV (or headerless text lines) patterns are mined from; labels unused")
      ->required();
  cmd_->add_option("--eval-set", f.eval_set, "Labelled GLUE TSV the patterns are inserted into")
      ->required();
  cmd_->add_option("--mine-count", f.mine_count,
                   "Mine the first N examples of --mine-set (the paper: 500)")
      ->capture_default_str();
  cmd_->add_option("--eval-limit", f.eval_limit, "Use the first N evaluation examples (0 = all)")
      ->capture_default_str();
  cmd_->add_option("--top", f.top, "Patterns to evaluate (K), in [1, 100]")->capture_default_str();
  cmd_->add_option("--threshold", f.threshold,
                   "Drop patterns scoring below this (sum of the two top attribution values)")
      ->capture_default_str();
  cmd_->add_option("--seed", f.seed, "Seed of the random-token control")->capture_default_str();
}

int TriggersCommand::Run(std::ostream& out, std::ostream& err) const {
  const Flags& f = flags_;
  int job_exit = 0;
  auto fail = [&err, &job_exit](const absl::Status& s) { return FailStudy(err, s, job_exit); };
  auto rule = CheckStudyFlags(f.study);
  if (!rule.ok()) return fail(rule.status());

  if (f.top < 1 || f.top > engine::kMaxTriggerTopK) {
    return fail(
        InvalidFlag("--top", absl::StrCat(f.top, " is not in [1, ", engine::kMaxTriggerTopK, "]")));
  }
  if (f.mine_count < 1 || f.mine_count > kMaxMineCount) {
    return fail(InvalidFlag("--mine-count",
                            absl::StrCat(f.mine_count, " is not in [1, ", kMaxMineCount, "]")));
  }
  if (f.eval_limit < 0) return fail(InvalidFlag("--eval-limit", "must be >= 0 (0 = all)"));
  if (!std::isfinite(f.threshold) || f.threshold < 0) {
    return fail(InvalidFlag("--threshold", absl::StrCat(f.threshold, " must be finite and >= 0")));
  }
  engine::TriggerSearchOptions options;
  options.attribution.rule = *rule;
  options.attribution.steps = f.study.steps;
  options.attribution.precision = LocalPrecision(StudyPrecision(f.study), StudyWeights(f.study));
  options.top_k = f.top;
  options.threshold = f.threshold;
  options.seed = f.seed;
  auto result =
      f.study.server.empty() ? RunLocal(f, options, err) : RunRemote(f, options, err, &job_exit);
  if (!result.ok()) return fail(result.status());
  if (f.study.format == "json") {
    out << JsonText(TriggerSearchToJson(*result)) << "\n";
  } else {
    out << TriggerSearchToText(*result);
  }
  out.flush();
  return kExitOk;
}

}  // namespace attattr::client
