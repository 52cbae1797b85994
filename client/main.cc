// `attattr` command-line client: argument parsing and exit codes only; each subcommand lives in
// its own file. Exit codes of explain/models: 0 success, 1 runtime failure (including server
// errors other than INVALID_ARGUMENT), 2 bad arguments (one-line error + usage). The job commands
// (job_commands.h) add codes 3-9, one per kind of outcome (kJobExitCodesHelp).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "explain_command.h"
#include "grpc_call.h"
#include "heads_command.h"
#include "health_command.h"
#include "job_commands.h"
#include "models_command.h"
#include "report_command.h"
#include "terminal_output.h"
#include "triggers_command.h"

namespace {

// The --server of the (sub)command that was parsed, "" when it runs in-process.
std::string ParsedServer(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands()) {
    if (std::string server = ParsedServer(*sub); !server.empty()) return server;
    const CLI::Option* option = sub->get_option_no_throw("--server");
    if (option != nullptr && option->count() > 0) return option->as<std::string>();
  }
  return "";
}

constexpr const char* kUsage =
    "usage: attattr explain [--model DIR] --text TEXT [--text-pair TEXT] [--steps M] [--rule RULE] "
    "[--target T] [--layers L] [--format json|text] [--tree [--tau T]] [--tree-dot FILE] "
    "[--tree-svg FILE] [--server HOST:PORT]\n"
    "       attattr models --server HOST:PORT [--format json|text]   attattr health --server "
    "HOST:PORT [--service NAME]\n"
    "       attattr submit --server HOST:PORT --model M (--text T [--text-pair P] ... | --dataset "
    "PATH [--limit N]) [options]\n"
    "       attattr get|wait|watch|cancel|delete JOB --server HOST:PORT   attattr list --server "
    "HOST:PORT\n"
    "       attattr heads [--model DIR] --importance-set FILE --eval-set FILE [--methods LIST] "
    "[--ratios LIST] [--export DIR] [--format json|text] [--csv FILE] [--plot FILE.svg] [--server "
    "HOST:PORT]\n"
    "       attattr triggers [--model DIR] --mine-set FILE --eval-set FILE [--mine-count 500] "
    "[--top 3] [--seed N] [--format json|text] [--server HOST:PORT]\n"
    "       attattr report JOB -o FILE.html --server HOST:PORT\n"
    "       (attattr COMMAND --help for each command's options and exit codes)\n";

