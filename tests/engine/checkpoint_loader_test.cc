// Checkpoint loading: every weights format the engine accepts gives the same model (F32, F16 and
// BF16 safetensors, sharded safetensors, pytorch_model.bin), every defect is a clear error
// naming the file and tensor, and the layouts real checkpoints have load (a bare RoBERTa with its
// pooler, a GPT-2 with its uint8/bool mask buffers). Fixtures are rewritten copies of the shared
// SST-2 model.
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/model.h"
#include "nlohmann/json.hpp"
#include "support/float_tensors.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

namespace fs = std::filesystem;
using ::attattr::engine::RawTensor;
using ::attattr::testing::Sst2ModelDir;

using ::attattr::testing::ToRaw;

// All tensors of the shared model as float32 torch tensors, by name.
std::map<std::string, torch::Tensor> SharedTensors() {
  return ::attattr::testing::ReadFloatTensors(Sst2ModelDir());
}

// A model directory with the shared config/vocab and the given weights file(s).
class CheckpointFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    dir_ = ::attattr::testing::MakeTempDir("attattr-ckpt");
    for (const char* f : {"config.json", "vocab.txt", "tokenizer_config.json"}) {
      fs::copy_file(fs::path(Sst2ModelDir()) / f, fs::path(dir_) / f);
    }
    tensors_ = SharedTensors();
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void WriteAll(const std::string& dtype, const std::string& file = "model.safetensors") {
    std::vector<RawTensor> raw;
    for (const auto& [name, t] : tensors_) raw.push_back(ToRaw(name, t, dtype));
    ASSERT_TRUE(::attattr::engine::WriteSafetensors(dir_ + "/" + file, raw));
  }
  std::vector<float> Logits(const Model& m) {
    auto e = m.Encode({"a moving and important film .", std::nullopt, -1});
    auto p = m.Predict({*e});
    EXPECT_TRUE(p.ok()) << p.status();
    return (*p)[0].logits;
  }
  absl::Status LoadError() {
    auto m = Model::Load(dir_);
    return m.ok() ? absl::OkStatus() : m.status();
  }
  std::string dir_;
  std::map<std::string, torch::Tensor> tensors_;
};

void ExpectMessageHas(const absl::Status& s, const std::string& a, const std::string& b = "") {
  EXPECT_FALSE(s.ok());
  const std::string msg(s.message());
  EXPECT_NE(msg.find(a), std::string::npos) << msg;
  if (!b.empty()) {
    EXPECT_NE(msg.find(b), std::string::npos) << msg;
  }
}

TEST_F(CheckpointFixture, HalfPrecisionWeightsLoadAsFloat) {
  auto ref = Model::Load(Sst2ModelDir());
  ASSERT_TRUE(ref.ok());
  const auto want = Logits(**ref);
  for (const char* dtype : {"F16", "BF16"}) {
    WriteAll(dtype);
    auto m = Model::Load(dir_);
    ASSERT_TRUE(m.ok()) << dtype << ": " << m.status();
    const auto got = Logits(**m);
    const double tol = std::string(dtype) == "F16" ? 2e-2 : 2e-1;
    EXPECT_NEAR(got[0], want[0], tol) << dtype;
    EXPECT_NEAR(got[1], want[1], tol) << dtype;
  }
}

TEST_F(CheckpointFixture, ShardedCheckpointEqualsSingleFile) {
  std::vector<RawTensor> a, b;
  nlohmann::json index;
  int i = 0;
  for (const auto& [name, t] : tensors_) {
    const bool second = (i++ % 2) == 1;
    const std::string shard =
        second ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
    (second ? b : a).push_back(ToRaw(name, t, "F32"));
    index["weight_map"][name] = shard;
  }
  ASSERT_TRUE(::attattr::engine::WriteSafetensors(dir_ + "/model-00001-of-00002.safetensors", a));
  ASSERT_TRUE(::attattr::engine::WriteSafetensors(dir_ + "/model-00002-of-00002.safetensors", b));
  std::ofstream(dir_ + "/model.safetensors.index.json") << index.dump();
  auto m = Model::Load(dir_);
  ASSERT_TRUE(m.ok()) << m.status();
  auto ref = Model::Load(Sst2ModelDir());
  EXPECT_EQ(Logits(**m), Logits(**ref));
  EXPECT_NE((*m)->info().weights_file.find("index.json"), std::string::npos);

  fs::remove(dir_ + "/model-00002-of-00002.safetensors");
  ExpectMessageHas(LoadError(), "model-00002-of-00002.safetensors");
}

