// The `attattr explain` command as a user runs it: JSON shape, text output, --input files in input
// order, and bad arguments (one-line error + usage, exit code 2).
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "attattr/engine/precision.h"
#include "nlohmann/json.hpp"
#include "safetensors_reader.h"
#include "safetensors_writer.h"
#include "support/golden.h"
#include "support/golden_tree.h"
#include "support/server_process.h"
#include "support/test_paths.h"

namespace {

using ::attattr::testing::BinDir;
using ::attattr::testing::Sst2ModelDir;

using RunResult = ::attattr::testing::CommandResult;  // out = stdout + stderr

RunResult RunCli(const std::string& args) {
  return ::attattr::testing::RunCommand(BinDir() + "/attattr " + args + " 2>&1");
}

// stdout and stderr apart: a bf16 run warns on stderr where the CPU only emulates bf16.
::attattr::testing::SplitCommandResult RunCliSplit(const std::string& args) {
  static const ::attattr::testing::TempDir dir("attattr-explain-cli");
  return ::attattr::testing::RunCommandSplit(BinDir() + "/attattr " + args, dir.path());
}

// A bf16 run's stderr carries engine::EmulatedBf16Warning exactly when this CPU emulates bf16.
void ExpectBf16WarningIffEmulated(const ::attattr::testing::SplitCommandResult& r) {
  const std::string warning = ::attattr::engine::EmulatedBf16Warning(
      ::attattr::engine::Precision::kBf16, ::attattr::engine::Precision::kBf16);
  if (warning.empty()) {
    EXPECT_EQ(r.err.find("warning:"), std::string::npos) << r.Describe();
  } else {
    EXPECT_NE(r.err.find("warning: " + warning), std::string::npos) << r.Describe();
  }
}

std::string Model() { return "--model " + Sst2ModelDir() + " --threads 1"; }

TEST(ExplainCliTest, JsonHasTheDocumentedShape) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  auto r = RunCli("explain " + Model() +
                  " --text 'a gorgeous , witty , seductive movie .' --layers 0,3");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tokens"].front(), "[CLS]");
  EXPECT_EQ(j["prediction"]["label"], "positive");
  EXPECT_EQ(j["prediction"]["probabilities"].size(), 2u);
  EXPECT_EQ(j["target"], "predicted");
  EXPECT_EQ(j["rule"], "gauss-legendre");
  EXPECT_EQ(j["steps"], 8);
  EXPECT_EQ(j["precision"], "fp32");
  ASSERT_EQ(j["layers"].size(), 2u);
  EXPECT_EQ(j["layers"][1]["layer"], 3);
  const size_t n = j["tokens"].size();
  EXPECT_EQ(j["layers"][0]["attribution"].size(), 8u);
  EXPECT_EQ(j["layers"][0]["attribution"][0].size(), n);
  EXPECT_EQ(j["layers"][0]["attribution"][0][0].size(), n);
  EXPECT_LT(j["layers"][0]["completeness_gap"].get<double>(), 1e-3);
  EXPECT_TRUE(j["layers"][0].contains("target_at_full"));
  EXPECT_TRUE(j["layers"][0].contains("target_at_zero"));
}

TEST(ExplainCliTest, Bf16PrecisionIsReportedAndCloseToFp32) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  const std::string common = "explain " + Model() + " --text 'the plot is a mess' --layers 1";
  auto exact = RunCliSplit(common);
  auto low = RunCliSplit(common + " --precision bf16");
  ASSERT_EQ(exact.exit_code, 0) << exact.Describe();
  ASSERT_EQ(low.exit_code, 0) << low.Describe();
  EXPECT_EQ(exact.err, "");
  ExpectBf16WarningIffEmulated(low);
  auto a = nlohmann::json::parse(exact.out), b = nlohmann::json::parse(low.out);
  EXPECT_EQ(b["precision"], "bf16");
  const auto& ma = a["layers"][0]["attribution"];
  const auto& mb = b["layers"][0]["attribution"];
  double max_ref = 0, diff = 0;
  for (size_t h = 0; h < ma.size(); ++h) {
    for (size_t i = 0; i < ma[h].size(); ++i) {
      for (size_t k = 0; k < ma[h][i].size(); ++k) {
        const double x = ma[h][i][k].get<double>(), y = mb[h][i][k].get<double>();
        max_ref = std::max(max_ref, std::fabs(x));
        diff = std::max(diff, std::fabs(x - y));
      }
    }
  }
  EXPECT_LE(diff, 1e-2 * max_ref);
  EXPECT_GT(diff, 0);
  auto text = RunCli(common + " --precision bf16 --format text");
  EXPECT_NE(text.out.find("precision: bf16"), std::string::npos) << text.out;
}

