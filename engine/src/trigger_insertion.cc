// The authors' placement rule for trigger patterns (see trigger_insertion.h for every decision).
// Works on token vectors only; no model, no tensors.
#include "attattr/engine/trigger_insertion.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"

namespace attattr::engine {
namespace {

// One token of an encoding, carried through insertion and truncation together.
struct Piece {
  std::string token;
  int32_t id = 0;
  int32_t type = 0;
  Encoding::Span span;
  bool inserted = false;
};

std::vector<Piece> Slice(const Encoding& e, int begin, int end) {
  std::vector<Piece> out;
  for (int p = begin; p < end; ++p) {
    Piece piece;
    piece.token = p < static_cast<int>(e.tokens.size()) ? e.tokens[p] : "";
    piece.id = e.input_ids[p];
    if (p < static_cast<int>(e.token_type_ids.size())) piece.type = e.token_type_ids[p];
    if (p < static_cast<int>(e.offsets.size())) piece.span = e.offsets[p];
    out.push_back(std::move(piece));
  }
  return out;
}

// Places `tokens` (all of one segment, source order) into `segment` by the slot rule.
std::vector<Piece> Grow(const std::vector<Piece>& segment, const std::vector<TriggerToken>& tokens,
                        int segment_index) {
  if (tokens.empty()) return segment;
  std::vector<double> r;
  for (const auto& t : tokens) r.push_back(t.relative_position);
  const std::vector<int> at = TriggerSlots(static_cast<int>(segment.size()), r);
  const size_t total = segment.size() + tokens.size();
  std::vector<Piece> grown(total);
  std::vector<bool> taken(total, false);
  for (size_t k = 0; k < tokens.size(); ++k) {
    Piece& p = grown[at[k]];
    p.token = tokens[k].token;
    p.id = tokens[k].id;
    p.span = Encoding::Span{segment_index, 0, 0};
    p.inserted = true;
    taken[at[k]] = true;
  }
  size_t next = 0;
  for (size_t i = 0; i < total; ++i) {
    if (!taken[i]) grown[i] = segment[next++];
  }
  return grown;
}

}  // namespace

bool TriggerPattern::NeedsSentencePair() const {
  return std::any_of(tokens.begin(), tokens.end(),
                     [](const TriggerToken& t) { return t.segment == 1; });
}

namespace {

// [CLS] A [SEP] (B [SEP]) read from token types, for encodings built without spans.
absl::StatusOr<SegmentBounds> FindSegmentsByTokenTypes(const Encoding& e) {
  const int n = static_cast<int>(e.input_ids.size());
  if (n < 2 || e.token_type_ids.size() != e.input_ids.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("encoding: ", n, " ids and ", e.token_type_ids.size(),
                     " token types; expected [CLS] A [SEP] (B [SEP])"));
  }
  int zeros = 0;
  while (zeros < n && e.token_type_ids[zeros] == 0) ++zeros;
  for (int p = zeros; p < n; ++p) {
    if (e.token_type_ids[p] != 1) {
      return absl::InvalidArgumentError(absl::StrCat("encoding: token type ", e.token_type_ids[p],
                                                     " at ", p, "; expected 0…0 then 1…1"));
    }
  }
  SegmentBounds b;
  const int s = zeros - 1;  // the first [SEP]
  if (s < 1) return absl::InvalidArgumentError("encoding: no [SEP] after [CLS]");
  b.a_begin = 1;
  b.a_end = s;
  b.pair = zeros < n;
  if (b.pair) {
    b.b_begin = s + 1;
    b.b_end = n - 1;
  } else {
    b.b_begin = b.b_end = n;
  }
  return b;
}

}  // namespace

absl::StatusOr<SegmentBounds> FindSegments(const Encoding& e) {
  const int n = static_cast<int>(e.input_ids.size());
  if (e.offsets.size() != e.input_ids.size()) return FindSegmentsByTokenTypes(e);
  if (e.token_type_ids.size() != e.input_ids.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("encoding: ", n, " ids and ", e.token_type_ids.size(), " token types"));
  }
  int first[2] = {-1, -1}, last[2] = {-1, -1};
  for (int p = 0; p < n; ++p) {
    const int s = e.offsets[p].segment;
    if (s == -1) continue;
    if (s != 0 && s != 1) {
      return absl::InvalidArgumentError(absl::StrCat("encoding: segment ", s, " at ", p));
    }
    if (first[s] < 0) first[s] = p;
    last[s] = p;
  }
  if (first[0] < 0) return absl::InvalidArgumentError("encoding: no token of segment A");
  for (int s : {0, 1}) {
    for (int p = first[s]; p >= 0 && p <= last[s]; ++p) {
      if (e.offsets[p].segment != s) {
        return absl::InvalidArgumentError(
            absl::StrCat("encoding: segment ", s, " is not contiguous (token ", p, ")"));
      }
    }
  }
  if (first[1] >= 0 && first[1] < last[0]) {
    return absl::InvalidArgumentError("encoding: segment B starts before segment A ends");
  }
  SegmentBounds b;
  b.a_begin = first[0];
  b.a_end = last[0] + 1;
  b.pair = first[1] >= 0;
  if (b.pair) {
    b.b_begin = first[1];
    b.b_end = last[1] + 1;
  } else {
    b.b_begin = b.b_end = n;
  }
  return b;
}

