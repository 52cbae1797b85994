// Where the CTest fixture oracle_checkpoints (tests/oracle) writes each family's tiny Hugging Face
// checkpoint and HF's answers about it (oracle.json), for the tests that use them; they define
// ATTATTR_ORACLE_DIR (tests/CMakeLists.txt). Header-only: the support library does not know it.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "nlohmann/json.hpp"

namespace attattr::testing {

inline std::string OracleDir(const std::string& family) {
  return std::string(ATTATTR_ORACLE_DIR) + "/" + family;
}

// The family's oracle.json; a test failure naming the fixture that writes it, and null, when it is
// missing.
inline nlohmann::json ReadOracleJson(const std::string& family) {
  const std::string path = OracleDir(family) + "/oracle.json";
  std::ifstream in(path);
  if (!in.good()) {
    ADD_FAILURE() << path << " is missing: the CTest fixture oracle_checkpoints (tests/oracle) "
                  << "writes it";
    return nullptr;
  }
  return nlohmann::json::parse(in);
}

}  // namespace attattr::testing
