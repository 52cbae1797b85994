// libFuzzer entry point for the WordPiece tokenizer: a vocab.txt and the text a client sends. Input
// layout: byte 0 chooses the options (bit 0 lower-casing, bits 1-2 accent stripping unset/off/on,
// bit 3 CJK splitting); then, up to a NUL byte, a vocabulary file (one token per line), and after
// it the text. Without a NUL the whole rest is the text and a small fixed vocabulary is used. The
// tokenizer must refuse a bad vocabulary with a message and, for any text, return pieces whose byte
// spans lie in the text, in text order, ids inside the vocabulary, and encodings within max_length
// that start with [CLS] and end with [SEP]. Single-threaded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "attattr/engine/wordpiece_tokenizer.h"
#include "fuzz_file.h"

namespace {

using attattr::engine::TokenizerOptions;
using attattr::engine::WordPieceTokenizer;

constexpr char kFixedVocab[] =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\na\nfilm\nfine\n##s\n##ing\n,\n.\n!\nun\n##believ\n"
    "##able\ncafe\ncafé\n\xe4\xb8\xad\n\xe6\x96\x87\n";

void CheckTokenizer(const WordPieceTokenizer& tokenizer, std::string_view text) {
  size_t previous_begin = 0;
  for (const auto& piece : tokenizer.Tokenize(text)) {
    if (piece.begin > piece.end || piece.end > text.size()) std::abort();
    if (piece.begin < previous_begin) std::abort();  // pieces come in text order
    previous_begin = piece.begin;
    if (piece.id < 0 || piece.id >= tokenizer.vocab_size()) std::abort();
  }
  for (int max_length : {2, 8, 512}) {
    absl::StatusOr<attattr::engine::Encoding> single =
        tokenizer.Encode(text, std::nullopt, max_length);
    if (!single.ok()) {
      if (single.status().message().empty()) std::abort();
      continue;
    }
    const auto& ids = single->input_ids;
    if (ids.size() < 2 || static_cast<int>(ids.size()) > max_length) std::abort();
    if (ids.front() != tokenizer.cls_id() || ids.back() != tokenizer.sep_id()) std::abort();
  }
  const size_t half = text.size() / 2;
  absl::StatusOr<attattr::engine::Encoding> pair =
      tokenizer.Encode(text.substr(0, half), text.substr(half), 16);
  if (pair.ok() && (pair->input_ids.size() < 3 || pair->input_ids.size() > 16)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  TokenizerOptions options;
  options.do_lower_case = (data[0] & 1) != 0;
  if ((data[0] & 6) == 2) options.strip_accents = false;
  if ((data[0] & 6) == 4) options.strip_accents = true;
  options.tokenize_chinese_chars = (data[0] & 8) != 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t nul = rest.find('\0');

  static attattr::fuzz::ScratchFile vocab_file("-vocab.txt");
  std::string_view text = rest;
  if (nul == std::string_view::npos) {
    vocab_file.Write(reinterpret_cast<const uint8_t*>(kFixedVocab), std::strlen(kFixedVocab));
  } else {
    vocab_file.Write(data + 1, nul);
    text = rest.substr(nul + 1);
  }
  absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> tokenizer =
      WordPieceTokenizer::Load(vocab_file.path(), options);
  if (!tokenizer.ok()) {
    if (tokenizer.status().message().empty()) std::abort();
    return 0;
  }
  CheckTokenizer(**tokenizer, text);
  return 0;
}
