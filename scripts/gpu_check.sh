#!/usr/bin/env bash
# Builds the engine and bench/gpu_check against the PyTorch of a machine that lacks the project's
# Debian packages (a GPU machine with CUDA and pip PyTorch but no abseil, utf8proc, nlohmann-json or
# CLI11), then runs gpu_check: engine CUDA path vs CPU path, and the speed-up of batching examples
# (see bench/gpu_check.cc). Run it from the repository root. Nothing is installed into /: the .debs
# are unpacked into $DEPS_PREFIX and the build is a small CMake project (written into $BUILD_ROOT)
# holding engine/ and gpu_check only, so server/, client/, proto/ and tests/ and their deps (gRPC,
# spdlog, GTest) are not needed.
#
# Two modes, from the repository root:
#   scripts/gpu_check.sh prepare   on the dev machine (Debian 12, network, ../shared beside the
#                                  checkout, tests/oracle's checkpoints in build/oracle): makes .gpu/
#   scripts/gpu_check.sh [run]     on the GPU machine (the default)
# Inputs, in .gpu/ (ignored by git; the device tool sends it when `carry` names ".gpu"):
#   .gpu/debs/*.deb  Debian 12 packages: libabsl-dev libabsl20220623 libutf8proc-dev libutf8proc2
#                    nlohmann-json3-dev libcli11-dev (`apt-get download ...`)
#   .gpu/model/      a copy of ../shared/models/sst2-bert-l4-h256
#   .gpu/dev.tsv     the first 100 lines of ../shared/data/sst2/dev.tsv
#   .gpu/decoder-template/  optional: build/oracle/llama's config.json and tokenizer files (no
#                    weights); with it, a ~1 B decoder is made on the GPU machine and
#                    decoder_length_bench runs on it after gpu_check (see the end of this script)
#   .gpu/hf_tokenizers/libattattr_hf_tokenizers.a.xz  the engine's C ABI crate (engine/
#                    hf_tokenizers) as built here, debug info stripped: the GPU machine has no
#                    cargo and cannot reach crates.io (ATTATTR_HF_TOKENIZERS_LIB); without it the
#                    build needs cargo there
# Environment (all optional):
#   OUT              log.txt, gpu_check.json and gpu_check.txt go here (default /tmp/gpu-check-out)
#   TORCH_DIR        the torch package directory (default: the one python3 imports)
#   DEPS_PREFIX      where the .debs are unpacked (default /tmp/deps); "system" uses /usr instead
#   BUILD_ROOT       build directories and the generated CMake project (default /tmp/gpu-check-build)
#   TORCH_CMAKE      auto (default): PyTorch's own CMake config when nvcc is found, falling back to
#                    a minimal config (headers + shared libraries, no CUDA toolkit) if that fails to
#                    configure or build; "real" or "minimal" force one
#   JOBS             build parallelism (default: nproc)
#   BUILD_ONLY=1     configure and build, do not run
#   GPU_CHECK_ARGS   extra arguments for gpu_check
#   SKIP_DECODER=1   skip the decoder stage; DECODER_ARGS / DECODER_BENCH_ARGS: extra arguments
#                    for make_random_decoder.py / decoder_length_bench; DECODER_TIMEOUT (300 s)
#   RUN_TIMEOUT      seconds gpu_check may run (default 420)
set -uo pipefail

SRC="$(pwd)"
OUT="${OUT:-/tmp/gpu-check-out}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
trap 'exec 1>&- 2>&-; sleep 1' EXIT  # let tee write the last lines before the script returns
T0=$(date +%s)
say() { echo "[gpu_check.sh +$(( $(date +%s) - T0 ))s] $*"; }
fail() { say "FAILED: $*"; exit 1; }

[[ -f "$SRC/engine/CMakeLists.txt" && -f "$SRC/bench/gpu_check.cc" ]] ||
  fail "run from the repository root (engine/CMakeLists.txt, bench/gpu_check.cc not found in $SRC)"

