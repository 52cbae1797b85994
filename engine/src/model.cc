// Model: loading a Hugging Face checkpoint directory (BERT family, see model_config.h) (or random
// weights) and clean forward passes. Torch and JSON exceptions stop here and in the other public
// entry points of the engine.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "attattr/base/field_error.h"
#include "attattr/base/quote.h"
#include "attattr/base/status_macros.h"
#include "attattr/engine/hf_tokenizer.h"
#include "attattr/engine/wordpiece_tokenizer.h"
#include "bert_encoder.h"
#include "checkpoint_loader.h"
#include "low_precision.h"
#include "model_config.h"
#include "model_impl.h"
#include "torch_boundary.h"

namespace attattr::engine {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<torch::Device> ParseDevice(const std::string& name) {
  try {
    torch::Device device(name);
    if (device.is_cuda() && !torch::cuda::is_available()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "device: '", name, "' requested but this LibTorch build sees no CUDA device"));
    }
    return device;
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("device: cannot parse '", name, "'"));
  }
}

}  // namespace

EncoderBatch MakeBatch(const std::vector<Encoding>& encodings, const std::vector<size_t>& order,
                       const torch::Device& device) {
  int64_t n = 0;
  for (size_t i : order) n = std::max<int64_t>(n, encodings[i].size());
  const int64_t b = static_cast<int64_t>(order.size());
  auto ids = torch::zeros({b, n}, torch::kInt64);
  auto types = torch::zeros({b, n}, torch::kInt64);
  auto mask = torch::zeros({b, n}, torch::kFloat32);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto types_a = types.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<float, 2>();
  for (int64_t r = 0; r < b; ++r) {
    const Encoding& e = encodings[order[r]];
    for (size_t j = 0; j < e.size(); ++j) {
      ids_a[r][j] = e.input_ids[j];
      types_a[r][j] = e.token_type_ids[j];
      mask_a[r][j] = 1.0f;
    }
  }
  return {ids.to(device), types.to(device), mask.to(device)};
}

