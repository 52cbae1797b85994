// A tokenizer.json (the Hugging Face fast-tokenizer file every current checkpoint ships) through
// the Hugging Face `tokenizers` library itself (the Rust crate behind engine/hf_tokenizers' C ABI):
// WordPiece, byte-level BPE (RoBERTa, GPT-2, ModernBERT, Llama-3) and Unigram / SentencePiece
// (XLM-R, DeBERTa-v3, Llama-2) with their normalizers, pre-tokenizers, post-processors and added
// tokens, so encodings equal transformers' fast tokenizers. Immutable after Load(): thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/tokenizer.h"

namespace attattr::engine {

class HfTokenizer final : public Tokenizer {
 public:
  // tokenizer.json files above this size are refused before parsing (the largest in common use,
  // multilingual Unigram vocabularies, are ~17 MiB).
  static constexpr std::size_t kMaxFileBytes = std::size_t{64} << 20;

  // Reads and parses `path`. NotFound when missing; InvalidArgument naming the file when it is too
  // large, not a tokenizer, or has no token for some id below its vocabulary size.
  static absl::StatusOr<std::unique_ptr<HfTokenizer>> Load(const std::string& path);
  // Parses tokenizer.json bytes; `name` is what errors call them.
  static absl::StatusOr<std::unique_ptr<HfTokenizer>> FromJson(std::string_view json,
                                                               const std::string& name);
  ~HfTokenizer() override;
  HfTokenizer(const HfTokenizer&) = delete;
  HfTokenizer& operator=(const HfTokenizer&) = delete;

  std::string_view kind() const override;
  // Texts that are not UTF-8 are refused (field error {"text"} / {"text_pair"}); max_length must
  // hold the special tokens and one token of each text.
  absl::StatusOr<Encoding> Encode(std::string_view text, std::optional<std::string_view> text_pair,
                                  int max_length) const override;
  int32_t vocab_size() const override;
  const std::string& IdToToken(int32_t id) const override;
  std::optional<int32_t> TokenToId(std::string_view token) const override;
  bool IsSpecial(int32_t id) const override;
  bool ContinuesWord(int32_t id) const override;

 private:
  struct Impl;
  explicit HfTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace attattr::engine
