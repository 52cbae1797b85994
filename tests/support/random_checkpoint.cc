// Random BERT checkpoints for tests (see random_checkpoint.h).
#include "support/random_checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "nlohmann/json.hpp"
#include "safetensors_writer.h"  // engine/src

namespace attattr::testing {
namespace {

using ::attattr::engine::RawTensor;
using ::attattr::engine::WriteSafetensors;

// IEEE binary16 from a small float (|v| < 1, no overflow handling needed here).
uint16_t Half(float v) {
  uint32_t x;
  std::memcpy(&x, &v, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return static_cast<uint16_t>(sign);  // flush tiny values to zero
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | ((x >> 13) & 0x3ff));
}

class Filler {
 public:
  explicit Filler(uint64_t seed) : rng_(seed) {}
  RawTensor Random(const std::string& name, std::vector<int64_t> shape) {
    return Make(name, std::move(shape), [this] { return dist_(rng_); });
  }
  RawTensor Constant(const std::string& name, std::vector<int64_t> shape, float value) {
    return Make(name, std::move(shape), [value] { return value; });
  }

 private:
  template <typename Gen>
  RawTensor Make(const std::string& name, std::vector<int64_t> shape, Gen gen) {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    std::string bytes(static_cast<size_t>(count) * 2, '\0');
    for (int64_t i = 0; i < count; ++i) {
      const uint16_t h = Half(gen());
      bytes[2 * i] = static_cast<char>(h & 0xff);
      bytes[2 * i + 1] = static_cast<char>(h >> 8);
    }
    return {name, "F16", std::move(shape), std::move(bytes)};
  }
  std::mt19937_64 rng_;
  std::uniform_real_distribution<float> dist_{-0.035f, 0.035f};  // std ≈ 0.02
};

}  // namespace

bool WriteRandomCheckpoint(const std::string& dir, const RandomCheckpointSpec& s) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::copy_file(s.vocab_path, dir + "/vocab.txt", fs::copy_options::overwrite_existing, ec)) {
    return false;
  }
  int64_t vocab = 0;
  {
    std::ifstream in(s.vocab_path);
    std::string line;
    while (std::getline(in, line)) ++vocab;
  }
  if (vocab == 0) return false;
  nlohmann::json config = {{"architectures", {"BertForSequenceClassification"}},
                           {"model_type", "bert"},
                           {"vocab_size", vocab},
                           {"hidden_size", s.hidden_size},
                           {"num_hidden_layers", s.num_layers},
                           {"num_attention_heads", s.num_heads},
                           {"intermediate_size", s.intermediate_size},
                           {"hidden_act", "gelu"},
                           {"max_position_embeddings", s.max_position_embeddings},
                           {"type_vocab_size", 2},
                           {"layer_norm_eps", 1e-12},
                           {"pad_token_id", 0}};
  for (int c = 0; c < s.num_labels; ++c) {
    config["id2label"][std::to_string(c)] = "LABEL_" + std::to_string(c);
    config["label2id"]["LABEL_" + std::to_string(c)] = c;
  }
  std::ofstream(dir + "/config.json") << config.dump(2);
  std::ofstream(dir + "/tokenizer_config.json") << nlohmann::json{
      {"do_lower_case", true},
      {"model_max_length", s.max_position_embeddings}}.dump(2);

  Filler f(s.seed);
  const int64_t d = s.hidden_size, inter = s.intermediate_size;
  std::vector<RawTensor> t;
  t.push_back(f.Random("bert.embeddings.word_embeddings.weight", {vocab, d}));
  t.push_back(
      f.Random("bert.embeddings.position_embeddings.weight", {s.max_position_embeddings, d}));
  t.push_back(f.Random("bert.embeddings.token_type_embeddings.weight", {2, d}));
  t.push_back(f.Constant("bert.embeddings.LayerNorm.weight", {d}, 1.0f));
  t.push_back(f.Constant("bert.embeddings.LayerNorm.bias", {d}, 0.0f));
  for (int l = 0; l < s.num_layers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    for (const char* m : {"attention.self.query", "attention.self.key", "attention.self.value",
                          "attention.output.dense"}) {
      t.push_back(f.Random(p + m + ".weight", {d, d}));
      t.push_back(f.Random(p + m + ".bias", {d}));
    }
    t.push_back(f.Constant(p + "attention.output.LayerNorm.weight", {d}, 1.0f));
    t.push_back(f.Constant(p + "attention.output.LayerNorm.bias", {d}, 0.0f));
    t.push_back(f.Random(p + "intermediate.dense.weight", {inter, d}));
    t.push_back(f.Random(p + "intermediate.dense.bias", {inter}));
    t.push_back(f.Random(p + "output.dense.weight", {d, inter}));
    t.push_back(f.Random(p + "output.dense.bias", {d}));
    t.push_back(f.Constant(p + "output.LayerNorm.weight", {d}, 1.0f));
    t.push_back(f.Constant(p + "output.LayerNorm.bias", {d}, 0.0f));
  }
  t.push_back(f.Random("bert.pooler.dense.weight", {d, d}));
  t.push_back(f.Random("bert.pooler.dense.bias", {d}));
  if (s.num_labels > 0) {
    t.push_back(f.Random("classifier.weight", {s.num_labels, d}));
    t.push_back(f.Random("classifier.bias", {s.num_labels}));
  }
  return WriteSafetensors(dir + "/model.safetensors", t);
}

}  // namespace attattr::testing
