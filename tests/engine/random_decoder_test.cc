// bench/make_random_decoder.py — the generator the GPU machine's decoder run depends on (it has no
// transformers there) — against the engine's loader: from each Llama-family oracle checkpoint
// (tests/oracle; a classifier, Qwen2 with its QKV biases, a causal LM) it grows a decoder of
// another shape, which must load with exactly that shape and the parameter count the script
// reports, in fp32 and in bf16, and predict a finite distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "attattr/engine/model.h"
#include "support/oracle_dir.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

using ::attattr::testing::OracleDir;
using ::attattr::testing::PathExists;
using ::attattr::testing::RunCommand;
using ::attattr::testing::TempDir;

struct Grown {
  std::string family;  // the template under build/oracle
  std::string dtype;   // the saved weights'
};

class RandomDecoderTest : public ::testing::TestWithParam<Grown> {};

TEST_P(RandomDecoderTest, LoadsWithTheRequestedShape) {
  const std::string tmpl = OracleDir(GetParam().family);
  // The oracle fixture writes the templates: a missing one is its failure, not a skip.
  ASSERT_TRUE(PathExists(tmpl + "/config.json")) << tmpl;
  TempDir dir("attattr-random-decoder");
  const std::string out = dir.path() + "/model";
  const auto r = RunCommand(absl::StrCat(
      ATTATTR_ORACLE_PYTHON, " ", ATTATTR_SOURCE_DIR, "/bench/make_random_decoder.py --template ",
      tmpl, " --out ", out,
      " --layers 3 --hidden 96 --heads 6 --kv-heads 2 --ffn 160 --vocab 5000 --positions 300"
      " --dtype ",
      GetParam().dtype, " 2>&1"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // "<family>: <count> parameters (...)"
  const size_t colon = r.out.find(": "), space = r.out.find(' ', colon + 2);
  int64_t reported = 0;
  ASSERT_TRUE(colon != std::string::npos && space != std::string::npos &&
              absl::SimpleAtoi(r.out.substr(colon + 2, space - colon - 2), &reported))
      << r.out;

  LoadOptions load;
  load.weights = GetParam().dtype == "bfloat16" ? Precision::kBf16 : Precision::kFp32;
  auto model = Model::Load(out, load);
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelInfo& info = (*model)->info();
  EXPECT_TRUE(info.decoder);
  EXPECT_EQ(info.num_layers, 3);
  EXPECT_EQ(info.hidden_size, 96);
  EXPECT_EQ(info.num_heads, 6);
  EXPECT_EQ(info.num_key_value_heads, 2);
  EXPECT_EQ(info.intermediate_size, 160);
  EXPECT_EQ(info.vocab_size, 5000);
  EXPECT_EQ(info.parameter_count, reported);

  auto encoding = (*model)->Encode({"a gorgeous , witty , seductive movie .", std::nullopt, -1});
  ASSERT_TRUE(encoding.ok()) << encoding.status();
  auto predictions = (*model)->Predict({*encoding});
  ASSERT_TRUE(predictions.ok()) << predictions.status();
  const Prediction& p = (*predictions)[0];
  EXPECT_TRUE(std::isfinite(p.predicted_probability) && p.predicted_probability > 0);
  if (info.language_model) {
    EXPECT_EQ(p.top_tokens.size(), static_cast<size_t>(kTopTokens));
  } else {
    double total = 0;
    for (float q : p.probabilities) total += q;
    EXPECT_NEAR(total, 1.0, 1e-3);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, RandomDecoderTest,
                         ::testing::Values(Grown{"llama", "float32"}, Grown{"llama", "bfloat16"},
                                           Grown{"qwen2", "float32"},
                                           Grown{"llama-lm", "bfloat16"}),
                         [](const auto& info) {
                           std::string name = info.param.family + "_" + info.param.dtype;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace attattr::engine
