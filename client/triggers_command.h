// `attattr triggers`: adversarial trigger search (DESIGN.md §1) from the command line. Mines one
// pattern per example of a mining set (the first --mine-count examples), keeps the --top best,
// inserts each into every example of an evaluation set, and prints per pattern its tokens, source
// example, layer, head, score and the clean / attacked / random-control accuracy per gold class
// (json or a text table). Runs the engine in-process, or submits a TRIGGER_SEARCH job to an
// attattr-server with --server (sets read here and sent inline, or named under the server's
// --data-root with --server-data). Exit codes as the job commands (job_commands.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "attattr/engine/trigger_search.h"
#include "attattr/v1/trigger_search.pb.h"
#include "command_support.h"

namespace attattr::client {

// {"patterns": [{"tokens", "source", "layer", "head", "score", "clean": {CLASS: accuracy},
//  "attacked": {...}, "control": {...}, "segments", "relative_positions", "truncated_examples"}],
//  "mined_examples", "patterns_above_threshold"}.
nlohmann::json TriggerSearchToJson(const v1::TriggerSearchResult& result);
// One block per pattern with a class × (clean, attacked, control) table.
std::string TriggerSearchToText(const v1::TriggerSearchResult& result);

class TriggersCommand {
 public:
  // Registers `triggers` on `app`; keeps the flag values, so it must outlive parsing.
  TriggersCommand(CLI::App& app, const std::string& default_model);
  TriggersCommand(const TriggersCommand&) = delete;
  TriggersCommand& operator=(const TriggersCommand&) = delete;

  bool Parsed() const { return cmd_->parsed(); }
  // Result on `out`, progress and errors on `err`. Returns the exit code (job_commands.h).
  int Run(std::ostream& out, std::ostream& err) const;

  struct Flags {
    StudyFlags study;  // --model, --steps, --rule, --format, --threads, --server, ...
    std::string mine_set;
    std::string eval_set;
    int mine_count = engine::kDefaultMiningExamples;  // N, the authors' 500
    int eval_limit = 0;                               // 0 = all
    int top = engine::kDefaultTriggerTopK;            // K
    double threshold = engine::kDefaultTriggerThreshold;
    uint64_t seed = 0;
  };

  // How the command reaches the server (the global TLS and token flags, loaded).
  void SetChannelSecurity(const ChannelSecurity& security) { flags_.study.security = security; }

 private:
  CLI::App* cmd_ = nullptr;
  Flags flags_;
};

}  // namespace attattr::client