MODE="${1:-run}"
if [[ "$MODE" == prepare ]]; then
  SHARED="${SHARED:-$SRC/../shared}"
  TEMPLATE_SRC="${TEMPLATE_SRC:-$SRC/build/oracle/llama}"
  [[ -d "$SHARED/models/sst2-bert-l4-h256" ]] || fail "no $SHARED/models/sst2-bert-l4-h256"
  [[ -f "$TEMPLATE_SRC/config.json" ]] ||
    fail "no $TEMPLATE_SRC (ctest --test-dir build -R oracle_checkpoints makes it)"
  HF_LIB="${HF_LIB:-$SRC/.cache/cargo-target/release/libattattr_hf_tokenizers.a}"
  [[ -f "$HF_LIB" ]] || fail "no $HF_LIB (scripts/setup.sh builds it)"
  rm -rf "$SRC/.gpu/debs" "$SRC/.gpu/model" "$SRC/.gpu/decoder-template" "$SRC/.gpu/hf_tokenizers"
  mkdir -p "$SRC/.gpu/debs" "$SRC/.gpu/decoder-template" "$SRC/.gpu/hf_tokenizers"
  strip --strip-debug -o "$SRC/.gpu/hf_tokenizers/libattattr_hf_tokenizers.a" "$HF_LIB" ||
    fail "strip $HF_LIB"
  xz -T0 -9 "$SRC/.gpu/hf_tokenizers/libattattr_hf_tokenizers.a" || fail "xz"
  (cd "$SRC/.gpu/debs" && apt-get download libabsl-dev libabsl20220623 libutf8proc-dev libutf8proc2 \
    nlohmann-json3-dev libcli11-dev) || fail "apt-get download"
  cp -r "$SHARED/models/sst2-bert-l4-h256" "$SRC/.gpu/model"
  head -100 "$SHARED/data/sst2/dev.tsv" >"$SRC/.gpu/dev.tsv"
  # The decoder's template: its config and tokenizer; make_random_decoder.py reads the tensor
  # names from the safetensors header alone, so the weights are cut to that header.
  for f in "$TEMPLATE_SRC"/config.json "$TEMPLATE_SRC"/tokenizer*; do cp "$f" "$SRC/.gpu/decoder-template/"; done
  size=$(od -An -t u8 -N 8 "$TEMPLATE_SRC/model.safetensors" | tr -d ' ')
  head -c $((8 + size)) "$TEMPLATE_SRC/model.safetensors" >"$SRC/.gpu/decoder-template/model.safetensors"
  say "prepared .gpu/ ($(du -sh "$SRC/.gpu" | cut -f1)); run with carry [\".gpu\"]"
  exit 0
fi
[[ "$MODE" == run ]] || fail "mode must be 'prepare' or 'run'"

say "== machine"
uname -a
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
CXX_BIN="${CXX:-$(command -v g++ || command -v c++ || true)}"
[[ -n "$CXX_BIN" ]] || fail "no C++ compiler (g++/c++) on PATH"
say "compiler: $CXX_BIN: $("$CXX_BIN" --version | head -1)"
command -v cmake >/dev/null || fail "cmake not on PATH"
say "cmake: $(cmake --version | head -1)"
GENERATOR=(-G Ninja)
command -v ninja >/dev/null || { say "ninja not found: using Unix Makefiles"; GENERATOR=(-G "Unix Makefiles"); }
NVCC="$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)"
say "nvcc: ${NVCC:-none} $([[ -n "$NVCC" ]] && "$NVCC" --version | tail -1)"
JOBS="${JOBS:-$(nproc)}"

say "== torch"
PY="${PYTHON:-python3}"
"$PY" -c 'import torch' 2>/dev/null || { [[ -x /opt/torch/.venv/bin/python3 ]] && PY=/opt/torch/.venv/bin/python3; }
if [[ -z "${TORCH_DIR:-}" ]]; then
  TORCH_DIR="$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))')" ||
    fail "python3 cannot import torch; set TORCH_DIR"
  "$PY" -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda,
"available", torch.cuda.is_available(), "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI,
"device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")' || true
  TORCH_ABI="$("$PY" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null || echo 1)"
else
  TORCH_ABI="${TORCH_ABI:-1}"
fi
[[ -f "$TORCH_DIR/include/torch/csrc/api/include/torch/torch.h" ]] ||
  fail "no LibTorch headers under $TORCH_DIR/include"
