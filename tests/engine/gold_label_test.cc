// The one gold-label rule (engine/gold_label.h): what is refused, in which words, and which
// example a set's error names.
#include "attattr/engine/gold_label.h"

#include <gtest/gtest.h>

#include "attattr/base/field_error.h"

namespace attattr::engine {
namespace {

ModelInfo Classifier() {
  ModelInfo info;
  info.has_classifier = true;
  info.labels = {"negative", "positive"};
  return info;
}

TEST(GoldLabelTest, ClassesAreAcceptedOthersRefusedWithTheClassList) {
  const ModelInfo info = Classifier();
  EXPECT_TRUE(CheckGoldLabel(info, 0).ok());
  EXPECT_TRUE(CheckGoldLabel(info, 1).ok());
  const absl::Status above = CheckGoldLabel(info, 2);
  EXPECT_EQ(above.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(above.message(),
            "2 is not one of the model's classes (0 = negative, 1 = positive); is this dataset "
            "for another task?");
  EXPECT_EQ(CheckGoldLabel(info, -1).message(),
            "missing; every example needs a gold label (0 = negative, 1 = positive)");
  EXPECT_FALSE(CheckGoldLabel(ModelInfo{}, 0).ok());  // no classifier, no classes
}

TEST(GoldLabelTest, ASetNamesItsFirstBadExampleAsAField) {
  const std::vector<int> labels = {0, 1, 1, 7, -1};
  const absl::Status s = CheckGoldLabels(Classifier(), labels, "evaluation_labels");
  const auto field = GetFieldError(s);
  ASSERT_TRUE(field.has_value()) << s;
  EXPECT_EQ(field->field.name, "evaluation_labels");
  EXPECT_EQ(field->field.index, 3);
  EXPECT_EQ(s.message().substr(0, 24), "evaluation_labels[3]: 7 ");
  EXPECT_TRUE(CheckGoldLabels(Classifier(), {0, 1}, "x").ok());
}

TEST(GoldLabelTest, GoldLabelsKeepsOrderAndUnknowns) {
  std::vector<Example> examples(3);
  examples[0].label = 1;
  examples[2].label = 0;
  EXPECT_EQ(GoldLabels(examples), (std::vector<int>{1, -1, 0}));
}

}  // namespace
}  // namespace attattr::engine
