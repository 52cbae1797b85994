// `attattr heads`: head importance (DESIGN.md §1) from the command line. Ranks every attention head
// on an importance set by the chosen methods, draws pruning curves on an evaluation set, prints
// the tables, curves and rank correlations (json or text), writes the curves as CSV and as an SVG
// chart, and optionally exports a pruned checkpoint. Runs the engine in-process, or submits a
// HEAD_IMPORTANCE job to an attattr-server with --server (files are read here and sent inline,
// or named under the server's --data-root with --server-data). Exit codes as the job commands.
#pragma once

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "command_support.h"

namespace attattr::client {

class HeadsCommand {
 public:
  // Registers `heads` on `app`; keeps the flag values, so it must outlive parsing.
  explicit HeadsCommand(CLI::App& app, const std::string& default_model);
  HeadsCommand(const HeadsCommand&) = delete;
  HeadsCommand& operator=(const HeadsCommand&) = delete;

  bool Parsed() const { return cmd_->parsed(); }
  // Result on `out`, progress and errors on `err`. Returns the exit code (job_commands.h).
  int Run(std::ostream& out, std::ostream& err) const;

  struct Flags {
    StudyFlags study;  // --model, --steps, --rule, --format, --threads, --server, ...
    std::string importance_set;
    std::string eval_set;
    int importance_limit = 0;  // 0 = all examples
    int eval_limit = 0;
    std::string agreement_set;  // empty = no agreement
    int agreement_limit = 0;
    std::string methods = DefaultMethods();  // the engine's DefaultHeadRankings
    std::string ratios = DefaultRatios();    // the engine's DefaultPruningRatios
    uint64_t seed = 0;
    std::string export_dir;
    double export_ratio = 50;
    std::string csv;
    std::string plot;
  };
  // "attribution,attention,taylor,random" and "0,10,...,100", spelled from the engine's defaults.
  static std::string DefaultMethods();
  static std::string DefaultRatios();

  // How the command reaches the server (the global TLS and token flags, loaded).
  void SetChannelSecurity(const ChannelSecurity& security) { flags_.study.security = security; }

 private:
  CLI::App* cmd_ = nullptr;
  Flags flags_;
};

}  // namespace attattr::client
