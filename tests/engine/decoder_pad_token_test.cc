// A decoder sequence classifier's pad_token_id (Model::CheckEncoding): transformers scores the
// rightmost token that is not pad_token_id — with pad = EOS, common for Llama classifiers, the
// token before a trailing EOS — while the engine scores the last token. Regression
// (model-config review): such an input loaded and scored another token, silently; it is refused
// naming the token and the id. The oracle's Llama classifier, with its pad_token_id set to the
// last token of a text, stands in for such a checkpoint.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "attattr/engine/model.h"
#include "nlohmann/json.hpp"
#include "support/oracle_dir.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

namespace fs = std::filesystem;

TEST(DecoderPadTokenTest, AClassifierInputEndingWithThePadTokenIsRefused) {
  const std::string oracle = ::attattr::testing::OracleDir("llama");
  ASSERT_TRUE(::attattr::testing::PathExists(oracle + "/config.json")) << oracle;
  auto original = Model::Load(oracle);
  ASSERT_TRUE(original.ok()) << original.status();
  const Example text{"a fine film", std::nullopt, -1};
  auto encoded = (*original)->Encode(text);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  const int32_t last = encoded->input_ids.back();

  ::attattr::testing::TempDir dir("attattr-pad-token");
  const std::string copy = dir.path() + "/llama";
  fs::copy(oracle, copy, fs::copy_options::recursive);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(copy + "/config.json"));
  config["pad_token_id"] = last;
  std::ofstream(copy + "/config.json") << config.dump();
  auto model = Model::Load(copy);
  ASSERT_TRUE(model.ok()) << model.status();
  auto refused = (*model)->Encode(text);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find(absl::StrCat("pad_token_id (", last, ")")),
            std::string::npos)
      << refused.status();
  // A text that does not end with it is scored as before.
  auto other = (*model)->Encode({"a fine film indeed , and more", std::nullopt, -1});
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE(other->input_ids.back(), last);
  // A null pad_token_id (transformers: the last position) refuses nothing.
  config["pad_token_id"] = nullptr;
  std::ofstream(copy + "/config.json") << config.dump();
  auto unpadded = Model::Load(copy);
  ASSERT_TRUE(unpadded.ok()) << unpadded.status();
  EXPECT_TRUE((*unpadded)->Encode(text).ok());
}

}  // namespace
}  // namespace attattr::engine