// --weights bf16 stores the model's matrices in bf16: --precision then defaults to bf16, and fp32
// or a server beside it are usage errors naming the flag.
TEST(ExplainCliTest, Bf16WeightsRunAtBf16) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  const std::string common = "explain " + Model() + " --text 'the plot is a mess' --layers 1";
  auto low = RunCliSplit(common + " --weights bf16");
  ASSERT_EQ(low.exit_code, 0) << low.Describe();
  ExpectBf16WarningIffEmulated(low);
  EXPECT_EQ(nlohmann::json::parse(low.out)["precision"], "bf16");
  for (const auto& [args, flag] :
       {std::pair<std::string, std::string>{" --weights bf16 --precision fp32", "--precision"},
        {" --weights bf16 --server 127.0.0.1:1", "--weights"},
        {" --weights int8", "--weights"}}) {
    auto r = RunCli(common + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(flag), std::string::npos) << args << "\n" << r.out;
  }
}

TEST(ExplainCliTest, TextOutputListsStrongestConnections) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  auto r = RunCli("explain " + Model() +
                  " --text 'the plot is a mess' --format text --rule left-riemann --steps 20");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("prediction: negative"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("layer 3"), std::string::npos);
  EXPECT_NE(r.out.find("completeness gap"), std::string::npos);
  EXPECT_NE(r.out.find("<-"), std::string::npos);
}

// Regression (left alone by an earlier review): a regression head's prediction was shown as
// "(p=1.0000)", a softmax over its one output. It is shown as its value, in text and JSON (with
// the head's problem_type), and a softmax target on it is refused naming `target`.
TEST(ExplainCliTest, RegressionHeadShowsItsValueNotAProbability) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  const ::attattr::testing::TempDir dir("attattr-regression-model");
  const std::filesystem::path src(Sst2ModelDir());
  for (const char* f : {"vocab.txt", "tokenizer_config.json"}) {
    std::filesystem::copy_file(src / f, std::filesystem::path(dir.path()) / f);
  }
  nlohmann::json config = nlohmann::json::parse(std::ifstream(src / "config.json"));
  config.erase("id2label");
  config.erase("label2id");
  config["num_labels"] = 1;
  config["problem_type"] = "regression";
  std::ofstream(dir.path() + "/config.json") << config.dump();
  // The same float32 weights with the classifier cut to its first output (row 0 of the weight, the
  // first bias).
  auto checkpoint = ::attattr::engine::SafetensorsCheckpoint::Open(Sst2ModelDir());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  std::vector<::attattr::engine::RawTensor> weights;
  for (const std::string& name : (*checkpoint)->TensorNames()) {
    auto view = (*checkpoint)->Find(name);
    ASSERT_TRUE(view.ok()) << view.status();
    ASSERT_EQ(::attattr::engine::DTypeName(view->entry->dtype), "F32") << name;
    ::attattr::engine::RawTensor t{
        name, "F32", view->entry->shape,
        std::string(reinterpret_cast<const char*>(view->data), view->nbytes)};
    if (name == "classifier.weight" || name == "classifier.bias") {
      t.bytes.resize(t.bytes.size() / static_cast<size_t>(t.shape[0]));
      t.shape[0] = 1;
    }
    weights.push_back(std::move(t));
  }
  ASSERT_TRUE(::attattr::engine::WriteSafetensors(dir.path() + "/model.safetensors", weights));
  const std::string model = "explain --model " + dir.path() + " --threads 1 --text 'a fine film .'";

  auto text = RunCli(model + " --target logit:0 --format text --layers 3");
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("prediction (regression): "), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("(p="), std::string::npos) << text.out;

  auto json = RunCli(model + " --target logit:0 --layers 3");
  ASSERT_EQ(json.exit_code, 0) << json.out;
  const auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["prediction"]["problem_type"], "regression");
  EXPECT_TRUE(j["prediction"]["probabilities"].empty()) << json.out;
  ASSERT_EQ(j["prediction"]["logits"].size(), 1u) << json.out;
  // F(A) of the logit target at the last layer is that same value.
  EXPECT_NEAR(j["layers"][0]["target_at_full"].get<double>(),
              j["prediction"]["logits"][0].get<double>(), 1e-4);

  auto refused = RunCli(model);  // the default target: the predicted class's probability
  EXPECT_EQ(refused.exit_code, 2) << refused.out;
  EXPECT_NE(refused.out.find("regression"), std::string::npos) << refused.out;
}

