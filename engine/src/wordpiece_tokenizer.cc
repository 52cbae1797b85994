// BERT WordPiece tokenizer (wordpiece_tokenizer.h), mirroring transformers' slow
// `BertTokenizer` 4.x (PreTrainedTokenizer special-token split and pre-lowering, BasicTokenizer,
// WordpieceTokenizer) while tracking each character's byte span in the original text. It does not
// pad, batch, or know added tokens beyond [PAD] [UNK] [CLS] [SEP] [MASK]. Immutable after Load():
// thread-safe.
#include "attattr/engine/wordpiece_tokenizer.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "attattr/base/field_error.h"
#include "model_file.h"
#include "utf8proc.h"

namespace attattr::engine {
namespace {

// One Unicode character on its way through the pipeline, with the byte span [begin, end) of the
// original characters it came from (a composed or decomposed character keeps the union).
struct Char {
  int32_t cp = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
};
using Chars = std::vector<Char>;

constexpr std::array<std::string_view, 5> kSpecialTokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                            "[MASK]"};

// Strict UTF-8 decoding (no overlongs, surrogates or values above U+10FFFF); every byte that does
// not start a well-formed sequence is dropped, like Python's bytes.decode(errors="ignore").
Chars DecodeUtf8(std::string_view text) {
  Chars out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char b0 = s[i];
    if (b0 < 0x80) {
      out.push_back({b0, i, i + 1});
      ++i;
      continue;
    }
    int len = 0;
    int32_t cp = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
      cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      cp = b0 & 0x0F;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      cp = b0 & 0x07;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    }
    bool ok = len > 0 && i + len <= n;
    for (int k = 1; ok && k < len; ++k) {
      const unsigned char b = s[i + k];
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) {
        ok = false;
      } else {
        cp = (cp << 6) | (b & 0x3F);
      }
    }
    if (!ok) {
      ++i;  // drop this byte and resynchronise on the next one
      continue;
    }
    out.push_back({cp, i, i + len});
    i += len;
  }
  return out;
}

