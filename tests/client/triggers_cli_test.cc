// `attattr triggers` as a user runs it: in-process on the shared SST-2 model and against a real
// attattr-server (--server, sets sent inline and with --server-data), which must print the same
// patterns and accuracies; the JSON has the documented shape ({"patterns": [{"tokens", "source",
// "layer", "head", "score", "clean", "attacked", "control"}]}); the text table names every class;
// bad flags, an evaluation set with labels the model lacks and sentence-pair mining data with
// single-sentence evaluation data fail with one clear line and exit code 2. Small sets (8 mined,
// 24 evaluated, m = 2) keep it quick.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"
#include "support/server_process.h"
#include "support/test_paths.h"

namespace {

namespace fs = std::filesystem;
using ::attattr::testing::BinDir;
using ::attattr::testing::MakeTempDir;
using ::attattr::testing::ReadFile;
using ::attattr::testing::SharedDir;
using ::attattr::testing::Sst2ModelDir;
using nlohmann::json;

using RunResult = ::attattr::testing::SplitCommandResult;

class TriggersCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    dir_ = MakeTempDir("attattr-triggers-cli");
    fs::create_directories(dir_ + "/data");
    fs::copy_file(SharedDir() + "/data/sst2/train.tsv", dir_ + "/data/train.tsv");
    fs::copy_file(SharedDir() + "/data/sst2/dev.tsv", dir_ + "/data/dev.tsv");
    std::ofstream three(dir_ + "/data/three.tsv");
    three << "sentence\tlabel\ngood .\t0\nbad .\t1\nodd .\t2\n";
    std::ofstream pairs(dir_ + "/data/pairs.tsv");
    pairs << "a premise about a film .\ta hypothesis about it .\n";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  RunResult Run(const std::string& args) {
    return ::attattr::testing::RunCommandSplit(BinDir() + "/attattr triggers " + args, dir_);
  }
  std::string Search(const std::string& set_dir) const {
    return "--mine-set " + set_dir + "/train.tsv --mine-count 8 --eval-set " + set_dir +
           "/dev.tsv --eval-limit 24 --top 2 --threshold 0.01 --steps 2 --seed 4 ";
  }
  std::string dir_;
};