TEST_F(CheckpointFixture, PytorchBinThroughLibTorchUnpickler) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [name, t] : tensors_) dict.insert(name, t);
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  std::ofstream(dir_ + "/pytorch_model.bin", std::ios::binary).write(bytes.data(), bytes.size());
  auto m = Model::Load(dir_);
  ASSERT_TRUE(m.ok()) << m.status();
  auto ref = Model::Load(Sst2ModelDir());
  EXPECT_EQ(Logits(**m), Logits(**ref));

  std::ofstream(dir_ + "/pytorch_model.bin", std::ios::binary) << "not a pickle";
  ExpectMessageHas(LoadError(), "pytorch_model.bin");
}

// transformers' sharded .bin (pytorch_model.bin.index.json, the safetensors index's format, with
// pytorch_model-0000K-of-0000N.bin shards) loads as the single file does; a missing shard, a tensor
// the index puts in a shard that lacks it, one in two shards and a shard name that leaves the
// folder are errors naming the file.
TEST_F(CheckpointFixture, ShardedPytorchBinEqualsSingleFile) {
  const char* kShards[] = {"pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"};
  c10::Dict<std::string, torch::Tensor> parts[2];
  nlohmann::json index;
  int i = 0;
  for (const auto& [name, t] : tensors_) {
    const int k = (i++ % 2);
    parts[k].insert(name, t);
    index["weight_map"][name] = kShards[k];
  }
  const auto write_shard = [&](int k, const c10::Dict<std::string, torch::Tensor>& dict) {
    const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
    std::ofstream(dir_ + "/" + kShards[k], std::ios::binary).write(bytes.data(), bytes.size());
  };
  write_shard(0, parts[0]);
  write_shard(1, parts[1]);
  const auto write_index = [&](const nlohmann::json& j) {
    std::ofstream(dir_ + "/pytorch_model.bin.index.json") << j.dump();
  };
  write_index(index);
  auto m = Model::Load(dir_);
  ASSERT_TRUE(m.ok()) << m.status();
  auto ref = Model::Load(Sst2ModelDir());
  EXPECT_EQ(Logits(**m), Logits(**ref));
  EXPECT_NE((*m)->info().weights_file.find("pytorch_model.bin.index.json"), std::string::npos);

  // A tensor listed in the wrong shard.
  nlohmann::json wrong = index;
  const std::string moved = tensors_.begin()->first;  // in shard 1 (k = 0)
  wrong["weight_map"][moved] = kShards[1];
  write_index(wrong);
  ExpectMessageHas(LoadError(), moved, "which does not hold it");
  // A shard name that leaves the folder.
  wrong = index;
  wrong["weight_map"][moved] = "../elsewhere.bin";
  write_index(wrong);
  ExpectMessageHas(LoadError(), "pytorch_model.bin.index.json", "is not a file in");
  // A tensor in both shards.
  write_index(index);
  auto both = parts[1].copy();
  both.insert(moved, tensors_.begin()->second);
  write_shard(1, both);
  ExpectMessageHas(LoadError(), "is in two shards");
  // A missing shard.
  fs::remove(dir_ + "/" + kShards[1]);
  const absl::Status missing = LoadError();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  ExpectMessageHas(missing, kShards[1], "is missing");
}

// pytorch_model.bin files LibTorch cannot read are refused saying how to convert them, not with
// the unpickler's internal assert or its "central directory" message.
TEST_F(CheckpointFixture, UnreadablePytorchBinSaysHowToConvert) {
  // torch.save(model.state_dict()): an OrderedDict, as transformers writes pytorch_model.bin. The
  // pickle (protocol 2, as torch.save writes it) of OrderedDict([("a", 1)]), in torch.save's zip.
  const std::string pickle = std::string("\x80\x02", 2) + "ccollections\nOrderedDict\n" +
                             std::string("q\x00)Rq\x01X\x01\x00\x00\x00", 11) + "aq" +
                             std::string("\x02K\x01s.", 5);
  {
    caffe2::serialize::PyTorchStreamWriter writer(dir_ + "/pytorch_model.bin");
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    writer.writeEndOfFile();
  }
  absl::Status s = LoadError();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ExpectMessageHas(s, "pytorch_model.bin: a state dict saved as an OrderedDict", "save_file(");
  EXPECT_EQ(std::string(s.message()).find("INTERNAL ASSERT"), std::string::npos) << s.message();
  // The legacy format (torch.save before 1.6, or _use_new_zipfile_serialization=False): a
  // sequence of pickles, the first holding torch's magic number.
  std::ofstream(dir_ + "/pytorch_model.bin", std::ios::binary) << std::string(
      "\x80\x02\x8a\x0a"
      "l\xfc\x9c"
      "F\xf9 j\xa8P\x19.",
      15);
  s = LoadError();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ExpectMessageHas(s, "legacy (pre-1.6, non-zip) torch.save format", "model.safetensors");
}

