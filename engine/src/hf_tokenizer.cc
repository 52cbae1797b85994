// HfTokenizer (hf_tokenizer.h): owns the Rust tokenizer handle of engine/hf_tokenizers and turns
// its encodings into the engine's Encoding. Every token string is copied once at load so
// IdToToken can return references, and the word-start rule of ContinuesWord is fixed per model.
#include "attattr/engine/hf_tokenizer.h"

#include <sstream>

#include "absl/strings/str_cat.h"
#include "attattr/base/field_error.h"
#include "attattr_hf_tokenizers.h"
#include "model_file.h"

namespace attattr::engine {
namespace {

struct TokenizerDeleter {
  void operator()(AttattrHfTokenizer* t) const { attattr_hf_tokenizer_free(t); }
};
struct EncodingDeleter {
  void operator()(AttattrHfEncoding* e) const { attattr_hf_encoding_free(e); }
};
// A string the Rust library handed out; freed by it.
struct RustString {
  char* s = nullptr;
  RustString() = default;
  RustString(const RustString&) = delete;
  RustString& operator=(const RustString&) = delete;
  ~RustString() { attattr_hf_string_free(s); }
  std::string str() const { return s == nullptr ? std::string() : std::string(s); }
};

// The error text quoted at most this long (it can echo parts of a hostile file).
std::string Shorten(std::string s) {
  constexpr std::size_t kMax = 200;
  if (s.size() > kMax) s = s.substr(0, kMax) + "…";
  return s;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

struct HfTokenizer::Impl {
  std::unique_ptr<AttattrHfTokenizer, TokenizerDeleter> handle;
  std::string kind;                       // "bpe", "wordpiece", "unigram", "wordlevel"
  std::optional<std::string> continuing;  // WordPiece's "##"
  std::vector<std::string> tokens;        // id -> token
  std::vector<bool> special;              // id -> special added token
  std::string unknown;                    // IdToToken of ids no token has
};

HfTokenizer::HfTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HfTokenizer::~HfTokenizer() = default;

absl::StatusOr<std::unique_ptr<HfTokenizer>> HfTokenizer::Load(const std::string& path) {
  // A regular file of at most kMaxFileBytes (model_file.h): a FIFO named tokenizer.json is an
  // error, not a load that blocks forever.
  absl::StatusOr<std::string> json = ReadModelFile(path, kMaxFileBytes);
  if (!json.ok()) return json.status();
  return FromJson(*json, path);
}

absl::StatusOr<std::unique_ptr<HfTokenizer>> HfTokenizer::FromJson(std::string_view json,
                                                                   const std::string& name) {
  if (json.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", json.size(),
                                                   " bytes, more than the ", kMaxFileBytes,
                                                   " a tokenizer.json may have"));
  }
  auto impl = std::make_unique<Impl>();
  RustString error;
  impl->handle.reset(attattr_hf_tokenizer_from_json(json.data(), json.size(), &error.s));
  if (impl->handle == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": not a Hugging Face tokenizer.json (", Shorten(error.str()), ")"));
  }
  const AttattrHfTokenizer* h = impl->handle.get();
  const std::string_view model = attattr_hf_tokenizer_model_type(h);
  impl->kind = model == "BPE"         ? "bpe"
               : model == "WordPiece" ? "wordpiece"
               : model == "Unigram"   ? "unigram"
                                      : "wordlevel";
  if (const char* p = attattr_hf_tokenizer_continuing_prefix(h); p != nullptr) {
    impl->continuing = p;
  }
  const std::size_t n = attattr_hf_tokenizer_vocab_size(h);
  if (n == 0 || n > static_cast<std::size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": vocabulary of ", n, " tokens"));
  }
  // Ids without a token are counted before a slot is made for each id (a vocabulary with ids up
  // to 2^31 and two tokens must not allocate 2^31 strings).
  if (const std::size_t distinct = attattr_hf_tokenizer_distinct_ids(h); distinct < n) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": ", n - distinct, " ids below the vocabulary size ", n, " have no token"));
  }
  impl->tokens.reserve(n);
  impl->special.reserve(n);
  std::size_t holes = 0;
  for (std::size_t id = 0; id < n; ++id) {
    RustString t;
    t.s = attattr_hf_tokenizer_id_to_token(h, static_cast<uint32_t>(id));
    if (t.s == nullptr) ++holes;
    impl->tokens.push_back(t.str());
    impl->special.push_back(attattr_hf_tokenizer_is_special(h, static_cast<uint32_t>(id)) != 0);
  }
  if (holes > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", holes, " ids below the vocabulary size ", n, " have no token"));
  }
  return std::unique_ptr<HfTokenizer>(new HfTokenizer(std::move(impl)));
}