TEST_F(TriggersCliTest, LocalAndServerPrintTheSamePatterns) {
  const RunResult local =
      Run("--model " + Sst2ModelDir() + " " + Search(dir_ + "/data") + "--format json");
  ASSERT_EQ(local.exit_code, 0) << local.Describe();
  const json a = json::parse(local.out);
  ASSERT_TRUE(a.at("patterns").is_array());
  ASSERT_GE(a.at("patterns").size(), 1u);
  ASSERT_LE(a.at("patterns").size(), 2u);
  EXPECT_EQ(a.at("mined_examples"), 8);
  for (const auto& p : a.at("patterns")) {
    EXPECT_GE(p.at("tokens").size(), 1u);
    EXPECT_GE(p.at("source").get<int>(), 0);
    EXPECT_LT(p.at("source").get<int>(), 8);
    EXPECT_GE(p.at("layer").get<int>(), 0);
    EXPECT_LT(p.at("layer").get<int>(), 4);
    EXPECT_LT(p.at("head").get<int>(), 8);
    EXPECT_GE(p.at("score").get<double>(), 0.01);
    for (const char* kind : {"clean", "attacked", "control"}) {
      ASSERT_TRUE(p.at(kind).contains("negative")) << kind;
      ASSERT_TRUE(p.at(kind).contains("positive")) << kind;
      EXPECT_GE(p.at(kind).at("positive").get<double>(), 0.0);
      EXPECT_LE(p.at(kind).at("positive").get<double>(), 1.0);
    }
  }
  EXPECT_NE(local.err.find("mining: 8/8"), std::string::npos) << local.err;

  ::attattr::testing::ServerProcess server({{"sst2", Sst2ModelDir()}},
                                           {"--data-root=" + dir_ + "/data"});
  ASSERT_TRUE(server.ok());
  const RunResult remote = Run("--server " + server.address() + " --model sst2 " +
                               Search(dir_ + "/data") + "--format json");
  ASSERT_EQ(remote.exit_code, 0) << remote.Describe();
  const json b = json::parse(remote.out);
  ASSERT_EQ(b.at("patterns").size(), a.at("patterns").size());
  for (size_t k = 0; k < a.at("patterns").size(); ++k) {
    const auto& pa = a.at("patterns")[k];
    const auto& pb = b.at("patterns")[k];
    EXPECT_EQ(pa.at("tokens"), pb.at("tokens"));
    EXPECT_EQ(pa.at("layer"), pb.at("layer"));
    EXPECT_EQ(pa.at("head"), pb.at("head"));
    EXPECT_EQ(pa.at("clean"), pb.at("clean"));
    EXPECT_EQ(pa.at("attacked"), pb.at("attacked"));
    EXPECT_EQ(pa.at("control"), pb.at("control"));
    EXPECT_NEAR(pa.at("score").get<double>(), pb.at("score").get<double>(), 1e-4);
  }
  // `attattr get` prints the finished job's result in the same shape.
  const auto submitted = remote.err.find("submitted ");
  ASSERT_NE(submitted, std::string::npos) << remote.err;
  const std::string name =
      remote.err.substr(submitted + 10, remote.err.find('\n', submitted) - submitted - 10);
  const auto got = ::attattr::testing::RunCommand(BinDir() + "/attattr get " + name + " --server " +
                                                  server.address() + " --format json 2>/dev/null");
  ASSERT_EQ(got.exit_code, 0) << got.out;
  EXPECT_EQ(json::parse(got.out).at("result").at("patterns"), b.at("patterns"));
  // The same sets named under the server's --data-root, text output.
  const RunResult text =
      Run("--server " + server.address() + " --model sst2 --server-data " + Search("."));
  ASSERT_EQ(text.exit_code, 0) << text.Describe();
  EXPECT_NE(text.out.find("#1"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("attacked"), std::string::npos);
  EXPECT_NE(text.out.find("negative"), std::string::npos);
  EXPECT_NE(text.out.find("positive"), std::string::npos);
  // The server names the field of a bad evaluation set; the CLI exits 2.
  const RunResult labels =
      Run("--server " + server.address() + " --model sst2 " + "--mine-set " + dir_ +
          "/data/train.tsv --mine-count 2 --eval-set " + dir_ + "/data/three.tsv --steps 2");
  EXPECT_EQ(labels.exit_code, 2) << labels.Describe();
  EXPECT_NE(labels.err.find("evaluation_set"), std::string::npos) << labels.err;
}

TEST_F(TriggersCliTest, BadFlagsAndSetsExitTwoWithOneLine) {
  const std::string model = "--model " + Sst2ModelDir() + " ";
  const std::string sets = "--mine-set " + dir_ + "/data/train.tsv --eval-set " + dir_ +
                           "/data/dev.tsv --eval-limit 4 --steps 2 ";
  struct Case {
    std::string args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {sets + "--top 0", "--top: 0 is not in [1, 100]"},
           {sets + "--top 101", "--top: 101"},
           {sets + "--mine-count 0", "--mine-count: 0 is not in"},
           {sets + "--threshold -1", "--threshold"},
           {sets + "--format xml", "--format"},
           {"--mine-set " + dir_ + "/data/train.tsv --mine-count 2 --eval-set " + dir_ +
                "/data/three.tsv",
            "--eval-set: example 2: label 2 is not one of the model's classes"},
           {"--mine-set " + dir_ + "/data/pairs.tsv --eval-set " + dir_ +
                "/data/dev.tsv --eval-limit 3",
            "--eval-set: example 0 is a single sentence but --mine-set has sentence pairs"},
       }) {
    SCOPED_TRACE(c.args);
    const RunResult r = Run(model + c.args);
    EXPECT_EQ(r.exit_code, 2) << r.Describe();
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

}  // namespace