TEST(ExplainCliTest, InputFileGivesOneJsonLinePerExampleInOrder) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  const std::string dir = ::attattr::testing::MakeTempDir("attattr-cli");
  const std::string file = dir + "/pairs.tsv";
  std::ofstream(file) << "a long and rather tedious film about nothing at all\tit bored me\n"
                         "great\n"
                         "an astonishing , moving piece of work\tloved it\n";
  auto r = RunCli("explain " + Model() + " --input " + file + " --layers 3 --batch 2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<nlohmann::json> objs;
  while (std::getline(lines, line)) objs.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(objs.size(), 3u);
  EXPECT_EQ(objs[0]["tokens"][1], "a");
  EXPECT_EQ(objs[1]["tokens"][1], "great");
  EXPECT_EQ(objs[2]["tokens"][1], "an");
  // A pair has two [SEP] tokens; a single text one.
  EXPECT_EQ(std::count(objs[0]["tokens"].begin(), objs[0]["tokens"].end(), "[SEP]"), 2);
  EXPECT_EQ(std::count(objs[1]["tokens"].begin(), objs[1]["tokens"].end(), "[SEP]"), 1);
}

TEST(ExplainCliTest, BadArgumentsExitWithCode2AndUsage) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  // Each error names the flag to mend (the engine's field errors mapped to flags).
  const std::pair<std::string, std::string> cases[] = {
      {"explain " + Model() + " --text hi --steps 0", "error: --steps: must be in [1, "},
      {"explain " + Model() + " --text hi --rule simpson", "error: --rule: "},
      {"explain " + Model() + " --text hi --layers 9", "error: --layers: 9 is not in [0, 3]"},
      {"explain " + Model() + " --text hi --layers 2,1",
       "error: --layers: layers must be ascending"},
      {"explain " + Model() + " --text hi --target class:7",
       "error: --target: class_index: 7 is not in [0, 1]"},
      {"explain " + Model() + " --text hi --format xml", "error: --format: "},
      {"explain " + Model(), "error: "},
      {"explain " + Model() + " --text hi --steps many", "--steps = many"},
      {"explain " + Model() + " --text hi --precision fp64", "error: --precision: "},
      {"frobnicate", "error: "}};
  for (const auto& [args, message] : cases) {
    auto r = RunCli(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(message), std::string::npos) << message << "\n" << r.out;
    EXPECT_NE(r.out.find("usage: "), std::string::npos) << r.out;
  }
  auto missing = RunCli("explain --model /nonexistent --text hi");
  EXPECT_EQ(missing.exit_code, 1) << missing.out;
  EXPECT_NE(missing.out.find("/nonexistent"), std::string::npos);
}

// 'text' for /bin/sh, whatever quotes it holds.
std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

