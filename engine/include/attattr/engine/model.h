// A loaded checkpoint (Hugging Face directory; the families of model_config.h) with its tokenizer,
// ready for prediction and attribution. Opaque: the tensors live behind a pimpl so callers never
// include LibTorch. Thread-safety: a Model is immutable after Load(); all const methods may run
// concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/example.h"
#include "attattr/engine/memory_plan.h"
#include "attattr/engine/precision.h"
#include "attattr/engine/tokenizer.h"

namespace attattr::engine {

struct ModelInfo {
  std::string path;    // the directory it was loaded from ("" for random models)
  std::string family;  // config.json's model_type: "bert", "distilbert", "electra", "roberta", ...
  // How texts become tokens: "wordpiece", "bpe", "unigram" or "wordlevel" (tokenizer.h).
  std::string tokenizer = "wordpiece";
  std::string architecture;  // e.g. "BertForSequenceClassification", "DistilBertModel"
  std::string weights_file;  // file the weights came from (or the index of a sharded checkpoint)
  int num_layers = 0;        // L
  int num_heads = 0;         // H per layer as configured (before any pruning)
  // Key/value heads per layer: num_heads for every encoder family (a grouped-query decoder shares
  // fewer among its query heads; attributions stay per query head).
  int num_key_value_heads = 0;
  bool decoder = false;              // a causal decoder: the Llama family (llama, mistral, qwen2)
  std::vector<int> heads_per_layer;  // heads actually present per layer (fewer when pruned)
  int hidden_size = 0;
  int intermediate_size = 0;
  int vocab_size = 0;
  int max_length = 0;  // longest accepted input in tokens, special tokens included
  double layer_norm_eps = 0;
  bool has_classifier = false;  // false for encoder-only checkpoints (no pooler/classifier head)
  // A causal language model (a decoder loaded as *ForCausalLM / GPT2LMHeadModel): its head is the
  // LM head read at the last real token, its "classes" are the vocabulary's token ids
  // (num_classes = vocab_size) and labels stay empty. has_classifier is true for it.
  bool language_model = false;
  int num_classes = 0;              // the head's outputs: labels.size(), or the vocabulary
  std::vector<std::string> labels;  // class names by id (empty when !has_classifier or an LM)
  // What the classifier's outputs mean, as Hugging Face's problem_type says (with its default: one
  // output is a regression, more a single-label classification): "single_label_classification"
  // (a softmax over the classes), "multi_label_classification" (a sigmoid per label) or
  // "regression" (the outputs are the values). Empty without a classifier and for an LM.
  std::string problem_type;
  int64_t parameter_count = 0;
  std::string device;  // "cpu", "cuda:0", ...
  // How the weights are stored (LoadOptions::weights) and the bytes they take (a tied LM head and
  // its embeddings counted once).
  Precision weights = Precision::kFp32;
  int64_t weight_bytes = 0;
};

struct LoadOptions {
  // Where the weights live. Default: "cpu". A CUDA LibTorch build accepts "cuda" / "cuda:N".
  std::string device = "cpu";
  // How they are stored, whatever the checkpoint's dtype. kFp32: every weight fp32 (exact for
  // fp32, fp16 and bf16 checkpoints). kBf16: matrices and embedding tables bfloat16, biases and
  // norm scales fp32 — half the memory of a 0.5–1.5 B decoder; every pass over the model (clean
  // passes, predictions, F(0), the integrand) then multiplies in bf16 as Precision::kBf16's
  // integrand does, and attribution at Precision::kFp32 is refused (README "Precision").
  Precision weights = Precision::kFp32;
};

// Dimensions of a model with random weights (benchmarks, size tests). Default: BERT-base.
struct RandomModelSpec {
  int num_layers = 12;
  int num_heads = 12;
  int hidden_size = 768;
  int intermediate_size = 3072;
  int num_labels = 2;  // 0 = encoder-only
  int max_position_embeddings = 512;
  std::string vocab_path;  // a vocab.txt; its size sets the embedding rows
  bool do_lower_case = true;
  uint64_t seed = 0;
  std::string device = "cpu";
};

// One of a language model's most probable next tokens.
struct TokenProbability {
  int32_t id = 0;
  std::string token;  // the tokenizer's piece for id
  float probability = 0;
  float logit = 0;
};

// How many next tokens a language model's Prediction keeps (its vocabulary is too large to copy).
inline constexpr int kTopTokens = 10;

// Output of a clean forward pass for one example.
// What `probabilities` holds follows the head's problem_type (ModelInfo::problem_type):
// softmax(logits) for a single-label classifier and a language model, sigmoid(logits) per label
// for a multi-label head (each label on its own), nothing for a regression (its values are the
// logits: a probability over them means nothing).
struct Prediction {
  std::vector<float> logits;         // [C]; empty for encoder-only models and language models
  std::vector<float> probabilities;  // as above; empty for a regression
  int predicted = -1;                // argmax (a token id for an LM), -1 for encoder-only models
  // Language models: the kTopTokens most probable next tokens, most probable first.
  std::vector<TokenProbability> top_tokens;
  // probabilities[predicted] (also for an LM); 0 for a regression.
  float predicted_probability = 0;
  std::string problem_type;  // ModelInfo::problem_type of the model that made it
};

// OK when `info` is a classifier over labelled classes: what head importance and trigger search
// need, whose gold labels are classes. InvalidArgument ("model: <what> needs a classifier
// checkpoint", saying why for a language model, whose classes are the vocabulary) otherwise.
absl::Status RequireClassifier(const ModelInfo& info, const std::string& what);

// OK when a softmax over `info`'s outputs is what its classifier means (single-label classes, or
// a language model's vocabulary): the probability and log-probability targets. InvalidArgument
// otherwise, pointing at the logit target (a regression's softmax over one output is 1 whatever
// the input; a multi-label head scores each label on its own); the caller names the field.
absl::Status RequireSoftmaxClasses(const ModelInfo& info);

class Model {
 public:
  // Loads config.json, the tokenizer (tokenizer.json when present, else vocab.txt with
  // tokenizer_config.json) and the weights (model.safetensors, model.safetensors.index.json, or
  // pytorch_model.bin). Errors name the file and tensor:
  // NotFound for missing files/tensors, InvalidArgument for shape/dtype/format problems.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& dir,
                                                     const LoadOptions& options = {});
  // A model with N(0, 0.02) weights, for benchmarks at realistic sizes.
  static absl::StatusOr<std::unique_ptr<Model>> CreateRandom(const RandomModelSpec& spec);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelInfo& info() const;
  const Tokenizer& tokenizer() const;

