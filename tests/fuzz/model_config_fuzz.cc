// libFuzzer entry point for a model directory's JSON files: the input is a config.json for
// ParseModelConfig and, written to a file, a tokenizer_config.json for ReadTokenizerConfig. Both
// must return a value or a Status with a message for anything (no crash, exception or UB), and a
// config they accept must keep the promises the encoder relies on. Single-threaded.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_file.h"
#include "model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<attattr::engine::ModelConfig> config =
      attattr::engine::ParseModelConfig(text, "config.json");
  if (config.ok()) {
    if (config->vocab_size <= 0 || config->hidden_size <= 0 || config->num_hidden_layers <= 0 ||
        config->num_attention_heads <= 0 || config->intermediate_size <= 0 ||
        config->max_position_embeddings <= 0 ||
        config->hidden_size % config->num_attention_heads != 0) {
      std::abort();
    }
    // ModernBERT: one attention type per layer, positive rotary bases.
    const auto& rotary = config->rotary;
    if (config->family == attattr::engine::ModelFamily::kModernBert &&
        (rotary.sliding.size() != static_cast<size_t>(config->num_hidden_layers) ||
         !(rotary.global_rope_theta > 0) || !(rotary.local_rope_theta > 0) ||
         rotary.local_window < 0)) {
      std::abort();
    }
    // Decoders: key/value heads that divide the query heads; rotary parameters the frequency
    // formulas of rotary_embedding.cc can take (positive, finite; YaRN's base above 1).
    if (attattr::engine::IsDecoder(config->family)) {
      const auto& d = config->decoder;
      const auto& r = d.rope;
      using Type = attattr::engine::RopeConfig::Type;
      if (d.num_key_value_heads <= 0 || config->num_attention_heads % d.num_key_value_heads != 0 ||
          !(r.theta > 0) || !std::isfinite(r.theta) || !(r.factor > 0) ||
          !std::isfinite(r.factor) || !(r.attention_factor > 0) ||
          !std::isfinite(r.attention_factor) ||
          ((r.type == Type::kLlama3 || r.type == Type::kYarn) &&
           r.original_max_position_embeddings <= 0) ||
          (r.type == Type::kLlama3 && !(r.high_freq_factor > r.low_freq_factor)) ||
          (r.type == Type::kYarn && (!(r.theta > 1) || !(r.beta_fast > 0) || !(r.beta_slow > 0)))) {
        std::abort();
      }
    }
    for (const auto& [layer, heads] : config->pruned_heads) {
      if (layer < 0 || layer >= config->num_hidden_layers) std::abort();
      for (int h : heads) {
        if (h < 0 || h >= config->num_attention_heads) std::abort();
      }
    }
  } else if (config.status().message().empty()) {
    std::abort();
  }

  static attattr::fuzz::ScratchFile file("-tokenizer_config.json");
  file.Write(data, size);
  absl::StatusOr<attattr::engine::TokenizerConfig> tokenizer =
      attattr::engine::ReadTokenizerConfig(file.path());
  if (tokenizer.ok()) {
    if (tokenizer->model_max_length < 0) std::abort();
  } else if (tokenizer.status().message().empty()) {
    std::abort();
  }
  return 0;
}
