"""Runs an exported pruned checkpoint in Hugging Face transformers 4.x and compares it with the
original checkpoint masked the same way: the law pruned == masked, checked by Hugging Face itself
rather than by the engine that wrote the export (pruned_export_test runs this).

Usage: check_pruned_export.py REQUEST.json, with transformers 4.x importable (the oracle venv's
interpreter, PYTHONPATH=$ATTATTR_PRUNE_SITE; tests/oracle/prune_requirements.txt). REQUEST holds
"original" and "export" (checkpoint folders), "mask" ([L][H], 1 = keep) and "examples" (each
{"input_ids", "token_type_ids"}, unpadded), and "attattr_logits" (the engine's masked logits, one
row per example). Prints one JSON object: the transformers version, the heads per layer Hugging
Face built from the export's config, and the largest |difference| of the export's logits from
Hugging Face's masked original ("pruned_vs_masked") and from the engine's ("pruned_vs_attattr").
Exits 1 with the error when transformers cannot load or run the export.
"""
import inspect
import json
import sys

import torch
import transformers
from transformers import AutoModelForSequenceClassification


def main() -> int:
    torch.set_num_threads(1)
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    if not transformers.__version__.startswith("4."):
        print(f"transformers {transformers.__version__}: head pruning needs 4.x", file=sys.stderr)
        return 1
    load = lambda d: AutoModelForSequenceClassification.from_pretrained(  # noqa: E731
        d, attn_implementation="eager").eval()
    original, pruned = load(request["original"]), load(request["export"])
    mask = torch.tensor(request["mask"], dtype=torch.float32)
    # DistilBERT takes no token types.
    typed = "token_type_ids" in inspect.signature(original.forward).parameters
    worst_masked = worst_attattr = 0.0
    with torch.no_grad():
        for example, expected in zip(request["examples"], request["attattr_logits"]):
            inputs = {"input_ids": torch.tensor([example["input_ids"]])}
            if typed:
                inputs["token_type_ids"] = torch.tensor([example["token_type_ids"]])
            masked = original(**inputs, head_mask=mask).logits[0]
            small = pruned(**inputs).logits[0]
            worst_masked = max(worst_masked, (small - masked).abs().max().item())
            worst_attattr = max(worst_attattr,
                                (small - torch.tensor(expected)).abs().max().item())
    base = pruned.base_model
    layers = base.encoder.layer if hasattr(base, "encoder") else base.transformer.layer
    heads = [layer.attention.self.num_attention_heads if hasattr(layer.attention, "self")
             else layer.attention.n_heads for layer in layers]
    print(json.dumps({
        "transformers": transformers.__version__,
        "heads_per_layer": heads,
        "pruned_vs_masked": worst_masked,
        "pruned_vs_attattr": worst_attattr,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