TEST(ExplainCliTest, TreeEqualsTheGoldenTree) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  ATTATTR_SKIP_IF_MISSING(::attattr::testing::GoldenPath());
  const auto golden = ::attattr::testing::LoadGolden(::attattr::testing::GoldenPath());
  const std::string dir = ::attattr::testing::MakeTempDir("attattr-cli-tree");
  for (size_t e : {size_t{0}, size_t{2}}) {
    const auto& g = golden.examples.at(e);
    SCOPED_TRACE(g.text);
    auto r = RunCli("explain " + Model() + " --text " + ShellQuote(g.text) +
                    " --rule left-riemann --steps " + std::to_string(golden.steps) +
                    " --tree --tree-dot " + dir + "/t.dot --tree-svg " + dir + "/t.svg");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_TRUE(j.contains("tree")) << r.out.substr(0, 200);
    const auto& t = j["tree"];
    for (const char* key : {"tau", "root", "top", "root_edge_score", "nodes", "edges"}) {
      EXPECT_TRUE(t.contains(key)) << key;
    }
    EXPECT_DOUBLE_EQ(t["tau"].get<double>(), 0.4);
    ::attattr::testing::ExpectTreeMatchesGolden(::attattr::testing::TreeFromJson(t), g);
    std::ifstream dot(dir + "/t.dot"), svg(dir + "/t.svg");
    std::stringstream dot_text, svg_text;
    dot_text << dot.rdbuf();
    svg_text << svg.rdbuf();
    EXPECT_EQ(dot_text.str().rfind("digraph attribution_tree {", 0), 0u) << dot_text.str();
    EXPECT_NE(svg_text.str().find("<svg "), std::string::npos);
    EXPECT_NE(svg_text.str().find("</svg>"), std::string::npos);
  }
  // Text output ends with the indented tree.
  auto text = RunCli("explain " + Model() + " --text " + ShellQuote(golden.examples[0].text) +
                     " --rule left-riemann --steps 20 --tree --format text");
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("attribution tree (tau = 0.4"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\n[CLS]\n└─ "), std::string::npos) << text.out;
  // No tree unless asked.
  auto plain = RunCli("explain " + Model() + " --text hi --layers 3");
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_FALSE(nlohmann::json::parse(plain.out).contains("tree"));
}

TEST(ExplainCliTest, BadTreeArgumentsExitWithCode2) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  for (const char* tau : {"0", "1.5", "-1"}) {
    auto r = RunCli("explain " + Model() + " --text hi --tree --tau " + tau);
    EXPECT_EQ(r.exit_code, 2) << tau << "\n" << r.out;
    EXPECT_NE(r.out.find("error: --tau: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("(0, 1]"), std::string::npos) << r.out;
  }
  auto layers = RunCli("explain " + Model() + " --text hi --tree --layers 0,3");
  EXPECT_EQ(layers.exit_code, 2) << layers.out;
  EXPECT_NE(layers.out.find("error: --layers: an attribution tree needs every layer"),
            std::string::npos)
      << layers.out;
}

TEST(ExplainCliTest, HelpDocumentsTheTreeOptions) {
  auto r = RunCli("explain --help");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* opt : {"--tree", "--tau", "--tree-dot", "--tree-svg"}) {
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
  }
}

TEST(ExplainCliTest, HelpDocumentsEveryOption) {
  auto r = RunCli("explain --help");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* opt : {"--model", "--text", "--text-pair", "--input", "--steps", "--rule",
                          "--target", "--precision", "--layers", "--format", "--threads"}) {
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
  }
}

}  // namespace