// A bare RobertaModel / XLMRobertaModel checkpoint (most RoBERTa and XLM-R embedding models) has
// the base model's pooler, which the engine does not use (embeddings are mean-pooled) and must
// not refuse; also under the `roberta.` prefix, as roberta-base's own checkpoint has it beside
// its masked-LM head. Made here from the BERT model: RoBERTa's layers are BERT's.
TEST_F(CheckpointFixture, BareRobertaWithItsPoolerLoads) {
  nlohmann::json config;
  {
    std::ifstream in(fs::path(Sst2ModelDir()) / "config.json");
    config = nlohmann::json::parse(in);
  }
  for (const std::string& family : {std::string("roberta"), std::string("xlm-roberta")}) {
    config["model_type"] = family;
    config["pad_token_id"] = 0;
    config["architectures"] = {family == "roberta" ? "RobertaModel" : "XLMRobertaModel"};
    config.erase("id2label");
    config.erase("label2id");
    std::ofstream(dir_ + "/config.json") << config.dump();
    for (const std::string& prefix : {std::string(), std::string("roberta.")}) {
      SCOPED_TRACE(family + " '" + prefix + "'");
      std::map<std::string, torch::Tensor> renamed;
      for (const auto& [name, t] : tensors_) {
        if (name.rfind("bert.", 0) == 0) renamed[prefix + name.substr(5)] = t;
      }
      ASSERT_EQ(renamed.count(prefix + "pooler.dense.weight"), 1u);
      if (!prefix.empty()) renamed["lm_head.bias"] = torch::zeros({8});
      ASSERT_TRUE(::attattr::testing::WriteFloatTensors(dir_ + "/model.safetensors", renamed));
      auto m = Model::Load(dir_);
      ASSERT_TRUE(m.ok()) << m.status();
      EXPECT_EQ((*m)->info().family, family);
      EXPECT_EQ((*m)->info().architecture,
                family == "roberta" ? "RobertaModel" : "XLMRobertaModel");
      EXPECT_FALSE((*m)->info().has_classifier);
      // Anything else is still refused.
      renamed[prefix + "pooler.extra.weight"] = torch::zeros({3});
      ASSERT_TRUE(::attattr::testing::WriteFloatTensors(dir_ + "/model.safetensors", renamed));
      ExpectMessageHas(LoadError(), "unexpected tensor", prefix + "pooler.extra.weight");
    }
  }
}