absl::StatusOr<TriggerToken> MakeTriggerToken(const Encoding& e, int position) {
  ATTATTR_ASSIGN_OR_RETURN(auto bounds, FindSegments(e));
  const int n = static_cast<int>(e.input_ids.size());
  TriggerToken t;
  t.source_position = position;
  t.id = e.input_ids[std::clamp(position, 0, n - 1)];
  t.token = position >= 0 && position < static_cast<int>(e.tokens.size()) ? e.tokens[position] : "";
  auto relative = [position](int begin, int end) {
    return static_cast<double>(position - begin + 1) / static_cast<double>(end - begin);
  };
  if (position >= bounds.a_begin && position < bounds.a_end) {
    t.segment = 0;
    t.relative_position = relative(bounds.a_begin, bounds.a_end);
  } else if (bounds.pair && position >= bounds.b_begin && position < bounds.b_end) {
    t.segment = 1;
    t.relative_position = relative(bounds.b_begin, bounds.b_end);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("position: ", position, " is [CLS], [SEP] or outside the ", n, " tokens"));
  }
  return t;
}

absl::StatusOr<TriggerPattern> MakeTriggerPattern(
    const Encoding& e, const std::vector<std::pair<int, int>>& connections) {
  ATTATTR_ASSIGN_OR_RETURN(auto bounds, FindSegments(e));
  std::set<int> positions;
  for (const auto& [i, j] : connections) {
    for (int p : {i, j}) {
      const bool in_a = p >= bounds.a_begin && p < bounds.a_end;
      const bool in_b = bounds.pair && p >= bounds.b_begin && p < bounds.b_end;
      if (in_a || in_b) positions.insert(p);
    }
  }
  TriggerPattern pattern;
  pattern.connections = connections;
  for (int p : positions) {
    ATTATTR_ASSIGN_OR_RETURN(auto t, MakeTriggerToken(e, p));
    pattern.tokens.push_back(t);
  }
  return pattern;
}

std::vector<int> TriggerSlots(int len, const std::vector<double>& r) {
  const int total = len + static_cast<int>(r.size());
  // The grown segment as the authors' list after each insert: -1 = an own token, else k.
  std::vector<int> grown(static_cast<size_t>(std::max(len, 0)), -1);
  int previous = -1;
  for (size_t k = 0; k < r.size(); ++k) {
    // std::nearbyint rounds half to even in the default rounding mode, as Python's round().
    int t = static_cast<int>(std::nearbyint(static_cast<double>(total) * r[k]));
    if (t == previous) ++t;
    previous = t;
    t = std::clamp(t, 0, static_cast<int>(grown.size()));  // list.insert past the end appends
    grown.insert(grown.begin() + t, static_cast<int>(k));
  }
  std::vector<int> at(r.size());
  for (size_t i = 0; i < grown.size(); ++i) {
    if (grown[i] >= 0) at[grown[i]] = static_cast<int>(i);
  }
  return at;
}

absl::StatusOr<InsertedTrigger> InsertTrigger(const Encoding& e,
                                              const std::vector<TriggerToken>& tokens,
                                              int max_length) {
  ATTATTR_ASSIGN_OR_RETURN(auto bounds, FindSegments(e));
  std::vector<TriggerToken> in_a, in_b;
  for (const auto& t : tokens) {
    if (t.segment == 1) {
      if (!bounds.pair) {
        return absl::InvalidArgumentError(
            "pattern: has segment-B tokens (mined from sentence pairs) but the example is a single "
            "sentence");
      }
      in_b.push_back(t);
    } else if (t.segment == 0) {
      in_a.push_back(t);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("pattern: token segment ", t.segment));
    }
  }
  std::vector<Piece> a = Grow(Slice(e, bounds.a_begin, bounds.a_end), in_a, 0);
  std::vector<Piece> b =
      bounds.pair ? Grow(Slice(e, bounds.b_begin, bounds.b_end), in_b, 1) : std::vector<Piece>{};
  const int n = static_cast<int>(e.input_ids.size());
  // The special tokens before A, between A and B, and after the last segment.
  const std::vector<Piece> prefix = Slice(e, 0, bounds.a_begin);
  const std::vector<Piece> middle =
      bounds.pair ? Slice(e, bounds.a_end, bounds.b_begin) : std::vector<Piece>{};
  const std::vector<Piece> suffix = Slice(e, bounds.pair ? bounds.b_end : bounds.a_end, n);
  const size_t specials = prefix.size() + middle.size() + suffix.size();
  if (max_length < static_cast<int>(specials)) {
    return absl::InvalidArgumentError(absl::StrCat("max_length: ", max_length, " is too small"));
  }
  while (a.size() + b.size() + specials > static_cast<size_t>(max_length)) {
    if (a.size() > b.size()) {
      a.pop_back();
    } else {
      b.pop_back();
    }
  }
  // Every token of a segment, inserted or not, has the segment's token type.
  const int32_t type_a = e.token_type_ids.at(bounds.a_begin);
  const int32_t type_b = bounds.pair ? e.token_type_ids.at(bounds.b_begin) : 0;
  for (auto& p : a) p.type = type_a;
  for (auto& p : b) p.type = type_b;
  InsertedTrigger out;
  auto append = [&](const std::vector<Piece>& pieces) {
    for (const auto& p : pieces) {
      out.encoding.tokens.push_back(p.token);
      out.encoding.input_ids.push_back(p.id);
      out.encoding.token_type_ids.push_back(p.type);
      out.encoding.offsets.push_back(p.span);
      out.inserted += p.inserted ? 1 : 0;
      out.trigger_at.push_back(p.inserted);
    }
  };
  append(prefix);
  append(a);
  append(middle);
  append(b);
  append(suffix);
  return out;
}

}  // namespace attattr::engine
