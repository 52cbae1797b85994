// Parses Hugging Face config.json / tokenizer_config.json (see model_config.h).
#include "model_config.h"

#include <cctype>
#include <cmath>
#include <initializer_list>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "model_file.h"
#include "nlohmann/json.hpp"
#include "untrusted_json.h"

namespace attattr::engine {
namespace {

using nlohmann::json;

absl::Status ReadPositiveInt(const json& j, const std::string& key, const std::string& path,
                             int* out, bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (!required) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(path, ": missing key '", key, "'"));
  }
  if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > (1 << 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": '", key, "' must be a positive integer, got ", DescribeJson(*it)));
  }
  *out = static_cast<int>(it->get<int64_t>());
  return absl::OkStatus();
}

// The key names of the sizes, per family.
struct SizeKeys {
  const char* hidden;
  const char* layers;
  const char* heads;
  const char* intermediate;
  const char* activation;
  const char* max_positions;
};

SizeKeys KeysOf(ModelFamily family) {
  if (family == ModelFamily::kDistilBert) {
    return {"dim", "n_layers", "n_heads", "hidden_dim", "activation", "max_position_embeddings"};
  }
  if (family == ModelFamily::kModernBert) {
    return {"hidden_size",       "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "hidden_activation", "max_position_embeddings"};
  }
  if (family == ModelFamily::kGpt2) {
    return {"n_embd", "n_layer", "n_head", "n_inner", "activation_function", "n_positions"};
  }
  return {"hidden_size",       "num_hidden_layers", "num_attention_heads",
          "intermediate_size", "hidden_act",        "max_position_embeddings"};
}

bool ReadBool(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

// The boolean keys ReadBool reads, which must be true or false when present: transformers tests
// them for truth, so a 1, a "true" or a null (falsy there, the default here) would silently
// compute another model.
absl::Status CheckBooleans(const json& j, const std::string& where,
                           std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (auto it = j.find(key); it != j.end() && !it->is_boolean()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "'", key, "' is ", DescribeJson(*it), "; must be true or false"));
    }
  }
  return absl::OkStatus();
}

// The `|`-separated or listed names of a key ("p2c|c2p", ["p2c", "c2p"]), lower-cased.
std::vector<std::string> ReadNames(const json& j, const char* key) {
  std::vector<std::string> names;
  auto add = [&](std::string s) {
    s.erase(0, s.find_first_not_of(' '));
    s.erase(s.find_last_not_of(' ') + 1);
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!s.empty()) names.push_back(s);
  };
  auto it = j.find(key);
  if (it == j.end()) return names;
  if (it->is_string()) {
    std::string all = it->get<std::string>();
    for (size_t start = 0;;) {
      const size_t bar = all.find('|', start);
      add(all.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
  } else if (it->is_array()) {
    for (const auto& v : *it) {
      if (v.is_string()) add(v.get<std::string>());
    }
  }
  return names;
}

// DeBERTa-v2's keys; what the engine does not implement is refused naming the key.
absl::Status ParseDisentangled(const json& j, const std::string& path, ModelConfig* c) {
  DisentangledConfig& d = c->disentangled;
  d.relative_attention = ReadBool(j, "relative_attention", false);
  d.share_att_key = ReadBool(j, "share_att_key", false);
  d.position_biased_input = ReadBool(j, "position_biased_input", true);
  auto read_int = [&](const char* key, int fallback, int* out) -> absl::Status {
    *out = fallback;
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return absl::OkStatus();
    if (!it->is_number_integer() || it->get<int64_t>() > (1 << 20) ||
        it->get<int64_t>() < -(1 << 20)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": '", key, "' must be an integer, got ", DescribeJson(*it)));
    }
    *out = static_cast<int>(it->get<int64_t>());
    return absl::OkStatus();
  };
  ATTATTR_RETURN_IF_ERROR(read_int("max_relative_positions", -1, &d.max_relative_positions));
  if (d.max_relative_positions < 1) d.max_relative_positions = c->max_position_embeddings;
  ATTATTR_RETURN_IF_ERROR(read_int("position_buckets", -1, &d.position_buckets));
  for (const std::string& t : ReadNames(j, "pos_att_type")) {
    if (t == "c2p") {
      d.c2p = true;
    } else if (t == "p2c") {
      d.p2c = true;
    } else if (t != "none") {
      return absl::InvalidArgumentError(absl::StrCat(path, ": 'pos_att_type' holds '",
                                                     t.substr(0, 32), "'; supported: c2p, p2c"));
    }
  }
  for (const std::string& t : ReadNames(j, "norm_rel_ebd")) {
    if (t == "layer_norm") d.norm_rel_embeddings = true;
  }
  int conv = 0;
  ATTATTR_RETURN_IF_ERROR(read_int("conv_kernel_size", 0, &conv));
  if (conv > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'conv_kernel_size' is ", conv,
                     "; DeBERTa-v2's convolution after the first layer is not supported (only 0)"));
  }
  int head_size = 0;
  ATTATTR_RETURN_IF_ERROR(read_int("attention_head_size", 0, &head_size));
  if (head_size > 0 && head_size * c->num_attention_heads != c->hidden_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": 'attention_head_size' ", head_size,
                                                   " is not hidden_size / num_attention_heads"));
  }
  int pooler_size = 0;
  ATTATTR_RETURN_IF_ERROR(read_int("pooler_hidden_size", 0, &pooler_size));
  if (pooler_size > 0 && pooler_size != c->hidden_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": 'pooler_hidden_size' ", pooler_size,
                                                   " differs from hidden_size (not supported)"));
  }
  if (auto it = j.find("pooler_hidden_act");
      it != j.end() && !(it->is_string() && it->get<std::string>() == "gelu")) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": 'pooler_hidden_act' is ",
                                                   DescribeJson(*it),
                                                   "; only \"gelu\" (exact erf) is supported"));
  }
  if (d.relative_attention && d.span() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": relative attention without positions"));
  }
  if (!d.relative_attention && !d.position_biased_input) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": neither relative_attention nor position_biased_input: no positions"));
  }
  if (auto it = j.find("pruned_heads"); it != j.end() && it->is_object() && !it->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'pruned_heads' in a deberta-v2 checkpoint (not supported)"));
  }
  return absl::OkStatus();
}

