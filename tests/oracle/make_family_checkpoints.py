#!/usr/bin/env python3
"""Tiny random checkpoints of each model family and what Hugging Face says about them: the oracle
of tests/engine/family_oracle_test.cc (tests/oracle/README.md).

For every family (bert, distilbert, electra, roberta, xlm-roberta, deberta-v2, modernbert, and the
decoders llama, mistral, qwen2, gpt2) this builds, with Hugging Face
`transformers` and `tokenizers` (never with attattr's code):
  <out>/<family>/            a checkpoint as `save_pretrained` writes it: config.json,
                             model.safetensors, the tokenizer files (tokenizer.json, vocab.txt, ...).
                             The tokenizer is the family's real algorithm (WordPiece, byte-level BPE,
                             Unigram) with a small vocabulary trained by `tokenizers` on the shared
                             SST-2 training text, wrapped in the family's transformers tokenizer
                             class (its normalizer, pre-tokenizer, post-processor); the weights
                             are random (seeded), a few layers of small width.
  <out>/<family>/oracle.json
    "tokens":      ids of >= 500 strings (SST-2 sentences, MRPC pairs, Unicode edge cases) from
                   the fast tokenizer;
    "forward":     for a dozen inputs, the logits and every layer's attention probabilities
                   (`output_attentions=True`, eager attention);
    "attribution": for a few sentences and every layer l, the self-attention attribution
                   A^l * sum_k w_k dF(alpha_k A^l)/dA^l (Gauss-Legendre, m = 20, alpha in [0, 1]),
                   F = softmax probability of the predicted class, computed by replacing layer l's
                   probabilities inside the HF model (a registered attention function; for
                   DeBERTa, whose attention is its own module, the dropout module its softmax
                   output passes through) and differentiating with autograd; plus F(A^l), F(0).

Usage: make_family_checkpoints.py --shared ../shared --out build/oracle [--families bert,...]
Run by CTest (fixture `oracle_checkpoints`) with the interpreter of the oracle virtual environment
that scripts/setup.sh creates. Regenerates a family only when this script changed since.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

# The tokenizer trainers below run single-threaded: threads sum the Unigram trainer's scores in no
# fixed order, so every build would train slightly different vocabularies (set before `tokenizers`
# is imported, which reads them once).
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import (BertWordPieceTokenizer, ByteLevelBPETokenizer, Tokenizer, models,  # noqa: E402
                        normalizers, processors, trainers)
from transformers import AttentionInterface  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20261205
LAYERS, HIDDEN, HEADS, FFN, MAX_POS = 3, 32, 4, 64, 128
LABELS = ["negative", "neutral", "positive"]
STEPS = 20  # Gauss-Legendre points
DEBERTA_BUCKETS = 16  # DeBERTa-v3 has 256; 16 lets 128-token inputs reach the log buckets

EDGE_CASES = [
    "Café résumé naïve",
    "CAFÉ RÉSUMÉ NAÏVE ÀÉÎÕÜ Ångström",
    "Cafe\u0301 re\u0301sume\u0301",
    "emoji 😀👍🏽 and 🤖 robots",
    "tabs\tand\nnewlines\r\n   and    runs     of spaces",
    "   leading and trailing spaces   ",
    "supercalifragilisticexpialidociousnessishlyunbelievablewordthatgoesonandonandonforeverandeverandever",
    "don't won't can't it's 'quoted' \"double\"",
    "numbers 3.14159 1,000,000 2026-12-05 #42 @user",
    "punctuation!!! ??? ... --- ;;; ((()))",
    "中文字符 mixed with English",
    "日本語のテキスト",
    "Ελληνικά και русский текст",
    "zero\u200bwidth\u200cjoiners\u200d",
    "soft\u00adhyphen and non\u00a0breaking space",
    "ALL CAPS SHOUTING REVIEW",
    "a",
    "!",
    "the the the the the the the the the the",
    "a film with <b>html</b> &amp; entities",
    "ﬁne ligatures ﬂow",
    "full-width ＡＢＣ１２３",
    "control\u0007chars\u001bhere",
    "math ∑∫√∞ ≠ ≤ ≥",
    "arrows → ← ↑ ↓ and bullets •",
]


def read_sst2(shared, split):
    path = os.path.join(shared, "data", "sst2", f"{split}.tsv")
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return [r[0].strip() for r in rows if r and r[0].strip()]


def read_mrpc_pairs(shared, count):
    path = os.path.join(shared, "data", "mrpc", "dev.tsv")
    pairs = []
    with open(path, encoding="utf-8-sig") as f:
        next(f)
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 5:
                pairs.append((cols[3], cols[4]))
            if len(pairs) == count:
                break
    return pairs


# --- families ------------------------------------------------------------------------------------

def wordpiece_tokenizer(work, train_text, tok_class):
    trainer = BertWordPieceTokenizer(lowercase=True, strip_accents=None, clean_text=True,
                                     handle_chinese_chars=True)
    trainer.train_from_iterator(train_text, vocab_size=3000, min_frequency=2,
                                special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    os.makedirs(work, exist_ok=True)
    trainer.save_model(work)
    with open(os.path.join(work, "vocab.txt"), encoding="utf-8") as f:
        pieces = [line.rstrip("\n") for line in f]
    # The trainer breaks frequency ties in no fixed order (a Rust HashMap), so the same pieces came
    # with other ids in every build, and with them the oracle texts' ids and every measured error.
    # WordPiece finds pieces by their text, not their ids: sorted after the specials, every build
    # makes the same checkpoint.
    ordered = pieces[:5] + sorted(pieces[5:])
    with open(os.path.join(work, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(piece + "\n" for piece in ordered))
    vocab = {piece: i for i, piece in enumerate(ordered)}
    return tok_class(vocab=vocab, do_lower_case=True, model_max_length=MAX_POS)


def make_bert(work, train_text):
    tok = wordpiece_tokenizer(work, train_text, transformers.BertTokenizer)
    config = transformers.BertConfig(
        vocab_size=len(tok), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, intermediate_size=FFN, max_position_embeddings=MAX_POS,
        initializer_range=0.15, id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)})
    return tok, transformers.BertForSequenceClassification(config)


def make_distilbert(work, train_text):
    tok = wordpiece_tokenizer(work, train_text, transformers.DistilBertTokenizer)
    config = transformers.DistilBertConfig(
        vocab_size=len(tok), dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=FFN,
        max_position_embeddings=MAX_POS, initializer_range=0.15,
        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    return tok, transformers.DistilBertForSequenceClassification(config)


def make_electra(work, train_text):
    tok = wordpiece_tokenizer(work, train_text, transformers.ElectraTokenizer)
    # Embeddings narrower than the hidden size, so the embeddings_project layer is exercised.
    config = transformers.ElectraConfig(
        vocab_size=len(tok), embedding_size=HIDDEN // 2, hidden_size=HIDDEN,
        num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=FFN,
        max_position_embeddings=MAX_POS, initializer_range=0.15,
        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    return tok, transformers.ElectraForSequenceClassification(config)


ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4, as roberta-base


def make_roberta(work, train_text):
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(train_text, vocab_size=3000, min_frequency=2,
                                special_tokens=ROBERTA_SPECIALS)
    trained = json.loads(trainer._tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    tok = transformers.RobertaTokenizer(vocab=trained["vocab"], merges=merges,
                                        model_max_length=MAX_POS)
    config = roberta_config(transformers.RobertaConfig, len(tok))
    return tok, transformers.RobertaForSequenceClassification(config)


def roberta_config(config_class, vocab_size):
    # Position ids start at pad_token_id + 1 = 2: MAX_POS tokens need MAX_POS + 2 positions.
    return config_class(
        vocab_size=vocab_size, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, intermediate_size=FFN, max_position_embeddings=MAX_POS + 2,
        type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        initializer_range=0.15, id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)})


def unigram_vocab(train_text, pre_tokenizer, specials, unk_token):
    """A SentencePiece-style Unigram vocabulary ([(piece, score)], specials first) trained by
    `tokenizers` with the family's pre-tokenizer (Metaspace "▁" word starts)."""
    unigram = Tokenizer(models.Unigram())
    unigram.pre_tokenizer = pre_tokenizer
    unigram.train_from_iterator(train_text, trainers.UnigramTrainer(
        vocab_size=3000, special_tokens=specials, unk_token=unk_token))
    vocab = [tuple(v) for v in json.loads(unigram.to_str())["model"]["vocab"]]
    assert [v[0] for v in vocab[:len(specials)]] == specials, vocab[:len(specials)]
    return vocab


