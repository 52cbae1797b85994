// libFuzzer entry point for tokenizer.json (HfTokenizer, the Hugging Face `tokenizers` crate behind
// engine/hf_tokenizers): the file a checkpoint ships and the text a client sends. Input layout: up
// to the first NUL byte, a tokenizer.json; after it, the text (its first half and second half are
// also encoded as a pair). Without a NUL the whole input is the text, for a small fixed byte-level
// BPE tokenizer. In the fuzz build the Rust code carries sanitizer coverage too, so libFuzzer
// explores the JSON parser, normalizers, pre-tokenizers and models. The tokenizer must refuse a bad
// file with a message, never crash (a Rust panic becomes an error), and for any text return an
// encoding within max_length whose ids lie in the vocabulary, whose spans lie in their segment's
// text, and whose segments the trigger insertion can read. Single-threaded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "attattr/engine/hf_tokenizer.h"
#include "attattr/engine/trigger_insertion.h"

namespace {

using attattr::engine::Encoding;
using attattr::engine::HfTokenizer;

constexpr char kFixedTokenizer[] = R"({"version":"1.0","truncation":null,"padding":null,
"added_tokens":[{"id":0,"content":"<s>","single_word":false,"lstrip":false,"rstrip":false,
"normalized":false,"special":true},{"id":1,"content":"</s>","single_word":false,"lstrip":false,
"rstrip":false,"normalized":false,"special":true}],"normalizer":null,
"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
"post_processor":{"type":"RobertaProcessing","sep":["</s>",1],"cls":["<s>",0],"trim_offsets":true,
"add_prefix_space":false},"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},"model":{"type":"BPE","dropout":null,
"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":false,
"byte_fallback":false,"vocab":{"<s>":0,"</s>":1,"a":2,"b":3,"c":4,"Ġ":5,"Ġa":6,"ab":7,"Ġab":8},
"merges":["Ġ a","a b","Ġa b"]}})";

void CheckEncoding(const HfTokenizer& tokenizer, const Encoding& e, int max_length,
                   std::string_view a, std::string_view b) {
  const size_t n = e.input_ids.size();
  if (n > static_cast<size_t>(max_length)) std::abort();
  if (e.tokens.size() != n || e.token_type_ids.size() != n || e.offsets.size() != n) std::abort();
  for (size_t i = 0; i < n; ++i) {
    if (e.input_ids[i] < 0 || e.input_ids[i] >= tokenizer.vocab_size()) std::abort();
    const auto& span = e.offsets[i];
    if (span.segment < -1 || span.segment > 1) std::abort();
    const size_t limit = span.segment == 1 ? b.size() : a.size();
    if (span.begin > span.end || span.end > limit) std::abort();
  }
  // Segments must be readable (contiguous, A before B) whenever both texts kept a token.
  bool has_a = false, has_b = false;
  for (const auto& span : e.offsets) {
    has_a = has_a || span.segment == 0;
    has_b = has_b || span.segment == 1;
  }
  if (has_a && !attattr::engine::FindSegments(e).ok()) std::abort();
  (void)has_b;
}

void CheckTokenizer(const HfTokenizer& tokenizer, std::string_view text) {
  for (int max_length : {1, 4, 512}) {
    auto single = tokenizer.Encode(text, std::nullopt, max_length);
    if (!single.ok()) {
      if (single.status().message().empty()) std::abort();
      continue;
    }
    CheckEncoding(tokenizer, *single, max_length, text, {});
  }
  const std::string_view a = text.substr(0, text.size() / 2), b = text.substr(text.size() / 2);
  auto pair = tokenizer.Encode(a, b, 16);
  if (pair.ok()) {
    CheckEncoding(tokenizer, *pair, 16, a, b);
  } else if (pair.status().message().empty()) {
    std::abort();
  }
  for (int32_t id : {0, 1, tokenizer.vocab_size() - 1}) {
    const std::string& t = tokenizer.IdToToken(id);
    auto back = tokenizer.TokenToId(t);
    (void)back;
    (void)tokenizer.IsSpecial(id);
    (void)tokenizer.ContinuesWord(id);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  static const std::unique_ptr<HfTokenizer> fixed = [] {
    auto t = HfTokenizer::FromJson(kFixedTokenizer, "fixed");
    if (!t.ok()) std::abort();
    return std::move(*t);
  }();
  if (nul == std::string_view::npos) {
    CheckTokenizer(*fixed, input);
    return 0;
  }
  auto tokenizer = HfTokenizer::FromJson(input.substr(0, nul), "tokenizer.json");
  if (!tokenizer.ok()) {
    if (tokenizer.status().message().empty()) std::abort();
    return 0;
  }
  CheckTokenizer(**tokenizer, input.substr(nul + 1));
  return 0;
}
