// Regression tests for hostile text reaching the tokenizer (issue: the "tokenizer bomb"): a long
// run of alternating combining marks used to be put in canonical order mark by mark (quadratic:
// 128k marks cost 4.4 s, so the 768k here would take ~2.5 min). The run is now sorted per run of
// marks and tokenizes in a fraction of a second; CTest runs this binary with a 60 s TIMEOUT, which
// is the assertion (no timed EXPECTs). A text with no word pieces is refused.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "attattr/base/field_error.h"
#include "attattr/engine/wordpiece_tokenizer.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

std::unique_ptr<WordPieceTokenizer> TinyTokenizer(const TokenizerOptions& options = {}) {
  const std::string dir = ::attattr::testing::MakeTempDir("tok-bomb");
  const std::string path = dir + "/vocab.txt";
  std::ofstream(path, std::ios::binary) << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ncafe\nb\n";
  auto tok = WordPieceTokenizer::Load(path, options);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(*tok) : nullptr;
}

// `pairs` alternations of U+0301 (combining acute, class 230) and U+0316 (combining grave below,
// class 220): every mark is out of canonical order with its neighbour.
std::string AlternatingMarks(int pairs) {
  std::string marks;
  marks.reserve(static_cast<size_t>(pairs) * 4);
  for (int i = 0; i < pairs; ++i) marks += "\xcc\x81\xcc\x96";
  return marks;
}

TEST(TokenizerBombTest, AMegabyteAndAHalfOfCombiningMarksTokenizesInLinearTime) {
  auto tok = TinyTokenizer();  // uncased: accents are stripped after NFD
  ASSERT_NE(tok, nullptr);
  const std::string text = "cafe" + AlternatingMarks(384 * 1024) + " b";
  ASSERT_GT(text.size(), 3u << 20 >> 1);
  const std::vector<WordPiece> pieces = tok->Tokenize(text);
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0].piece, "cafe");
  EXPECT_EQ(pieces[1].piece, "b");
}

TEST(TokenizerBombTest, CasedTokenizingOfAMarkRunIsLinearToo) {
  TokenizerOptions cased;
  cased.do_lower_case = false;  // NFC keeps the marks: one very long [UNK] word
  auto tok = TinyTokenizer(cased);
  ASSERT_NE(tok, nullptr);
  const std::vector<WordPiece> pieces = tok->Tokenize("b" + AlternatingMarks(256 * 1024));
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].piece, "[UNK]");
}

TEST(TokenizerBombTest, ATextOfOnlyWhitespaceOrControlCharactersHasNoWordPieces) {
  auto tok = TinyTokenizer();
  ASSERT_NE(tok, nullptr);
  auto only_control = tok->Encode("\x01\x02 \t\x7f", std::nullopt, 16);
  ASSERT_TRUE(only_control.ok()) << only_control.status();
  const absl::Status refused = CheckSegmentsHaveTokens(*only_control, false);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  const auto field = GetFieldError(refused);
  ASSERT_TRUE(field.has_value());
  EXPECT_EQ(field->field.name, "text");
  auto pair = tok->Encode("cafe", std::string_view("\x03\x04"), 16);
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_TRUE(CheckSegmentsHaveTokens(*pair, false).ok());
  EXPECT_EQ(GetFieldError(CheckSegmentsHaveTokens(*pair, true))->field.name, "text_pair");
}

}  // namespace
}  // namespace attattr::engine
