// Hugging Face transformers 4.x running an exported pruned checkpoint beside the original under
// the same head mask (tests/oracle/check_pruned_export.py, with the folder of
// tests/oracle/prune_requirements.txt on PYTHONPATH): the law pruned == masked, checked by Hugging
// Face itself. Header-only, for the tests that define ATTATTR_ORACLE_PYTHON, ATTATTR_PRUNE_SITE and
// ATTATTR_SOURCE_DIR (tests/CMakeLists.txt).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "attattr/engine/example.h"
#include "nlohmann/json.hpp"
#include "support/test_paths.h"

namespace attattr::testing {

// Whether scripts/setup.sh installed transformers 4.x for the check.
inline bool HfPruneCheckInstalled() {
  return std::filesystem::exists(std::string(ATTATTR_PRUNE_SITE) + "/transformers") &&
         std::filesystem::exists(ATTATTR_ORACLE_PYTHON);
}

// The script's reply ({"transformers", "heads_per_layer", "pruned_vs_masked",
// "pruned_vs_attattr"}) for `examples` (unpadded) and the engine's masked `logits` of them, or
// null after a test failure quoting the script's output. `scratch` is a folder for the request.
inline nlohmann::json RunHfPrunedCheck(const std::string& original, const std::string& exported,
                                       const std::vector<std::vector<float>>& mask,
                                       const std::vector<engine::Encoding>& examples,
                                       const std::vector<std::vector<float>>& logits,
                                       const std::string& scratch) {
  nlohmann::json request = {{"original", original}, {"export", exported}, {"mask", mask}};
  for (size_t i = 0; i < examples.size(); ++i) {
    request["examples"].push_back(
        {{"input_ids", examples[i].input_ids}, {"token_type_ids", examples[i].token_type_ids}});
    request["attattr_logits"].push_back(logits[i]);
  }
  const std::string path = scratch + "/hf-pruned-check.json";
  std::ofstream(path) << request.dump();
  const auto run = RunCommand(std::string("PYTHONPATH=") + ATTATTR_PRUNE_SITE + " " +
                              ATTATTR_ORACLE_PYTHON + " " + ATTATTR_SOURCE_DIR +
                              "/tests/oracle/check_pruned_export.py " + path + " 2>&1");
  if (run.exit_code != 0) {
    ADD_FAILURE() << "check_pruned_export.py exited " << run.exit_code << ":\n" << run.out;
    return nullptr;
  }
  const size_t line = run.out.rfind("\n{");
  return nlohmann::json::parse(run.out.substr(line == std::string::npos ? 0 : line + 1));
}

}  // namespace attattr::testing