// A positive finite number at `key` of `j` (kept at *out when absent); `where` names it in errors.
absl::Status ReadPositiveNumber(const json& j, const char* key, const std::string& where,
                                double* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number() || !(it->get<double>() > 0) || it->get<double>() > 1e12) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "'", key, "' must be a positive number, got ", DescribeJson(*it)));
  }
  *out = it->get<double>();
  return absl::OkStatus();
}

// ModernBERT's keys, in both the saved formats of transformers 4.x (global_attn_every_n_layers,
// global_rope_theta, local_rope_theta) and 5.x (layer_types, rope_parameters); what the engine
// does not implement (scaled RoPE variants, other activations or poolings) is refused naming the
// key.
absl::Status ParseRotaryLayers(const json& j, const std::string& path, ModelConfig* c) {
  RotaryLayersConfig& r = c->rotary;
  r.norm_bias = ReadBool(j, "norm_bias", false);
  r.attention_bias = ReadBool(j, "attention_bias", false);
  r.mlp_bias = ReadBool(j, "mlp_bias", false);
  r.classifier_bias = ReadBool(j, "classifier_bias", false);
  int local_attention = 128;
  ATTATTR_RETURN_IF_ERROR(ReadPositiveInt(j, "local_attention", path, &local_attention, false));
  r.local_window = local_attention / 2;
  if (auto it = j.find("layer_types"); it != j.end() && !it->is_null()) {
    if (!it->is_array() || it->size() != static_cast<size_t>(c->num_hidden_layers)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": 'layer_types' must list one type per layer (", c->num_hidden_layers, ")"));
    }
    for (const auto& t : *it) {
      const std::string type = t.is_string() ? t.get<std::string>() : DescribeJson(t);
      if (type != "full_attention" && type != "sliding_attention") {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": 'layer_types' holds '", type.substr(0, 32),
                         "'; supported: full_attention, sliding_attention"));
      }
      r.sliding.push_back(type == "sliding_attention");
    }
  } else {
    int every = 3;  // ModernBertConfig's default
    ATTATTR_RETURN_IF_ERROR(ReadPositiveInt(j, "global_attn_every_n_layers", path, &every, false));
    for (int l = 0; l < c->num_hidden_layers; ++l) r.sliding.push_back(l % every != 0);
  }
  ATTATTR_RETURN_IF_ERROR(
      ReadPositiveNumber(j, "global_rope_theta", path + ": ", &r.global_rope_theta));
  ATTATTR_RETURN_IF_ERROR(
      ReadPositiveNumber(j, "local_rope_theta", path + ": ", &r.local_rope_theta));
  // transformers: a null local_rope_theta means the global one on the sliding layers too.
  if (auto it = j.find("local_rope_theta"); it != j.end() && it->is_null()) {
    r.local_rope_theta = r.global_rope_theta;
  }
  r.max_position_embeddings = c->max_position_embeddings;
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": 'rope_scaling' is set; only unscaled (default) rotary positions are supported"));
  }
  if (auto it = j.find("rope_parameters"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": 'rope_parameters' is not an object"));
    }
    for (const auto& [type, theta] :
         {std::pair<const char*, double*>{"full_attention", &r.global_rope_theta},
          {"sliding_attention", &r.local_rope_theta}}) {
      auto p = it->find(type);
      if (p == it->end() || p->is_null()) continue;
      const std::string where = absl::StrCat(path, ": rope_parameters.", type, ": ");
      if (!p->is_object()) return absl::InvalidArgumentError(where + "not an object");
      if (auto kind = p->find("rope_type");
          kind != p->end() && !(kind->is_string() && kind->get<std::string>() == "default")) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, "'rope_type' is ", DescribeJson(*kind), "; only \"default\" is supported"));
      }
      ATTATTR_RETURN_IF_ERROR(ReadPositiveNumber(*p, "rope_theta", where, theta));
    }
  }
  if (auto it = j.find("classifier_pooling"); it != j.end() && !it->is_null()) {
    const std::string pooling = it->is_string() ? it->get<std::string>() : DescribeJson(*it);
    if (pooling != "cls" && pooling != "mean") {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": 'classifier_pooling' is '", pooling.substr(0, 32), "'; supported: cls, mean"));
    }
    r.mean_pooling = pooling == "mean";
  }
  if (auto it = j.find("classifier_activation");
      it != j.end() && !(it->is_string() && it->get<std::string>() == "gelu")) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": 'classifier_activation' is ",
                                                   DescribeJson(*it),
                                                   "; only \"gelu\" (exact erf) is supported"));
  }
  if (auto it = j.find("head_dim");
      it != j.end() && !it->is_null() &&
      !(it->is_number_integer() && it->get<int64_t>() * c->num_attention_heads == c->hidden_size)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": 'head_dim' is not hidden_size / num_attention_heads (not supported)"));
  }
  if (auto it = j.find("pruned_heads"); it != j.end() && it->is_object() && !it->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'pruned_heads' in a modernbert checkpoint (not supported)"));
  }
  return absl::OkStatus();
}