def make_xlm_roberta(work, train_text):
    vocab = unigram_vocab(train_text, transformers.XLMRobertaTokenizer()._tokenizer.pre_tokenizer,
                          ROBERTA_SPECIALS, "<unk>")
    tok = transformers.XLMRobertaTokenizer(vocab=vocab, model_max_length=MAX_POS)
    config = roberta_config(transformers.XLMRobertaConfig, len(tok))
    return tok, transformers.XLMRobertaForSequenceClassification(config)


def make_deberta_v2(work, train_text):
    # DeBERTa-v3's shape: a SentencePiece-style Unigram vocabulary, no absolute positions or token
    # types, relative attention with c2p and p2c terms through shared key/query projections and
    # log-bucketed positions (DEBERTA_BUCKETS).
    vocab = unigram_vocab(train_text, transformers.DebertaV2Tokenizer()._tokenizer.pre_tokenizer,
                          ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "[UNK]")
    tok = transformers.DebertaV2Tokenizer(vocab=vocab, unk_id=1, model_max_length=MAX_POS)
    config = transformers.DebertaV2Config(
        vocab_size=len(tok), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, intermediate_size=FFN, max_position_embeddings=MAX_POS,
        type_vocab_size=0, relative_attention=True, position_buckets=DEBERTA_BUCKETS,
        max_relative_positions=-1, pos_att_type="p2c|c2p", share_att_key=True,
        norm_rel_ebd="layer_norm", position_biased_input=False, pad_token_id=0,
        initializer_range=0.15, id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)})
    return tok, transformers.DebertaV2ForSequenceClassification(config)


