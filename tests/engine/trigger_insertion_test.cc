// The trigger placement rule (trigger_insertion.h) on hand-built encodings, positions worked out by
// hand and by the authors' own insertion loop: relative positions in both segments, places with
// rounding half to even, collisions (right; appended past the end), segment B, longest-first
// re-truncation that keeps the [SEP]s, and the error for a sentence-pair pattern put into
// single-sentence data. No model.
#include "attattr/engine/trigger_insertion.h"

#include <gtest/gtest.h>

#include <optional>

namespace attattr::engine {
namespace {

// [CLS] a… [SEP] (b… [SEP]) with ids 101 / 102 for the specials and 1000 + k for word k.
Encoding Make(const std::vector<std::string>& a,
              const std::optional<std::vector<std::string>>& b = {}) {
  Encoding e;
  int next = 1000;
  auto add = [&](const std::string& t, int32_t id, int type, int segment) {
    e.tokens.push_back(t);
    e.input_ids.push_back(id);
    e.token_type_ids.push_back(type);
    e.offsets.push_back(Encoding::Span{segment, 0, segment < 0 ? 0u : 1u});
  };
  add("[CLS]", 101, 0, -1);
  for (const auto& t : a) add(t, next++, 0, 0);
  add("[SEP]", 102, 0, -1);
  if (b) {
    for (const auto& t : *b) add(t, next++, 1, 1);
    add("[SEP]", 102, 1, -1);
  }
  return e;
}

TriggerToken Token(const std::string& t, int segment, double r) {
  TriggerToken tok;
  tok.token = t;
  tok.id = 5000 + static_cast<int32_t>(t[0]);
  tok.segment = segment;
  tok.relative_position = r;
  return tok;
}

TEST(TriggerInsertionTest, RelativePositionsInBothSegments) {
  // Single: n = 6, s = 5, r = p / 4.
  const Encoding single = Make({"a", "b", "c", "d"});
  EXPECT_DOUBLE_EQ(MakeTriggerToken(single, 1)->relative_position, 0.25);
  EXPECT_DOUBLE_EQ(MakeTriggerToken(single, 4)->relative_position, 1.0);
  EXPECT_FALSE(MakeTriggerToken(single, 0).ok());  // [CLS]
  EXPECT_FALSE(MakeTriggerToken(single, 5).ok());  // [SEP]
  // Pair: [CLS] a b [SEP] x y z [SEP]: n = 8, s = 3; A: p / 2, B: (p − 3) / 3.
  const Encoding pair = Make({"a", "b"}, std::vector<std::string>{"x", "y", "z"});
  EXPECT_DOUBLE_EQ(MakeTriggerToken(pair, 1)->relative_position, 0.5);
  EXPECT_DOUBLE_EQ(MakeTriggerToken(pair, 2)->relative_position, 1.0);
  EXPECT_EQ(MakeTriggerToken(pair, 4)->segment, 1);
  EXPECT_DOUBLE_EQ(MakeTriggerToken(pair, 4)->relative_position, 1.0 / 3);
  EXPECT_DOUBLE_EQ(MakeTriggerToken(pair, 5)->relative_position, 2.0 / 3);
  EXPECT_DOUBLE_EQ(MakeTriggerToken(pair, 6)->relative_position, 1.0);
  EXPECT_EQ(MakeTriggerToken(pair, 6)->token, "z");
  EXPECT_FALSE(MakeTriggerToken(pair, 3).ok());
  EXPECT_FALSE(MakeTriggerToken(pair, 7).ok());
}

TEST(TriggerInsertionTest, PatternDropsSpecialsAndRepeatsAndKeepsSourceOrder) {
  const Encoding pair = Make({"a", "b"}, std::vector<std::string>{"x", "y", "z"});
  auto p = MakeTriggerPattern(pair, {{0, 4}, {2, 2}, {3, 7}});
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->tokens.size(), 2u);
  EXPECT_EQ(p->tokens[0].token, "b");
  EXPECT_EQ(p->tokens[0].source_position, 2);
  EXPECT_EQ(p->tokens[1].token, "x");
  EXPECT_TRUE(p->NeedsSentencePair());
  EXPECT_TRUE(MakeTriggerPattern(pair, {{0, 3}})->tokens.empty());
}

// Expectations from the authors' run_adver_evaluate.py loop run in Python (cur_pos =
// round((len + k)·r); +1 when equal to the previous; tokens.insert(cur_pos, token)).
// Regression (method review): the rule was read as a 1-based slot, one word piece to the left of
// where the authors put every trigger.
TEST(TriggerInsertionTest, SlotsAreTheAuthorsListInserts) {
  EXPECT_EQ(TriggerSlots(5, {0.5}), (std::vector<int>{3}));  // 6·0.5 = 3
  EXPECT_EQ(TriggerSlots(5, {0.25, 1.0}),
            (std::vector<int>{2, 6}));                       // 7·0.25 = 1.75 → 2; 7 appends
  EXPECT_EQ(TriggerSlots(4, {0.5}), (std::vector<int>{2}));  // 2.5 → 2 (half to even)
  EXPECT_EQ(TriggerSlots(6, {0.5}), (std::vector<int>{4}));  // 3.5 → 4
  EXPECT_EQ(TriggerSlots(3, {0.5, 0.5}), (std::vector<int>{2, 3}));  // 2.5 → 2; collision → 3
  EXPECT_EQ(TriggerSlots(1, {1.0, 1.0}), (std::vector<int>{1, 2}));  // past the end appends
  EXPECT_EQ(TriggerSlots(5, {0.05}), (std::vector<int>{0}));         // 0.3 → 0: first
  EXPECT_EQ(TriggerSlots(9, {0.4}), (std::vector<int>{4}));
  EXPECT_EQ(TriggerSlots(10, {0.1}), (std::vector<int>{1}));
  EXPECT_EQ(TriggerSlots(12, {0.2, 0.6}), (std::vector<int>{3, 8}));
  EXPECT_EQ(TriggerSlots(10, {1.0}), (std::vector<int>{10}));
  // Three at one place: the third is inserted before the first two, which move right.
  EXPECT_EQ(TriggerSlots(4, {0.5, 0.5, 0.5}), (std::vector<int>{5, 6, 4}));
}

TEST(TriggerInsertionTest, InsertsIntoSingleSentence) {
  const Encoding e = Make({"the", "film", "is", "very", "good"});
  auto one = InsertTrigger(e, {Token("bad", 0, 0.5)}, 128);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->encoding.tokens, (std::vector<std::string>{"[CLS]", "the", "film", "is", "bad",
                                                            "very", "good", "[SEP]"}));
  EXPECT_EQ(one->inserted, 1);
  EXPECT_EQ(one->encoding.input_ids[4], 5000 + 'b');
  EXPECT_EQ(one->encoding.input_ids[3], e.input_ids[3]);
  EXPECT_EQ(one->encoding.token_type_ids, std::vector<int32_t>(8, 0));
  EXPECT_EQ(one->encoding.offsets[4].segment, 0);
  EXPECT_EQ(one->encoding.offsets[4].end, 0u);
  // Two tokens at r = 0.5: 7·0.5 = 3.5 → 4; the second collides and moves to 5.
  auto two = InsertTrigger(e, {Token("x", 0, 0.5), Token("y", 0, 0.5)}, 128);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->encoding.tokens, (std::vector<std::string>{"[CLS]", "the", "film", "is", "very",
                                                            "x", "y", "good", "[SEP]"}));
}