// yarn_get_mscale of modeling_rope_utils.py: 0.1 · mscale · ln(scale) + 1 (1 for scale ≤ 1).
double YarnMscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// The Llama family's rotary positions: `rope_parameters` (transformers 5) or `rope_scaling`
// (4.x, with `rope_theta` beside it), resolved as transformers' standardize_rope_params and
// ROPE_INIT_FUNCTIONS read them; the types it does not implement (longrope, proportional, a
// partial rotary factor) are refused naming the key.
absl::Status ParseRope(const json& j, const std::string& path, int max_positions, RopeConfig* r) {
  r->max_position_embeddings = max_positions;
  ATTATTR_RETURN_IF_ERROR(ReadPositiveNumber(j, "rope_theta", path + ": ", &r->theta));
  // transformers 5 reads a non-empty rope_scaling in preference to rope_parameters.
  const char* key = "rope_scaling";
  auto it = j.find(key);
  if (it == j.end() || it->is_null() || (it->is_object() && it->empty())) {
    key = "rope_parameters";
    it = j.find(key);
  }
  // transformers' rotary set-up reads a top-level partial_rotary_factor too.
  if (auto f = j.find("partial_rotary_factor");
      f != j.end() && !(f->is_number() && f->get<double>() == 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'partial_rotary_factor' is ", DescribeJson(*f),
                     "; only rotary positions over the whole head (1.0) are supported"));
  }
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  const std::string where = absl::StrCat(path, ": ", key, ": ");
  const std::string where_int = absl::StrCat(path, ": ", key);  // ReadPositiveInt adds ": "
  if (!it->is_object()) return absl::InvalidArgumentError(where + "not an object");
  const json& p = *it;
  ATTATTR_RETURN_IF_ERROR(ReadPositiveNumber(p, "rope_theta", where, &r->theta));
  std::string type = "default";
  for (const char* type_key : {"type", "rope_type"}) {  // rope_type wins, as in transformers
    if (auto t = p.find(type_key); t != p.end() && !t->is_null()) {
      if (!t->is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(where, "'", type_key, "' is not a string"));
      }
      type = t->get<std::string>();
    }
  }
  if (type == "default") {
    r->type = RopeConfig::Type::kDefault;
  } else if (type == "linear") {
    r->type = RopeConfig::Type::kLinear;
  } else if (type == "dynamic") {
    r->type = RopeConfig::Type::kDynamic;
  } else if (type == "llama3") {
    r->type = RopeConfig::Type::kLlama3;
  } else if (type == "yarn") {
    r->type = RopeConfig::Type::kYarn;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "'rope_type' is '", type.substr(0, 32),
                     "'; supported: default, linear, dynamic, llama3, yarn"));
  }
  if (auto f = p.find("partial_rotary_factor");
      f != p.end() && !f->is_null() && !(f->is_number() && f->get<double>() == 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "'partial_rotary_factor' is ", DescribeJson(*f),
                     "; only rotary positions over the whole head (1.0) are supported"));
  }
  if (r->type == RopeConfig::Type::kDefault) return absl::OkStatus();
  // A required positive number (yarn's `factor` may be null: max / original positions).
  const auto required = [&](const char* name, double* out) -> absl::Status {
    auto v = p.find(name);
    if (v == p.end() || v->is_null()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "'", name, "' is required for rope_type '", type, "'"));
    }
    return ReadPositiveNumber(p, name, where, out);
  };
  const bool yarn = r->type == RopeConfig::Type::kYarn;
  if (r->type == RopeConfig::Type::kLlama3 || yarn) {
    // transformers: a top-level original_max_position_embeddings (Phi-3's) wins, then the one in
    // the parameters, then max_position_embeddings.
    r->original_max_position_embeddings = max_positions;
    ATTATTR_RETURN_IF_ERROR(ReadPositiveInt(p, "original_max_position_embeddings", where_int,
                                            &r->original_max_position_embeddings, false));
    ATTATTR_RETURN_IF_ERROR(ReadPositiveInt(j, "original_max_position_embeddings", path,
                                            &r->original_max_position_embeddings, false));
  }
  if (yarn && p.contains("factor") && p["factor"].is_null()) {
    r->factor = static_cast<double>(max_positions) / r->original_max_position_embeddings;
  } else {
    ATTATTR_RETURN_IF_ERROR(required("factor", &r->factor));
  }
  if (r->type == RopeConfig::Type::kLlama3) {
    ATTATTR_RETURN_IF_ERROR(required("low_freq_factor", &r->low_freq_factor));
    ATTATTR_RETURN_IF_ERROR(required("high_freq_factor", &r->high_freq_factor));
    // transformers refuses llama3 scaling without it (no fallback to max_position_embeddings).
    if (!p.contains("original_max_position_embeddings") &&
        !j.contains("original_max_position_embeddings")) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "'original_max_position_embeddings' is required for rope_type 'llama3'"));
    }
    if (!(r->high_freq_factor > r->low_freq_factor)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "'high_freq_factor' must exceed 'low_freq_factor'"));
    }
  }
  if (yarn) {
    if (!(r->theta > 1)) {  // its correction range divides by ln(theta)
      return absl::InvalidArgumentError(
          absl::StrCat(where, "'rope_theta' must exceed 1 for rope_type 'yarn'"));
    }
    // beta_fast / beta_slow: `or` in transformers, so 0 means the default too.
    for (auto [name, out] : {std::pair<const char*, double*>{"beta_fast", &r->beta_fast},
                             {"beta_slow", &r->beta_slow}}) {
      if (auto v = p.find(name); v != p.end() && v->is_number() && v->get<double>() == 0) continue;
      ATTATTR_RETURN_IF_ERROR(ReadPositiveNumber(p, name, where, out));
    }
    ATTATTR_RETURN_IF_ERROR(CheckBooleans(p, where, {"truncate"}));
    r->truncate = ReadBool(p, "truncate", true);
    double mscale = 0, mscale_all_dim = 0;
    for (auto [name, out] : {std::pair<const char*, double*>{"mscale", &mscale},
                             {"mscale_all_dim", &mscale_all_dim}}) {
      if (auto v = p.find(name); v != p.end() && v->is_number() && v->get<double>() == 0) continue;
      ATTATTR_RETURN_IF_ERROR(ReadPositiveNumber(p, name, where, out));
    }
    if (auto v = p.find("attention_factor"); v != p.end() && !v->is_null()) {
      ATTATTR_RETURN_IF_ERROR(
          ReadPositiveNumber(p, "attention_factor", where, &r->attention_factor));
    } else if (mscale > 0 && mscale_all_dim > 0) {
      r->attention_factor = YarnMscale(r->factor, mscale) / YarnMscale(r->factor, mscale_all_dim);
    } else {
      r->attention_factor = YarnMscale(r->factor, 1.0);
    }
  }
  return absl::OkStatus();
}

