// Parses a Hugging Face checkpoint directory's config.json (BERT, DistilBERT, ELECTRA, RoBERTa,
// XLM-RoBERTa, DeBERTa-v2/v3, ModernBERT, the Llama family or GPT-2, by `model_type`) and
// tokenizer_config.json into plain structs. Validates what the encoder relies on (positive sizes,
// hidden divisible by heads, gelu) and names the offending key in errors; values are described in
// messages, never serialised (untrusted_json.h). No torch, no I/O beyond reading the two files
// (model_file.h). Thread-compatible.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attattr::engine {

// The architectures the engine implements, picked from config.json's `model_type`.
enum class ModelFamily {
  kBert,        // "bert" (also a config without model_type)
  kDistilBert,  // "distilbert": its own key names (dim, n_layers, ...), no token types
  kElectra,     // "electra": BERT's layers, embeddings of `embedding_size` projected up
  kRoberta,     // "roberta": BERT's layers, positions from pad_token_id + 1, dense+tanh head
  kXlmRoberta,  // "xlm-roberta": RoBERTa's architecture (a SentencePiece vocabulary)
  kDebertaV2,   // "deberta-v2" (DeBERTa-v2 and v3): disentangled relative-position attention
  kModernBert,  // "modernbert": pre-LayerNorm, rotary positions, GeGLU, local/global attention
  // Decoders (causal): RMSNorm, RoPE, grouped-query attention, SwiGLU.
  kLlama,    // "llama"
  kMistral,  // "mistral": Llama's layers, an optional sliding window
  kQwen2,    // "qwen2": Llama's layers, biases on the query/key/value projections
  kGpt2,     // "gpt2": learned positions, pre-LayerNorm, fused c_attn, Conv1D layout, GELU (tanh)
};

// Whether `family` is a causal decoder (the Llama family, GPT-2).
bool IsDecoder(ModelFamily family);

// Rotary positions as config.json gives them (transformers 5: `rope_parameters`; 4.x:
// `rope_scaling` beside `rope_theta`): the base, and how a long-context checkpoint rescales the
// frequencies (transformers' modeling_rope_utils.py; rotary_embedding.h computes them).
struct RopeConfig {
  enum class Type {
    kDefault,  // θ_i = theta^(−2i/d)
    kLinear,   // θ / factor
    kDynamic,  // dynamic NTK: the default up to max_position_embeddings, a larger base beyond
    kLlama3,   // Llama-3.1: long wavelengths ÷ factor, short kept, a smooth blend between
    kYarn,  // YaRN: interpolated and extrapolated frequencies ramped, cos/sin × attention_factor
  };
  Type type = Type::kDefault;
  double theta = 10000.0;
  double factor = 1.0;           // linear, dynamic, llama3, yarn
  double low_freq_factor = 1.0;  // llama3
  double high_freq_factor = 4.0;
  // llama3, yarn: the pre-training context; max_position_embeddings when absent.
  int original_max_position_embeddings = 0;
  double beta_fast = 32.0;        // yarn
  double beta_slow = 1.0;         // yarn
  bool truncate = true;           // yarn: the correction range rounded outwards
  double attention_factor = 1.0;  // yarn: resolved (from factor, mscale, mscale_all_dim if absent)
  int max_position_embeddings = 0;  // the model's (dynamic's reference length)
};

// The decoders' keys (config.json names): for the Llama family grouped-query attention, RoPE's
// base, biases; for GPT-2 how the attention scores are scaled.
struct DecoderConfig {
  int num_key_value_heads = 0;  // = num_attention_heads when absent
  RopeConfig rope;              // llama, mistral, qwen2
  bool qkv_bias = false;        // llama/mistral: attention_bias; qwen2: always
  bool o_bias = false;          // llama/mistral: attention_bias
  bool mlp_bias = false;        // llama: mlp_bias
  int sliding_window = 0;       // mistral: keys within the last sliding_window positions; 0 = all
  bool scale_attn_weights = true;                // gpt2: scores / sqrt(head_dim)
  bool scale_attn_by_inverse_layer_idx = false;  // gpt2: scores / (layer index + 1)
  // A causal LM's head is the input embeddings when the checkpoint has no lm_head.weight:
  // tie_word_embeddings, defaulting as transformers' configs do (GPT-2 true, the Llama family
  // false).
  bool tie_word_embeddings = false;
  // config.json pad_token_id (-1 when null or absent): transformers' sequence classifier scores
  // the rightmost token that is not this id (Model::EndAtScoredToken).
  int pad_token_id = -1;
};

