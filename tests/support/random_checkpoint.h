// Writes a Hugging Face BertForSequenceClassification directory with random fp16 weights
// (config.json, tokenizer_config.json, vocab.txt, model.safetensors), so end-to-end tests can serve
// a model of any dimensions — e.g. BERT-base (12 × 12 × 768) for large-result tests — without a
// model hub. Weights: N(0, 0.02)-like values from a fixed-seed generator; LayerNorm weights 1.
#pragma once

#include <cstdint>
#include <string>

namespace attattr::testing {

struct RandomCheckpointSpec {
  int num_layers = 12;
  int num_heads = 12;
  int hidden_size = 768;
  int intermediate_size = 3072;
  int max_position_embeddings = 128;
  int num_labels = 2;
  std::string vocab_path;  // copied to vocab.txt; its line count sets the embedding rows
  uint64_t seed = 1;
};

// Returns false when a file cannot be written or the vocabulary cannot be read.
bool WriteRandomCheckpoint(const std::string& dir, const RandomCheckpointSpec& spec);

}  // namespace attattr::testing