namespace {

// --server: the same bytes as in-process, and server errors become the CLI's exit codes.
TEST(ExplainCliRemoteTest, RemoteOutputEqualsLocalByteForByte) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  ::attattr::testing::ServerProcess server({{"sst2-bert-l4-h256", Sst2ModelDir()}});
  ASSERT_TRUE(server.ok());
  const std::string common = " --model " + Sst2ModelDir() +
                             " --text 'a gorgeous , witty , seductive movie .' --layers 0,3 "
                             "--rule left-riemann --steps 20 --threads 1";
  for (const char* format : {"json", "text"}) {
    auto local = RunCli(std::string("explain --format ") + format + common);
    auto remote = RunCli(std::string("explain --format ") + format + common + " --server " +
                         server.address());
    ASSERT_EQ(local.exit_code, 0) << local.out;
    ASSERT_EQ(remote.exit_code, 0) << remote.out;
    EXPECT_EQ(remote.out, local.out) << format;
  }
  // The tree too: the server builds it from the same matrices.
  const std::string tree_args = " --model " + Sst2ModelDir() +
                                " --text 'a gorgeous , witty , seductive movie .' --tree --tau 0.5 "
                                "--rule left-riemann --steps 20 --threads 1";
  for (const char* format : {"json", "text"}) {
    auto local = RunCli(std::string("explain --format ") + format + tree_args);
    auto remote = RunCli(std::string("explain --format ") + format + tree_args + " --server " +
                         server.address());
    ASSERT_EQ(local.exit_code, 0) << local.out;
    ASSERT_EQ(remote.exit_code, 0) << remote.out;
    EXPECT_NE(local.out.find("tau"), std::string::npos);
    EXPECT_EQ(remote.out, local.out) << format;
  }
  // Regression (client review): a --model path with a trailing slash (shell completion adds one)
  // named the model "" on the --server path only.
  {
    const std::string args = " --model " + Sst2ModelDir() + "/" +
                             " --text 'a gorgeous movie .' --layers 0 --steps 2 --threads 1";
    auto local = RunCli("explain --format json" + args);
    auto remote = RunCli("explain --format json" + args + " --server " + server.address());
    ASSERT_EQ(local.exit_code, 0) << local.out;
    ASSERT_EQ(remote.exit_code, 0) << remote.out;
  }
  // Regression (client review): a flag value that is not UTF-8 aborted the process when the JSON
  // was written (nlohmann's strict dump); it is written with U+FFFD instead.
  {
    auto bad_utf8 = RunCli("explain --format json --model " + Sst2ModelDir() +
                           " --text 'a gorgeous movie .' --layers 0 --steps 2 --threads 1 "
                           "--target \"similarity:caf$(printf '\\351')\"");
    ASSERT_EQ(bad_utf8.exit_code, 0) << bad_utf8.out;
    const auto printed = nlohmann::json::parse(bad_utf8.out.substr(0, bad_utf8.out.find('\n')),
                                               nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(printed.is_discarded()) << bad_utf8.out;
    EXPECT_NE(printed.dump().find("caf\xEF\xBF\xBD"), std::string::npos) << bad_utf8.out;
  }
  auto subset = RunCli("explain --model sst2-bert-l4-h256 --text hi --tree --layers 1 --server " +
                       server.address());
  EXPECT_EQ(subset.exit_code, 2) << subset.out;
  EXPECT_NE(subset.out.find("--layers"), std::string::npos) << subset.out;
  auto unknown = RunCli("explain --model nope --text hi --server " + server.address());
  EXPECT_EQ(unknown.exit_code, 1) << unknown.out;
  EXPECT_NE(unknown.out.find("nope"), std::string::npos) << unknown.out;
  auto bad = RunCli("explain --model sst2-bert-l4-h256 --text hi --steps 5000 --server " +
                    server.address());
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("steps"), std::string::npos) << bad.out;
  auto models = RunCli("models --format json --server " + server.address());
  ASSERT_EQ(models.exit_code, 0) << models.out;
  auto j = nlohmann::json::parse(models.out);
  ASSERT_EQ(j["models"].size(), 1u);
  EXPECT_EQ(j["models"][0]["name"], "sst2-bert-l4-h256");
  EXPECT_EQ(j["models"][0]["num_layers"], 4);
  EXPECT_EQ(j["models"][0]["labels"], (std::vector<std::string>{"negative", "positive"}));
  EXPECT_EQ(j["models"][0]["weights"], "fp32");
  EXPECT_GT(j["models"][0]["weight_bytes"].get<int64_t>(), 0);
  auto table = RunCli("models --server " + server.address());
  ASSERT_EQ(table.exit_code, 0) << table.out;
  EXPECT_NE(table.out.find("sst2-bert-l4-h256"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("4x8"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("fp32 "), std::string::npos) << table.out;
  EXPECT_EQ(RunCli("models").exit_code, 2);
  // grpc.health.v1 as Kubernetes' probes ask it: the server, and the attribution service.
  auto health = RunCli("health --server " + server.address());
  EXPECT_EQ(health.exit_code, 0) << health.out;
  EXPECT_EQ(health.out, "SERVING\n");
  auto service =
      RunCli("health --server " + server.address() + " --service attattr.v1.Attattr --format json");
  EXPECT_EQ(service.exit_code, 0) << service.out;
  EXPECT_EQ(nlohmann::json::parse(service.out)["status"], "SERVING") << service.out;
  auto unknown_service =
      RunCli("health --server " + server.address() + " --service no.such.Service");
  EXPECT_EQ(unknown_service.exit_code, 6) << unknown_service.out;
  EXPECT_EQ(server.Stop(), 0);
  auto gone = RunCli("health --server " + server.address() + " --deadline-seconds 5");
  EXPECT_EQ(gone.exit_code, 6) << gone.out;
  EXPECT_NE(gone.out.find("error: UNAVAILABLE"), std::string::npos) << gone.out;
  auto down = RunCli("explain --model sst2 --text hi --deadline 5 --server " + server.address());
  EXPECT_EQ(down.exit_code, 1) << down.out;
  EXPECT_NE(down.out.find("unavailable"), std::string::npos) << down.out;
}

}  // namespace

namespace {

// `command` run by /bin/sh with a pseudo-terminal as its stdin, stdout and stderr: what a user
// would see. Returns the bytes the terminal received.
std::string RunInTerminal(const std::string& command) {
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) return "forkpty failed";
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string seen;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(master, buffer, sizeof buffer);
    if (n <= 0) break;  // EIO once the child has closed the terminal
    seen.append(buffer, static_cast<size_t>(n));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  close(master);
  return seen;
}

}  // namespace

