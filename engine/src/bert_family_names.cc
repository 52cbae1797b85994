// The BERT-family tensor names (see bert_family_names.h).
#include "bert_family_names.h"

namespace attattr::engine {

TensorNames NamesOf(ModelFamily family) {
  TensorNames n;  // BERT's
  switch (family) {
    case ModelFamily::kDistilBert:
      n.encoder = "distilbert.";
      n.architecture = "DistilBertForSequenceClassification";
      n.base = "DistilBertModel";
      n.token_types = false;
      n.layer = "transformer.layer.";
      n.query = "attention.q_lin";
      n.key = "attention.k_lin";
      n.value = "attention.v_lin";
      n.attention_out = "attention.out_lin";
      n.attention_norm = "sa_layer_norm";
      n.ffn_in = "ffn.lin1";
      n.ffn_out = "ffn.lin2";
      n.output_norm = "output_layer_norm";
      n.pooler = "pre_classifier";
      n.pooler_in_encoder = false;
      n.activation = PooledActivation::kRelu;
      break;
    case ModelFamily::kElectra:
      n.encoder = "electra.";
      n.architecture = "ElectraForSequenceClassification";
      n.base = "ElectraModel";
      n.pooler = "classifier.dense";
      n.pooler_in_encoder = false;
      n.activation = PooledActivation::kGelu;
      n.classifier = "classifier.out_proj";
      break;
    case ModelFamily::kRoberta:
    case ModelFamily::kXlmRoberta: {
      const bool xlm = family == ModelFamily::kXlmRoberta;
      n.encoder = "roberta.";
      n.architecture =
          xlm ? "XLMRobertaForSequenceClassification" : "RobertaForSequenceClassification";
      n.base = xlm ? "XLMRobertaModel" : "RobertaModel";
      n.pooler = "classifier.dense";
      n.pooler_in_encoder = false;
      n.classifier = "classifier.out_proj";
      n.unused_pooler = "pooler.dense";
      break;
    }
    case ModelFamily::kDebertaV2:
      n.encoder = "deberta.";
      n.architecture = "DebertaV2ForSequenceClassification";
      n.base = "DebertaV2Model";
      n.query = "attention.self.query_proj";
      n.key = "attention.self.key_proj";
      n.value = "attention.self.value_proj";
      n.pooler = "pooler.dense";
      n.pooler_in_encoder = false;
      n.activation = PooledActivation::kGelu;
      break;
    case ModelFamily::kBert:
    case ModelFamily::kModernBert:  // its own layout: modernbert_loader.cc
    case ModelFamily::kLlama:       // the decoders': llama_loader.cc
    case ModelFamily::kMistral:
    case ModelFamily::kQwen2:
    case ModelFamily::kGpt2:  // gpt2_loader.cc
      break;
  }
  return n;
}

}  // namespace attattr::engine