// Regression (checkpoint review): a one-output regression head (cross-encoders, STS-B) was read as
// a one-class softmax, so every probability target was 1 and every attribution 0, reported as a
// perfect completeness gap. problem_type is read (one output without it is a regression, as
// Hugging Face decides): probability targets, head importance and trigger search refuse, the
// logit target works; a multi-label head likewise.
TEST_F(CheckpointFixture, RegressionAndMultiLabelHeadsRefuseSoftmaxTargets) {
  nlohmann::json config;
  {
    std::ifstream in(fs::path(Sst2ModelDir()) / "config.json");
    config = nlohmann::json::parse(in);
  }
  for (const std::string type : {"regression", "", "multi_label_classification"}) {
    SCOPED_TRACE("problem_type '" + type + "'");
    const int labels = type == "multi_label_classification" ? 2 : 1;
    nlohmann::json c = config;
    c.erase("id2label");
    c.erase("label2id");
    c["num_labels"] = labels;
    if (type.empty()) {
      c.erase("problem_type");
    } else {
      c["problem_type"] = type;
    }
    std::ofstream(dir_ + "/config.json") << c.dump();
    auto weights = tensors_;
    weights["classifier.weight"] = weights["classifier.weight"].narrow(0, 0, labels).clone();
    weights["classifier.bias"] = weights["classifier.bias"].narrow(0, 0, labels).clone();
    ASSERT_TRUE(::attattr::testing::WriteFloatTensors(dir_ + "/model.safetensors", weights));
    auto m = Model::Load(dir_);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ((*m)->info().problem_type, type.empty() ? "regression" : type);
    AttributionOptions options;  // the predicted class's probability
    ExpectMessageHas(ValidateAttributionOptions(**m, options), "target: this model's head is",
                     "logit");
    options.target.kind = TargetKind::kClassProb;
    options.target.class_index = 0;
    EXPECT_EQ(ValidateAttributionOptions(**m, options).code(), absl::StatusCode::kInvalidArgument);
    options.target.kind = TargetKind::kClassLogit;
    EXPECT_TRUE(ValidateAttributionOptions(**m, options).ok());
    ExpectMessageHas(RequireClassifier((*m)->info(), "head importance"),
                     "needs a single-label classifier", type.empty() ? "regression" : type);
    // The prediction follows the head: a regression's values are its logits (no probability),
    // a multi-label head's probabilities are a sigmoid per label (they need not sum to 1).
    auto encoded = (*m)->Encode(Example{"a fine film", std::nullopt});
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    auto predictions = (*m)->Predict({*encoded});
    ASSERT_TRUE(predictions.ok()) << predictions.status();
    const Prediction& p = predictions->front();
    EXPECT_EQ(p.problem_type, (*m)->info().problem_type);
    ASSERT_EQ(p.logits.size(), static_cast<size_t>(labels));
    if (labels == 1) {
      EXPECT_TRUE(p.probabilities.empty());
      EXPECT_EQ(p.predicted, 0);
      EXPECT_EQ(p.predicted_probability, 0.0f);
    } else {
      ASSERT_EQ(p.probabilities.size(), 2u);
      for (int c = 0; c < 2; ++c) {
        EXPECT_NEAR(p.probabilities[c], 1.0 / (1.0 + std::exp(-p.logits[c])), 1e-6);
      }
      EXPECT_FLOAT_EQ(p.predicted_probability, p.probabilities[p.predicted]);
    }
  }
  // A configuration that names another problem_type is refused naming it.
  config["problem_type"] = "ranking";
  std::ofstream(dir_ + "/config.json") << config.dump();
  ExpectMessageHas(LoadError(), "'problem_type' is \"ranking\"");
}

// A GPT-2 checkpoint of an older transformers keeps its causal mask as a uint8 or bool buffer
// per layer (h.N.attn.bias) beside a float masked_bias: ignored, whatever their dtype, rather than
// refused before the loader's ignore list applies. A tiny bare GPT2Model over the BERT vocabulary.
TEST_F(CheckpointFixture, Gpt2MaskBuffersOfAnyDtypeAreIgnored) {
  std::ofstream(dir_ + "/config.json") << R"({"model_type": "gpt2", "vocab_size": 30522,
    "n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 16, "n_inner": null})";
  torch::manual_seed(3);
  const auto f32 = [](std::vector<int64_t> shape) { return torch::randn(shape) * 0.02; };
  std::map<std::string, torch::Tensor> weights = {
      {"wte.weight", f32({30522, 8})},          {"wpe.weight", f32({16, 8})},
      {"h.0.ln_1.weight", torch::ones({8})},    {"h.0.ln_1.bias", torch::zeros({8})},
      {"h.0.attn.c_attn.weight", f32({8, 24})}, {"h.0.attn.c_attn.bias", torch::zeros({24})},
      {"h.0.attn.c_proj.weight", f32({8, 8})},  {"h.0.attn.c_proj.bias", torch::zeros({8})},
      {"h.0.ln_2.weight", torch::ones({8})},    {"h.0.ln_2.bias", torch::zeros({8})},
      {"h.0.mlp.c_fc.weight", f32({8, 32})},    {"h.0.mlp.c_fc.bias", torch::zeros({32})},
      {"h.0.mlp.c_proj.weight", f32({32, 8})},  {"h.0.mlp.c_proj.bias", torch::zeros({8})},
      {"ln_f.weight", torch::ones({8})},        {"ln_f.bias", torch::zeros({8})},
  };
  for (const char* dtype : {"U8", "BOOL"}) {
    SCOPED_TRACE(dtype);
    std::vector<RawTensor> raw;
    for (const auto& [name, t] : weights) raw.push_back(ToRaw(name, t));
    const torch::Tensor mask =
        torch::tril(torch::ones({16, 16}, torch::kUInt8)).view({1, 1, 16, 16});
    raw.push_back({"h.0.attn.bias",
                   dtype,
                   {1, 1, 16, 16},
                   std::string(static_cast<const char*>(mask.data_ptr()), 256)});
    raw.push_back(ToRaw("h.0.attn.masked_bias", torch::tensor(-1e4f)));
    ASSERT_TRUE(::attattr::engine::WriteSafetensors(dir_ + "/model.safetensors", raw));
    auto m = Model::Load(dir_);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ((*m)->info().architecture, "GPT2Model");
  }
  // A U8 tensor a loader takes as a weight is still refused, naming its dtype.
  std::vector<RawTensor> raw;
  for (const auto& [name, t] : weights) {
    raw.push_back(name == "ln_f.bias" ? RawTensor{name, "U8", {8}, std::string(8, '\0')}
                                      : ToRaw(name, t));
  }
  ASSERT_TRUE(::attattr::engine::WriteSafetensors(dir_ + "/model.safetensors", raw));
  ExpectMessageHas(LoadError(), "tensor 'ln_f.bias' has dtype U8");
}