say "TORCH_DIR=$TORCH_DIR (_GLIBCXX_USE_CXX11_ABI=$TORCH_ABI)"
ls "$TORCH_DIR/lib" | grep -E '^lib(torch|c10)' | tr '\n' ' '; echo

say "== dependencies"
DEPS_PREFIX="${DEPS_PREFIX:-/tmp/deps}"
if [[ "$DEPS_PREFIX" == system ]]; then
  DEPS_USR=/usr
else
  DEPS_USR="$DEPS_PREFIX/usr"
  shopt -s nullglob
  debs=("$SRC"/.gpu/debs/*.deb)
  ((${#debs[@]})) || fail "no .gpu/debs/*.deb (carry .gpu, or set DEPS_PREFIX=system)"
  mkdir -p "$DEPS_PREFIX"
  for d in "${debs[@]}"; do
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$d" "$DEPS_PREFIX" || fail "dpkg-deb -x $d"
    else  # ar + tar: a .deb is an ar archive holding data.tar.{xz,zst,gz}
      tmp="$(mktemp -d)"; (cd "$tmp" && ar x "$d") || fail "ar x $d"
      tar -xf "$tmp"/data.tar.* -C "$DEPS_PREFIX" || fail "tar data of $d"
      rm -rf "$tmp"
    fi
  done
  say "unpacked ${#debs[@]} .debs into $DEPS_PREFIX"
fi
LIBARCH=lib/x86_64-linux-gnu
for f in include/absl/status/status.h include/utf8proc.h include/nlohmann/json.hpp include/CLI/CLI.hpp \
         "$LIBARCH/cmake/absl/abslConfig.cmake"; do
  [[ -e "$DEPS_USR/$f" ]] || fail "missing $DEPS_USR/$f"
done
export LD_LIBRARY_PATH="$DEPS_USR/$LIBARCH:$TORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

BUILD_ROOT="${BUILD_ROOT:-/tmp/gpu-check-build}"
PROJ="$BUILD_ROOT/proj"
mkdir -p "$PROJ/gpu_check" "$BUILD_ROOT/torch-minimal"

say "== the tokenizers crate"
HF_XZ="$SRC/.gpu/hf_tokenizers/libattattr_hf_tokenizers.a.xz"
HF_ARGS=()
if [[ -f "$HF_XZ" ]]; then
  HF_PREBUILT="$BUILD_ROOT/libattattr_hf_tokenizers.a"
  { xz -dc "$HF_XZ" >"$HF_PREBUILT" 2>/dev/null ||
      "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' \
        "$HF_XZ" >"$HF_PREBUILT"; } || fail "cannot unpack $HF_XZ"
  HF_ARGS=(-DATTATTR_HF_TOKENIZERS_LIB="$HF_PREBUILT")
  say "prebuilt $HF_PREBUILT ($(du -h "$HF_PREBUILT" | cut -f1))"
else
  command -v cargo >/dev/null || [[ -x "$HOME/.cargo/bin/cargo" ]] ||
    fail "no $HF_XZ and no cargo: run 'scripts/gpu_check.sh prepare' here and carry .gpu"
  say "no prebuilt library: cargo builds engine/hf_tokenizers"
fi

# The project: base/ and engine/ as in the main build, attattr::torch from the Torch config below
# (cmake/AttattrTorch.cmake, ATTATTR_LIBTORCH=system), and gpu_check in a sibling directory.
# utf8proc without pkg-config.
cat >"$PROJ/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.18)
project(attattr_gpu_check LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY \${CMAKE_BINARY_DIR}/bin)
find_package(absl REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_path(UTF8PROC_INCLUDE_DIR utf8proc.h REQUIRED)
find_library(UTF8PROC_LIBRARY utf8proc PATH_SUFFIXES $LIBARCH REQUIRED)
add_library(PkgConfig::UTF8PROC INTERFACE IMPORTED)
set_target_properties(PkgConfig::UTF8PROC PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "\${UTF8PROC_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "\${UTF8PROC_LIBRARY}")
set(ATTATTR_ENGINE_TORCH ON)  # the main build's option: build the LibTorch part of the engine
# attattr::torch from find_package(Torch) (Torch_DIR: PyTorch's own config or the stand-in below).
set(ATTATTR_LIBTORCH system CACHE STRING "")
include("$SRC/cmake/AttattrTorch.cmake")
add_subdirectory("$SRC/base" base)
add_subdirectory("$SRC/engine" engine)
add_subdirectory(gpu_check)
EOF
cat >"$PROJ/gpu_check/CMakeLists.txt" <<EOF
message(STATUS "gpu_check: TORCH_LIBRARIES = \${TORCH_LIBRARIES}")
add_executable(gpu_check "$SRC/bench/gpu_check.cc")
target_link_libraries(gpu_check
  PRIVATE attattr_engine CLI11::CLI11 nlohmann_json::nlohmann_json absl::strings absl::str_format
          attattr::torch)
add_executable(decoder_length_bench "$SRC/bench/decoder_length_bench.cc")
target_link_libraries(decoder_length_bench
  PRIVATE attattr_engine CLI11::CLI11 absl::strings absl::str_format attattr::torch)
EOF
# Minimal stand-in for PyTorch's TorchConfig.cmake: headers and shared libraries only (this project
# compiles no CUDA code, so it needs no CUDA toolkit). libtorch_cuda is linked --no-as-needed, as
# PyTorch's own config does, so its CUDA backend registers itself at start-up.
cat >"$BUILD_ROOT/torch-minimal/TorchConfig.cmake" <<EOF
set(_t "$TORCH_DIR")
set(TORCH_INCLUDE_DIRS "\${_t}/include" "\${_t}/include/torch/csrc/api/include")
set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=$TORCH_ABI")
if(NOT TARGET torch)
  set(_libs "\${_t}/lib/libtorch_cpu.so" "\${_t}/lib/libc10.so")
  if(EXISTS "\${_t}/lib/libtorch_cuda.so" AND NOT TORCH_MINIMAL_NO_CUDA)
    list(PREPEND _libs "-Wl,--no-as-needed,\${_t}/lib/libtorch_cuda.so,\${_t}/lib/libc10_cuda.so"
         "-Wl,--as-needed")
  endif()
  list(APPEND _libs "-Wl,-rpath,\${_t}/lib" \${TORCH_MINIMAL_EXTRA_LINK})
  add_library(torch INTERFACE IMPORTED)
  set_target_properties(torch PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "\${TORCH_INCLUDE_DIRS}"
    INTERFACE_COMPILE_DEFINITIONS "USE_DISTRIBUTED;USE_C10D_GLOO;USE_RPC;USE_TENSORPIPE"
    INTERFACE_LINK_LIBRARIES "\${_libs}")
endif()
set(TORCH_LIBRARIES torch)
set(TORCH_FOUND TRUE)
set(Torch_FOUND TRUE)
EOF

# GCC 13 no longer includes <cstdint> transitively; abseil 20220623 headers rely on it.
CXXFLAGS_ALL="${EXTRA_CXXFLAGS:-}"
GCC_MAJOR="$("$CXX_BIN" -dumpversion 2>/dev/null | cut -d. -f1)"
if [[ "$GCC_MAJOR" =~ ^[0-9]+$ ]] && ((GCC_MAJOR >= 13)); then
  CXXFLAGS_ALL="-include cstdint $CXXFLAGS_ALL"
  say "GCC $GCC_MAJOR: compiling with -include cstdint (abseil 20220623 headers)"
fi
build() {  # build MODE: configure + build in $BUILD_ROOT/MODE; sets BIN
  local mode="$1" dir="$BUILD_ROOT/$1"
  local args=(-S "$PROJ" -B "$dir" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release
              -DCMAKE_CXX_COMPILER="$CXX_BIN" "-DCMAKE_CXX_FLAGS=$CXXFLAGS_ALL"
              "-DCMAKE_PREFIX_PATH=$DEPS_USR" -Dabsl_DIR="$DEPS_USR/$LIBARCH/cmake/absl"
              "${HF_ARGS[@]}" ${CMAKE_EXTRA_ARGS:-})
  if [[ "$mode" == real ]]; then
    export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
    args+=(-DTorch_DIR="$TORCH_DIR/share/cmake/Torch" "-DCMAKE_PREFIX_PATH=$TORCH_DIR/share/cmake;$DEPS_USR")
    # Torch's config reads TORCH_CUDA_ARCH_LIST (it warns about and ignores CMAKE_CUDA_ARCHITECTURES).
    [[ -n "$NVCC" ]] && args+=(-DCMAKE_CUDA_COMPILER="$NVCC")
  else
    args+=(-DTorch_DIR="$BUILD_ROOT/torch-minimal")
  fi
  say "== configure ($mode Torch config) in $dir"
  cmake "${args[@]}" || { say "configure ($mode) failed"; return 1; }
  say "== build ($mode) -j$JOBS"
  cmake --build "$dir" -j "$JOBS" --target gpu_check decoder_length_bench ||
    { say "build ($mode) failed"; return 1; }
  BIN="$dir/bin/gpu_check"
  say "built $BIN"
}

BIN=""
case "${TORCH_CMAKE:-auto}" in
  real) build real || fail "build with PyTorch's CMake config" ;;
  minimal) build minimal || fail "build with the minimal Torch config" ;;
  auto)
    if [[ -n "$NVCC" ]] && build real; then :; else
      say "falling back to the minimal Torch config"
      build minimal || fail "build with the minimal Torch config"
    fi ;;
  *) fail "TORCH_CMAKE must be auto, real or minimal" ;;
esac
say "linked libraries:"
ldd "$BIN" | grep -E 'torch|c10|absl_status|utf8proc|cudart|not found' || true

if [[ "${BUILD_ONLY:-0}" == 1 ]]; then say "BUILD_ONLY=1: done"; exit 0; fi

say "== run gpu_check"
MODEL="${MODEL:-$SRC/.gpu/model}"
DATA="${DATA:-$SRC/.gpu/dev.tsv}"
[[ -f "$MODEL/config.json" ]] || fail "no model at $MODEL"
[[ -f "$DATA" ]] || fail "no data at $DATA"
# shellcheck disable=SC2086
timeout "${RUN_TIMEOUT:-420}" "$BIN" --model "$MODEL" --data "$DATA" --json "$OUT/gpu_check.json" \
  ${GPU_CHECK_ARGS:-} | tee "$OUT/gpu_check.txt"
rc=$?
say "gpu_check exited with $rc"

# Issue "Decoder LLMs": a ~1 B decoder at 64 … 1,024 tokens in bf16 (weights and integrand) on the
# GPU, every layer, Gauss–Legendre m = 8. The model is made here (it cannot be carried in) from the
# small template .gpu/decoder-template (build/oracle/llama: config and tokenizer), with PyTorch
# alone: bench/make_random_decoder.py, Llama-3.2-1B's shape by default (DECODER_ARGS).
TEMPLATE="${DECODER_TEMPLATE:-$SRC/.gpu/decoder-template}"
if [[ "${SKIP_DECODER:-0}" == 1 || ! -f "$TEMPLATE/config.json" ]]; then
  say "decoder stage skipped (SKIP_DECODER=1, or no template at $TEMPLATE)"
  exit $rc
fi
say "== decoder: make the model"
DECODER_DIR="${DECODER_DIR:-$BUILD_ROOT/decoder-1b}"
# shellcheck disable=SC2086
"$PY" "$SRC/bench/make_random_decoder.py" --template "$TEMPLATE" --out "$DECODER_DIR" \
  ${DECODER_ARGS:-} || fail "make_random_decoder.py"
say "== decoder: run decoder_length_bench on cuda"
# shellcheck disable=SC2086
timeout "${DECODER_TIMEOUT:-300}" "$(dirname "$BIN")/decoder_length_bench" --model "$DECODER_DIR" \
  --data "$DATA" --device cuda --precision bf16 --weights bf16 --repeats 2 \
  ${DECODER_BENCH_ARGS:-} | tee "$OUT/decoder_length.txt"
drc=$?
say "decoder_length_bench exited with $drc"
((rc != 0)) && exit $rc
exit $drc
