// What the engine explains: one input example (a text or a sentence pair, with an optional gold
// label) and its tokenized encoding. Plain value types; no tensors, safe to copy between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace attattr::engine {

// One input to a classifier or encoder. `label` is the gold class index, or -1 when unknown.
struct Example {
  std::string text;
  std::optional<std::string> text_pair;
  int label = -1;
};

// A tokenized example as the model sees it: [CLS] a... [SEP] (b... [SEP]).
// All vectors have the same length n (the real length, no padding).
struct Encoding {
  std::vector<std::string> tokens;      // word pieces, e.g. "[CLS]", "play", "##ing"
  std::vector<int32_t> input_ids;       // vocabulary ids
  std::vector<int32_t> token_type_ids;  // 0 for [CLS], segment A and its [SEP]; 1 for segment B
  // Byte span [begin, end) of each token in the original text of its segment; special tokens have
  // segment -1 and an empty span. `segment` is 0 for `text`, 1 for `text_pair`.
  struct Span {
    int segment = -1;
    std::size_t begin = 0;
    std::size_t end = 0;
  };
  std::vector<Span> offsets;

  std::size_t size() const { return input_ids.size(); }
};

}  // namespace attattr::engine
