"""The operations of one α-point of the attribution integrand in PyTorch, fp32 and bf16, at the
shapes of bench/torch_ops_bench.cc (its twin in LibTorch C++; same list, same shapes, same table),
so the LibTorch builds of the project (the default, the PyPI wheel's 2.x, or preset
libtorch-system's Debian 1.13) can be compared with PyTorch itself. Run it with the tests' oracle
environment, which holds the same torch wheel:

    ~/.cache/attattr/oracle-venv/bin/python bench/torch_ops_bench.py

Prints best-of-15 milliseconds; never asserts."""
import time

import torch
import torch.nn.functional as F


def best_ms(fn, repeats=15):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def row(op, fp32_ms, bf16_ms):
    print(f"| {op:<44} | {fp32_ms:8.3f} | {bf16_ms:8.3f} | {fp32_ms / bf16_ms:5.2f}x |")


class Layer:
    """One post-LayerNorm BERT layer, as torch_ops_bench.cc's Layer."""

    def __init__(self, d=768, inner=3072):
        self.q, self.k, self.v, self.o = (torch.randn(d, d) * 0.02 for _ in range(4))
        self.i = torch.randn(inner, d) * 0.02
        self.f = torch.randn(d, inner) * 0.02
        self.qb, self.kb, self.vb, self.ob, self.fb, self.b1, self.b2 = (
            torch.zeros(d) for _ in range(7))
        self.ib = torch.zeros(inner)
        self.g1, self.g2 = torch.ones(d), torch.ones(d)

    def cast(self, dtype):  # matrices only, as Encoder::CloneWithMatrices
        c = Layer.__new__(Layer)
        c.__dict__.update(self.__dict__)
        for name in ("q", "k", "v", "o", "i", "f"):
            setattr(c, name, getattr(self, name).to(dtype))
        return c

    def forward(self, x):
        b, n, _ = x.shape

        def split(t):
            return t.view(b, n, 12, 64).transpose(1, 2)

        scores = split(F.linear(x, self.q, self.qb)) @ split(
            F.linear(x, self.k, self.kb)).transpose(-1, -2) / 8.0
        ctx = (torch.softmax(scores, -1) @ split(F.linear(x, self.v, self.vb))).transpose(
            1, 2).reshape(b, n, 768)
        h1 = F.layer_norm(F.linear(ctx, self.o, self.ob) + x, (768,), self.g1, self.b1, 1e-12)
        out = F.layer_norm(F.linear(F.gelu(F.linear(h1, self.i, self.ib)), self.f, self.fb) + h1,
                           (768,), self.g2, self.b2, 1e-12)
        return out.sum()


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    print(f"PyTorch {torch.__version__}, 2 threads; best of 15, ms\n")
    print("| op | fp32 ms | bf16 ms | fp32/bf16 |\n|---|---|---|---|")
    bf = torch.bfloat16
    R, d, inner = 1000, 768, 3072
    with torch.no_grad():
        x, w, y = torch.randn(R, d), torch.randn(inner, d) * 0.02, torch.randn(R, inner)
        w2 = torch.randn(d, inner) * 0.02
        xb, wb, yb, w2b = x.to(bf), w.to(bf), y.to(bf), w2.to(bf)
        row("linear 1000x768 -> 3072", best_ms(lambda: F.linear(x, w)),
            best_ms(lambda: F.linear(xb, wb)))
        row("linear 1000x3072 -> 768", best_ms(lambda: F.linear(y, w2)),
            best_ms(lambda: F.linear(yb, w2b)))
        qs, ks, ps = torch.randn(480, 25, 64), torch.randn(480, 64, 25), torch.randn(480, 25, 25)
        qsb, ksb, psb = qs.to(bf), ks.to(bf), ps.to(bf)
        row("bmm [480] 25x64 @ 64x25", best_ms(lambda: torch.bmm(qs, ks)),
            best_ms(lambda: torch.bmm(qsb, ksb)))
        row("bmm [480] 25x25 @ 25x64", best_ms(lambda: torch.bmm(ps, qs)),
            best_ms(lambda: torch.bmm(psb, qsb)))
        row("gelu 1000x3072", best_ms(lambda: F.gelu(y)), best_ms(lambda: F.gelu(yb)))
        row("gelu_backward 1000x3072", best_ms(lambda: torch.ops.aten.gelu_backward(y, y)),
            best_ms(lambda: torch.ops.aten.gelu_backward(yb, yb)))
        g = torch.ones(d)
        gb = g.to(bf)
        row("layer_norm 1000x768", best_ms(lambda: F.layer_norm(x, (d,), g, g)),
            best_ms(lambda: F.layer_norm(xb, (d,), gb, gb)))
        row("softmax [480] 25x25", best_ms(lambda: torch.softmax(ps, -1)),
            best_ms(lambda: torch.softmax(psb, -1)))
        row("add 1000x768 (bf16 column: fp32 + bf16)", best_ms(lambda: x + x),
            best_ms(lambda: x + xb))
        row("cast 1000x3072 (bf16 column: fp32 -> bf16)", best_ms(lambda: y.clone()),
            best_ms(lambda: y.to(bf)))
    layer = Layer()
    low = layer.cast(bf)
    x = torch.randn(R // 25, 25, d)

    def step(lay, autocast):
        inp = x.detach().requires_grad_(True)
        with torch.autocast("cpu", dtype=bf, enabled=autocast):
            out = lay.forward(inp)
        torch.autograd.grad(out, inp)

    row("BERT-base layer fwd+bwd, 1000 rows (autocast)", best_ms(lambda: step(layer, False)),
        best_ms(lambda: step(low, True)))


if __name__ == "__main__":
    main()
