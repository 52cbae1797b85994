/* Thin C ABI over the Hugging Face `tokenizers` Rust crate (src/lib.rs): load a tokenizer.json,
 * encode one text or a pair exactly as a transformers fast tokenizer called with
 * add_special_tokens=True, truncation="longest_first" and max_length does, and look up tokens.
 * Every function is safe to call from many threads on one tokenizer. Strings handed out
 * (errors, tokens) are freed with attattr_hf_string_free; no Rust panic crosses this boundary
 * (it becomes an error). */
#ifndef ATTATTR_HF_TOKENIZERS_H_
#define ATTATTR_HF_TOKENIZERS_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct AttattrHfTokenizer AttattrHfTokenizer;
typedef struct AttattrHfEncoding AttattrHfEncoding;

/* The arrays of one encoding, each `len` long, valid until attattr_hf_encoding_free.
 * sequence_ids: 0 for tokens of the text, 1 of the pair, -1 for tokens the post-processor added.
 * offsets: 2*len byte offsets [begin, end) into the token's own segment. */
typedef struct {
  size_t len;
  const uint32_t* ids;
  const uint32_t* type_ids;
  const int32_t* sequence_ids;
  const size_t* offsets;
} AttattrHfEncodingView;

/* Parses tokenizer.json bytes. NULL and *error (a message) when they are not a tokenizer. Any
 * truncation or padding the file configures is dropped: encode takes max_length per call. */
AttattrHfTokenizer* attattr_hf_tokenizer_from_json(const char* json, size_t len, char** error);
void attattr_hf_tokenizer_free(AttattrHfTokenizer* tokenizer);

/* The model's algorithm: "WordPiece", "BPE", "Unigram" or "WordLevel" (a static string). */
const char* attattr_hf_tokenizer_model_type(const AttattrHfTokenizer* tokenizer);
/* WordPiece's continuing-subword prefix (usually "##"); NULL for other models. Static for the
 * tokenizer's life. */
const char* attattr_hf_tokenizer_continuing_prefix(const AttattrHfTokenizer* tokenizer);
/* Vocabulary size, added tokens included (the largest id + 1 a model may see). */
size_t attattr_hf_tokenizer_vocab_size(const AttattrHfTokenizer* tokenizer);
/* How many distinct ids the vocabulary's tokens and added tokens have: below vocab_size when
 * some ids below it have no token (cheap, whatever the ids). */
size_t attattr_hf_tokenizer_distinct_ids(const AttattrHfTokenizer* tokenizer);
/* 1 and *id when `token` (UTF-8, len bytes) is in the vocabulary or an added token; else 0. */
int attattr_hf_tokenizer_token_to_id(const AttattrHfTokenizer* tokenizer, const char* token,
                                     size_t len, uint32_t* id);
/* The token string of an id (free it), or NULL when no token has that id. */
char* attattr_hf_tokenizer_id_to_token(const AttattrHfTokenizer* tokenizer, uint32_t id);
/* 1 when the id is an added token marked special ([CLS], <s>, <pad>, ...); else 0. */
int attattr_hf_tokenizer_is_special(const AttattrHfTokenizer* tokenizer, uint32_t id);
/* How many tokens the post-processor adds to one text (pair = 0) or a pair (pair = 1). */
size_t attattr_hf_tokenizer_added_tokens(const AttattrHfTokenizer* tokenizer, int pair);

/* Encodes `text` (and `pair` when it is not NULL), both UTF-8 of the given byte lengths, with
 * special tokens, truncated longest-first (from the right) to at most max_length tokens in all.
 * NULL and *error when a text is not UTF-8 or max_length cannot hold the special tokens. */
AttattrHfEncoding* attattr_hf_tokenizer_encode(const AttattrHfTokenizer* tokenizer,
                                               const char* text, size_t text_len, const char* pair,
                                               size_t pair_len, size_t max_length, char** error);
AttattrHfEncodingView attattr_hf_encoding_view(const AttattrHfEncoding* encoding);
/* Token i of the encoding (UTF-8, *len bytes, not NUL-terminated; valid until the free). */
const char* attattr_hf_encoding_token(const AttattrHfEncoding* encoding, size_t i, size_t* len);
void attattr_hf_encoding_free(AttattrHfEncoding* encoding);

void attattr_hf_string_free(char* s);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ATTATTR_HF_TOKENIZERS_H_ */