// The Llama family's keys; RoPE variants other than those of ParseRope, another head size,
// Qwen2's per-layer sliding windows are refused naming the key.
// A decoder's pad_token_id: a non-negative integer, or -1 when null or absent.
absl::Status ReadPadTokenId(const json& j, const std::string& path, DecoderConfig* d) {
  auto it = j.find("pad_token_id");
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
      it->get<int64_t>() > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": 'pad_token_id' is ", DescribeJson(*it),
                                                   "; must be a non-negative integer"));
  }
  d->pad_token_id = it->get<int>();
  return absl::OkStatus();
}

absl::Status ParseDecoder(const json& j, const std::string& path, ModelConfig* c) {
  DecoderConfig& d = c->decoder;
  ATTATTR_RETURN_IF_ERROR(ReadPadTokenId(j, path, &d));
  d.num_key_value_heads = c->num_attention_heads;
  d.tie_word_embeddings = ReadBool(j, "tie_word_embeddings", false);
  ATTATTR_RETURN_IF_ERROR(
      ReadPositiveInt(j, "num_key_value_heads", path, &d.num_key_value_heads, false));
  if (c->num_attention_heads % d.num_key_value_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'num_attention_heads' (", c->num_attention_heads,
                     ") is not a multiple of 'num_key_value_heads' (", d.num_key_value_heads, ")"));
  }
  const bool attention_bias = ReadBool(j, "attention_bias", false);
  d.qkv_bias = c->family == ModelFamily::kQwen2 || attention_bias;
  d.o_bias = c->family != ModelFamily::kQwen2 && attention_bias;
  d.mlp_bias = c->family == ModelFamily::kLlama && ReadBool(j, "mlp_bias", false);
  ATTATTR_RETURN_IF_ERROR(ParseRope(j, path, c->max_position_embeddings, &d.rope));
  if (auto it = j.find("head_dim");
      it != j.end() && !it->is_null() &&
      !(it->is_number_integer() && it->get<int64_t>() * c->num_attention_heads == c->hidden_size)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": 'head_dim' is not hidden_size / num_attention_heads (not supported)"));
  }
  // null, as Mistral v0.2 and later ship it, is no window, as when the key is absent.
  if (auto it = j.find("sliding_window");
      c->family == ModelFamily::kMistral && it != j.end() && !it->is_null()) {
    ATTATTR_RETURN_IF_ERROR(ReadPositiveInt(j, "sliding_window", path, &d.sliding_window, false));
  }
  if (c->family == ModelFamily::kQwen2 && ReadBool(j, "use_sliding_window", false)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": 'use_sliding_window' is true; Qwen2's per-layer sliding windows "
                     "are not supported"));
  }
  return absl::OkStatus();
}