MODERNBERT_WINDOW = 16  # local_attention (ModernBERT-base: 128): SST-2 sentences reach past it
MODERNBERT_GLOBAL_EVERY = 2  # every n-th layer global, the others sliding (ModernBERT-base: 3)


def perturb_norms_and_biases(model, norm_marker):
    """Adds N(0, 0.1) noise to every bias and to the norms' parameters (names holding
    `norm_marker`), which initialise to 0 and 1, so the engine must read each of them."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(".bias") or norm_marker in name:
                param.add_(torch.randn_like(param) * 0.1)


def make_modernbert(work, train_text):
    # ModernBERT's shape: a byte-level BPE tokenizer.json with NFC and a [CLS] $A [SEP] template
    # (as ModernBERT-base ships), no token types; layers alternate global and sliding-window
    # attention with their own RoPE bases, GeGLU, mean pooling. Biases on (ModernBERT-base has
    # none) and randomised, so the loader's bias paths are checked too.
    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    trainer = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    trainer.train_from_iterator(train_text, vocab_size=3000, min_frequency=2,
                                special_tokens=specials)
    backend = trainer._tokenizer
    backend.normalizer = normalizers.NFC()
    cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        pad_token="[PAD]", mask_token="[MASK]", model_max_length=MAX_POS)
    config = transformers.ModernBertConfig(
        vocab_size=len(tok), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, intermediate_size=FFN, max_position_embeddings=MAX_POS,
        local_attention=MODERNBERT_WINDOW,
        layer_types=["sliding_attention" if i % MODERNBERT_GLOBAL_EVERY else "full_attention"
                     for i in range(LAYERS)],
        classifier_pooling="mean", attention_bias=True, mlp_bias=True, classifier_bias=True,
        norm_bias=True, pad_token_id=tok.pad_token_id, cls_token_id=cls, sep_token_id=sep,
        bos_token_id=cls, eos_token_id=sep, initializer_range=0.15,
        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    model = transformers.ModernBertForSequenceClassification(config)
    perturb_norms_and_biases(model, "norm")
    return tok, model


DECODER_KV_HEADS = {"llama": 2, "mistral": 2, "qwen2": 1}  # grouped-query (qwen2: one KV head)
MISTRAL_WINDOW = 8  # sliding_window: SST-2 sentences reach past it
# Weights' scale: at BERT's 0.15 the tiny decoders' target is so sharp in α at layer 0 that
# Gauss-Legendre m = 20 leaves gaps of 1e-2 (on the Python reference as in the engine).
DECODER_INIT = 0.08
# Each decoder's rotary positions rescaled as a long-context checkpoint's are, so the engine's
# scaling types are checked on whole models: Llama-3.1's llama3 (head_dim 8: one frequency kept,
# one blended, two divided), linear, and YaRN with a ramp that blends one frequency
# (cos/sin × 0.1 ln 4 + 1).
DECODER_ROPE = {
    "llama": {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
    "mistral": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0},
    "qwen2": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
              "original_max_position_embeddings": 32, "beta_fast": 8.0, "beta_slow": 0.5},
}
# More parameter sets per scaling type, whose inverse frequencies and attention scaling HF's own
# ROPE_INIT_FUNCTIONS compute for a config of head_dim 16 and 256 positions (oracle.json
# "rope_variants", in llama's): every branch of each formula. `seq_len` > 256 asks dynamic NTK
# for a grown base.
ROPE_VARIANTS = [
    ({"rope_type": "default", "rope_theta": 500000.0}, None),
    ({"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}, None),
    ({"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}, None),
    ({"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}, 1000),
    ({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
      "high_freq_factor": 4.0, "original_max_position_embeddings": 128}, None),
    ({"rope_type": "llama3", "rope_theta": 10000.0, "factor": 32.0, "low_freq_factor": 2.0,
      "high_freq_factor": 8.0}, None),
    ({"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
      "original_max_position_embeddings": 64}, None),
    ({"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 8.0, "beta_fast": 16.0,
      "beta_slow": 2.0, "truncate": False, "original_max_position_embeddings": 32}, None),
    ({"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0, "mscale": 1.0,
      "mscale_all_dim": 0.707, "original_max_position_embeddings": 128}, None),
    ({"rope_type": "yarn", "rope_theta": 10000.0, "factor": 2.0, "attention_factor": 1.5,
      "original_max_position_embeddings": 128}, None),
    ({"rope_type": "yarn", "rope_theta": 10000.0, "factor": None,
      "original_max_position_embeddings": 64}, None),
]


def rope_variants():
    """HF's inverse frequencies and attention scaling for each of ROPE_VARIANTS, with the
    config.json that states them."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    out = []
    for params, seq_len in ROPE_VARIANTS:
        config = transformers.LlamaConfig(hidden_size=64, num_attention_heads=4,
                                          num_key_value_heads=4, max_position_embeddings=256,
                                          rope_parameters=dict(params))
        kind = config.rope_parameters["rope_type"]
        if kind == "default":
            inv_freq, scaling = transformers.models.llama.modeling_llama.LlamaRotaryEmbedding \
                .compute_default_rope_parameters(config)
        elif seq_len is None:
            inv_freq, scaling = ROPE_INIT_FUNCTIONS[kind](config)
        else:
            inv_freq, scaling = ROPE_INIT_FUNCTIONS[kind](config, seq_len=seq_len)
        out.append({"config": json.loads(config.to_json_string()), "seq_len": seq_len or 0,
                    "inv_freq": inv_freq.tolist(), "attention_scaling": float(scaling)})
    return out


