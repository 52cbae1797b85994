// Bounded quoting of input in messages (attattr/base/quote.h).
#include "attattr/base/quote.h"

#include <gtest/gtest.h>

#include <string>

namespace attattr {
namespace {

TEST(QuoteInputTest, ShortValuesAreQuotedWhole) {
  EXPECT_EQ(QuoteInput("sst2"), "'sst2'");
  EXPECT_EQ(QuoteInput(""), "''");
}

TEST(QuoteInputTest, LongValuesShowAPrefixAndTheirSize) {
  const std::string q = QuoteInput(std::string(1 << 20, 'm'));
  EXPECT_EQ(q, "'" + std::string(kQuotedPrefixBytes, 'm') + "\u2026' (1048576 bytes)");
}

TEST(QuoteInputTest, TheCutNeverSplitsAUtf8SequenceAndControlsAreEscaped) {
  // 3 ASCII bytes then "é" (2 bytes): a 4-byte cut would split it.
  EXPECT_EQ(QuoteInput("abc\xc3\xa9xyz", 4), "'abc\u2026' (8 bytes)");
  EXPECT_EQ(QuoteInput("a\nb\tc\x01"), "'a\\nb\\tc\\x01'");
}

}  // namespace
}  // namespace attattr
