#!/usr/bin/env bash
# The engine against the other LibTorch (tests/libtorch2/CMakeLists.txt). Usage:
#   libtorch2_test.sh SOURCE_DIR ORACLE_VENV ORACLE_DIR
# Configures the `libtorch2` preset (build-libtorch2/: ATTATTR_LIBTORCH=wheel, the official
# LibTorch 2.x of the PyPI torch wheel in ORACLE_VENV, engine in C++20; warnings are errors when
# ATTATTR_WERROR=ON as in CI), builds the engine and its LibTorch-facing tests, and runs them: the
# golden attributions (fp32 and bf16), the checkpoint loader, and every model family against
# Hugging Face (ORACLE_DIR: the checkpoints the `oracle` fixture wrote for the main build).
# Exit 77 (skip) when ORACLE_VENV holds no torch wheel.
set -uo pipefail
src=$(cd "$1" && pwd)
venv=$2
oracle_dir=$3
wheel=$(ls -d "$venv"/lib/python3*/site-packages/torch 2>/dev/null | head -1)
if [ -z "$wheel" ] || [ ! -f "$wheel/lib/libtorch_cpu.so" ]; then
  echo "libtorch2_test: SKIPPED — no torch wheel in $venv (scripts/setup.sh installs it)"
  exit 77
fi
cd "$src" || exit 1
build=build-libtorch2
tests=(attention_attribution_test bf16_attribution_test checkpoint_loader_test family_oracle_test)
mkdir -p "$build"
cmake --preset libtorch2 -DATTATTR_TORCH_WHEEL_DIR="$wheel" >"$build/configure.log" 2>&1 \
  || { cat "$build/configure.log"; exit 1; }
grep "LibTorch:" "$build/configure.log"
cmake --build "$build" -j 2 --target "${tests[@]}" >"$build/build.log" 2>&1 \
  || { grep -m5 -A20 -E "error|FAILED" "$build/build.log" | head -60; exit 1; }
# family_oracle_test reads the oracle checkpoints from its build tree's oracle/.
ln -sfn "$oracle_dir" "$build/oracle"
fails=0
for t in "${tests[@]}"; do
  if "$build/bin/$t" >"$build/$t.log" 2>&1; then
    echo "ok   $t ($(grep -E '^\[  PASSED  \]' "$build/$t.log"))"
  else
    echo "FAIL $t:"; grep -E -B2 -A12 "Failure|FAILED|terminate|error" "$build/$t.log" | head -60
    fails=$((fails + 1))
  fi
done
exit $((fails > 0))
