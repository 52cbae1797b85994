// The tokenizer interface the engine encodes texts with: one text or a sentence pair becomes an
// Encoding (ids, token types, each token's segment and byte span) with the model's special tokens,
// truncated longest-first to a maximum length. Two implementations: WordPieceTokenizer
// (wordpiece_tokenizer.h, a vocab.txt) and HfTokenizer (hf_tokenizer.h, a tokenizer.json through
// the Hugging Face `tokenizers` library: WordPiece, byte-level BPE, Unigram). Implementations are
// immutable after loading; every method is safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "attattr/engine/example.h"

namespace attattr::engine {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // The algorithm: "wordpiece", "bpe", "unigram" or "wordlevel".
  virtual std::string_view kind() const = 0;

  // The model's input for `text` (and `text_pair`): special tokens as the checkpoint's tokenizer
  // adds them ([CLS] a [SEP] b [SEP], <s> a </s></s> b </s>, ...), truncated longest-first so the
  // result has at most `max_length` tokens (Hugging Face `truncation="longest_first"`). Each
  // token's Encoding::Span names its segment (-1 for added special tokens).
  virtual absl::StatusOr<Encoding> Encode(std::string_view text,
                                          std::optional<std::string_view> text_pair,
                                          int max_length) const = 0;

  // Ids run from 0 to vocab_size() - 1 (added tokens included).
  virtual int32_t vocab_size() const = 0;
  // The token string of an id (the unknown token's string for ids no token has).
  virtual const std::string& IdToToken(int32_t id) const = 0;
  // The id of a token string, or std::nullopt.
  virtual std::optional<int32_t> TokenToId(std::string_view token) const = 0;
  // A special token ([CLS], <s>, <pad>, ...): never a word of a text.
  virtual bool IsSpecial(int32_t id) const = 0;
  // A piece that continues a word rather than starting one (WordPiece "##ing"; a byte-level BPE
  // piece without the "Ġ" space marker; a SentencePiece piece without "▁").
  virtual bool ContinuesWord(int32_t id) const = 0;
};

// The field error {"text"} or {"text_pair"} ("text: <why>") when a segment of `encoding` holds no
// token, which a classifier cannot be asked about. `why` defaults to what a tokenizer leaves empty:
// a text of only whitespace or control characters.
absl::Status CheckSegmentsHaveTokens(
    const Encoding& encoding, bool pair,
    absl::string_view why = "holds no tokens (only whitespace or control characters)");

}  // namespace attattr::engine