void AppendUtf8(int32_t cp, std::string* out) {
  utf8proc_uint8_t buf[4];
  const utf8proc_ssize_t n = utf8proc_encode_char(cp, buf);
  out->append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

utf8proc_category_t Category(int32_t cp) { return utf8proc_category(cp); }

int CombiningClass(int32_t cp) { return utf8proc_get_property(cp)->combining_class; }

// HF _is_control: every C* category except \t \n \r.
bool IsControl(int32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  switch (Category(cp)) {
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
      return true;
    default:
      return false;
  }
}

// HF _is_whitespace (mapped to ' ' by _clean_text) plus U+2028/U+2029, which survive cleaning but
// split words in Python's str.split().
bool IsSplitSpace(int32_t cp) {
  if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') return true;
  if (cp < 0x80) return false;
  const utf8proc_category_t cat = Category(cp);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

// HF _is_punctuation.
bool IsPunctuation(int32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
      (cp >= 123 && cp <= 126)) {
    return true;
  }
  if (cp < 0x80) return false;
  switch (Category(cp)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

// HF BasicTokenizer._is_chinese_char (the CJK Unified Ideographs blocks, not all of CJK).
bool IsChineseChar(int32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// Python's str.lower() applied one character at a time (as PreTrainedTokenizer.tokenize does with
// its `(.+?)` regex): the simple lower-case mapping, except U+0130 which becomes "i" U+0307.
void LowerCase(Chars* chars) {
  const bool has_dotted_capital_i =
      std::any_of(chars->begin(), chars->end(), [](const Char& c) { return c.cp == 0x130; });
  if (!has_dotted_capital_i) {
    for (Char& c : *chars) {
      if (c.cp < 0x80) {
        if (c.cp >= 'A' && c.cp <= 'Z') c.cp += 'a' - 'A';
      } else {
        c.cp = utf8proc_tolower(c.cp);
      }
    }
    return;
  }
  Chars out;
  out.reserve(chars->size() + 4);
  for (const Char& c : *chars) {
    if (c.cp == 0x130) {
      out.push_back({'i', c.begin, c.end});
      out.push_back({0x307, c.begin, c.end});
    } else {
      out.push_back({utf8proc_tolower(c.cp), c.begin, c.end});
    }
  }
  *chars = std::move(out);
}

// Full canonical decomposition of each character followed by canonical ordering (NFD), keeping
// every output character tagged with the span of the character it came from.
Chars Decompose(const Chars& in) {
  Chars out;
  out.reserve(in.size() + 8);
  for (const Char& c : in) {
    if (c.cp < 0xC0) {
      out.push_back(c);
      continue;
    }
    utf8proc_int32_t buf[32];
    int last_boundclass = 0;
    const utf8proc_ssize_t n =
        utf8proc_decompose_char(c.cp, buf, 32, UTF8PROC_DECOMPOSE, &last_boundclass);
    if (n <= 0 || n > 32) {
      out.push_back(c);
      continue;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) out.push_back({buf[k], c.begin, c.end});
  }
  // Canonical ordering: a stable sort of each run of non-starters by combining class. Sorting each
  // run (O(k log k)) rather than inserting mark by mark keeps hostile input linear-ish: a run of
  // 100k alternating marks cost seconds with insertion (a tokenizer bomb).
  std::size_t i = 0;
  while (i < out.size()) {
    if (CombiningClass(out[i].cp) == 0) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < out.size() && CombiningClass(out[end].cp) != 0) ++end;
    if (end - i > 1) {
      std::stable_sort(out.begin() + i, out.begin() + end, [](const Char& a, const Char& b) {
        return CombiningClass(a.cp) < CombiningClass(b.cp);
      });
    }
    i = end;
  }
  return out;
}

// The primary composite of (starter, c), or 0 when there is none (composition exclusions honoured).
int32_t ComposePair(int32_t starter, int32_t c) {
  utf8proc_int32_t buf[2] = {starter, c};
  const utf8proc_ssize_t n = utf8proc_normalize_utf32(
      buf, 2, static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
  return n == 1 ? buf[0] : 0;
}

// NFC with span tracking (the loop of utf8proc's own composition step).
Chars Nfc(const Chars& in) {
  bool all_below = true;
  for (const Char& c : in) {
    if (c.cp >= 0x300) {
      all_below = false;
      break;
    }
  }
  if (all_below) return in;  // nothing below U+0300 decomposes or composes
  const Chars d = Decompose(in);
  Chars out;
  out.reserve(d.size());
  std::ptrdiff_t starter = -1;
  int max_ccc = -1;
  for (const Char& c : d) {
    const int ccc = CombiningClass(c.cp);
    if (starter >= 0 && ccc > max_ccc) {
      const int32_t composed = ComposePair(out[starter].cp, c.cp);
      if (composed > 0) {
        Char& s = out[starter];
        s.cp = composed;
        s.begin = std::min(s.begin, c.begin);
        s.end = std::max(s.end, c.end);
        continue;
      }
    }
    out.push_back(c);
    if (ccc != 0) {
      max_ccc = std::max(max_ccc, ccc);
    } else {
      starter = static_cast<std::ptrdiff_t>(out.size()) - 1;
      max_ccc = -1;
    }
  }
  return out;
}

// HF _run_strip_accents: NFD, then drop Mn marks.
Chars StripAccents(const Chars& in) {
  Chars out;
  out.reserve(in.size());
  for (const Char& c : Decompose(in)) {
    if (c.cp >= 0x300 && Category(c.cp) == UTF8PROC_CATEGORY_MN) continue;
    out.push_back(c);
  }
  return out;
}

std::string ToUtf8(const Chars& chars, std::size_t from, std::size_t to) {
  std::string s;
  s.reserve(to - from);
  for (std::size_t i = from; i < to; ++i) AppendUtf8(chars[i].cp, &s);
  return s;
}

}  // namespace

struct WordPieceTokenizer::Impl {
  TokenizerOptions options;
  bool strip_accents = true;
  std::vector<std::string> id_to_token;                  // one entry per vocabulary line
  std::unordered_map<std::string, int32_t> token_to_id;  // a repeated line: the last id wins (HF)
  std::vector<std::pair<Chars, int32_t>> special;        // special tokens present in the vocabulary
  int32_t cls_id = 0, sep_id = 0, pad_id = 0, unk_id = 0;
  std::string unk_token = "[UNK]";

  std::optional<int32_t> Find(const std::string& token) const {
    auto it = token_to_id.find(token);
    if (it == token_to_id.end()) return std::nullopt;
    return it->second;
  }

  void TokenizeChunk(Chars chars, std::vector<WordPiece>* out) const;
  void TokenizeWord(const Chars& word, std::vector<WordPiece>* out) const;
  void WordPieces(const Chars& token, std::size_t from, std::size_t to,
                  std::vector<WordPiece>* out) const;
};

// HF WordpieceTokenizer.tokenize on chars [from, to) of one punctuation-split token.
void WordPieceTokenizer::Impl::WordPieces(const Chars& token, std::size_t from, std::size_t to,
                                          std::vector<WordPiece>* out) const {
  if (from >= to) return;
  std::size_t begin = token[from].begin, end = token[from].end;
  for (std::size_t i = from; i < to; ++i) {
    begin = std::min(begin, token[i].begin);
    end = std::max(end, token[i].end);
  }
  const std::size_t n = to - from;
  if (n > static_cast<std::size_t>(std::max(options.max_input_chars_per_word, 0))) {
    out->push_back({unk_token, unk_id, begin, end});
    return;
  }
  // Byte offsets of each character within the token's UTF-8 text.
  std::string utf8;
  std::vector<std::size_t> at(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    at[i] = utf8.size();
    AppendUtf8(token[from + i].cp, &utf8);
  }
  at[n] = utf8.size();

  const std::size_t first = out->size();
  std::string candidate;
  std::size_t start = 0;
  while (start < n) {
    std::size_t stop = n;
    std::optional<int32_t> found;
    while (start < stop) {
      candidate.clear();
      if (start > 0) candidate = "##";
      candidate.append(utf8, at[start], at[stop] - at[start]);
      found = Find(candidate);
      if (found) break;
      --stop;
    }
    if (!found) {
      out->resize(first);
      out->push_back({unk_token, unk_id, begin, end});
      return;
    }
    std::size_t b = token[from + start].begin, e = token[from + start].end;
    for (std::size_t i = from + start; i < from + stop; ++i) {
      b = std::min(b, token[i].begin);
      e = std::max(e, token[i].end);
    }
    out->push_back({candidate, *found, b, e});
    start = stop;
  }
}

// One whitespace-delimited word of BasicTokenizer.tokenize, from NFC to WordPiece.
void WordPieceTokenizer::Impl::TokenizeWord(const Chars& raw, std::vector<WordPiece>* out) const {
  Chars word = Nfc(raw);
  // never_split: a word that is exactly a special token is neither lower-cased nor split.
  bool never_split = false;
  if (word.size() >= 5 && word.size() <= 6) {
    const std::string s = ToUtf8(word, 0, word.size());
    for (std::string_view t : kSpecialTokens) never_split = never_split || s == t;
  }
  if (never_split) {
    WordPieces(word, 0, word.size(), out);
    return;
  }
  if (options.do_lower_case) LowerCase(&word);  // BasicTokenizer's token.lower()
  if (strip_accents) word = StripAccents(word);
  // _run_split_on_punc: every punctuation character is a token of its own.
  std::size_t start = 0;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (IsPunctuation(word[i].cp)) {
      WordPieces(word, start, i, out);
      WordPieces(word, i, i + 1, out);
      start = i + 1;
    }
  }
  WordPieces(word, start, word.size(), out);
}

// BasicTokenizer.tokenize + WordPiece for text between special tokens.
void WordPieceTokenizer::Impl::TokenizeChunk(Chars chars, std::vector<WordPiece>* out) const {
  if (options.do_lower_case) LowerCase(&chars);  // PreTrainedTokenizer.tokenize's pre-lowering
  Chars word;
  auto flush = [&]() {
    if (!word.empty()) TokenizeWord(word, out);
    word.clear();
  };
  for (const Char& c : chars) {
    if (c.cp == 0 || c.cp == 0xFFFD || IsControl(c.cp)) continue;
    if (IsSplitSpace(c.cp)) {
      flush();
    } else if (options.tokenize_chinese_chars && IsChineseChar(c.cp)) {
      flush();
      word.push_back(c);
      flush();
    } else {
      word.push_back(c);
    }
  }
  flush();
}

WordPieceTokenizer::WordPieceTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WordPieceTokenizer::~WordPieceTokenizer() = default;

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::Load(
    const std::string& vocab_path, const TokenizerOptions& options) {
  // A regular file of at most kMaxVocabularyBytes (model_file.h): a FIFO or /dev/zero named
  // vocab.txt is an error, not a hang or an allocation without end.
  absl::StatusOr<std::string> read = ReadModelFile(vocab_path, kMaxVocabularyBytes);
  if (!read.ok()) {
    return absl::Status(read.status().code(),
                        absl::StrCat("vocabulary file ", read.status().message()));
  }
  const std::string data = *std::move(read);
  if (data.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("vocabulary file ", vocab_path, " is empty"));
  }
  if (options.max_input_chars_per_word < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_input_chars_per_word must be >= 0, got ",
                                                   options.max_input_chars_per_word,
                                                   " (vocabulary ", vocab_path, ")"));
  }

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->strip_accents = options.do_lower_case ? options.strip_accents.value_or(true)
                                              : options.strip_accents.value_or(false);
  // Lines end at "\n", "\r\n" or a lone "\r" (Python's universal newlines, as HF's load_vocab).
  std::size_t pos = 0;
  while (pos < data.size()) {
    std::size_t eol = data.find_first_of("\r\n", pos);
    std::size_t next;
    if (eol == std::string::npos) {
      eol = data.size();
      next = data.size();
    } else if (data[eol] == '\r' && eol + 1 < data.size() && data[eol + 1] == '\n') {
      next = eol + 2;
    } else {
      next = eol + 1;
    }
    std::string token = data.substr(pos, eol - pos);
    const Chars decoded = DecodeUtf8(token);
    std::size_t decoded_bytes = 0;
    for (const Char& c : decoded) decoded_bytes += c.end - c.begin;
    if (decoded_bytes != token.size()) {
      return absl::InvalidArgumentError(absl::StrCat("vocabulary file ", vocab_path, " line ",
                                                     impl->id_to_token.size() + 1,
                                                     " is not valid UTF-8"));
    }
    const auto id = static_cast<int32_t>(impl->id_to_token.size());
    impl->token_to_id[token] = id;
    impl->id_to_token.push_back(std::move(token));
    pos = next;
  }

  struct Required {
    const char* token;
    int32_t* id;
  };
  for (const Required& r : {Required{"[CLS]", &impl->cls_id}, Required{"[SEP]", &impl->sep_id},
                            Required{"[PAD]", &impl->pad_id}, Required{"[UNK]", &impl->unk_id}}) {
    const std::optional<int32_t> id = impl->Find(std::string(r.token));
    if (!id) {
      return absl::InvalidArgumentError(
          absl::StrCat("vocabulary file ", vocab_path, " lacks the special token ", r.token));
    }
    *r.id = *id;
  }
  for (std::string_view t : kSpecialTokens) {
    if (const std::optional<int32_t> id = impl->Find(std::string(t))) {
      impl->special.emplace_back(DecodeUtf8(t), *id);
    }
  }
  return std::unique_ptr<WordPieceTokenizer>(new WordPieceTokenizer(std::move(impl)));
}