// A reply cannot drive the user's terminal: a model whose labels carry escape sequences (an OSC
// window title ended by BEL, a colour) is served, and the client shows them as visible symbols on a
// terminal, while a pipe gets the bytes as they are.
TEST(ExplainCliRemoteTest, RepliesCannotDriveTheTerminal) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  const ::attattr::testing::TempDir dir("attattr-hostile-labels");
  const std::string model = dir.path() + "/model";
  std::filesystem::create_directory(model);
  for (const auto& entry : std::filesystem::directory_iterator(Sst2ModelDir())) {
    if (entry.path().filename() == "config.json") continue;
    std::filesystem::create_symlink(entry.path(), model + "/" + entry.path().filename().string());
  }
  nlohmann::json config = nlohmann::json::parse(std::ifstream(Sst2ModelDir() + "/config.json"));
  const std::string negative = "neg\x1b]0;owned\x07";
  const std::string positive = "pos\x1b[31mred\x1b[0m";
  config["id2label"] = {{"0", negative}, {"1", positive}};
  config["label2id"] = {{negative, 0}, {positive, 1}};
  std::ofstream(model + "/config.json") << config.dump();
  ::attattr::testing::ServerProcess server({{"hostile", model}});
  ASSERT_TRUE(server.ok());
  const std::string command = BinDir() + "/attattr explain --model hostile --format text " +
                              "--text 'a gorgeous , witty , seductive movie .' --layers 0 " +
                              "--steps 2 --server " + server.address();
  const std::string seen = RunInTerminal(command);
  EXPECT_NE(seen.find("pos\u241b[31mred\u241b[0m"), std::string::npos) << seen;
  EXPECT_EQ(seen.find('\x1b'), std::string::npos) << seen;
  EXPECT_EQ(seen.find('\x07'), std::string::npos) << seen;
  // Piped, the text is what the server sent.
  auto piped = RunCli(command.substr(command.find("explain")));
  ASSERT_EQ(piped.exit_code, 0) << piped.out;
  EXPECT_NE(piped.out.find(positive), std::string::npos) << piped.out;
}
