// BERT WordPiece tokenizer from a vocab.txt (Hugging Face `BertTokenizer` semantics): basic
// tokenization (text cleanup, optional lower-casing and accent stripping via Unicode NFD,
// punctuation and CJK splitting), then greedy longest-match-first WordPiece with a 100-character
// word limit and [UNK]. The path for checkpoints without a tokenizer.json (hf_tokenizer.h reads
// those). Immutable after Load(); all const methods are safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/tokenizer.h"

namespace attattr::engine {

// What tokenizer_config.json says about a vocab.txt tokenizer.
struct TokenizerOptions {
  // Lower-case the text before splitting. Default: true (uncased vocabularies).
  bool do_lower_case = true;
  // Strip accents (Unicode NFD, drop combining marks). Unset: follows do_lower_case, as HF does.
  std::optional<bool> strip_accents;
  // Put spaces around CJK ideographs so each becomes its own word. Default: true.
  bool tokenize_chinese_chars = true;
  // Words longer than this many Unicode characters become [UNK]. Default: 100.
  int max_input_chars_per_word = 100;
};

// One word piece of a single text, with its byte span in that text.
struct WordPiece {
  std::string piece;
  int32_t id = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
};

class WordPieceTokenizer final : public Tokenizer {
 public:
  // Reads a vocab.txt (one token per line, id = line number). Fails with NotFound / InvalidArgument
  // naming the file when it is missing, empty, or lacks [CLS], [SEP], [PAD] or [UNK].
  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> Load(const std::string& vocab_path,
                                                                  const TokenizerOptions& options);
  ~WordPieceTokenizer() override;

  std::string_view kind() const override { return "wordpiece"; }

  // Word pieces of one text, without special tokens. Invalid UTF-8 bytes are dropped.
  std::vector<WordPiece> Tokenize(std::string_view text) const;

  // [CLS] text [SEP] (text_pair [SEP]), truncated longest-first so the result has at most
  // `max_length` tokens (Hugging Face `truncation="longest_first"`). max_length must be >= 3 for
  // pairs and >= 2 for single texts.
  absl::StatusOr<Encoding> Encode(std::string_view text, std::optional<std::string_view> text_pair,
                                  int max_length) const override;

  int32_t cls_id() const;
  int32_t sep_id() const;
  int32_t pad_id() const;
  int32_t unk_id() const;
  int32_t vocab_size() const override;
  // The token string of an id; "[UNK]" for ids out of range.
  const std::string& IdToToken(int32_t id) const override;
  std::optional<int32_t> TokenToId(std::string_view token) const override;
  // A token written [LIKE_THIS] ([CLS], [SEP], [unused7], ...).
  bool IsSpecial(int32_t id) const override;
  // A "##" piece.
  bool ContinuesWord(int32_t id) const override;

 private:
  struct Impl;
  explicit WordPieceTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace attattr::engine