std::string_view HfTokenizer::kind() const { return impl_->kind; }

absl::StatusOr<Encoding> HfTokenizer::Encode(std::string_view text,
                                             std::optional<std::string_view> text_pair,
                                             int max_length) const {
  if (max_length < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_length: ", max_length, " < 1"));
  }
  RustString error;
  std::unique_ptr<AttattrHfEncoding, EncodingDeleter> e(
      attattr_hf_tokenizer_encode(impl_->handle.get(), text.data(), text.size(),
                                  text_pair.has_value() ? text_pair->data() : nullptr,
                                  text_pair.has_value() ? text_pair->size() : 0,
                                  static_cast<std::size_t>(max_length), &error.s));
  if (e == nullptr) {
    std::string message = error.str();
    for (const std::string field : {"text_pair", "text"}) {
      if (StartsWith(message, field + ": ")) {
        return InvalidFieldError({field, -1}, message.substr(field.size() + 2));
      }
    }
    return absl::InvalidArgumentError(absl::StrCat("max_length: ", message));
  }
  const AttattrHfEncodingView v = attattr_hf_encoding_view(e.get());
  Encoding out;
  out.tokens.reserve(v.len);
  out.input_ids.reserve(v.len);
  out.token_type_ids.reserve(v.len);
  out.offsets.reserve(v.len);
  for (std::size_t i = 0; i < v.len; ++i) {
    std::size_t len = 0;
    const char* t = attattr_hf_encoding_token(e.get(), i, &len);
    out.tokens.emplace_back(t, len);
    out.input_ids.push_back(static_cast<int32_t>(v.ids[i]));
    out.token_type_ids.push_back(static_cast<int32_t>(v.type_ids[i]));
    Encoding::Span span;
    span.segment = v.sequence_ids[i];
    if (span.segment >= 0) {
      span.begin = v.offsets[2 * i];
      span.end = v.offsets[2 * i + 1];
    }
    out.offsets.push_back(span);
  }
  return out;
}

int32_t HfTokenizer::vocab_size() const { return static_cast<int32_t>(impl_->tokens.size()); }

const std::string& HfTokenizer::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->tokens.size()) return impl_->unknown;
  return impl_->tokens[static_cast<std::size_t>(id)];
}

std::optional<int32_t> HfTokenizer::TokenToId(std::string_view token) const {
  uint32_t id = 0;
  if (attattr_hf_tokenizer_token_to_id(impl_->handle.get(), token.data(), token.size(), &id) == 0) {
    return std::nullopt;
  }
  return static_cast<int32_t>(id);
}

bool HfTokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && static_cast<std::size_t>(id) < impl_->special.size() &&
         impl_->special[static_cast<std::size_t>(id)];
}

bool HfTokenizer::ContinuesWord(int32_t id) const {
  const std::string& t = IdToToken(id);
  if (impl_->continuing.has_value())
    return !impl_->continuing->empty() && StartsWith(t, *impl_->continuing);
  // Byte-level BPE marks a preceding space with "Ġ" (U+0120), SentencePiece with "▁" (U+2581).
  return !StartsWith(t, "\xC4\xA0") && !StartsWith(t, "\xE2\x96\x81");
}

}  // namespace attattr::engine