// GPT-2's keys: how the scores are scaled; cross-attention (an encoder-decoder's) is refused.
absl::Status ParseGpt2(const json& j, const std::string& path, ModelConfig* c) {
  DecoderConfig& d = c->decoder;
  ATTATTR_RETURN_IF_ERROR(ReadPadTokenId(j, path, &d));
  d.num_key_value_heads = c->num_attention_heads;
  d.tie_word_embeddings = ReadBool(j, "tie_word_embeddings", true);
  d.scale_attn_weights = ReadBool(j, "scale_attn_weights", true);
  d.scale_attn_by_inverse_layer_idx = ReadBool(j, "scale_attn_by_inverse_layer_idx", false);
  if (ReadBool(j, "add_cross_attention", false)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": 'add_cross_attention' is true; GPT-2 with cross-attention layers "
                     "(an encoder-decoder's decoder) is not supported"));
  }
  if (auto it = j.find("pruned_heads"); it != j.end() && it->is_object() && !it->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'pruned_heads' in a gpt2 checkpoint (not supported)"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsDecoder(ModelFamily family) {
  return family == ModelFamily::kLlama || family == ModelFamily::kMistral ||
         family == ModelFamily::kQwen2 || family == ModelFamily::kGpt2;
}

const char* FamilyName(ModelFamily family) {
  switch (family) {
    case ModelFamily::kDistilBert:
      return "distilbert";
    case ModelFamily::kElectra:
      return "electra";
    case ModelFamily::kRoberta:
      return "roberta";
    case ModelFamily::kXlmRoberta:
      return "xlm-roberta";
    case ModelFamily::kDebertaV2:
      return "deberta-v2";
    case ModelFamily::kModernBert:
      return "modernbert";
    case ModelFamily::kLlama:
      return "llama";
    case ModelFamily::kMistral:
      return "mistral";
    case ModelFamily::kQwen2:
      return "qwen2";
    case ModelFamily::kGpt2:
      return "gpt2";
    case ModelFamily::kBert:
      break;
  }
  return "bert";
}