std::vector<float> ToVector(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

const ModelInfo& Model::info() const { return impl_->info; }
const Tokenizer& Model::tokenizer() const { return *impl_->tokenizer; }

namespace {

// The checkpoint's tokenizer: tokenizer.json when it ships one (what transformers' fast tokenizers
// read), otherwise vocab.txt with tokenizer_config.json's options. Its ids must fit the embeddings.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const fs::path& dir,
                                                         const ModelConfig& config,
                                                         const TokenizerConfig& tok_config) {
  const fs::path json = dir / "tokenizer.json";
  const bool hf = fs::exists(json);
  std::unique_ptr<Tokenizer> tokenizer;
  std::string file;
  if (hf) {
    file = json.string();
    ATTATTR_ASSIGN_OR_RETURN(tokenizer, HfTokenizer::Load(file));
  } else {
    TokenizerOptions tok_options;
    tok_options.do_lower_case = tok_config.do_lower_case;
    if (tok_config.has_strip_accents) tok_options.strip_accents = tok_config.strip_accents;
    tok_options.tokenize_chinese_chars = tok_config.tokenize_chinese_chars;
    file = (dir / "vocab.txt").string();
    ATTATTR_ASSIGN_OR_RETURN(tokenizer, WordPieceTokenizer::Load(file, tok_options));
  }
  // vocab.txt lists exactly the embedding rows; a tokenizer.json may hold fewer pieces than a
  // padded embedding matrix, never more.
  const int pieces = tokenizer->vocab_size();
  if (hf ? pieces > config.vocab_size : pieces != config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": has ", pieces, " tokens but config.json says vocab_size = ", config.vocab_size));
  }
  return tokenizer;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& dir,
                                                   const LoadOptions& options) {
  if (!fs::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat(dir, ": model directory not found"));
  }
  ATTATTR_ASSIGN_OR_RETURN(auto device, ParseDevice(options.device));
  ATTATTR_ASSIGN_OR_RETURN(auto config, ReadModelConfig((fs::path(dir) / "config.json").string()));
  ATTATTR_ASSIGN_OR_RETURN(auto tok_config,
                           ReadTokenizerConfig((fs::path(dir) / "tokenizer_config.json").string()));
  ATTATTR_ASSIGN_OR_RETURN(auto tokenizer, LoadTokenizer(dir, config, tok_config));
  try {
    torch::NoGradGuard no_grad;
    ATTATTR_ASSIGN_OR_RETURN(auto loaded, LoadEncoder(dir, config, device, options.weights));
    auto impl = std::make_unique<Impl>();
    ModelInfo& info = impl->info;
    info.path = dir;
    info.family = FamilyName(config.family);
    impl->family = config.family;
    info.architecture = loaded.architecture;
    info.weights_file = loaded.weights_file;
    info.num_layers = config.num_hidden_layers;
    info.num_heads = config.num_attention_heads;
    info.decoder = IsDecoder(config.family);
    info.num_key_value_heads =
        info.decoder ? config.decoder.num_key_value_heads : config.num_attention_heads;
    for (int l = 0; l < loaded.encoder->num_layers(); ++l) {
      info.heads_per_layer.push_back(loaded.encoder->num_heads(l));
    }
    info.hidden_size = config.hidden_size;
    info.intermediate_size = config.intermediate_size;
    info.vocab_size = config.vocab_size;
    info.tokenizer = std::string(tokenizer->kind());
    info.max_length = config.max_position_embeddings - config.position_offset;
    if (tok_config.model_max_length > 0) {
      info.max_length = std::min(info.max_length, tok_config.model_max_length);
    }
    info.layer_norm_eps = config.layer_norm_eps;
    info.has_classifier = loaded.encoder->has_classifier();
    info.language_model = loaded.language_model;
    info.num_classes = loaded.num_labels;
    if (info.has_classifier && !info.language_model) {
      info.problem_type = !config.problem_type.empty() ? config.problem_type
                          : loaded.num_labels == 1     ? "regression"
                                                       : "single_label_classification";
      info.labels = config.id2label;
      if (info.labels.empty()) {
        for (int c = 0; c < loaded.num_labels; ++c) {
          info.labels.push_back(absl::StrCat("LABEL_", c));
        }
      }
    }
    info.parameter_count = loaded.parameter_count;
    info.device = device.str();
    info.weights = options.weights;
    info.weight_bytes = loaded.weight_bytes;
    impl->tokenizer = std::move(tokenizer);
    impl->device = device;
    impl->token_types = 2;  // the random BERT's token-type table below
    impl->token_types = config.type_vocab_size;
    if (info.decoder && info.has_classifier && !info.language_model) {
      impl->score_pad_id = config.decoder.pad_token_id;
    }
    impl->encoder = std::move(loaded.encoder);
    return std::unique_ptr<Model>(new Model(std::move(impl)));
  } catch (...) {
    return TorchExceptionToStatus(dir);
  }
}