TEST(TriggerInsertionTest, InsertsIntoSegmentBAndKeepsTokenTypes) {
  const Encoding e = Make({"a", "b"}, std::vector<std::string>{"c", "d", "e"});
  const std::vector<TriggerToken> pattern = {Token("w", 0, 0.5), Token("z", 1, 1.0)};
  // A: 3·0.5 = 1.5 → index 2 (last); B: 4·1 = 4 (last).
  auto r = InsertTrigger(e, pattern, 128);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->encoding.tokens, (std::vector<std::string>{"[CLS]", "a", "b", "w", "[SEP]", "c", "d",
                                                          "e", "z", "[SEP]"}));
  EXPECT_EQ(r->encoding.token_type_ids, (std::vector<int32_t>{0, 0, 0, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(r->encoding.offsets[8].segment, 1);
  EXPECT_EQ(r->inserted, 2);
}

TEST(TriggerInsertionTest, RetruncatesLongestFirstKeepingSeparators) {
  const Encoding e = Make({"a", "b"}, std::vector<std::string>{"c", "d", "e"});
  const std::vector<TriggerToken> pattern = {Token("w", 0, 0.5), Token("z", 1, 1.0)};
  // 10 tokens; A = 3, B = 4: B loses its last token, the inserted "z".
  auto r9 = InsertTrigger(e, pattern, 9);
  ASSERT_TRUE(r9.ok());
  EXPECT_EQ(r9->encoding.tokens,
            (std::vector<std::string>{"[CLS]", "a", "b", "w", "[SEP]", "c", "d", "e", "[SEP]"}));
  EXPECT_EQ(r9->inserted, 1);
  // A = 3, B = 3: a tie cuts B.
  auto r8 = InsertTrigger(e, pattern, 8);
  EXPECT_EQ(r8->encoding.tokens,
            (std::vector<std::string>{"[CLS]", "a", "b", "w", "[SEP]", "c", "d", "[SEP]"}));
  // A = 3, B = 2: A is longer and loses its last token, the inserted "w".
  auto r7 = InsertTrigger(e, pattern, 7);
  EXPECT_EQ(r7->encoding.tokens,
            (std::vector<std::string>{"[CLS]", "a", "b", "[SEP]", "c", "d", "[SEP]"}));
  EXPECT_EQ(r7->encoding.token_type_ids, (std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(r7->inserted, 0);
  // Single sentence: the end of A goes.
  auto s = InsertTrigger(Make({"a", "b", "c"}), {Token("w", 0, 0.25)}, 4);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->encoding.tokens, (std::vector<std::string>{"[CLS]", "a", "w", "[SEP]"}));
}

TEST(TriggerInsertionTest, PairPatternIntoSingleSentenceIsAnError) {
  auto r = InsertTrigger(Make({"a", "b"}), {Token("w", 0, 0.5), Token("z", 1, 1.0)}, 128);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(r.status().message()).find("pattern:"), std::string::npos);
  // Segments are read from the spans: interleaved or non-contiguous segments are refused.
  Encoding broken = Make({"a", "c"}, std::vector<std::string>{"b"});
  broken.offsets[2].segment = 1;  // -1 0 1 -1 1 -1
  EXPECT_FALSE(FindSegments(broken).ok());
  Encoding gap = Make({"a", "c"});
  gap.offsets[1].segment = -1;
  gap.offsets[2].segment = 0;
  EXPECT_TRUE(FindSegments(gap).ok());  // -1 -1 0 -1: A is [2, 3)
  gap.offsets[1].segment = 0;
  gap.offsets[2].segment = -1;
  gap.offsets[3].segment = 0;  // -1 0 -1 0: A is not contiguous
  EXPECT_FALSE(FindSegments(gap).ok());
  // Without spans, token types decide: 0 1 0 1 1 is not [CLS] A [SEP] B [SEP].
  Encoding by_types = Make({"a"}, std::vector<std::string>{"b"});
  by_types.offsets.clear();
  EXPECT_TRUE(FindSegments(by_types).ok());
  by_types.token_type_ids[1] = 1;
  EXPECT_FALSE(FindSegments(by_types).ok());
}

// RoBERTa's template <s> A </s></s> B </s>, all token type 0: segments from the spans, the two
// separators between the segments kept, relative positions per segment, every type 0.
TEST(TriggerInsertionTest, RobertaTemplateKeepsItsSeparators) {
  Encoding e;
  auto add = [&](const std::string& t, int32_t id, int segment) {
    e.tokens.push_back(t);
    e.input_ids.push_back(id);
    e.token_type_ids.push_back(0);
    e.offsets.push_back(Encoding::Span{segment, 0, segment < 0 ? 0u : 1u});
  };
  add("<s>", 0, -1);
  add("a", 10, 0);
  add("b", 11, 0);
  add("</s>", 2, -1);
  add("</s>", 2, -1);
  add("x", 20, 1);
  add("y", 21, 1);
  add("z", 22, 1);
  add("</s>", 2, -1);
  auto bounds = FindSegments(e);
  ASSERT_TRUE(bounds.ok());
  EXPECT_EQ(bounds->a_begin, 1);
  EXPECT_EQ(bounds->a_end, 3);
  EXPECT_EQ(bounds->b_begin, 5);
  EXPECT_EQ(bounds->b_end, 8);
  EXPECT_DOUBLE_EQ(MakeTriggerToken(e, 1)->relative_position, 0.5);
  EXPECT_DOUBLE_EQ(MakeTriggerToken(e, 5)->relative_position, 1.0 / 3);
  EXPECT_FALSE(MakeTriggerToken(e, 4).ok());  // the second </s>
  auto r = InsertTrigger(e, {Token("w", 1, 1.0)}, 9);
  ASSERT_TRUE(r.ok()) << r.status();
  // B = 4 > A = 2: B's last token goes; the trigger slotted last in B is the one cut.
  EXPECT_EQ(r->encoding.tokens,
            (std::vector<std::string>{"<s>", "a", "b", "</s>", "</s>", "x", "y", "z", "</s>"}));
  EXPECT_EQ(r->inserted, 0);
  auto wide = InsertTrigger(e, {Token("w", 1, 0.5)}, 10);
  ASSERT_TRUE(wide.ok());
  EXPECT_EQ(wide->encoding.tokens, (std::vector<std::string>{"<s>", "a", "b", "</s>", "</s>", "x",
                                                             "y", "w", "z", "</s>"}));
  EXPECT_EQ(wide->encoding.token_type_ids, std::vector<int32_t>(10, 0));
  EXPECT_EQ(wide->encoding.offsets[7].segment, 1);
  EXPECT_FALSE(InsertTrigger(e, {Token("w", 0, 1.0)}, 3).ok());  // 4 special tokens
}

}  // namespace
}  // namespace attattr::engine
