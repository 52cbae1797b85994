#!/usr/bin/env bash
# The engine against the other LibTorch (tests/libtorch_system/CMakeLists.txt). Usage:
#   libtorch_system_test.sh SOURCE_DIR ORACLE_DIR
# Configures the `libtorch-system` preset (build-libtorch-system/: ATTATTR_LIBTORCH=system,
# find_package(Torch) = Debian's libtorch-dev 1.13, engine in C++17; warnings are errors when
# ATTATTR_WERROR=ON as in CI), builds the engine and its LibTorch-facing tests, and runs them: the
# golden attributions (fp32 and bf16), the checkpoint loader, every model family against Hugging
# Face and with bf16 weight storage (ORACLE_DIR: the checkpoints the `oracle` fixture wrote for the main build).
set -uo pipefail
src=$(cd "$1" && pwd)
oracle_dir=$2
cd "$src" || exit 1
build=build-libtorch-system
tests=(attention_attribution_test bf16_attribution_test checkpoint_loader_test family_oracle_test
       weight_storage_test)
mkdir -p "$build"
cmake --preset libtorch-system >"$build/configure.log" 2>&1 \
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
