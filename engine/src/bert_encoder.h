// The post-LayerNorm encoders of the BERT family in plain LibTorch ops, matching Hugging Face in
// eval mode: `BertModel`/`BertForSequenceClassification`, `DistilBertModel`/
// `DistilBertForSequenceClassification`, `ElectraModel`/`ElectraForSequenceClassification` and
// RoBERTa/XLM-R; DeBERTa-v2 reuses everything but the attention scores (deberta_encoder.h).
// Embeddings (word [+ position] [+ token type], LayerNorm; ELECTRA's projected up to the hidden
// size when narrower, DeBERTa's projected before its LayerNorm), layers of self-attention (additive
// mask, optional head mask, optional replacement of one layer's probabilities) and exact-erf GELU
// feed-forward, then the head on h[CLS]: a dense layer, an activation (BERT's pooler: tanh;
// DistilBERT's pre_classifier: ReLU; ELECTRA's classifier.dense: GELU) and the classifier. The
// families differ only in weight names (checkpoint_loader.cc), token types, the embedding
// projection and the head's activation. Weights are plain tensors without requires_grad; a const
// BertEncoder is safe to use from many threads.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "encoder.h"

namespace attattr::engine {

struct BertLayerWeights {
  int num_heads = 0;                           // heads present (fewer than configured when pruned)
  torch::Tensor q_w, q_b, k_w, k_b, v_w, v_b;  // [H*dh, d], [H*dh]
  torch::Tensor o_w, o_b;                      // [d, H*dh], [d]
  torch::Tensor ln1_w, ln1_b;                  // attention output LayerNorm
  torch::Tensor i_w, i_b;                      // [I, d], [I]
  torch::Tensor f_w, f_b;                      // [d, I], [d]
  torch::Tensor ln2_w, ln2_b;                  // output LayerNorm
};

// The activation between the head's dense layer (BERT's pooler, DistilBERT's pre_classifier) and
// the classifier.
enum class PooledActivation { kTanh, kRelu, kGelu };

struct BertWeights {
  torch::Tensor word_emb, emb_ln_w, emb_ln_b;
  torch::Tensor pos_emb;                 // undefined without absolute positions (DeBERTa-v3)
  int64_t position_offset = 0;           // position id of the first token (RoBERTa: pad id + 1,
                                         // the pad id's own position: see Embed)
  torch::Tensor type_emb;                // undefined for families without token types (DistilBERT)
  torch::Tensor emb_proj_w, emb_proj_b;  // ELECTRA's embeddings_project, DeBERTa's embed_proj
                                         // (no bias); undefined when absent
  bool project_before_norm = false;      // DeBERTa: projection, then LayerNorm at hidden size
  std::vector<BertLayerWeights> layers;
  torch::Tensor pooler_w, pooler_b;  // undefined when absent
  PooledActivation pooled_activation = PooledActivation::kTanh;
  torch::Tensor cls_w, cls_b;  // undefined for encoder-only checkpoints
};

// Calls fn on every defined weight tensor (embeddings, layers, pooler, classifier) with its role.
void ForEachWeight(BertWeights& w, const std::function<void(torch::Tensor&, WeightRole)>& fn);

class BertEncoder : public Encoder {
 public:
  BertEncoder(BertWeights weights, int head_dim, double layer_norm_eps)
      : w_(std::move(weights)), head_dim_(head_dim), eps_(layer_norm_eps) {}

  const BertWeights& weights() const { return w_; }
  int head_dim() const override { return head_dim_; }
  int num_layers() const override { return static_cast<int>(w_.layers.size()); }
  int num_heads(int l) const override { return w_.layers[l].num_heads; }
  bool has_classifier() const override { return w_.cls_w.defined(); }

  torch::Tensor Embed(const EncoderBatch& batch) const override;
  torch::Tensor AttentionProbs(int l, const torch::Tensor& h,
                               const torch::Tensor& add_mask) const override;
  torch::Tensor Values(int l, const torch::Tensor& h) const override;
  torch::Tensor FinishLayer(int l, const torch::Tensor& h,
                            const torch::Tensor& context) const override;
  torch::Tensor Head(const torch::Tensor& last_hidden,
                     const torch::Tensor& attention_mask) const override;
  std::unique_ptr<Encoder> CloneMapped(const WeightMap& map) const override;
  // The same, as a BertEncoder (for encoders built on this one).
  BertEncoder CloneWeights(const WeightMap& map) const;

 protected:
  torch::Tensor SplitHeads(const torch::Tensor& x, int heads) const;  // [B,n,H*dh] -> [B,H,n,dh]

 private:
  BertWeights w_;
  int head_dim_;
  double eps_;
};

}  // namespace attattr::engine