absl::StatusOr<std::unique_ptr<Model>> Model::CreateRandom(const RandomModelSpec& spec) {
  if (spec.num_layers <= 0 || spec.num_heads <= 0 || spec.hidden_size % spec.num_heads != 0 ||
      spec.intermediate_size <= 0 || spec.max_position_embeddings < 2 || spec.num_labels < 0) {
    return absl::InvalidArgumentError("random model: inconsistent dimensions");
  }
  ATTATTR_ASSIGN_OR_RETURN(auto device, ParseDevice(spec.device));
  TokenizerOptions tok_options;
  tok_options.do_lower_case = spec.do_lower_case;
  ATTATTR_ASSIGN_OR_RETURN(auto tokenizer, WordPieceTokenizer::Load(spec.vocab_path, tok_options));
  try {
    torch::NoGradGuard no_grad;
    torch::manual_seed(spec.seed);
    const int64_t d = spec.hidden_size, inter = spec.intermediate_size;
    auto opts = torch::TensorOptions().dtype(torch::kFloat32);
    auto normal = [&](std::vector<int64_t> shape) { return torch::randn(shape, opts) * 0.02; };
    auto zeros = [&](int64_t k) { return torch::zeros({k}, opts); };
    auto ones = [&](int64_t k) { return torch::ones({k}, opts); };
    BertWeights w;
    w.word_emb = normal({tokenizer->vocab_size(), d});
    w.pos_emb = normal({spec.max_position_embeddings, d});
    w.type_emb = normal({2, d});
    w.emb_ln_w = ones(d);
    w.emb_ln_b = zeros(d);
    for (int l = 0; l < spec.num_layers; ++l) {
      BertLayerWeights lw;
      lw.num_heads = spec.num_heads;
      lw.q_w = normal({d, d}), lw.q_b = zeros(d);
      lw.k_w = normal({d, d}), lw.k_b = zeros(d);
      lw.v_w = normal({d, d}), lw.v_b = zeros(d);
      lw.o_w = normal({d, d}), lw.o_b = zeros(d);
      lw.ln1_w = ones(d), lw.ln1_b = zeros(d);
      lw.i_w = normal({inter, d}), lw.i_b = zeros(inter);
      lw.f_w = normal({d, inter}), lw.f_b = zeros(d);
      lw.ln2_w = ones(d), lw.ln2_b = zeros(d);
      w.layers.push_back(std::move(lw));
    }
    if (spec.num_labels > 0) {
      w.pooler_w = normal({d, d}), w.pooler_b = zeros(d);
      w.cls_w = normal({spec.num_labels, d}), w.cls_b = zeros(spec.num_labels);
    }
    auto impl = std::make_unique<Impl>();
    ModelInfo& info = impl->info;
    info.family = "bert";
    info.architecture = spec.num_labels > 0 ? "BertForSequenceClassification" : "BertModel";
    info.num_layers = spec.num_layers;
    info.num_heads = spec.num_heads;
    info.num_key_value_heads = spec.num_heads;
    info.heads_per_layer.assign(spec.num_layers, spec.num_heads);
    info.hidden_size = spec.hidden_size;
    info.intermediate_size = spec.intermediate_size;
    info.vocab_size = tokenizer->vocab_size();
    info.max_length = spec.max_position_embeddings;
    info.layer_norm_eps = 1e-12;
    info.has_classifier = spec.num_labels > 0;
    for (int c = 0; c < spec.num_labels; ++c) info.labels.push_back(absl::StrCat("LABEL_", c));
    if (spec.num_labels > 0) {
      info.problem_type = spec.num_labels == 1 ? "regression" : "single_label_classification";
    }
    info.num_classes = spec.num_labels;
    info.device = device.str();
    impl->tokenizer = std::move(tokenizer);
    impl->device = device;
    ForEachWeight(w, [&](torch::Tensor& t, WeightRole) {
      t = t.to(device);
      info.parameter_count += t.numel();
      info.weight_bytes += static_cast<int64_t>(t.nbytes());
    });
    impl->encoder = std::make_unique<BertEncoder>(std::move(w), spec.hidden_size / spec.num_heads,
                                                  info.layer_norm_eps);
    return std::unique_ptr<Model>(new Model(std::move(impl)));
  } catch (...) {
    return TorchExceptionToStatus("random model");
  }
}

absl::StatusOr<Encoding> Model::Encode(const Example& example) const {
  if (example.text.empty()) return absl::InvalidArgumentError("text: empty");
  if (example.text_pair && example.text_pair->empty()) {
    return absl::InvalidArgumentError("text_pair: empty");
  }
  std::optional<std::string_view> pair;
  if (example.text_pair) pair = *example.text_pair;
  ATTATTR_ASSIGN_OR_RETURN(Encoding encoding,
                           impl_->tokenizer->Encode(example.text, pair, impl_->info.max_length));
  ATTATTR_RETURN_IF_ERROR(CheckSegmentsHaveTokens(encoding, example.text_pair.has_value()));
  ATTATTR_RETURN_IF_ERROR(CheckEncoding(encoding, example.text_pair.has_value()));
  ATTATTR_RETURN_IF_ERROR(EndAtScoredToken(&encoding, example.text_pair.has_value()));
  return encoding;
}

