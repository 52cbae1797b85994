// How the BERT-family checkpoints (BERT, DistilBERT, ELECTRA, RoBERTa/XLM-R, DeBERTa-v2) name
// their tensors: Hugging Face's module paths per family. The loader (checkpoint_loader.cc) reads by
// these names and the pruned export (pruned_export.cc) writes by them, so an exported checkpoint
// is laid out as the family's own classes save it.
#pragma once

#include "bert_encoder.h"
#include "model_config.h"

namespace attattr::engine {

// How a family names its tensors (Hugging Face's module paths). `encoder` prefixes the encoder in
// classifier checkpoints; `layer` is followed by the layer index and a dot; the head's dense layer
// (`pooler`) is inside the encoder prefix for BERT and outside it otherwise; `classifier` is the
// output projection.
struct TensorNames {
  const char* encoder = "bert.";
  const char* architecture = "BertForSequenceClassification";  // with a classifier
  const char* base = "BertModel";                              // without
  bool token_types = true;
  const char* layer = "encoder.layer.";
  const char* query = "attention.self.query";
  const char* key = "attention.self.key";
  const char* value = "attention.self.value";
  const char* attention_out = "attention.output.dense";
  const char* attention_norm = "attention.output.LayerNorm";
  const char* ffn_in = "intermediate.dense";
  const char* ffn_out = "output.dense";
  const char* output_norm = "output.LayerNorm";
  const char* pooler = "pooler.dense";
  bool pooler_in_encoder = true;
  PooledActivation activation = PooledActivation::kTanh;
  const char* classifier = "classifier";
  // A tensor group (`<encoder prefix><name>.weight/.bias`) the family's base model saves but none
  // of its heads uses, ignored when loading: RobertaModel/XLMRobertaModel's own pooler, which the
  // bare checkpoints of most RoBERTa/XLM-R embedding models carry (embeddings are mean-pooled;
  // the classifier has its own dense layer). nullptr when none.
  const char* unused_pooler = nullptr;
};

TensorNames NamesOf(ModelFamily family);

}  // namespace attattr::engine