// The default model: $ATTATTR_MODEL, else models/all-MiniLM-L6-v2 of the checkout this binary was
// built in (build/bin/attattr -> models/), where scripts/setup.sh unpacks it.
std::string DefaultModel(const char* argv0) {
  if (const char* env = std::getenv("ATTATTR_MODEL"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  auto exe = std::filesystem::canonical("/proc/self/exe", ec);
  if (ec) exe = std::filesystem::absolute(argv0);
  return (exe.parent_path().parent_path().parent_path() / "models" / "all-MiniLM-L6-v2").string();
}

}  // namespace

int main(int argc, char** argv) {
  // Replies cannot drive the user's terminal (terminal_output.h).
  const attattr::client::TerminalGuard stdout_guard(std::cout, STDOUT_FILENO);
  const attattr::client::TerminalGuard stderr_guard(std::cerr, STDERR_FILENO);
  CLI::App app{
      "attattr: self-attention attribution (Hao et al., AAAI 2021) for Hugging Face BERT, "
      "DistilBERT, ELECTRA, RoBERTa, XLM-RoBERTa, DeBERTa, ModernBERT, Llama, Mistral, Qwen2 "
      "and GPT-2 checkpoints (classifiers, and the decoders also as language models)"};
  app.require_subcommand(1);
  attattr::client::ExplainFlags ef;
  ef.model = DefaultModel(argv[0]);
  auto* explain = app.add_subcommand(
      "explain", "Attribute a prediction (or similarity) to attention connections, layer by layer");
  explain->add_option("--model", ef.model, "Hugging Face model directory")->capture_default_str();
  explain->add_option("--text", ef.text, "Text to explain");
  explain->add_option("--text-pair", ef.text_pair, "Second segment of a sentence pair");
  explain->add_option("--input", ef.input,
                      "Explain every example of a file (GLUE SST-2/RTE/MRPC TSV, or headerless "
                      "text<TAB>text_pair lines); one JSON object per line, in input order");
  explain->add_option("--steps", ef.steps, "Integration points m")->capture_default_str();
  explain->add_option("--rule", ef.rule, "gauss-legendre | left-riemann | trapezoid")
      ->capture_default_str();
  explain
      ->add_option(
          "--target", ef.target,
          "predicted | class:K | logit:K | logprob:K | similarity:TEXT (K: index or label); "
          "language models: next_token:TEXT | next_token_logprob:TEXT | "
          "next_token_logit:TEXT (TEXT one token, e.g. ' Paris'; K a token id) | "
          "sequence_logprob:TEXT (log p(TEXT | input), teacher-forced)")
      ->capture_default_str();
  explain->add_option("--precision", ef.precision, attattr::client::kPrecisionHelp);
  explain->add_option("--weights", ef.weights, attattr::client::kWeightsHelp)
      ->capture_default_str();
  explain->add_option("--layers", ef.layers, "Comma-separated layer indices (default: all)");
  explain->add_option("--format", ef.format, "json | text")->capture_default_str();
  explain->add_option("--batch", ef.batch, "Examples per engine batch")->capture_default_str();
  explain->add_option("--top", ef.top_k, "Connections per layer in text output")
      ->capture_default_str();
  explain->add_option("--threads", ef.threads, "Intra-op threads (0 = all cores)")
      ->capture_default_str();
  explain->add_option(
      "--server", ef.server,
      "HOST:PORT of an attattr-server: explain there (--model names a served model, "
      "by directory name) instead of in-process");
  attattr::client::AddDeadlineFlag(explain, &ef.deadline, " (with --server)");
  explain->add_flag("--tree", ef.tree,
                    "Add each example's attribution tree (needs all layers): \"tree\" in JSON, "
                    "an indented tree in text");
  explain->add_option("--tau", ef.tau, "The tree's threshold tau, in (0, 1]")
      ->capture_default_str();
  explain->add_option("--tree-dot", ef.tree_dot,
                      "Write the tree as Graphviz DOT to FILE (FILE.N.dot per example when "
                      "several)");
  explain->add_option("--tree-svg", ef.tree_svg,
                      "Write the tree as SVG to FILE (FILE.N.svg per example when several)");
  attattr::client::ModelsFlags mf;
  auto* models = app.add_subcommand("models", "List the models an attattr-server serves");
  models->add_option("--server", mf.server, "HOST:PORT of an attattr-server")->required();
  models->add_option("--format", mf.format, "json | text")->capture_default_str();
  attattr::client::AddDeadlineFlag(models, &mf.deadline);
  attattr::client::JobCommands jobs(app);
  attattr::client::ReportCommand report(app);
  attattr::client::HealthCommand health(app);
  attattr::client::HeadsCommand heads(app, DefaultModel(argv[0]));
  attattr::client::TriggersCommand triggers(app, DefaultModel(argv[0]));
  attattr::client::ChannelSecurity security;
  attattr::client::AddChannelSecurityFlags(&app, &security);
  for (CLI::App* sub : app.get_subcommands({})) sub->fallthrough();
  app.footer(
      std::string("explain and models exit 0 on success, 1 on failure, 2 on bad arguments.\n") +
      attattr::client::kJobExitCodesHelp);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help() << std::endl;
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All) << std::endl;
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\n" << kUsage;
    return 2;
  }
  if (absl::Status s = security.Load(); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n" << kUsage;
    return 2;
  }
  if (absl::Status s = security.CheckTokenTransport(ParsedServer(app)); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 2;
  }
  ef.security = security;
  mf.security = security;
  jobs.SetChannelSecurity(security);
  report.SetChannelSecurity(security);
  health.SetChannelSecurity(security);
  heads.SetChannelSecurity(security);
  triggers.SetChannelSecurity(security);
  if (heads.Parsed()) {
    const int rc = heads.Run(std::cout, std::cerr);
    if (rc == attattr::client::kExitUsage) std::cerr << kUsage;
    return rc;
  }
  if (triggers.Parsed()) {
    const int rc = triggers.Run(std::cout, std::cerr);
    if (rc == attattr::client::kExitUsage) std::cerr << kUsage;
    return rc;
  }
  if (health.Parsed()) {
    const int rc = health.Run(std::cout, std::cerr);
    if (rc == attattr::client::kExitUsage) std::cerr << kUsage;
    return rc;
  }
  if (report.Parsed()) {
    const int rc = report.Run(std::cerr);
    if (rc == attattr::client::kExitUsage) std::cerr << kUsage;
    return rc;
  }
  if (jobs.Parsed()) {
    const int rc = jobs.Run(std::cout, std::cerr, isatty(fileno(stdout)) != 0);
    std::cout.flush();
    if (rc == attattr::client::kExitUsage) std::cerr << kUsage;
    return rc;
  }
  absl::Status s = models->parsed() ? attattr::client::RunModels(mf, std::cout)
                                    : attattr::client::RunExplain(ef, std::cout, std::cerr);
  if (s.ok()) return 0;
  std::cerr << "error: " << s.message() << "\n";
  if (s.code() == absl::StatusCode::kInvalidArgument) {
    std::cerr << kUsage;
    return 2;
  }
  return 1;
}