std::vector<WordPiece> WordPieceTokenizer::Tokenize(std::string_view text) const {
  const Chars chars = DecodeUtf8(text);
  std::vector<WordPiece> out;
  // Special tokens written in the text stay whole (HF's added-tokens trie), leftmost first.
  std::size_t chunk_start = 0;
  std::size_t i = 0;
  while (i < chars.size()) {
    const std::pair<Chars, int32_t>* match = nullptr;
    if (chars[i].cp == '[') {
      for (const auto& sp : impl_->special) {
        const Chars& t = sp.first;
        if (i + t.size() > chars.size()) continue;
        bool eq = true;
        for (std::size_t k = 0; eq && k < t.size(); ++k) eq = chars[i + k].cp == t[k].cp;
        if (eq) {
          match = &sp;
          break;
        }
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    impl_->TokenizeChunk(Chars(chars.begin() + chunk_start, chars.begin() + i), &out);
    const std::size_t len = match->first.size();
    out.push_back(
        {impl_->id_to_token[match->second], match->second, chars[i].begin, chars[i + len - 1].end});
    i += len;
    chunk_start = i;
  }
  impl_->TokenizeChunk(Chars(chars.begin() + chunk_start, chars.end()), &out);
  return out;
}

absl::StatusOr<Encoding> WordPieceTokenizer::Encode(std::string_view text,
                                                    std::optional<std::string_view> text_pair,
                                                    int max_length) const {
  const bool pair = text_pair.has_value();
  const int specials = pair ? 3 : 2;
  if (max_length < specials) {
    return absl::InvalidArgumentError(absl::StrCat("max_length must be >= ", specials, " for ",
                                                   pair ? "a sentence pair" : "a single text",
                                                   ", got ", max_length));
  }
  std::vector<WordPiece> a = Tokenize(text);
  std::vector<WordPiece> b;
  if (pair) b = Tokenize(*text_pair);

  // Longest-first truncation as Hugging Face's fast tokenizers do it (tokenizers'
  // utils/truncation.rs, the only implementation in transformers 5): with n1 the shorter length,
  // the longer keeps max(n1, budget - n1); when both must be cut, the shorter keeps budget / 2
  // and the longer the rest. (The legacy Python tokenizer removed one token at a time and ended
  // one token apart from this when both are cut by an odd count.)
  const std::size_t budget = static_cast<std::size_t>(max_length - specials);
  if (a.size() + b.size() > budget) {
    if (!pair) {
      a.resize(budget);
    } else {
      const bool a_shorter = a.size() <= b.size();
      std::size_t n1 = a_shorter ? a.size() : b.size();
      std::size_t n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
      if (n1 + n2 > budget) {
        n1 = budget / 2;
        n2 = n1 + budget % 2;
      }
      const std::size_t keep_a = a_shorter ? n1 : n2;
      const std::size_t keep_b = a_shorter ? n2 : n1;
      const std::size_t from_a = a.size() - std::min(a.size(), keep_a);
      const std::size_t from_b = b.size() - std::min(b.size(), keep_b);
      a.resize(a.size() - from_a);
      b.resize(b.size() - from_b);
    }
  }

  Encoding enc;
  const std::size_t n = a.size() + b.size() + specials;
  enc.tokens.reserve(n);
  enc.input_ids.reserve(n);
  enc.token_type_ids.reserve(n);
  enc.offsets.reserve(n);
  auto add_special = [&](int32_t id, int32_t type) {
    enc.tokens.push_back(IdToToken(id));
    enc.input_ids.push_back(id);
    enc.token_type_ids.push_back(type);
    enc.offsets.push_back({-1, 0, 0});
  };
  auto add_pieces = [&](std::vector<WordPiece>& pieces, int segment) {
    for (WordPiece& p : pieces) {
      enc.tokens.push_back(std::move(p.piece));
      enc.input_ids.push_back(p.id);
      enc.token_type_ids.push_back(segment);
      enc.offsets.push_back({segment, p.begin, p.end});
    }
  };
  add_special(impl_->cls_id, 0);
  add_pieces(a, 0);
  add_special(impl_->sep_id, 0);
  if (pair) {
    add_pieces(b, 1);
    add_special(impl_->sep_id, 1);
  }
  return enc;
}

int32_t WordPieceTokenizer::cls_id() const { return impl_->cls_id; }
int32_t WordPieceTokenizer::sep_id() const { return impl_->sep_id; }
int32_t WordPieceTokenizer::pad_id() const { return impl_->pad_id; }
int32_t WordPieceTokenizer::unk_id() const { return impl_->unk_id; }
int32_t WordPieceTokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->id_to_token.size());
}

const std::string& WordPieceTokenizer::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->id_to_token.size()) return impl_->unk_token;
  return impl_->id_to_token[static_cast<std::size_t>(id)];
}

std::optional<int32_t> WordPieceTokenizer::TokenToId(std::string_view token) const {
  return impl_->Find(std::string(token));
}

bool WordPieceTokenizer::IsSpecial(int32_t id) const {
  const std::string& t = IdToToken(id);
  return t.size() >= 2 && t.front() == '[' && t.back() == ']';
}

bool WordPieceTokenizer::ContinuesWord(int32_t id) const {
  return IdToToken(id).rfind("##", 0) == 0;
}

}  // namespace attattr::engine
