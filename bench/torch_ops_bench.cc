// LibTorch's own speed on the operations one α-point of the attribution integrand is made of, at
// BERT-base shapes (1,000 rows = 5 α-points × 8 examples × 25 tokens, hidden 768, FFN 3,072,
// 12 heads), fp32 and bf16 — and one whole BERT-base layer forward + backward, fp32 and under bf16
// autocast with bf16 weights, as the engine runs it. bench/torch_ops_bench.py runs the same list
// with the same shapes in PyTorch, so the two LibTorch builds of this project (the default, the
// PyPI wheel's 2.x, and preset libtorch-system's Debian 1.13) can be compared op by op with
// each other and with PyTorch itself (bench/README.md). Prints best-of-N
// milliseconds; never asserts. The bf16 layer runs under the engine's own autocast scope
// (engine/src/low_precision.h), which speaks both LibTorch 1.13's and 2.x's autocast API.
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

#include "low_precision.h"

namespace {

using Clock = std::chrono::steady_clock;

// Best of `repeats` runs of fn, in milliseconds, after one warm-up run.
double BestMs(const std::function<void()>& fn, int repeats = 15) {
  fn();
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return best;
}

void Row(const std::string& op, double fp32_ms, double bf16_ms) {
  std::printf("| %-44s | %8.3f | %8.3f | %5.2fx |\n", op.c_str(), fp32_ms, bf16_ms,
              fp32_ms / bf16_ms);
}

// One post-LayerNorm BERT layer on x [R/25, 25, 768], returning a scalar to differentiate.
struct Layer {
  torch::Tensor q, k, v, o, i, f, qb, kb, vb, ob, ib, fb, g1, b1, g2, b2;
  Layer Cast(torch::ScalarType t) const {  // matrices only, as Encoder::CloneWithMatrices
    Layer c = *this;
    for (auto* w : {&c.q, &c.k, &c.v, &c.o, &c.i, &c.f}) *w = w->to(t);
    return c;
  }
  torch::Tensor Forward(const torch::Tensor& x) const {
    const int64_t b = x.size(0), n = x.size(1);
    auto split = [&](const torch::Tensor& t) { return t.view({b, n, 12, 64}).transpose(1, 2); };
    auto scores = torch::matmul(split(torch::linear(x, q, qb)),
                                split(torch::linear(x, k, kb)).transpose(-1, -2)) /
                  8.0;
    auto ctx = torch::matmul(torch::softmax(scores, -1), split(torch::linear(x, v, vb)))
                   .transpose(1, 2)
                   .reshape({b, n, 768});
    auto h1 = torch::layer_norm(torch::linear(ctx, o, ob) + x, {768}, g1, b1, 1e-12);
    auto out = torch::layer_norm(torch::linear(torch::gelu(torch::linear(h1, i, ib)), f, fb) + h1,
                                 {768}, g2, b2, 1e-12);
    return out.sum();
  }
};

}  // namespace

int main() {
  at::set_num_threads(2);
  torch::manual_seed(0);
  std::printf("LibTorch %s, 2 threads; best of 15, ms\n\n", TORCH_VERSION);
  std::printf("| op | fp32 ms | bf16 ms | fp32/bf16 |\n|---|---|---|---|\n");
  const auto bf = torch::kBFloat16;
  const int64_t R = 1000, d = 768, I = 3072;
  {
    torch::NoGradGuard no_grad;
    auto x = torch::randn({R, d}), w = torch::randn({I, d}) * 0.02, y = torch::randn({R, I});
    auto w2 = torch::randn({d, I}) * 0.02;
    auto xb = x.to(bf), wb = w.to(bf), yb = y.to(bf), w2b = w2.to(bf);
    Row("linear 1000x768 -> 3072", BestMs([&] { torch::linear(x, w); }),
        BestMs([&] { torch::linear(xb, wb); }));
    Row("linear 1000x3072 -> 768", BestMs([&] { torch::linear(y, w2); }),
        BestMs([&] { torch::linear(yb, w2b); }));
    auto qs = torch::randn({480, 25, 64}), ks = torch::randn({480, 64, 25});
    auto ps = torch::randn({480, 25, 25});
    auto qsb = qs.to(bf), ksb = ks.to(bf), psb = ps.to(bf);
    Row("bmm [480] 25x64 @ 64x25", BestMs([&] { torch::bmm(qs, ks); }),
        BestMs([&] { torch::bmm(qsb, ksb); }));
    Row("bmm [480] 25x25 @ 25x64", BestMs([&] { torch::bmm(ps, qs); }),
        BestMs([&] { torch::bmm(psb, qsb); }));
    Row("gelu 1000x3072", BestMs([&] { torch::gelu(y); }), BestMs([&] { torch::gelu(yb); }));
    Row("gelu_backward 1000x3072", BestMs([&] { at::gelu_backward(y, y); }),
        BestMs([&] { at::gelu_backward(yb, yb); }));
    auto g = torch::ones({d}), gb = g.to(bf);
    Row("layer_norm 1000x768", BestMs([&] { torch::layer_norm(x, {d}, g, g); }),
        BestMs([&] { torch::layer_norm(xb, {d}, gb, gb); }));
    Row("softmax [480] 25x25", BestMs([&] { torch::softmax(ps, -1); }),
        BestMs([&] { torch::softmax(psb, -1); }));
    Row("add 1000x768 (bf16 column: fp32 + bf16)", BestMs([&] { (void)(x + x); }),
        BestMs([&] { (void)(x + xb); }));
    Row("cast 1000x3072 (bf16 column: fp32 -> bf16)", BestMs([&] { (void)y.clone(); }),
        BestMs([&] { (void)y.to(bf); }));
  }
  Layer layer;
  for (auto* w : {&layer.q, &layer.k, &layer.v, &layer.o}) *w = torch::randn({d, d}) * 0.02;
  layer.i = torch::randn({I, d}) * 0.02;
  layer.f = torch::randn({d, I}) * 0.02;
  for (auto* b : {&layer.qb, &layer.kb, &layer.vb, &layer.ob, &layer.fb, &layer.b1, &layer.b2}) {
    *b = torch::zeros({d});
  }
  layer.ib = torch::zeros({I});
  layer.g1 = torch::ones({d});
  layer.g2 = torch::ones({d});
  const Layer low = layer.Cast(bf);
  auto x = torch::randn({R / 25, 25, d});
  auto step = [&](const Layer& l, bool autocast) {
    auto in = x.detach().requires_grad_(true);
    torch::Tensor out;
    {
      std::optional<attattr::engine::LowPrecisionScope> scope;
      if (autocast) scope.emplace(attattr::engine::Precision::kBf16, torch::kCPU);
      out = l.Forward(in);
    }
    torch::autograd::grad({out}, {in});
  };
  Row("BERT-base layer fwd+bwd, 1000 rows (autocast)", BestMs([&] { step(layer, false); }),
      BestMs([&] { step(low, true); }));
  return 0;
}
