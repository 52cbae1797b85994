// Errors that carry their field as data (attattr/base/field_error.h): the message reads on its
// own, the parts come back exactly, and statuses made any other way are not field errors.
#include "attattr/base/field_error.h"

#include <gtest/gtest.h>

#include "attattr/base/status_macros.h"

namespace attattr {
namespace {

TEST(FieldErrorTest, MessageAndPartsRoundTrip) {
  const absl::Status s = InvalidFieldError({"evaluation_labels", 3}, "2 is not a class");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "evaluation_labels[3]: 2 is not a class");
  const auto parts = GetFieldError(s);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->field.name, "evaluation_labels");
  EXPECT_EQ(parts->field.index, 3);
  EXPECT_EQ(parts->what, "2 is not a class");
  EXPECT_EQ(FieldPath(parts->field), "evaluation_labels[3]");
}

TEST(FieldErrorTest, WithoutIndexAndWithNewlinesInTheMessage) {
  const absl::Status s =
      FieldError(absl::StatusCode::kNotFound, {"model", -1}, "not served\nsee ListModels");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "model: not served\nsee ListModels");
  const auto parts = GetFieldError(s);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->field.index, -1);
  EXPECT_EQ(parts->what, "not served\nsee ListModels");
  EXPECT_EQ(FieldPath(parts->field), "model");
}

TEST(FieldErrorTest, OtherStatusesAreNotFieldErrors) {
  EXPECT_FALSE(GetFieldError(absl::OkStatus()).has_value());
  EXPECT_FALSE(GetFieldError(absl::InvalidArgumentError("labels[3]: looks like one")).has_value());
}

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x) {
  ATTATTR_ASSIGN_OR_RETURN(const int half, Half(x));
  ATTATTR_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status CheckEven(int x) {
  ATTATTR_RETURN_IF_ERROR(Half(x).status());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, ReturnTheFirstErrorAndOtherwiseTheValue) {
  EXPECT_EQ(*Quarter(12), 3);
  EXPECT_EQ(Quarter(6).status().message(), "odd");  // 6 / 2 = 3 is odd
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace attattr