TEST_F(CheckpointFixture, MissingTensorIsNamed) {
  tensors_.erase("bert.encoder.layer.2.attention.self.key.bias");
  WriteAll("F32");
  const auto s = LoadError();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  ExpectMessageHas(s, "bert.encoder.layer.2.attention.self.key.bias", "model.safetensors");
}

TEST_F(CheckpointFixture, WrongShapeIsNamed) {
  tensors_["bert.encoder.layer.1.output.dense.weight"] = torch::zeros({256, 1000});
  WriteAll("F32");
  const auto s = LoadError();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ExpectMessageHas(s, "bert.encoder.layer.1.output.dense.weight", "[256, 1024]");
}

TEST_F(CheckpointFixture, UnexpectedTensorIsNamed) {
  tensors_["bert.encoder.layer.9.extra.weight"] = torch::zeros({3});
  WriteAll("F32");
  ExpectMessageHas(LoadError(), "unexpected tensor", "bert.encoder.layer.9.extra.weight");
}

TEST_F(CheckpointFixture, IntegerWeightsAreRefused) {
  std::vector<RawTensor> raw;
  for (const auto& [name, t] : tensors_) {
    raw.push_back(ToRaw(name, t, name == "classifier.bias" ? "I8" : "F32"));
  }
  ASSERT_TRUE(::attattr::engine::WriteSafetensors(dir_ + "/model.safetensors", raw));
  ExpectMessageHas(LoadError(), "classifier.bias", "I8");
}

TEST_F(CheckpointFixture, TruncatedFileIsRefused) {
  WriteAll("F32");
  fs::resize_file(dir_ + "/model.safetensors", fs::file_size(dir_ + "/model.safetensors") - 100);
  const auto s = LoadError();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ExpectMessageHas(s, "model.safetensors");
}