  // Tokenizes with the model's maximum length. InvalidArgument ("text: empty") for empty text.
  absl::StatusOr<Encoding> Encode(const Example& example) const;
  // What Encode checks of an encoding made by the tokenizer elsewhere (`pair`: of a text pair):
  // no more tokens than positions, every id inside the embeddings and every token type inside
  // the model's types — an index past a table would be a device-side assert on a GPU.
  // InvalidArgument "text: ..." or "text_pair: ..." otherwise.
  absl::Status CheckEncoding(const Encoding& encoding, bool pair) const;
  // A decoder sequence classifier scores the rightmost token that is not its pad_token_id, as
  // transformers does (with pad = EOS, the token before a trailing EOS): the encoding is cut after
  // that token — the tokens after it cannot change its score under causal attention — keeping at
  // least the first token (transformers reads position 0 of an input that is all pad ids).
  // Encode() applies it; callers that build encodings otherwise apply it before scoring them.
  // Other models: unchanged. InvalidArgument, the field error {"text" or "text_pair", -1}, when
  // the cut leaves that segment (`pair`: of a text pair) without a token: a segment of nothing
  // but pad tokens.
  absl::Status EndAtScoredToken(Encoding* encoding, bool pair) const;
  // Encode() of each example, in order. The first failure is the field error {"examples", i}
  // (attattr/base/field_error.h), so callers name example i in their own terms.
  absl::StatusOr<std::vector<Encoding>> EncodeAll(const std::vector<Example>& examples) const;

  // Clean forward passes, batched as `batching` says (consecutive encodings, padded to the longest
  // of each batch: callers sort by length). `head_mask` (optional) is [L][H] with 1 = keep,
  // 0 = masked (multiplied into the attention probabilities, as Hugging Face does); in a pruned
  // checkpoint the first heads_per_layer[l] entries of row l address the heads still present.
  absl::StatusOr<std::vector<Prediction>> Predict(
      const std::vector<Encoding>& encodings,
      const std::vector<std::vector<float>>* head_mask = nullptr,
      const ForwardBatching& batching = {}) const;

  // Mean-pooled last hidden state (sentence-transformers pooling), [hidden_size] per encoding.
  absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<Encoding>& encodings) const;

  // Internal state, defined in engine/src; opaque outside the engine.
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace attattr::engine