// DeBERTa-v2's disentangled attention (config.json keys of the same names). The attention scores
// are QKᵀ plus content-to-position (c2p) and position-to-content (p2c) terms read from shared
// relative-position embeddings, all divided by sqrt(head_dim · (1 + #terms)).
struct DisentangledConfig {
  bool relative_attention = false;
  int max_relative_positions = 0;     // resolved: max_position_embeddings when the key is < 1
  int position_buckets = -1;          // > 0: log-bucketed relative positions (v3: 256)
  bool c2p = false;                   // pos_att_type holds "c2p"
  bool p2c = false;                   // pos_att_type holds "p2c"
  bool share_att_key = false;         // position terms reuse the layer's query/key projections
  bool norm_rel_embeddings = false;   // norm_rel_ebd holds "layer_norm"
  bool position_biased_input = true;  // absolute position embeddings are added to the input
  // Rows of the relative-position embedding the attention reads: 2 · (buckets or max positions).
  int span() const { return position_buckets > 0 ? position_buckets : max_relative_positions; }
};

// ModernBERT's layers (config.json keys of the same names). Each layer attends globally or within a
// window (`sliding`: |i − j| ≤ local_window, local_window = local_attention / 2), with rotary
// positions of its own base; the LayerNorms, projections and head dense layer have biases only when
// the config says so; the classifier reads h[CLS] or the mean over real tokens.
struct RotaryLayersConfig {
  std::vector<bool> sliding;  // per layer: layer_types / global_attn_every_n_layers
  int local_window = 64;      // local_attention / 2
  double global_rope_theta = 160000.0;
  double local_rope_theta = 10000.0;
  int max_position_embeddings = 0;
  bool norm_bias = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  bool classifier_bias = false;
  bool mean_pooling = false;  // classifier_pooling == "mean"
};

// "bert", "distilbert", "electra", "roberta", "xlm-roberta", "deberta-v2", "modernbert", "llama",
// "mistral", "qwen2", "gpt2": the model_type spelling.
const char* FamilyName(ModelFamily family);
// The supported model_type values, for messages: "bert, distilbert, electra, roberta, ...".
const char* SupportedFamilies();

// config.json in the engine's terms, whatever the family calls the keys.
struct ModelConfig {
  ModelFamily family = ModelFamily::kBert;
  std::vector<std::string> architectures;
  int vocab_size = 0;
  int hidden_size = 0;
  int embedding_size = 0;  // width of the embeddings (ELECTRA's may be smaller); = hidden_size
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int intermediate_size = 0;
  int max_position_embeddings = 0;
  // The position id of a text's first token: RoBERTa's pad_token_id + 1 (its position ids skip the
  // padding index), 0 elsewhere. Texts hold at most max_position_embeddings - position_offset.
  int position_offset = 0;
  int type_vocab_size = 2;          // 0 for families without token types (DistilBERT, DeBERTa-v3)
  DisentangledConfig disentangled;  // deberta-v2 only
  RotaryLayersConfig rotary;        // modernbert only
  DecoderConfig decoder;            // llama, mistral, qwen2, gpt2 only
  double layer_norm_eps = 1e-12;
  // The feed-forward activation: "gelu" (exact erf) for the encoders, "silu" for the Llama family,
  // "gelu_new" / "gelu_pytorch_tanh" (the tanh form) or "gelu" for GPT-2.
  std::string hidden_act = "gelu";
  std::vector<std::string> id2label;  // index = class id; empty when the config has none
  // Hugging Face's problem_type: "" (unset), "single_label_classification",
  // "multi_label_classification" or "regression".
  std::string problem_type;
  // Heads removed per layer (Hugging Face `pruned_heads`: layer -> original head indices).
  std::map<int, std::vector<int>> pruned_heads;
};

struct TokenizerConfig {
  bool do_lower_case = true;
  bool has_strip_accents = false;
  bool strip_accents = false;
  bool tokenize_chinese_chars = true;
  int model_max_length = 0;  // 0 when absent or unreasonably large
};

// `path` names the file in messages. Missing file: NotFound; a file that is not a regular file or
// is larger than kMaxConfigJsonBytes (model_file.h), JSON nested deeper than kMaxJsonDepth
// (untrusted_json.h), bad values: InvalidArgument.
absl::StatusOr<ModelConfig> ReadModelConfig(const std::string& path);
absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text, const std::string& path);
// A missing tokenizer_config.json is not an error: defaults (uncased) are returned. One that is
// there but cannot be read (a FIFO, too large) is, as is one that is not a JSON object.
absl::StatusOr<TokenizerConfig> ReadTokenizerConfig(const std::string& path);

}  // namespace attattr::engine