def decoder_tokenizer(train_text, bos):
    """A byte-level BPE tokenizer.json as the Llama-3 and Qwen2 checkpoints ship: `bos` (if any)
    before each segment, an end-of-text and a padding token, no normalizer."""
    specials = ([bos] if bos else []) + ["<|end_of_text|>", "<|pad|>"]
    trainer = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=False)
    trainer.train_from_iterator(train_text, vocab_size=3000, min_frequency=2,
                                special_tokens=specials)
    backend = trainer._tokenizer
    if bos:
        bos_id = backend.token_to_id(bos)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
            special_tokens=[(bos, bos_id)])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos, eos_token="<|end_of_text|>",
        pad_token="<|pad|>", model_max_length=MAX_POS)


def make_decoder(family, lm=False):
    def make(work, train_text):
        # The Llama family's shape: RMSNorm, RoPE, grouped-query attention, SwiGLU, a `score`
        # classifier read at the last token (or, `lm`, a causal LM's untied lm_head);
        # Mistral with a sliding window, Qwen2 with q/k/v biases and no BOS. Norm weights and
        # biases randomised so they are checked too.
        tok = decoder_tokenizer(train_text, None if family == "qwen2" else "<|begin_of_text|>")
        config_class, model_class = {
            "llama": (transformers.LlamaConfig, transformers.LlamaForSequenceClassification),
            "mistral": (transformers.MistralConfig,
                        transformers.MistralForSequenceClassification),
            "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForSequenceClassification),
        }[family]
        if lm:
            model_class = transformers.LlamaForCausalLM
        extra = {"sliding_window": MISTRAL_WINDOW} if family == "mistral" else {}
        config = config_class(
            vocab_size=len(tok), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
            num_attention_heads=HEADS, num_key_value_heads=DECODER_KV_HEADS[family],
            intermediate_size=FFN, max_position_embeddings=MAX_POS, hidden_act="silu",
            pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id, tie_word_embeddings=False,
            initializer_range=DECODER_INIT, rope_parameters=dict(DECODER_ROPE[family]),
            id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
            **extra)
        model = model_class(config)
        perturb_norms_and_biases(model, "norm")
        return tok, model
    return make


