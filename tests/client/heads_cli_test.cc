// `attattr heads` as a user runs it: in-process on the shared SST-2 model and against a real
// attattr-server (--server), which must print the same rankings and curves; the JSON has the
// documented shape; --csv and --plot write a CSV and an SVG chart a person can open; --export
// writes a pruned checkpoint; bad flags and a dataset with labels the model lacks fail with one
// clear line and exit code 2.
#include <gtest/gtest.h>

#include <cmath>
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

class HeadsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    dir_ = MakeTempDir("attattr-heads-cli");
    fs::create_directories(dir_ + "/data");
    fs::create_directories(dir_ + "/exports");
    fs::copy_file(SharedDir() + "/data/sst2/dev.tsv", dir_ + "/data/dev.tsv");
    std::ofstream three(dir_ + "/data/three.tsv");
    three << "sentence\tlabel\ngood .\t0\nbad .\t1\nodd .\t2\n";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  RunResult Run(const std::string& args) {
    return ::attattr::testing::RunCommandSplit(BinDir() + "/attattr heads " + args, dir_);
  }
  // A small study: 24 importance, 64 evaluation and 12 agreement examples of SST-2 dev.
  std::string Study(const std::string& set_dir) const {
    return "--importance-set " + set_dir + "/dev.tsv --importance-limit 24 --eval-set " + set_dir +
           "/dev.tsv --eval-limit 64 --agreement-set " + set_dir +
           "/dev.tsv --agreement-limit 12 "
           "--methods attribution,random --ratios 0,50,100 --steps 4 --seed 3 ";
  }
  std::string dir_;
};

