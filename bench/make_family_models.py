#!/usr/bin/env python3
"""Random checkpoints of every model family at one size, for bench/family_bench.cc: the families,
tokenizers and configurations of tests/oracle/make_family_checkpoints.py (imported, so they stay
the same), with the layers, hidden size, heads and feed-forward width set here (default: the shared
4-layer model's 4 x 256, 4 heads, 1024; 512 positions; DeBERTa with v3's 256 buckets; ModernBERT
with base's 128-token windows in two of every three layers; the decoders with 2 key/value heads
for 4 query heads). `--vocab` pads the embeddings (and an LM head) to a real tokenizer's size, and
`--dtype bfloat16` saves the weights as most published decoders are saved (the weight-storage
figures of bench/README.md). Run with the oracle virtual
environment's interpreter
(scripts/setup.sh makes it): ~/.cache/attattr/oracle-venv/bin/python bench/make_family_models.py
--shared ../shared --out build/bench-families
"""
import argparse
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import make_family_checkpoints as oracle  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=1024)
    parser.add_argument("--kv-heads", type=int, default=0,
                        help="key/value heads of the decoders (0: the oracle's grouping)")
    parser.add_argument("--positions", type=int, default=512)
    parser.add_argument("--families", default=",".join(oracle.FAMILIES))
    parser.add_argument("--vocab", type=int, default=0,
                        help="embedding rows, padded with resize_token_embeddings (0: the "
                             "tokenizer's own)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="the saved weights' dtype")
    args = parser.parse_args()
    oracle.LAYERS, oracle.HIDDEN, oracle.HEADS, oracle.FFN = (
        args.layers, args.hidden, args.heads, args.ffn)
    # Serving-size positions: 512 tokens, and DeBERTa-v3's 256 relative-position buckets (its
    # c2p/p2c terms read 2 x 256 embedding rows per head, whatever the input length).
    oracle.MAX_POS, oracle.DEBERTA_BUCKETS = args.positions, 256
    if args.kv_heads:
        oracle.DECODER_KV_HEADS = {f: args.kv_heads for f in oracle.DECODER_KV_HEADS}
    # ModernBERT-base's local/global pattern: 128-token windows, every third layer global.
    oracle.MODERNBERT_WINDOW, oracle.MODERNBERT_GLOBAL_EVERY = 128, 3
    oracle.MISTRAL_WINDOW = 4096  # Mistral-7B-v0.1's
    torch.manual_seed(oracle.SEED)
    train_text = oracle.read_sst2(args.shared, "train")[:20000]
    for family in args.families.split(","):
        out = os.path.join(args.out, family)
        shutil.rmtree(out, ignore_errors=True)
        tok, model = oracle.FAMILIES[family](out + ".tmp", train_text)
        model.eval()
        if args.vocab:
            model.resize_token_embeddings(args.vocab)
        model.to(getattr(torch, args.dtype))
        model.save_pretrained(out)
        tok.save_pretrained(out)
        shutil.rmtree(out + ".tmp", ignore_errors=True)
        print(f"{family}: {sum(p.numel() for p in model.parameters())} parameters in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