const char* SupportedFamilies() {
  return "bert, distilbert, electra, roberta, xlm-roberta, deberta-v2, modernbert, llama, mistral, "
         "qwen2, gpt2";
}

absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text,
                                             const std::string& path) {
  ATTATTR_ASSIGN_OR_RETURN(const json j, ParseUntrustedJson(json_text, path));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a JSON object (", DescribeJson(j), ")"));
  }
  ModelConfig c;
  try {
    if (auto it = j.find("model_type"); it != j.end() && it->is_string()) {
      const std::string type = it->get<std::string>();
      if (type == "distilbert") {
        c.family = ModelFamily::kDistilBert;
        c.type_vocab_size = 0;
      } else if (type == "electra") {
        c.family = ModelFamily::kElectra;
      } else if (type == "roberta") {
        c.family = ModelFamily::kRoberta;
      } else if (type == "xlm-roberta") {
        c.family = ModelFamily::kXlmRoberta;
      } else if (type == "deberta-v2") {
        c.family = ModelFamily::kDebertaV2;
        c.type_vocab_size = 0;    // DebertaV2Config's default
        c.layer_norm_eps = 1e-7;  // and its layer_norm_eps
      } else if (type == "modernbert") {
        c.family = ModelFamily::kModernBert;
        c.type_vocab_size = 0;
        c.layer_norm_eps = 1e-5;  // ModernBertConfig's norm_eps
      } else if (type == "llama" || type == "mistral" || type == "qwen2") {
        c.family = type == "llama"     ? ModelFamily::kLlama
                   : type == "mistral" ? ModelFamily::kMistral
                                       : ModelFamily::kQwen2;
        c.type_vocab_size = 0;
        c.layer_norm_eps = 1e-6;  // rms_norm_eps's default
      } else if (type == "gpt2") {
        c.family = ModelFamily::kGpt2;
        c.type_vocab_size = 0;
        c.layer_norm_eps = 1e-5;    // GPT2Config's layer_norm_epsilon
        c.hidden_act = "gelu_new";  // its activation_function
      } else if (type != "bert") {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": 'model_type' is '", type.substr(0, 64),
                         "'; supported model types: ", SupportedFamilies()));
      }
    }
    const SizeKeys keys = KeysOf(c.family);
    if (auto it = j.find("architectures"); it != j.end() && it->is_array()) {
      for (const auto& a : *it) {
        if (a.is_string()) c.architectures.push_back(a.get<std::string>());
      }
    }
    // Heads whose tensors look like a sequence classifier's but that score every token or every
    // choice (ModernBertForTokenClassification, LlamaForTokenClassification, *ForMultipleChoice):
    // loaded as classifiers they would give one row of another meaning.
    for (const std::string& a : c.architectures) {
      for (const char* head :
           {"ForTokenClassification", "ForMultipleChoice", "ForQuestionAnswering"}) {
        if (absl::EndsWith(a, head)) {
          return absl::InvalidArgumentError(absl::StrCat(
              path, ": 'architectures' names ", a.substr(0, 64),
              "; supported heads: sequence classification, causal LM, or none (encoder-only)"));
        }
      }
    }
    ATTATTR_RETURN_IF_ERROR(
        CheckBooleans(j, path + ": ",
                      {"relative_attention", "share_att_key", "position_biased_input", "norm_bias",
                       "attention_bias", "mlp_bias", "classifier_bias", "tie_word_embeddings",
                       "use_sliding_window", "scale_attn_weights",
                       "scale_attn_by_inverse_layer_idx", "add_cross_attention", "is_decoder"}));
    // BERT, RoBERTa, XLM-RoBERTa and ELECTRA run causally with is_decoder (BertLMHeadModel,
    // RobertaForCausalLM): the engine's encoders are bidirectional.
    if (auto it = j.find("is_decoder"); it != j.end() && it->get<bool>() && !IsDecoder(c.family)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": 'is_decoder' is true; this encoder family runs bidirectionally only"));
    }
    absl::Status s;
    if (!(s = ReadPositiveInt(j, "vocab_size", path, &c.vocab_size)).ok()) return s;
    if (!(s = ReadPositiveInt(j, keys.hidden, path, &c.hidden_size)).ok()) return s;
    if (!(s = ReadPositiveInt(j, keys.layers, path, &c.num_hidden_layers)).ok()) return s;
    if (!(s = ReadPositiveInt(j, keys.heads, path, &c.num_attention_heads)).ok()) return s;
    if (c.family == ModelFamily::kGpt2) {  // n_inner: null or absent for 4 · n_embd
      c.intermediate_size = 4 * c.hidden_size;
      if (auto it = j.find(keys.intermediate);
          it != j.end() && !it->is_null() &&
          !(s = ReadPositiveInt(j, keys.intermediate, path, &c.intermediate_size)).ok()) {
        return s;
      }
    } else if (!(s = ReadPositiveInt(j, keys.intermediate, path, &c.intermediate_size)).ok()) {
      return s;
    }
    if (!(s = ReadPositiveInt(j, keys.max_positions, path, &c.max_position_embeddings)).ok())
      return s;
    if (c.family == ModelFamily::kDebertaV2) {
      if (auto it = j.find("type_vocab_size");
          it != j.end() && !(it->is_number_integer() && it->get<int64_t>() == 0)) {
        if (!(s = ReadPositiveInt(j, "type_vocab_size", path, &c.type_vocab_size)).ok()) return s;
      }
      if (!(s = ParseDisentangled(j, path, &c)).ok()) return s;
    } else if (c.family == ModelFamily::kModernBert) {
      if (!(s = ParseRotaryLayers(j, path, &c)).ok()) return s;
    } else if (c.family == ModelFamily::kGpt2) {
      if (!(s = ParseGpt2(j, path, &c)).ok()) return s;
    } else if (IsDecoder(c.family)) {
      if (!(s = ParseDecoder(j, path, &c)).ok()) return s;
    } else if (c.family != ModelFamily::kDistilBert &&
               !(s = ReadPositiveInt(j, "type_vocab_size", path, &c.type_vocab_size, false)).ok()) {
      return s;
    }
    if (c.family == ModelFamily::kRoberta || c.family == ModelFamily::kXlmRoberta) {
      int pad = 1;  // RobertaConfig's default pad_token_id
      if (auto it = j.find("pad_token_id"); it != j.end()) {
        if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
            it->get<int64_t>() >= c.max_position_embeddings - 1) {
          return absl::InvalidArgumentError(absl::StrCat(
              path, ": 'pad_token_id' must be an integer in [0, max_position_embeddings - 1)"));
        }
        pad = it->get<int>();
      }
      c.position_offset = pad + 1;
    }
    c.embedding_size = c.hidden_size;
    if ((c.family == ModelFamily::kElectra || c.family == ModelFamily::kDebertaV2) &&
        !(s = ReadPositiveInt(j, "embedding_size", path, &c.embedding_size, false)).ok()) {
      return s;
    }
    if (c.hidden_size % c.num_attention_heads != 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": '", keys.hidden, "' (", c.hidden_size,
                                                     ") is not a multiple of '", keys.heads, "' (",
                                                     c.num_attention_heads, ")"));
    }
    // Rotary embeddings turn pairs of each head's dimensions.
    if (const int head_size = c.hidden_size / c.num_attention_heads;
        (c.family == ModelFamily::kModernBert ||
         (IsDecoder(c.family) && c.family != ModelFamily::kGpt2)) &&
        head_size % 2 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the head size ", keys.hidden, " / ", keys.heads, " (", head_size,
                       ") is odd; rotary position embeddings need an even one"));
    }
    // DistilBERT's LayerNorms use a fixed eps of 1e-12 (the BERT default) and no config key;
    // ModernBERT calls it norm_eps.
    const char* eps_key = c.family == ModelFamily::kModernBert ? "norm_eps"
                          : c.family == ModelFamily::kGpt2     ? "layer_norm_epsilon"
                          : IsDecoder(c.family)                ? "rms_norm_eps"
                                                               : "layer_norm_eps";
    if (auto it = j.find(eps_key); c.family != ModelFamily::kDistilBert && it != j.end()) {
      if (!it->is_number() || it->get<double>() <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": '", eps_key, "' must be a positive number"));
      }
      c.layer_norm_eps = it->get<double>();
    }
    // The Llama family's SwiGLU needs SiLU; the encoders' feed-forward exact-erf GELU; GPT-2's
    // either GELU form.
    if (c.family == ModelFamily::kGpt2) {
      if (auto it = j.find(keys.activation); it != j.end()) {
        const std::string act = it->is_string() ? it->get<std::string>() : DescribeJson(*it);
        if (act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "gelu") {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": '", keys.activation, "' is '", act.substr(0, 64),
                           "'; supported: gelu_new, gelu_pytorch_tanh, gelu"));
        }
        c.hidden_act = act;
      }
    } else {
      const std::string activation = IsDecoder(c.family) ? "silu" : "gelu";
      if (auto it = j.find(keys.activation); it != j.end()) {
        if (!it->is_string() || it->get<std::string>() != activation) {
          return absl::InvalidArgumentError(absl::StrCat(
              path, ": '", keys.activation, "' is ", DescribeJson(*it), "; only \"", activation,
              activation == "gelu" ? "\" (exact erf)" : "\"", " is supported"));
        }
        c.hidden_act = activation;
      }
    }
    if (auto it = j.find("position_embedding_type");
        it != j.end() && !(it->is_string() && it->get<std::string>() == "absolute")) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": 'position_embedding_type' is ",
                                                     DescribeJson(*it),
                                                     "; only \"absolute\" is supported"));
    }
    if (auto it = j.find("problem_type"); it != j.end() && !it->is_null()) {
      const std::string type = it->is_string() ? it->get<std::string>() : "";
      if (type != "single_label_classification" && type != "multi_label_classification" &&
          type != "regression") {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": 'problem_type' is ", DescribeJson(*it),
                         "; Hugging Face knows \"single_label_classification\", "
                         "\"multi_label_classification\" and \"regression\""));
      }
      c.problem_type = type;
    }
    if (auto it = j.find("id2label"); it != j.end() && it->is_object()) {
      std::map<int, std::string> by_id;
      for (auto& [k, v] : it->items()) {
        char* end = nullptr;
        long id = std::strtol(k.c_str(), &end, 10);
        if (end == k.c_str() || *end != '\0' || id < 0 || id > 100000 || !v.is_string()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": 'id2label' entry '", k, "' is not id -> name"));
        }
        by_id[static_cast<int>(id)] = v.get<std::string>();
      }
      for (const auto& [id, name] : by_id) {
        if (id != static_cast<int>(c.id2label.size())) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": 'id2label' ids are not 0..", by_id.size() - 1));
        }
        c.id2label.push_back(name);
      }
    }
    if (auto it = j.find("pruned_heads"); it != j.end() && it->is_object()) {
      for (auto& [k, v] : it->items()) {
        char* end = nullptr;
        long layer = std::strtol(k.c_str(), &end, 10);
        if (end == k.c_str() || *end != '\0' || layer < 0 || layer >= c.num_hidden_layers ||
            !v.is_array()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": 'pruned_heads' key '", k, "' is not a layer index"));
        }
        std::vector<int> heads;
        for (const auto& h : v) {
          if (!h.is_number_integer() || h.get<int>() < 0 || h.get<int>() >= c.num_attention_heads) {
            return absl::InvalidArgumentError(
                absl::StrCat(path, ": 'pruned_heads' of layer ", k, " holds a bad head index"));
          }
          heads.push_back(h.get<int>());
        }
        c.pruned_heads[static_cast<int>(layer)] = heads;
      }
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  return c;
}

