// Small helpers the benchmark programs share: fail loudly (a benchmark of failures is
// meaningless), wall-clock seconds, mean input length, inputs of an exact length. Header-only so
// that scripts/gpu_check.sh can build bench/gpu_check.cc in its own minimal CMake project without
// another target.
#pragma once

#include <errno.h>  // program_invocation_short_name (glibc)

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "attattr/engine/example.h"
#include "attattr/engine/model.h"

namespace attattr::bench {

// Prints "<program>: what" on stderr and exits 1.
[[noreturn]] inline void Die(const std::string& what) {
  std::cerr << program_invocation_short_name << ": " << what << std::endl;
  std::exit(1);
}

template <typename T>
T OrDie(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(absl::StrCat(what, ": ", v.status().ToString()));
  return std::move(*v);
}

inline double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Mean number of word pieces; 0 for none.
inline double MeanTokens(const std::vector<engine::Encoding>& encodings) {
  double s = 0;
  for (const auto& e : encodings) s += static_cast<double>(e.size());
  return encodings.empty() ? 0 : s / static_cast<double>(encodings.size());
}

// Best-of timing of `fn` (two warm-up calls, then repeats for at least `min_seconds`).
inline double BestSeconds(const std::function<void()>& fn, double min_seconds = 0.6) {
  for (int i = 0; i < 2; ++i) fn();
  double best = 1e30, total = 0;
  int reps = 0;
  while (reps < 3 || total < min_seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const double s = SecondsSince(t0);
    best = std::min(best, s);
    total += s;
    ++reps;
  }
  return best;
}

// Each sentence repeated (space-joined) until it has at least `n` tokens, then encoded with
// max_length n: exactly n tokens, the model's special tokens included.
inline std::vector<engine::Encoding> EncodeExactly(const engine::Model& model,
                                                   const std::vector<engine::Example>& examples,
                                                   int n) {
  std::vector<engine::Encoding> out;
  for (const auto& e : examples) {
    std::string text = e.text;
    while (static_cast<int>(
               OrDie(model.tokenizer().Encode(text, std::nullopt, 1 << 20), "encoding " + e.text)
                   .size()) < n) {
      text = absl::StrCat(text, " ", e.text);
    }
    auto enc = OrDie(model.tokenizer().Encode(text, std::nullopt, n), "encoding " + e.text);
    if (static_cast<int>(enc.size()) != n) Die("EncodeExactly: wrong length");
    out.push_back(std::move(enc));
  }
  return out;
}

}  // namespace attattr::bench