TEST_F(HeadsCliTest, LocalAndServerPrintTheSameStudyWithCsvPlotAndExport) {
  const RunResult local = Run("--model " + Sst2ModelDir() + " " + Study(dir_ + "/data") +
                              "--format json --csv " + dir_ + "/curves.csv --plot " + dir_ +
                              "/curves.svg --export " + dir_ + "/pruned --export-ratio 25");
  ASSERT_EQ(local.exit_code, 0) << local.Describe();
  const json a = json::parse(local.out);
  ASSERT_EQ(a.at("num_layers"), 4);
  ASSERT_EQ(a.at("num_heads"), 8);
  ASSERT_TRUE(a.at("methods").contains("attribution"));
  ASSERT_TRUE(a.at("methods").contains("random"));
  for (const auto& [name, m] : a.at("methods").items()) {
    ASSERT_EQ(m.at("importance").size(), 4u) << name;
    ASSERT_EQ(m.at("importance")[0].size(), 8u) << name;
    ASSERT_EQ(m.at("curve").size(), 3u) << name;
    EXPECT_EQ(m.at("curve")[0].at("ratio"), 0.0);
    EXPECT_EQ(m.at("curve")[2].at("heads_pruned"), 32);
    for (const auto& p : m.at("curve")) {
      EXPECT_GE(p.at("accuracy").get<double>(), 0.0);
      EXPECT_LE(p.at("accuracy").get<double>(), 1.0);
      EXPECT_TRUE(p.contains("mean_gold_probability"));
    }
  }
  // The agreement set ranks attribution again; random does not depend on the examples.
  ASSERT_TRUE(a["methods"]["attribution"].contains("agreement")) << local.out;
  EXPECT_GT(a["methods"]["attribution"]["agreement"]["spearman"].get<double>(), -1.0);
  EXPECT_LE(a["methods"]["attribution"]["agreement"]["spearman"].get<double>(), 1.0);
  EXPECT_FALSE(a["methods"]["random"].contains("agreement"));
  ASSERT_EQ(a.at("correlations").size(), 1u);
  EXPECT_EQ(a.at("correlations")[0].at("a"), "attribution");
  EXPECT_EQ(a.at("correlations")[0].at("b"), "random");
  // The CSV: a header and one row per method and ratio.
  const std::string csv = ReadFile(dir_ + "/curves.csv");
  EXPECT_EQ(csv.rfind("method,ratio,heads_pruned,accuracy,mean_gold_probability\n", 0), 0u) << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  EXPECT_NE(csv.find("attribution,50,16,"), std::string::npos) << csv;
  // The chart: one polyline per method, with a legend.
  const std::string svg = ReadFile(dir_ + "/curves.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("data-method=\"attribution\""), std::string::npos);
  EXPECT_NE(svg.find("data-method=\"random\""), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 6), "</svg>");
  // The export: 25 % of 32 heads removed.
  ASSERT_TRUE(a.at("export").is_object()) << local.out;
  EXPECT_EQ(a.at("export").at("heads_removed"), 8);
  const json config = json::parse(ReadFile(dir_ + "/pruned/config.json"));
  int pruned = 0;
  for (const auto& [layer, heads] : config.at("pruned_heads").items()) pruned += heads.size();
  EXPECT_EQ(pruned, 8);

  // The same study on a server, sets read here and sent inline.
  ::attattr::testing::ServerProcess server({{"sst2", Sst2ModelDir()}},
                                           {"--export-root=" + dir_ + "/exports"});
  ASSERT_TRUE(server.ok());
  const RunResult remote = Run("--server " + server.address() + " --model sst2 " +
                               Study(dir_ + "/data") + "--format json");
  ASSERT_EQ(remote.exit_code, 0) << remote.Describe();
  EXPECT_NE(remote.err.find("pruning curve: random"), std::string::npos) << remote.err;
  const json b = json::parse(remote.out);
  for (const std::string name : {"attribution", "random"}) {
    for (int l = 0; l < 4; ++l) {
      for (int h = 0; h < 8; ++h) {
        const double x = a["methods"][name]["importance"][l][h],
                     y = b["methods"][name]["importance"][l][h];
        EXPECT_NEAR(x, y, 1e-5 * std::max(1.0, std::abs(x))) << name << " " << l << " " << h;
      }
    }
    const auto& ca = a["methods"][name]["curve"];
    const auto& cb = b["methods"][name]["curve"];
    ASSERT_EQ(ca.size(), cb.size());
    for (size_t p = 0; p < ca.size(); ++p) {
      EXPECT_EQ(ca[p]["ratio"], cb[p]["ratio"]);
      EXPECT_EQ(ca[p]["heads_pruned"], cb[p]["heads_pruned"]);
      EXPECT_EQ(ca[p]["accuracy"], cb[p]["accuracy"]) << name << " " << p;
      EXPECT_NEAR(ca[p]["mean_gold_probability"].get<double>(),
                  cb[p]["mean_gold_probability"].get<double>(), 1e-6);
    }
  }
  for (const std::string c : {"pearson", "spearman"}) {
    EXPECT_NEAR(a["methods"]["attribution"]["agreement"][c].get<double>(),
                b["methods"]["attribution"]["agreement"][c].get<double>(), 1e-6)
        << c;
  }
  EXPECT_TRUE(b.at("export").is_null());

  // Text output: the tables, the curves and the agreement.
  const RunResult text = Run("--server " + server.address() + " --model sst2 " +
                             Study(dir_ + "/data") + "--format text");
  ASSERT_EQ(text.exit_code, 0) << text.Describe();
  EXPECT_NE(text.out.find("importance (attribution)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("pruning curves"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("rank agreement"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("same ranking on the agreement set"), std::string::npos) << text.out;

  // An export path that leaves the server's export root.
  const RunResult escape = Run("--server " + server.address() + " --model sst2 " +
                               Study(dir_ + "/data") + "--export ../outside");
  EXPECT_EQ(escape.exit_code, 2) << escape.Describe();
  EXPECT_NE(escape.err.find("export_path"), std::string::npos) << escape.err;
}

TEST_F(HeadsCliTest, BadFlagsAndForeignLabelsExitTwoWithOneClearLine) {
  const std::string model = "--model " + Sst2ModelDir() + " ";
  const std::string sets = "--importance-set " + dir_ +
                           "/data/dev.tsv --importance-limit 4 --eval-set " + dir_ +
                           "/data/dev.tsv --eval-limit 4 ";
  RunResult r = Run(model + sets + "--methods attribution,saliency");
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("--methods: unknown method 'saliency'"), std::string::npos) << r.err;
  r = Run(model + sets + "--ratios 0,120");
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("--ratios: 120 is not in [0, 100]"), std::string::npos) << r.err;
  r = Run(model + "--importance-set " + dir_ + "/data/dev.tsv --importance-limit 4 --eval-set " +
          dir_ + "/data/three.tsv --methods random --ratios 0");
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("--eval-set: example 2: label 2 is not one of the model's classes"),
            std::string::npos)
      << r.err;
  r = Run(model + sets + "--agreement-set " + dir_ +
          "/data/three.tsv --methods attention --ratios 0");
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("--agreement-set: example 2: label 2 is not one of the model's classes"),
            std::string::npos)
      << r.err;
  r = Run(model + "--importance-set " + dir_ + "/data/missing.tsv --eval-set " + dir_ +
          "/data/dev.tsv");
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("--importance-set"), std::string::npos) << r.err;
  // Regression (client review): a model that does not load and a --csv that cannot be written
  // exited 9 (a job's "conflict"); they exit 1 as documented, naming the flag.
  r = Run("--model " + dir_ + "/no-such-model " + sets + "--methods random --ratios 0");
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("--model"), std::string::npos) << r.err;
  r = Run(model + sets + "--methods random --ratios 0 --csv " + dir_ + "/no-such-dir/curves.csv");
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("--csv: cannot write"), std::string::npos) << r.err;
}

// With --server the study runs as a job the command follows to its end however long it takes;
// only --timeout-seconds stops the wait, and then the job goes on and the command says how to
// follow it (exit 4).
TEST_F(HeadsCliTest, TimeoutSecondsLeavesTheJobRunningAndSaysHowToFollowIt) {
  ::attattr::testing::ServerProcess server({{"sst2", Sst2ModelDir()}});
  ASSERT_TRUE(server.ok());
  const RunResult r = Run("--server " + server.address() + " --model sst2 " +
                          Study(dir_ + "/data") + "--timeout-seconds 0.2");
  ASSERT_EQ(r.exit_code, 4) << r.Describe();
  EXPECT_NE(r.err.find("submitted jobs/"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(--timeout-seconds); it goes on: `attattr wait jobs/"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--server " + server.address() + "` follows it"), std::string::npos)
      << r.err;
  const RunResult bad = Run("--server " + server.address() + " --model sst2 " +
                            Study(dir_ + "/data") + "--deadline-seconds -1");
  EXPECT_EQ(bad.exit_code, 2) << bad.Describe();
  EXPECT_NE(bad.err.find("--deadline-seconds: must be >= 0"), std::string::npos) << bad.err;
}

}  // namespace