def make_gpt2(work, train_text, lm=False):
    # GPT-2's shape: learned positions, pre-LayerNorm with biases, the fused c_attn and the other
    # projections in Conv1D's [in, out] layout, GELU's tanh form, a `score` classifier read at the
    # last token (or, `lm`, GPT2LMHeadModel's head tied to the token embeddings, as GPT-2's own);
    # scores also divided by the layer index + 1 (scale_attn_by_inverse_layer_idx, as some GPT-2
    # variants train) so that path is checked too. A byte-level BPE without BOS, as GPT-2's own.
    # LayerNorm weights and biases randomised.
    tok = decoder_tokenizer(train_text, None)
    config = transformers.GPT2Config(
        vocab_size=len(tok), n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_inner=FFN,
        n_positions=MAX_POS, activation_function="gelu_new", scale_attn_by_inverse_layer_idx=True,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id, initializer_range=DECODER_INIT,
        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    model_class = transformers.GPT2LMHeadModel if lm else transformers.GPT2ForSequenceClassification
    model = model_class(config)
    perturb_norms_and_biases(model, ".ln_")
    return tok, model


FAMILIES = {"bert": make_bert, "distilbert": make_distilbert, "electra": make_electra,
            "roberta": make_roberta, "xlm-roberta": make_xlm_roberta,
            "deberta-v2": make_deberta_v2, "modernbert": make_modernbert,
            "llama": make_decoder("llama"), "mistral": make_decoder("mistral"),
            "qwen2": make_decoder("qwen2"), "gpt2": make_gpt2,
            # Causal LMs: the head gives next-token logits after the last token.
            "llama-lm": make_decoder("llama", lm=True),
            "gpt2-lm": lambda work, text: make_gpt2(work, text, lm=True)}


# --- attention replacement (the reference for attribution) -------------------------------------

def repeat_kv(x, heads):
    """Grouped-query key/value heads [B, KV, n, d] repeated to one per query head, as eager
    attention does (head h reads key/value head h // (heads // KV))."""
    b, kv, n, d = x.shape
    if kv == heads:
        return x
    return x[:, :, None].expand(b, kv, heads // kv, n, d).reshape(b, heads, n, d)


class AttentionProbe:
    """An attention function for HF's AttentionInterface: the eager computation, except that the
    probabilities of layer `layer` are replaced by `replacement` when it is set. Layers are
    numbered by the order their attention modules are first called in a forward pass."""

    def __init__(self):
        self.order = {}
        self.layer = None
        self.replacement = None

    def __call__(self, module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                 **kwargs):
        index = self.order.setdefault(id(module), len(self.order))
        if scaling is None:
            scaling = query.size(-1) ** -0.5
        key, value = repeat_kv(key, query.size(1)), repeat_kv(value, query.size(1))
        scores = torch.matmul(query, key.transpose(2, 3)) * scaling
        if attention_mask is not None:
            scores = scores + attention_mask
        probs = torch.softmax(scores, dim=-1)
        if index == self.layer and self.replacement is not None:
            probs = self.replacement
        out = torch.matmul(probs, value).transpose(1, 2).contiguous()
        return out, probs


class ProbeDropout(torch.nn.Module):
    """Stands in for DeBERTa's attention dropout (identity in eval mode), which receives the
    softmax output after every score term: returns the probe's replacement for its layer."""

    def __init__(self, probe, index):
        super().__init__()
        self.probe, self.index = probe, index

    def forward(self, probs):
        if self.probe.layer == self.index and self.probe.replacement is not None:
            return self.probe.replacement
        return probs


def install_probe(model, probe):
    """Routes every layer's attention probabilities through `probe`."""
    if model.config.model_type == "deberta-v2":
        for index, layer in enumerate(model.deberta.encoder.layer):
            layer.attention.self.dropout = ProbeDropout(probe, index)
    else:
        AttentionInterface.register("attattr_probe", probe)
        # Masks as eager attention gets them (padding, ModernBERT's sliding windows): without a
        # registered mask function a custom attention implementation receives none.
        masks = transformers.masking_utils.ALL_MASK_ATTENTION_FUNCTIONS
        masks.register("attattr_probe", masks["eager"])
        model.set_attn_implementation("attattr_probe")


def use_eager(model):
    if model.config.model_type != "deberta-v2":  # DeBERTa's attention has one implementation
        model.set_attn_implementation("eager")


def gauss_legendre(m):
    x, w = np.polynomial.legendre.leggauss(m)
    return (x + 1) / 2, w / 2


# The causal LMs' sequence target: the log-probability of this continuation after a sentence.
SEQUENCE_CONTINUATION = " and it is a good film ."


def head_logits(out):
    """The classifier's logits [B, C], or a causal LM's next-token logits after the last token."""
    return out.logits[:, -1] if out.logits.dim() == 3 else out.logits


def class_score(target, log_prob=False):
    """F = the probability (or log-probability) of class `target`, per row of a model output."""
    score = torch.log_softmax if log_prob else torch.softmax
    return lambda out: score(head_logits(out), dim=-1)[:, target]


def sequence_score(start, continuation):
    """F = sum over t of log p(continuation[t]), token t sitting at start + t and predicted by
    the output at start + t - 1 (teacher forcing), per row of a causal LM's output."""
    positions = torch.arange(start - 1, start - 1 + len(continuation))
    ids = torch.tensor(continuation)
    return lambda out: torch.log_softmax(out.logits, -1)[:, positions, ids].sum(-1)


def attribute(model, probe, enc, target=None, log_prob=False, fn=None):
    """Every layer's attribution of one unpadded example, with F(A) and F(0): F is `fn`, or the
    probability of `target` (default: the predicted class), or its log-probability."""
    ids = enc["input_ids"]
    extra = {k: v for k, v in enc.items() if k == "token_type_ids"}
    with torch.no_grad():
        probe.layer = None
        clean = model(input_ids=ids, output_attentions=True, **extra)
    if fn is None:
        if target is None:
            target = int(head_logits(clean)[0].argmax())
        fn = class_score(target, log_prob)
    alphas, weights = gauss_legendre(STEPS)
    alphas = torch.tensor(alphas, dtype=torch.float32).view(-1, 1, 1, 1)
    weights = torch.tensor(weights, dtype=torch.float32)
    rep = {"input_ids": ids.repeat(STEPS, 1)}
    rep.update({k: v.repeat(STEPS, 1) for k, v in extra.items()})
    layers = []
    for l, a in enumerate(clean.attentions):
        a = a.detach()
        scaled = (alphas * a).detach().requires_grad_(True)  # [m, H, n, n]
        probe.layer, probe.replacement = l, scaled
        f = fn(model(**rep))
        (grad,) = torch.autograd.grad((f * weights).sum(), scaled)
        attr = (a[0] * grad.sum(0)).tolist()
        ends = []
        with torch.no_grad():
            for replacement in (a, torch.zeros_like(a)):
                probe.replacement = replacement
                out = model(input_ids=ids, **extra)
                ends.append(float(fn(out)[0]))
        probe.layer, probe.replacement = None, None
        # The replacement must reach the model: A itself reproduces the clean pass, zero changes it.
        clean_f = float(fn(clean)[0])
        assert abs(ends[0] - clean_f) < 1e-5 and ends[1] != ends[0], (l, ends, clean_f)
        layers.append({"layer": l, "attribution": attr, "target_at_full": ends[0],
                       "target_at_zero": ends[1]})
    return target, layers


# --- driver --------------------------------------------------------------------------------------

def encode(tok, text, pair=None):
    return tok(text, pair, truncation=True, max_length=MAX_POS, return_tensors="pt")


def build(family, out_dir, shared, fingerprint):
    torch.manual_seed(SEED)
    train_text = read_sst2(shared, "train")[:20000]
    dev = read_sst2(shared, "dev")
    pairs = read_mrpc_pairs(shared, 60)
    tmp = out_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tok, model = FAMILIES[family](tmp, train_text)
    model.eval()
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)

    oracle = {"family": family, "transformers": transformers.__version__, "steps": STEPS,
              "tokens": [], "forward": [], "attribution": []}
    strings = [(s, None) for s in dev[:420]] + pairs + [(s, None) for s in EDGE_CASES]
    for text, pair in strings:
        ids = tok(text, pair, truncation=True, max_length=MAX_POS)["input_ids"]
        oracle["tokens"].append({"text": text, "text_pair": pair, "ids": ids})

    use_eager(model)
    forward_inputs = [(s, None) for s in dev[:8]] + pairs[:2] + [(s, None) for s in EDGE_CASES[:2]]
    # The padding token written inside a text: read as a token by every family, and RoBERTa's
    # position ids skip it (a decoder classifier's rightmost-non-pad rule: "pad_scored" below).
    forward_inputs.append((f"{dev[5]} {tok.pad_token} {dev[6]}", None))
    for text, pair in forward_inputs:
        enc = encode(tok, text, pair)
        with torch.no_grad():
            out = model(**enc, output_attentions=True)
        oracle["forward"].append({
            "text": text, "text_pair": pair, "ids": enc["input_ids"][0].tolist(),
            "logits": head_logits(out)[0].tolist(),
            "attentions": [a[0].tolist() for a in out.attentions]})

    # The probe must reproduce eager attention exactly before it is trusted with replacements.
    check = encode(tok, dev[0])
    with torch.no_grad():
        eager = model(**check, output_attentions=True)
    probe = AttentionProbe()
    install_probe(model, probe)
    with torch.no_grad():
        probed = model(**check, output_attentions=True)
    assert torch.allclose(probed.logits, eager.logits, atol=1e-6), "probe differs from eager"
    for text in dev[10:14]:
        enc = dict(encode(tok, text))
        enc.pop("attention_mask", None)
        target, layers = attribute(model, probe, enc)
        oracle["attribution"].append({"text": text, "ids": enc["input_ids"][0].tolist(),
                                      "target_class": target, "layers": layers})
    if family.endswith("-lm"):
        # A next-token log-probability target: the second most probable token after dev[10].
        enc = dict(encode(tok, dev[10]))
        enc.pop("attention_mask", None)
        with torch.no_grad():
            probe.layer = None
            second = int(head_logits(model(input_ids=enc["input_ids"]))[0].topk(2).indices[1])
        target, layers = attribute(model, probe, enc, target=second, log_prob=True)
        oracle["attribution_log_prob"] = {"text": dev[10], "ids": enc["input_ids"][0].tolist(),
                                          "target_class": target,
                                          "token": tok.convert_ids_to_tokens(target),
                                          "layers": layers}
        # A sequence log-probability: a continuation tokenized on its own, appended to dev[11].
        prompt = encode(tok, dev[11])["input_ids"]
        continuation = tok(SEQUENCE_CONTINUATION, add_special_tokens=False)["input_ids"]
        full = {"input_ids": torch.cat([prompt, torch.tensor([continuation])], 1)}
        _, layers = attribute(model, probe, full,
                              fn=sequence_score(prompt.size(1), continuation))
        oracle["attribution_sequence"] = {"text": dev[11], "continuation": SEQUENCE_CONTINUATION,
                                          "prompt_ids": prompt[0].tolist(),
                                          "continuation_ids": continuation, "layers": layers}

    if family in ("llama", "mistral", "qwen2", "gpt2"):
        # A sequence classifier scores the rightmost token that is not pad_token_id: a pad token
        # inside the text is read like any other, the trailing ones are skipped.
        pad = tok.pad_token
        text = f"{dev[3]}{pad} {dev[4]}{pad}{pad}"
        enc = encode(tok, text)
        ids = enc["input_ids"][0].tolist()
        assert ids[-2:] == [tok.pad_token_id] * 2 and ids.count(tok.pad_token_id) == 3, ids
        with torch.no_grad():
            probe.layer = None
            logits = head_logits(model(**enc))[0].tolist()
        oracle["pad_scored"] = {"text": text, "ids": ids, "logits": logits}
    if family == "llama":
        oracle["rope_variants"] = rope_variants()
    with open(os.path.join(tmp, "oracle.json"), "w", encoding="utf-8") as f:
        json.dump(oracle, f)
    with open(os.path.join(tmp, "oracle.stamp"), "w", encoding="utf-8") as f:
        f.write(fingerprint)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(tmp, out_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--families", default=",".join(FAMILIES))
    args = parser.parse_args()
    with open(os.path.abspath(__file__), "rb") as f:
        fingerprint = hashlib.sha256(f.read()).hexdigest() + " " + transformers.__version__
    torch.set_num_threads(2)
    for family in args.families.split(","):
        out_dir = os.path.join(args.out, family)
        stamp = os.path.join(out_dir, "oracle.stamp")
        if os.path.exists(stamp) and open(stamp, encoding="utf-8").read() == fingerprint:
            print(f"{family}: up to date ({out_dir})")
            continue
        build(family, out_dir, args.shared, fingerprint)
        print(f"{family}: written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