absl::StatusOr<ModelConfig> ReadModelConfig(const std::string& path) {
  ATTATTR_ASSIGN_OR_RETURN(auto text, ReadModelFile(path, kMaxConfigJsonBytes));
  return ParseModelConfig(text, path);
}

absl::StatusOr<TokenizerConfig> ReadTokenizerConfig(const std::string& path) {
  TokenizerConfig c;
  auto text = ReadModelFile(path, kMaxConfigJsonBytes);
  if (absl::IsNotFound(text.status())) return c;  // optional file
  if (!text.ok()) return text.status();           // there, but a FIFO, too large, unreadable
  ATTATTR_ASSIGN_OR_RETURN(const json j, ParseUntrustedJson(*text, path));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a JSON object (", DescribeJson(j), ")"));
  }
  if (auto it = j.find("do_lower_case"); it != j.end() && it->is_boolean()) {
    c.do_lower_case = it->get<bool>();
  }
  if (auto it = j.find("strip_accents"); it != j.end() && it->is_boolean()) {
    c.has_strip_accents = true;
    c.strip_accents = it->get<bool>();
  }
  if (auto it = j.find("tokenize_chinese_chars"); it != j.end() && it->is_boolean()) {
    c.tokenize_chinese_chars = it->get<bool>();
  }
  if (auto it = j.find("model_max_length"); it != j.end() && it->is_number_integer()) {
    int64_t v = it->get<int64_t>();
    if (v > 0 && v < (1 << 20)) c.model_max_length = static_cast<int>(v);
  }
  return c;
}

}  // namespace attattr::engine
