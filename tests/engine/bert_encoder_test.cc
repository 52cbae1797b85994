// The BERT forward pass through Model's public API: logits against the golden reference, padding
// in a batch changes nothing, and the head mask behaves as Hugging Face's.
#include <gtest/gtest.h>

#include <cmath>

#include "attattr/engine/dataset.h"
#include "attattr/engine/model.h"
#include "support/golden.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

using ::attattr::testing::Sst2ModelDir;

class BertEncoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    auto m = Model::Load(Sst2ModelDir());
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = std::move(*m);
  }
  std::unique_ptr<Model> model_;
};

TEST_F(BertEncoderTest, LoadsSharedModelInfo) {
  const auto& info = model_->info();
  EXPECT_EQ(info.architecture, "BertForSequenceClassification");
  EXPECT_EQ(info.num_layers, 4);
  EXPECT_EQ(info.num_heads, 8);
  EXPECT_EQ(info.hidden_size, 256);
  EXPECT_EQ(info.max_length, 128);
  EXPECT_TRUE(info.has_classifier);
  EXPECT_EQ(info.labels, (std::vector<std::string>{"negative", "positive"}));
  EXPECT_EQ(info.device, "cpu");
}

TEST_F(BertEncoderTest, LogitsMatchGolden) {
  ATTATTR_SKIP_IF_MISSING(::attattr::testing::GoldenPath());
  const auto golden = ::attattr::testing::LoadGolden(::attattr::testing::GoldenPath());
  std::vector<Encoding> encodings;
  for (const auto& g : golden.examples) {
    auto e = model_->Encode({g.text, g.text_pair, -1});
    ASSERT_TRUE(e.ok()) << e.status();
    encodings.push_back(*e);
  }
  // One padded batch holding every golden example.
  auto preds = model_->Predict(encodings);
  ASSERT_TRUE(preds.ok()) << preds.status();
  for (size_t i = 0; i < golden.examples.size(); ++i) {
    for (size_t c = 0; c < 2; ++c) {
      EXPECT_NEAR((*preds)[i].logits[c], golden.examples[i].logits[c], 1e-4) << i;
    }
    EXPECT_EQ((*preds)[i].predicted, golden.examples[i].predicted);
  }
}

TEST_F(BertEncoderTest, BatchedEqualsOneAtATime) {
  auto ds = ReadDataset(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv", 20);
  ASSERT_TRUE(ds.ok());
  std::vector<Encoding> encodings;
  for (const auto& e : ds->examples) encodings.push_back(*model_->Encode(e));
  auto batched = model_->Predict(encodings);
  ASSERT_TRUE(batched.ok());
  for (size_t i = 0; i < encodings.size(); ++i) {
    auto single = model_->Predict({encodings[i]});
    ASSERT_TRUE(single.ok());
    for (size_t c = 0; c < 2; ++c) {
      EXPECT_NEAR((*batched)[i].logits[c], (*single)[0].logits[c], 1e-5);
    }
  }
}

TEST_F(BertEncoderTest, HeadMaskOfOnesChangesNothingAndZerosDo) {
  auto e = model_->Encode({"a gorgeous , witty , seductive movie .", std::nullopt, -1});
  ASSERT_TRUE(e.ok());
  std::vector<std::vector<float>> ones(4, std::vector<float>(8, 1.0f));
  auto plain = model_->Predict({*e});
  auto masked_ones = model_->Predict({*e}, &ones);
  ASSERT_TRUE(plain.ok() && masked_ones.ok());
  EXPECT_NEAR((*plain)[0].logits[0], (*masked_ones)[0].logits[0], 1e-6);
  auto zeros = ones;
  for (auto& row : zeros) std::fill(row.begin(), row.end(), 0.0f);
  auto masked = model_->Predict({*e}, &zeros);
  ASSERT_TRUE(masked.ok());
  EXPECT_GT(std::fabs((*plain)[0].logits[0] - (*masked)[0].logits[0]), 1e-3);
  std::vector<std::vector<float>> wrong(3, std::vector<float>(8, 1.0f));
  EXPECT_EQ(model_->Predict({*e}, &wrong).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BertEncoderTest, RejectsEmptyTextAndTruncatesLongText) {
  EXPECT_EQ(model_->Encode({"", std::nullopt, -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "word ";
  auto e = model_->Encode({long_text, std::string("pair text here"), -1});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->size(), 128u);
}

TEST(RandomModelTest, BertBaseDimensions) {
  const std::string vocab = ::attattr::testing::SharedDir() + "/vocab/bert-base-uncased-vocab.txt";
  ATTATTR_SKIP_IF_MISSING(vocab);
  RandomModelSpec spec;
  spec.vocab_path = vocab;
  auto m = Model::CreateRandom(spec);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->info().num_layers, 12);
  EXPECT_NEAR(static_cast<double>((*m)->info().parameter_count), 109.5e6, 1.0e6);
  auto e = (*m)->Encode({"hello world", std::nullopt, -1});
  auto p = (*m)->Predict({*e});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)[0].logits.size(), 2u);
}

}  // namespace
}  // namespace attattr::engine
