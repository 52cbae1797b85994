// Trigger patterns (AttAttr's adversarial use, DESIGN.md §1 "Trigger search") and the authors' rule
// for inserting one into another example. Torch-free: plain functions over Encodings (example.h),
// so the placement rule is unit-tested without a model. Mining and evaluation live in
// trigger_search.h. No shared state; every function is safe to call from many threads.
//
// Placement rule, with every detail this implementation had to decide:
//  * Segments are read from each token's span (Encoding::Span::segment: 0 = A, 1 = B, -1 = a
//    special token the tokenizer added), so any template works ([CLS] A [SEP] B [SEP],
//    <s> A </s></s> B </s>, ...); an encoding without spans falls back to token_type_ids (A = the
//    type-0 tokens after [CLS] and before the first [SEP], B = the type-1 tokens before the final
//    [SEP]). Each segment is one contiguous run, A before B.
//  * Relative position of a mined token at position p of a segment [begin, end):
//      r = (p − begin + 1) / (end − begin),   so r ∈ (0, 1]
//    (for [CLS] A [SEP] B [SEP] with the first [SEP] at s and n tokens, the authors' p / (s − 1) in
//    A and (p − s) / (n − 2 − s) in B).
//  * An evaluation segment of `len` word pieces that receives the k pattern tokens of that segment
//    gets them as the authors' run_adver_evaluate.py does: in source order, each is inserted into
//    the segment's word-piece list (as Python's list.insert) at the 0-based index
//    t = round((len + k) · r), or t + 1 when t equals the previous token's index (a collision
//    moves the later token one place right); an index past the end appends. `round` rounds half
//    to even, as Python's round(). So r = 1 lands last, and an earlier token's final place can
//    move right when a later one is inserted before it (the authors' three-way collision).
//  * Re-truncation to `max_length` is BERT's `_truncate_seq_pair` / Hugging Face "longest_first":
//    while too long, drop the last token of the longer segment (a tie drops from segment B); the
//    special tokens around and between the segments are always kept, with their token types.
//    Inserted tokens get no protection (the authors truncate the attacked input like any other), so
//    a trigger slotted at the end of an over-long segment can be cut; the inserted count is
//    reported by InsertTrigger.
//  * Inserted tokens get the segment's token type, and an empty byte span (offsets[i].segment =
//    the segment, begin = end = 0): they are not in the original text.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/example.h"

namespace attattr::engine {

// One token of a trigger pattern, as mined.
struct TriggerToken {
  std::string token;             // word piece, e.g. "bad" or "##ly"
  int32_t id = 0;                // vocabulary id
  int segment = 0;               // 0 = segment A (text), 1 = segment B (text_pair)
  int source_position = 0;       // index in the mined example's encoding
  double relative_position = 0;  // r ∈ (0, 1] (see the header comment)
};

// A pattern mined from one example: the tokens of the top attribution connections of the head
// holding that example's largest attribution entry.
struct TriggerPattern {
  std::vector<TriggerToken> tokens;  // in source order, no [CLS]/[SEP], each position once
  int source = -1;                   // index of the mined example in the mining set
  int layer = -1;                    // 0-based
  int head = -1;                     // 0-based
  // Sum of the two largest attribution values of that head (the authors' ranking key); the second
  // connection's tokens are part of the pattern only when its value is ≥ 0.2 of the first.
  double score = 0;
  // The (query i, key j) positions of the connections used, in the source encoding.
  std::vector<std::pair<int, int>> connections;

  bool NeedsSentencePair() const;
};

// Segment A as [a_begin, a_end) and B as [b_begin, b_end) token indices of an encoding (B empty for
// single sentences). InvalidArgument for an encoding whose segments (see the header comment) are
// missing, interleaved or not contiguous.
struct SegmentBounds {
  int a_begin = 1, a_end = 1, b_begin = 0, b_end = 0;
  bool pair = false;
};
absl::StatusOr<SegmentBounds> FindSegments(const Encoding& encoding);

// Relative position r of token `position` of `encoding` (see the header comment); InvalidArgument
// for [CLS]/[SEP] or a position outside the encoding.
absl::StatusOr<TriggerToken> MakeTriggerToken(const Encoding& encoding, int position);

// Builds the pattern of `encoding` from its connections: tokens at i and j of each connection,
// without [CLS]/[SEP], each position once, in source order.
absl::StatusOr<TriggerPattern> MakeTriggerPattern(
    const Encoding& encoding, const std::vector<std::pair<int, int>>& connections);

// The 0-based indices the k tokens (relative positions `r`, in source order) end at in a segment
// of `len` tokens grown to len + k by the insertion rule (see the header comment).
std::vector<int> TriggerSlots(int len, const std::vector<double>& r);

struct InsertedTrigger {
  Encoding encoding;
  int inserted = 0;  // trigger tokens still present after re-truncation
  // Per token of `encoding`: whether it is a trigger token (so a caller that cuts the encoding
  // further can count what it kept).
  std::vector<bool> trigger_at;
};

// Inserts `tokens` (ids and strings as given — a random control passes other ids) into
// `encoding` by the placement rule, then re-truncates to `max_length`. InvalidArgument
// ("pattern: ...") when a token belongs to segment B and the encoding is a single sentence, or
// max_length < 3 (pairs) / 2.
absl::StatusOr<InsertedTrigger> InsertTrigger(const Encoding& encoding,
                                              const std::vector<TriggerToken>& tokens,
                                              int max_length);

}  // namespace attattr::engine