absl::Status Model::EndAtScoredToken(Encoding* encoding, bool pair) const {
  if (impl_->score_pad_id < 0) return absl::OkStatus();
  std::size_t keep = encoding->input_ids.size();
  while (keep > 1 && encoding->input_ids[keep - 1] == impl_->score_pad_id) --keep;
  if (keep == encoding->input_ids.size()) return absl::OkStatus();
  const auto cut = [keep](auto& v) {
    if (v.size() > keep) v.resize(keep);
  };
  cut(encoding->tokens);
  cut(encoding->input_ids);
  cut(encoding->token_type_ids);
  cut(encoding->offsets);
  return CheckSegmentsHaveTokens(
      *encoding, pair,
      absl::StrCat("holds only the model's pad_token_id (", impl_->score_pad_id,
                   ") after its last scored token, which the sequence classifier skips"));
}

absl::Status Model::CheckEncoding(const Encoding& encoding, bool pair) const {
  // What the embeddings can look up, whatever the tokenizer's files say: an index past a table
  // is an error on the CPU but a device-side assert that breaks every later call on a GPU.
  if (static_cast<int>(encoding.size()) > impl_->info.max_length) {
    return absl::InvalidArgumentError(absl::StrCat("text: the tokenizer made ", encoding.size(),
                                                   " tokens, more than the model's ",
                                                   impl_->info.max_length, " positions"));
  }
  for (size_t i = 0; i < encoding.size(); ++i) {
    if (encoding.input_ids[i] < 0 || encoding.input_ids[i] >= impl_->info.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("text: the tokenizer gave id ", encoding.input_ids[i], " to ",
                       QuoteInput(encoding.tokens[i]), ", outside the model's ",
                       impl_->info.vocab_size, " embeddings"));
    }
    if (impl_->token_types > 0 &&
        (encoding.token_type_ids[i] < 0 || encoding.token_type_ids[i] >= impl_->token_types)) {
      return absl::InvalidArgumentError(
          absl::StrCat(pair ? "text_pair" : "text", ": the tokenizer gave token type ",
                       encoding.token_type_ids[i], " but the model has ", impl_->token_types,
                       " token type(s) (config.json type_vocab_size)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Encoding>> Model::EncodeAll(const std::vector<Example>& examples) const {
  std::vector<Encoding> encodings;
  encodings.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    auto encoding = Encode(examples[i]);
    if (!encoding.ok()) {
      return InvalidFieldError({"examples", static_cast<int64_t>(i)}, encoding.status().message());
    }
    encodings.push_back(std::move(*encoding));
  }
  return encodings;
}

absl::StatusOr<std::vector<Prediction>> Model::Predict(
    const std::vector<Encoding>& encodings, const std::vector<std::vector<float>>* head_mask,
    const ForwardBatching& batching) const {
  if (!impl_->info.has_classifier) {
    return absl::FailedPreconditionError("model: encoder-only checkpoint has no classifier");
  }
  std::vector<Prediction> out;
  if (encodings.empty()) return out;
  try {
    torch::NoGradGuard no_grad;
    ForwardOptions fo;
    if (head_mask != nullptr) {
      if (static_cast<int>(head_mask->size()) != impl_->info.num_layers) {
        return absl::InvalidArgumentError(
            absl::StrCat("head_mask: expected ", impl_->info.num_layers, " rows"));
      }
      auto m = torch::ones({impl_->info.num_layers, impl_->info.num_heads});
      for (int l = 0; l < impl_->info.num_layers; ++l) {
        const auto& row = (*head_mask)[l];
        if (static_cast<int>(row.size()) != impl_->info.num_heads) {
          return absl::InvalidArgumentError(
              absl::StrCat("head_mask[", l, "]: expected ", impl_->info.num_heads, " entries"));
        }
        for (int h = 0; h < impl_->info.num_heads; ++h) m[l][h] = row[h];
      }
      fo.head_mask = m.to(impl_->device);
    }
    const auto batches = PlanBatches(
        encodings.size(),
        [&](size_t i) {
          return ForwardBytes(impl_->info, static_cast<int64_t>(encodings[i].size()), false);
        },
        batching.memory_budget_bytes, static_cast<size_t>(std::max(1, batching.max_examples)));
    for (const std::vector<size_t>& order : batches) {
      auto batch = MakeBatch(encodings, order, impl_->device);
      const LowPrecisionScope arithmetic(impl_->info.weights, impl_->device);
      auto logits = impl_->encoder->Forward(batch, fo).logits;
      for (int64_t r = 0; r < logits.size(0); ++r) out.push_back(MakePrediction(*impl_, logits[r]));
    }
  } catch (...) {
    return TorchExceptionToStatus("predict");
  }
  return out;
}

absl::Status RequireClassifier(const ModelInfo& info, const std::string& what) {
  if (info.language_model) {
    return absl::InvalidArgumentError(
        absl::StrCat("model: ", what, " needs a classifier checkpoint; ", info.architecture,
                     " is a language model (gold labels are classes, not next tokens)"));
  }
  if (!info.has_classifier) {
    return absl::InvalidArgumentError(
        absl::StrCat("model: ", what, " needs a classifier checkpoint"));
  }
  if (info.problem_type != "single_label_classification") {
    return absl::InvalidArgumentError(
        absl::StrCat("model: ", what,
                     " needs a single-label classifier (gold labels are one class "
                     "each); this model's problem_type is ",
                     info.problem_type));
  }
  return absl::OkStatus();
}

absl::Status RequireSoftmaxClasses(const ModelInfo& info) {
  if (info.problem_type == "regression") {
    return absl::InvalidArgumentError(absl::StrCat(
        "this model's head is a regression (", info.num_classes,
        info.num_classes == 1 ? " output" : " outputs",
        "): a softmax probability over it says nothing; attribute its value with the logit "
        "target (logit:0)"));
  }
  if (info.problem_type == "multi_label_classification") {
    return absl::InvalidArgumentError(
        "this model's head is multi-label (a sigmoid per label, not a softmax over them); "
        "attribute one label's score with the logit target (logit:K)");
  }
  return absl::OkStatus();
}

Prediction MakePrediction(const Model::Impl& impl, const torch::Tensor& logits_row) {
  Prediction p;
  p.problem_type = impl.info.problem_type;
  const auto logits = logits_row.to(torch::kCPU, torch::kFloat32);
  p.predicted = static_cast<int>(logits.argmax().item<int64_t>());
  if (p.problem_type == "regression") {
    p.logits = ToVector(logits);
    return p;
  }
  const auto probs = p.problem_type == "multi_label_classification" ? torch::sigmoid(logits)
                                                                    : torch::softmax(logits, -1);
  p.predicted_probability = probs[p.predicted].item<float>();
  if (!impl.info.language_model) {
    p.logits = ToVector(logits);
    p.probabilities = ToVector(probs);
    return p;
  }
  const auto [top_probs, top_ids] = probs.topk(std::min<int64_t>(kTopTokens, probs.size(0)));
  for (int64_t k = 0; k < top_ids.size(0); ++k) {
    const auto id = static_cast<int32_t>(top_ids[k].item<int64_t>());
    p.top_tokens.push_back(
        {id, impl.tokenizer->IdToToken(id), top_probs[k].item<float>(), logits[id].item<float>()});
  }
  return p;
}

absl::StatusOr<std::vector<std::vector<float>>> Model::Embed(
    const std::vector<Encoding>& encodings) const {
  std::vector<std::vector<float>> out;
  try {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < encodings.size(); ++i) {
      auto batch = MakeBatch(encodings, {i}, impl_->device);
      const LowPrecisionScope arithmetic(impl_->info.weights, impl_->device);
      auto h = impl_->encoder->Forward(batch).last_hidden;
      out.push_back(ToVector(MeanPool(h, batch.attention_mask)[0]));
    }
  } catch (...) {
    return TorchExceptionToStatus("embed");
  }
  return out;
}

}  // namespace attattr::engine
