// DeBERTa-v2 and v3 (`DebertaV2Model`, `DebertaV2ForSequenceClassification`) in LibTorch ops,
// matching Hugging Face in eval mode. Everything but the attention scores is BERT's post-LayerNorm
// encoder (BertEncoder: embeddings projected before their LayerNorm, no absolute positions in v3,
// GELU ContextPooler on h[CLS] then the classifier). The scores are disentangled:
//   S = (Q Kᵀ + c2p + p2c) / sqrt(head_dim · (1 + #position terms)),
//   c2p[i, j] = Q_i · Kr[δ(i, j)],   p2c[i, j] = K_j · Qr[δ(j, i)],
// with δ the (log-bucketed) relative position i − j shifted into [0, 2·span) and Kr, Qr the layer's
// key and query projections (or its own pos_key_proj / pos_query_proj) of the shared, optionally
// LayerNorm-ed relative-position embeddings. The probabilities that attribution scales are
// softmax(S + mask): the output after every term, as the issue asks. A const DebertaEncoder is safe
// to use from many threads.
#pragma once

#include <memory>
#include <vector>

#include "bert_encoder.h"
#include "model_config.h"

namespace attattr::engine {

struct DisentangledWeights {
  DisentangledConfig config;
  torch::Tensor rel_emb;             // [2·span, d] encoder.rel_embeddings
  torch::Tensor rel_ln_w, rel_ln_b;  // encoder.LayerNorm; undefined unless norm_rel_embeddings
  // Per layer, when !share_att_key: pos_key_proj (c2p) and pos_query_proj (p2c); else empty.
  std::vector<torch::Tensor> pos_key_w, pos_key_b, pos_query_w, pos_query_b;
};

class DebertaEncoder final : public BertEncoder {
 public:
  DebertaEncoder(BertWeights weights, DisentangledWeights disentangled, int head_dim,
                 double layer_norm_eps);

  torch::Tensor AttentionProbs(int l, const torch::Tensor& h,
                               const torch::Tensor& add_mask) const override;
  std::unique_ptr<Encoder> CloneMapped(const WeightMap& map) const override;

 private:
  // The relative-position embeddings as the layers read them (LayerNorm-ed when configured):
  // computed once at construction, except in a copy whose weights require grad (the reference
  // scheme differentiates through them in every pass).
  torch::Tensor RelativeEmbeddings() const;
  torch::Tensor ComputeRelativeEmbeddings() const;
  // δ(i, j) for n tokens before clamping: i − j, log-bucketed when position_buckets > 0. [n, n],
  // on the CPU (a small integer table; its range decides which embedding rows are projected).
  torch::Tensor RelativePositions(int64_t n) const;

  DisentangledWeights d_;
  double eps_;
  torch::Tensor rel_emb_;  // ComputeRelativeEmbeddings(), or undefined when weights require grad
};

}  // namespace attattr::engine