TEST_F(CheckpointFixture, MissingFilesAreNamed) {
  ExpectMessageHas(LoadError(), "no weights");
  WriteAll("F32");
  fs::remove(dir_ + "/vocab.txt");
  ExpectMessageHas(LoadError(), "vocab.txt");
  fs::copy_file(fs::path(Sst2ModelDir()) / "vocab.txt", fs::path(dir_) / "vocab.txt");
  fs::remove(dir_ + "/config.json");
  const auto s = LoadError();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  ExpectMessageHas(s, "config.json");
  EXPECT_EQ(Model::Load(dir_ + "/nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CheckpointFixture, BadConfigValuesAreNamed) {
  WriteAll("F32");
  std::ofstream(dir_ + "/config.json") << R"({"model_type": "bert", "vocab_size": 30522,
    "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 7,
    "intermediate_size": 1024, "max_position_embeddings": 128})";
  ExpectMessageHas(LoadError(), "config.json", "num_attention_heads");
  std::ofstream(dir_ + "/config.json") << R"({"model_type": "bert", "vocab_size": 30522,
    "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8, "hidden_act": "relu",
    "intermediate_size": 1024, "max_position_embeddings": 128})";
  ExpectMessageHas(LoadError(), "hidden_act");
  // An architecture the engine does not implement is refused, naming those it does.
  std::ofstream(dir_ + "/config.json") << R"({"model_type": "gpt_neox", "vocab_size": 30522,
    "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8,
    "intermediate_size": 1024, "max_position_embeddings": 128})";
  ExpectMessageHas(LoadError(), "'model_type' is 'gpt_neox'",
                   "bert, distilbert, electra, roberta, xlm-roberta, deberta-v2, modernbert");
  // A DistilBERT config over BERT tensors: the first missing DistilBERT tensor is named.
  std::ofstream(dir_ + "/config.json") << R"({"model_type": "distilbert", "vocab_size": 30522,
    "dim": 256, "n_layers": 4, "n_heads": 8, "hidden_dim": 1024, "max_position_embeddings": 128})";
  ExpectMessageHas(LoadError(), "distilbert.embeddings.word_embeddings.weight");
  // DeBERTa-v2 options the engine does not implement are refused naming the key.
  const std::string deberta = R"({"model_type": "deberta-v2", "vocab_size": 30522,
    "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8,
    "intermediate_size": 1024, "max_position_embeddings": 128, "relative_attention": true,)";
  std::ofstream(dir_ + "/config.json") << deberta << R"("conv_kernel_size": 3})";
  ExpectMessageHas(LoadError(), "'conv_kernel_size' is 3");
  std::ofstream(dir_ + "/config.json") << deberta << R"("pos_att_type": "p2c|c2c"})";
  ExpectMessageHas(LoadError(), "'pos_att_type' holds 'c2c'");
  std::ofstream(dir_ + "/config.json") << deberta << R"("pooler_hidden_act": "tanh"})";
  ExpectMessageHas(LoadError(), "pooler_hidden_act");
  // A DeBERTa config over BERT tensors: its first missing tensor is named.
  std::ofstream(dir_ + "/config.json") << deberta << R"("pos_att_type": ["p2c", "c2p"]})";
  ExpectMessageHas(LoadError(), "deberta.embeddings.word_embeddings.weight");
  // ModernBERT options the engine does not implement are refused naming the key.
  const std::string modernbert = R"({"model_type": "modernbert", "vocab_size": 30522,
    "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8,
    "intermediate_size": 1024, "max_position_embeddings": 128,)";
  std::ofstream(dir_ + "/config.json") << modernbert << R"("rope_scaling": {"type": "linear"}})";
  ExpectMessageHas(LoadError(), "'rope_scaling' is set");
  std::ofstream(dir_ + "/config.json")
      << modernbert << R"("rope_parameters": {"full_attention": {"rope_type": "yarn"}}})";
  ExpectMessageHas(LoadError(), "rope_parameters.full_attention", "'rope_type'");
  std::ofstream(dir_ + "/config.json") << modernbert << R"("classifier_pooling": "max"})";
  ExpectMessageHas(LoadError(), "'classifier_pooling' is 'max'");
  std::ofstream(dir_ + "/config.json") << modernbert << R"("layer_types": ["full_attention"]})";
  ExpectMessageHas(LoadError(), "'layer_types' must list one type per layer (4)");
  std::ofstream(dir_ + "/config.json") << modernbert << R"("hidden_activation": "silu"})";
  ExpectMessageHas(LoadError(), "'hidden_activation' is \"silu\"");
  // A ModernBERT config over BERT tensors: its first missing tensor is named.
  std::ofstream(dir_ + "/config.json") << modernbert << R"("local_attention": 64})";
  ExpectMessageHas(LoadError(), "model.embeddings.tok_embeddings.weight");
  // So are the decoders' (the Llama family's).
  const std::string llama = R"({"model_type": "llama", "vocab_size": 30522,
    "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8,
    "intermediate_size": 1024, "max_position_embeddings": 128,)";
  std::ofstream(dir_ + "/config.json") << llama << R"("num_key_value_heads": 3})";
  ExpectMessageHas(LoadError(), "'num_attention_heads' (8) is not a multiple of",
                   "'num_key_value_heads' (3)");
  // RoPE scaling types the engine does not implement, and a type's missing parameters.
  std::ofstream(dir_ + "/config.json")
      << llama << R"("rope_scaling": {"rope_type": "longrope", "factor": 8.0}})";
  ExpectMessageHas(LoadError(), "rope_scaling: 'rope_type' is 'longrope'",
                   "supported: default, linear, dynamic, llama3, yarn");
  std::ofstream(dir_ + "/config.json")
      << llama << R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0}})";
  ExpectMessageHas(LoadError(), "'low_freq_factor' is required for rope_type 'llama3'");
  std::ofstream(dir_ + "/config.json") << llama << R"("rope_parameters": {"rope_type": "linear",
    "rope_theta": 10000.0, "factor": 2.0, "partial_rotary_factor": 0.5}})";
  ExpectMessageHas(LoadError(), "rope_parameters: 'partial_rotary_factor' is 0.5");
  std::ofstream(dir_ + "/config.json") << llama << R"("rope_parameters": {"rope_type": "yarn",
    "factor": -4, "original_max_position_embeddings": 64}})";
  ExpectMessageHas(LoadError(), "'factor' must be a positive number");
  std::ofstream(dir_ + "/config.json") << llama << R"("hidden_act": "gelu"})";
  ExpectMessageHas(LoadError(), "'hidden_act' is \"gelu\"; only \"silu\" is supported");
  std::ofstream(dir_ + "/config.json") << llama << R"("head_dim": 64})";
  ExpectMessageHas(LoadError(), "'head_dim'");
  std::ofstream(dir_ + "/config.json")
      << R"({"model_type": "qwen2", "vocab_size": 30522, "hidden_size": 256,
    "num_hidden_layers": 4, "num_attention_heads": 8, "intermediate_size": 1024,
    "max_position_embeddings": 128, "use_sliding_window": true})";
  ExpectMessageHas(LoadError(), "'use_sliding_window' is true");
  // A Llama config over BERT tensors: its first missing tensor is named.
  std::ofstream(dir_ + "/config.json") << llama << R"("num_key_value_heads": 2})";
  ExpectMessageHas(LoadError(), "model.embed_tokens.weight");
  // GPT-2's keys (n_embd, n_layer, ...): another activation and cross-attention are refused; a
  // GPT-2 config over BERT tensors names its first missing tensor.
  const std::string gpt2 = R"({"model_type": "gpt2", "vocab_size": 30522, "n_embd": 256,
    "n_layer": 4, "n_head": 8, "n_positions": 128, "n_inner": null,)";
  std::ofstream(dir_ + "/config.json") << gpt2 << R"("activation_function": "relu"})";
  ExpectMessageHas(LoadError(), "'activation_function' is 'relu'",
                   "supported: gelu_new, gelu_pytorch_tanh, gelu");
  std::ofstream(dir_ + "/config.json") << gpt2 << R"("add_cross_attention": true})";
  ExpectMessageHas(LoadError(), "'add_cross_attention' is true");
  std::ofstream(dir_ + "/config.json") << gpt2 << R"("n_inner": -3})";
  ExpectMessageHas(LoadError(), "'n_inner' must be a positive integer");
  std::ofstream(dir_ + "/config.json") << gpt2 << R"("scale_attn_weights": false})";
  ExpectMessageHas(LoadError(), "transformer.wte.weight");
  // RoBERTa's positions start after the padding index, which must leave room for a token.
  std::ofstream(dir_ + "/config.json") << R"({"model_type": "roberta", "vocab_size": 30522,
    "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8,
    "intermediate_size": 1024, "max_position_embeddings": 128, "pad_token_id": 127})";
  ExpectMessageHas(LoadError(), "pad_token_id");
}

// tokenizer.json is preferred over vocab.txt; one the library cannot parse is refused naming it.
TEST_F(CheckpointFixture, BadTokenizerJsonIsNamed) {
  WriteAll("F32");
  std::ofstream(dir_ + "/tokenizer.json") << R"({"model": {"type": "BPE", "vocab": 7}})";
  const auto s = LoadError();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ExpectMessageHas(s, "tokenizer.json", "not a Hugging Face tokenizer.json");
  fs::remove(dir_ + "/tokenizer.json");
  auto m = Model::Load(dir_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->info().tokenizer, "wordpiece");
}

TEST(MiniLmCheckpointTest, EncoderOnlyCheckpointLoads) {
  const std::string dir = ::attattr::testing::MiniLmDir();
  ATTATTR_SKIP_IF_MISSING(dir);
  auto m = Model::Load(dir);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->info().architecture, "BertModel");
  EXPECT_FALSE((*m)->info().has_classifier);
  EXPECT_EQ((*m)->info().hidden_size, 384);
  EXPECT_EQ((*m)->info().max_length, 512);
  EXPECT_EQ((*m)->Predict({}).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace attattr::engine
