#!/usr/bin/env python3
"""A random Llama-family decoder of any shape, grown from a small template checkpoint, with PyTorch
alone (no transformers, no safetensors package, no numpy): for a machine that has pip PyTorch but
nothing else, such as the lent GPU machine, where a ~1 B model cannot be carried in (the device
tool sends at most 64 MiB) and transformers is not installed. bench/make_family_models.py (which
needs transformers) is the way everywhere else.

The template is a Llama, Mistral or Qwen2 checkpoint made by bench/make_family_models.py or
tests/oracle/make_family_checkpoints.py (a classifier or a causal LM): its config.json and
tokenizer files are kept; the dimensions are set from the arguments and every tensor the template
names is written again at the new shape (per layer names repeated for each layer), N(0, 0.02)
matrices and unit norms, in the chosen dtype. Speed does not depend on the weights' values, which
is all decoder_length_bench measures. --vocab pads the embedding (and LM head) rows beyond the
template tokenizer's, as a real tokenizer's size would.

usage: make_random_decoder.py --template DIR --out DIR [--layers 16 --hidden 2048 --heads 32
       --kv-heads 8 --ffn 8192 --vocab 128256 --positions 2048 --dtype bfloat16]
       (the defaults are Llama-3.2-1B's shape: 1.24 B parameters)
"""
import argparse
import ctypes
import json
import os
import re
import shutil
import struct
import sys

import torch

DTYPES = {"bfloat16": (torch.bfloat16, "BF16"), "float32": (torch.float32, "F32")}
LAYER = re.compile(r"^(.*\.layers\.)(\d+)(\..*)$")


def shape_of(name, a):
    """The new shape of tensor `name` (a template name), or None for a name this does not know."""
    dh = a.hidden // a.heads
    q, kv = a.heads * dh, a.kv_heads * dh
    rules = [
        (r"embed_tokens\.weight$", [a.vocab, a.hidden]),
        (r"lm_head\.weight$", [a.vocab, a.hidden]),
        (r"score\.weight$", None),  # the classifier's labels: kept from the template
        (r"q_proj\.weight$", [q, a.hidden]), (r"q_proj\.bias$", [q]),
        (r"[kv]_proj\.weight$", [kv, a.hidden]), (r"[kv]_proj\.bias$", [kv]),
        (r"o_proj\.weight$", [a.hidden, q]),
        (r"(gate|up)_proj\.weight$", [a.ffn, a.hidden]),
        (r"down_proj\.weight$", [a.hidden, a.ffn]),
        (r"norm\.weight$", [a.hidden]),
    ]
    for pattern, shape in rules:
        if re.search(pattern, name):
            return shape if shape is not None else "labels"
    return None


def read_header(path):
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    return header


def tensor_bytes(t):
    """The raw bytes of contiguous CPU tensor t, copied once (no numpy). bytes(t.untyped_storage())
    would iterate the storage element by element in Python: hours for a 1 B model."""
    assert t.is_contiguous() and t.device.type == "cpu"
    return ctypes.string_at(t.data_ptr(), t.numel() * t.element_size())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--template", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--layers", type=int, default=16)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--ffn", type=int, default=8192)
    p.add_argument("--vocab", type=int, default=128256)
    p.add_argument("--positions", type=int, default=2048)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    a = p.parse_args()
    if a.hidden % a.heads or a.heads % a.kv_heads:
        sys.exit("error: --hidden must divide by --heads, and --heads by --kv-heads")
    config = json.load(open(os.path.join(a.template, "config.json")))
    if config.get("model_type") not in ("llama", "mistral", "qwen2"):
        sys.exit("error: the template is %r, not a Llama-family decoder" % config.get("model_type"))
    if a.vocab < config["vocab_size"]:
        sys.exit("error: --vocab %d is below the template tokenizer's %d" % (a.vocab, config["vocab_size"]))
    template = read_header(os.path.join(a.template, "model.safetensors"))
    names = []  # the new checkpoint's tensors, in the template's order, layer 0's repeated
    for name in sorted(template):
        m = LAYER.match(name)
        if m is None:
            names.append((name, name))
        elif m.group(2) == "0":
            names += [(m.group(1) + str(i) + m.group(3), name) for i in range(a.layers)]
    torch_dtype, st_dtype = DTYPES[a.dtype]
    shapes = {}
    for new, old in names:
        shape = shape_of(old, a)
        if shape is None:
            sys.exit("error: the template's tensor %s has no rule here" % old)
        shapes[new] = template[old]["shape"][:1] + [a.hidden] if shape == "labels" else shape
    header, offset = {}, 0
    for new, _ in names:
        size = torch.Size(shapes[new]).numel() * torch_dtype.itemsize
        header[new] = {"dtype": st_dtype, "shape": shapes[new], "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(a.out)
    torch.manual_seed(0)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for new, _ in names:
            if new.endswith("norm.weight"):
                t = torch.ones(shapes[new], dtype=torch_dtype)
            elif new.endswith(".bias"):
                t = torch.zeros(shapes[new], dtype=torch_dtype)
            else:
                t = (torch.randn(shapes[new]) * 0.02).to(torch_dtype)
            f.write(tensor_bytes(t.contiguous()))
    config.update(num_hidden_layers=a.layers, hidden_size=a.hidden, num_attention_heads=a.heads,
                  num_key_value_heads=a.kv_heads, head_dim=a.hidden // a.heads,
                  intermediate_size=a.ffn, vocab_size=a.vocab, max_position_embeddings=a.positions,
                  torch_dtype=a.dtype)
    if "dtype" in config:
        config["dtype"] = a.dtype
    json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=2)
    for name in os.listdir(a.template):
        if name.startswith("tokenizer") or name in ("vocab.json", "merges.txt", "special_tokens_map.json"):
            shutil.copy(os.path.join(a.template, name), a.out)
    params = sum(torch.Size(s).numel() for s in shapes.values())
    print("%s: %d parameters (%.1f M, %s), %d tensors, in %s" % (
        config["model_type"], params, params / 1e6, a.dtype, len(names), a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
