#!/usr/bin/env bash
# Builds the real project's bench/explain_bench (top-level CMakeLists.txt, tests off) on a machine
# that has CUDA, pip PyTorch, CMake and a compiler but none of the server's Debian packages (gRPC,
# protobuf, spdlog, SQLite, cpp-httplib, abseil, ...), then runs it with the models on the GPU:
# Explain calls/s and p50/p95 at client concurrency 1, 4 and 16 without dynamic batching
# (--batch-max-examples 1) and with it, their ratio, server overhead per call and RSS (see
# bench/explain_bench.cc). Nothing is installed into /: Debian 12 packages are unpacked into
# $DEPS_PREFIX and the build finds them there (CMAKE_PREFIX_PATH, pkg-config .pc files rewritten
# to that prefix, protoc and grpc_cpp_plugin from it, LD_LIBRARY_PATH).
#
# Two modes, both run from the repository root:
#   scripts/gpu_explain_bench.sh prepare   (on the dev machine, Debian 12, with network)
#       apt-get downloads the server's packages into .gpu/debs2, unpacks them, drops what the
#       build does not need (static .a archives, docs, man pages; the .debs alone are ~21 MB, too
#       much beside the 43 MB model under the device tool's 64 MiB), makes the libz.so link
#       relative and packs the rest into .gpu/deps2.tar.xz.
#   scripts/gpu_explain_bench.sh [run]     (on the GPU machine; the default)
#       unpacks, configures, builds explain_bench, runs it once per --batch-max-examples value.
#
# Inputs (in .gpu/, ignored through .git/info/exclude; the device tool sends them when `carry`
# names them):
#   .gpu/debs/*.deb       Debian 12: libabsl-dev libabsl20220623 libutf8proc-dev libutf8proc2
#                         nlohmann-json3-dev libcli11-dev (as for scripts/gpu_check.sh)
#   .gpu/deps2.tar.xz     made by `prepare` from .gpu/debs2 (falls back to dpkg -x .gpu/debs2/*.deb)
#   .gpu/model/           a copy of ../shared/models/sst2-bert-l4-h256
#   .gpu/dev.tsv          the first 100 lines of ../shared/data/sst2/dev.tsv
# Outputs in $OUT: log.txt (everything), explain-gpu-b<N>.json and explain-gpu-b<N>.txt per batch
# size N (explain-gpu.json is the first N's JSON).
# Environment (all optional):
#   OUT            output folder (default /tmp/gpu-explain-out)
#   DEPS_PREFIX    where the packages are unpacked (default /tmp/deps)
#   BUILD_DIR      the CMake build directory (default /tmp/gpu-explain-build)
#   TORCH_DIR      the torch package directory (default: the one python3 imports)
#   TORCH_CMAKE    minimal (default): a stand-in TorchConfig.cmake (headers + shared libraries, as
#                  scripts/gpu_check.sh writes; this project compiles no CUDA code); real: PyTorch's
#                  own config (needs the CUDA toolkit); a directory: use that Torch_DIR as it is
#   JOBS           build parallelism (default: nproc)
#   BUILD_ONLY=1   configure and build, do not run
#   DEVICE         explain_bench --device (default cuda)
#   BATCHES        the --batch-max-examples values, one run each (default "16 8")
#   BENCH_ARGS     explain_bench arguments besides --shared/--device/--batch-max-examples/--json
#                  (default "--examples 64 --leak-calls 200")
#   RUN_TIMEOUT    seconds each explain_bench run may take (default 240)
#   SKIP_BENCH=1   do not run explain_bench (only the server check below)
#   SERVER_CHECK=0 do not build and start attattr-server --device $DEVICE to scrape its /metrics
#                  (GPU memory gauges from NVML) into $OUT/metrics.txt (default: 1)
set -uo pipefail

SRC="$(pwd)"
MODE="${1:-run}"
LIBARCH=lib/x86_64-linux-gnu
T0=$(date +%s)
say() { echo "[gpu_explain_bench.sh +$(( $(date +%s) - T0 ))s] $*"; }
fail() { say "FAILED: $*"; exit 1; }
[[ -f "$SRC/CMakeLists.txt" && -f "$SRC/bench/explain_bench.cc" ]] ||
  fail "run from the repository root (bench/explain_bench.cc not found in $SRC)"

# Debian 12 packages of the server's dependencies beyond those in .gpu/debs, runtime libraries
# included (only glibc, libstdc++ and libgcc are taken from the machine). pkgconf is there for
# machines without pkg-config. Closure checked with readelf -d (NEEDED) on every unpacked .so.
DEBS2=(libgrpc++-dev libgrpc++1.51 libgrpc-dev libgrpc29 protobuf-compiler protobuf-compiler-grpc
       libprotobuf-dev libprotobuf32 libprotobuf-lite32 libprotoc32 libspdlog-dev libspdlog1.10
       libfmt-dev libfmt9 libsqlite3-dev libsqlite3-0 libcpp-httplib-dev libcpp-httplib0.11
       libssl-dev libssl3 libc-ares-dev libc-ares2 libre2-dev libre2-9 zlib1g-dev zlib1g
       libbrotli-dev libbrotli1 pkgconf pkgconf-bin libpkgconf3)

# A .deb's files into $2 (dpkg-deb when there, else ar + tar).
unpack_deb() {
  if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$1" "$2"; else
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && ar x "$1") && tar -xf "$tmp"/data.tar.* -C "$2"; local rc=$?
    rm -rf "$tmp"; return $rc
  fi
}
# libz.so is an absolute link to /lib/x86_64-linux-gnu/libz.so.1.2.13: point it into the prefix.
fix_libz() {
  local p="$1"
  if [[ -L "$p/usr/$LIBARCH/libz.so" && -e "$p/$LIBARCH/libz.so.1" ]]; then
    ln -sfn "../../../$LIBARCH/libz.so.1" "$p/usr/$LIBARCH/libz.so"
  fi
}

if [[ "$MODE" == prepare ]]; then
  mkdir -p "$SRC/.gpu/debs2"
  (cd "$SRC/.gpu/debs2" && apt-get download "${DEBS2[@]}") || fail "apt-get download"
  stage="$(mktemp -d)"
  for d in "$SRC"/.gpu/debs2/*.deb; do unpack_deb "$d" "$stage" || fail "unpack $d"; done
  find "$stage" -name '*.a' -delete
  rm -rf "$stage/usr/share/doc" "$stage/usr/share/man" "$stage/usr/share/lintian"
  fix_libz "$stage"
  tar -C "$stage" -cJf "$SRC/.gpu/deps2.tar.xz" . || fail "tar"
  rm -rf "$stage"
  say "wrote .gpu/deps2.tar.xz ($(du -h "$SRC/.gpu/deps2.tar.xz" | cut -f1)); carried in all:"
  du -cb "$SRC"/.gpu/model "$SRC"/.gpu/dev.tsv "$SRC"/.gpu/debs "$SRC"/.gpu/deps2.tar.xz | tail -1
  exit 0
fi
[[ "$MODE" == run ]] || fail "mode must be 'prepare' or 'run'"

OUT="${OUT:-/tmp/gpu-explain-out}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
trap 'exec 1>&- 2>&-; sleep 1' EXIT  # let tee write the last lines before the script returns

say "== machine"
uname -a
command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
CXX_BIN="${CXX:-$(command -v g++ || command -v c++ || true)}"
[[ -n "$CXX_BIN" ]] || fail "no C++ compiler (g++/c++) on PATH"
say "compiler: $CXX_BIN: $("$CXX_BIN" --version | head -1)"
command -v cmake >/dev/null || fail "cmake not on PATH"
say "cmake: $(cmake --version | head -1)"
GENERATOR=(-G Ninja)
command -v ninja >/dev/null || { say "ninja not found: using Unix Makefiles"; GENERATOR=(-G "Unix Makefiles"); }
JOBS="${JOBS:-$(nproc)}"

say "== torch"
PY="${PYTHON:-python3}"
"$PY" -c 'import torch' 2>/dev/null || { [[ -x /opt/torch/.venv/bin/python3 ]] && PY=/opt/torch/.venv/bin/python3; }
TORCH_CMAKE="${TORCH_CMAKE:-minimal}"
if [[ "$TORCH_CMAKE" == minimal || "$TORCH_CMAKE" == real ]]; then
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
  say "TORCH_DIR=$TORCH_DIR (_GLIBCXX_USE_CXX11_ABI=$TORCH_ABI), Torch CMake config: $TORCH_CMAKE"
  TORCH_LIBDIR="$TORCH_DIR/lib"
else
  [[ -f "$TORCH_CMAKE/TorchConfig.cmake" ]] || fail "TORCH_CMAKE=$TORCH_CMAKE holds no TorchConfig.cmake"
  say "Torch_DIR=$TORCH_CMAKE (as it is)"
  TORCH_LIBDIR=""
fi

say "== dependencies"
DEPS="${DEPS_PREFIX:-/tmp/deps}"
DL="$DEPS/usr/$LIBARCH"
mkdir -p "$DEPS"
shopt -s nullglob
debs=("$SRC"/.gpu/debs/*.deb)
((${#debs[@]})) || fail "no .gpu/debs/*.deb (carry .gpu/debs)"
for d in "${debs[@]}"; do unpack_deb "$d" "$DEPS" || fail "unpack $d"; done
if [[ -f "$SRC/.gpu/deps2.tar.xz" ]]; then
  tar -xJf "$SRC/.gpu/deps2.tar.xz" -C "$DEPS" || fail "untar .gpu/deps2.tar.xz"
  say "unpacked ${#debs[@]} .debs and .gpu/deps2.tar.xz into $DEPS"
else
  debs2=("$SRC"/.gpu/debs2/*.deb)
  ((${#debs2[@]})) || fail "neither .gpu/deps2.tar.xz nor .gpu/debs2/*.deb (run 'prepare', carry them)"
  for d in "${debs2[@]}"; do unpack_deb "$d" "$DEPS" || fail "unpack $d"; done
  say "unpacked ${#debs[@]} + ${#debs2[@]} .debs into $DEPS"
fi
fix_libz "$DEPS"
# pkg-config files say prefix=/usr (some libdir=/usr/...): rewrite every such value to the prefix.
for pc in "$DL"/pkgconfig/*.pc "$DEPS"/usr/share/pkgconfig/*.pc; do
  sed -i -E "s#^([A-Za-z_]+=)/usr(/|\$)#\\1$DEPS/usr\\2#" "$pc"
done
for f in include/grpcpp/grpcpp.h include/google/protobuf/message.h include/spdlog/spdlog.h \
         include/fmt/format.h include/sqlite3.h include/httplib.h include/openssl/ssl.h \
         include/absl/status/status.h include/utf8proc.h include/nlohmann/json.hpp \
         include/CLI/CLI.hpp bin/protoc bin/grpc_cpp_plugin "$LIBARCH/cmake/grpc/gRPCConfig.cmake" \
         "$LIBARCH/cmake/absl/abslConfig.cmake" "$LIBARCH/cmake/spdlog/spdlogConfig.cmake" \
         "$LIBARCH/pkgconfig/cpp-httplib.pc" "$LIBARCH/libgrpc++.so" "$LIBARCH/libz.so"; do
  [[ -e "$DEPS/usr/$f" ]] || fail "missing $DEPS/usr/$f"
done
export LD_LIBRARY_PATH="$DL${TORCH_LIBDIR:+:$TORCH_LIBDIR}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PKG_CONFIG_LIBDIR="$DL/pkgconfig:$DEPS/usr/share/pkgconfig"  # ours only, not the machine's
unset PKG_CONFIG_PATH
# The carried pkgconf (the machine may have no pkg-config); FindPkgConfig reads $PKG_CONFIG.
if "$DEPS/usr/bin/pkgconf" --version >/dev/null 2>&1; then
  export PKG_CONFIG="$DEPS/usr/bin/pkgconf"
else
  export PKG_CONFIG="$(command -v pkg-config || true)"
  say "the carried pkgconf does not run: using ${PKG_CONFIG:-none}"
fi
[[ -n "$PKG_CONFIG" ]] || fail "no pkg-config"
"$PKG_CONFIG" --cflags --libs cpp-httplib libutf8proc || fail "pkg-config cpp-httplib libutf8proc"
"$DEPS/usr/bin/protoc" --version || fail "protoc does not run"
missing="$(ldd "$DEPS/usr/bin/grpc_cpp_plugin" "$DL"/libgrpc++.so "$DL"/libcpp-httplib.so 2>&1 | grep 'not found' | sort -u)"
[[ -z "$missing" ]] || fail "libraries not found: $missing"

say "== configure"
BUILD="${BUILD_DIR:-/tmp/gpu-explain-build}"
TORCH_ARGS=()
if [[ "$TORCH_CMAKE" == minimal ]]; then
  # Stand-in for PyTorch's TorchConfig.cmake (as scripts/gpu_check.sh writes it): headers and shared
  # libraries only. libtorch_cuda is linked --no-as-needed, as PyTorch's own config does, so its
  # CUDA backend registers itself at start-up.
  mkdir -p "$BUILD/torch-minimal"
  cat >"$BUILD/torch-minimal/TorchConfig.cmake" <<EOF
set(_t "$TORCH_DIR")
set(TORCH_INCLUDE_DIRS "\${_t}/include" "\${_t}/include/torch/csrc/api/include")
set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=$TORCH_ABI")
if(NOT TARGET torch)
  set(_libs "\${_t}/lib/libtorch_cpu.so" "\${_t}/lib/libc10.so")
  if(EXISTS "\${_t}/lib/libtorch_cuda.so")
    list(PREPEND _libs "-Wl,--no-as-needed,\${_t}/lib/libtorch_cuda.so,\${_t}/lib/libc10_cuda.so"
         "-Wl,--as-needed")
  endif()
  list(APPEND _libs "-Wl,-rpath,\${_t}/lib")
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
  TORCH_ARGS=(-DTorch_DIR="$BUILD/torch-minimal")
elif [[ "$TORCH_CMAKE" == real ]]; then
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
  TORCH_ARGS=(-DTorch_DIR="$TORCH_DIR/share/cmake/Torch")
  NVCC="$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)"
  [[ -n "$NVCC" ]] && TORCH_ARGS+=(-DCMAKE_CUDA_COMPILER="$NVCC")
else
  TORCH_ARGS=(-DTorch_DIR="$TORCH_CMAKE")
fi
# GCC 13 no longer includes <cstdint> transitively; abseil 20220623 and gRPC 1.51 headers rely on it.
# Debian's multiarch headers (openssl/opensslconf.h, configuration.h) sit in include/x86_64-linux-gnu,
# which the compiler searches by itself only under /usr.
CXXFLAGS_ALL="-I$DEPS/usr/include/x86_64-linux-gnu ${EXTRA_CXXFLAGS:-}"
GCC_MAJOR="$("$CXX_BIN" -dumpversion 2>/dev/null | cut -d. -f1)"
if [[ "$GCC_MAJOR" =~ ^[0-9]+$ ]] && ((GCC_MAJOR >= 13)); then
  CXXFLAGS_ALL="-include cstdint $CXXFLAGS_ALL"
  say "GCC $GCC_MAJOR: compiling with -include cstdint (abseil 20220623 headers)"
fi
export CMAKE_POLICY_VERSION_MINIMUM=3.5  # CMake 4 and older find modules / package configs
cmake -S "$SRC" -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$CXX_BIN" "-DCMAKE_CXX_FLAGS=$CXXFLAGS_ALL" \
  -DATTATTR_BUILD_TESTS=OFF -DATTATTR_BUILD_BENCH=ON \
  "-DCMAKE_PREFIX_PATH=$DEPS/usr" -Dabsl_DIR="$DL/cmake/absl" -DgRPC_DIR="$DL/cmake/grpc" \
  -Dspdlog_DIR="$DL/cmake/spdlog" -Dfmt_DIR="$DL/cmake/fmt" \
  -DProtobuf_PROTOC_EXECUTABLE="$DEPS/usr/bin/protoc" -DProtobuf_INCLUDE_DIR="$DEPS/usr/include" \
  -DProtobuf_LIBRARY="$DL/libprotobuf.so" -DProtobuf_PROTOC_LIBRARY="$DL/libprotoc.so" \
  -DGRPC_CPP_PLUGIN="$DEPS/usr/bin/grpc_cpp_plugin" \
  -DOPENSSL_ROOT_DIR="$DEPS/usr" -DZLIB_ROOT="$DEPS/usr" \
  -DSQLite3_INCLUDE_DIR="$DEPS/usr/include" -DSQLite3_LIBRARY="$DL/libsqlite3.so" \
  -DPKG_CONFIG_EXECUTABLE="$PKG_CONFIG" \
  -DATTATTR_LIBTORCH=system "${TORCH_ARGS[@]}" ${CMAKE_EXTRA_ARGS:-} || fail "configure"
# What the build found: each should be under $DEPS (or the torch directory).
grep -E '^(Protobuf_|gRPC_DIR|absl_DIR|spdlog_DIR|fmt_DIR|SQLite3_|OPENSSL_(SSL|CRYPTO)_LIBRARY|OPENSSL_INCLUDE|ZLIB_(LIBRARY|INCLUDE)|c-ares|re2|GRPC_CPP_PLUGIN|PKG_CONFIG_EXECUTABLE|CPP_HTTPLIB_LINK|UTF8PROC_LINK|nlohmann_json_DIR|CLI11_DIR|Torch_DIR)' \
  "$BUILD/CMakeCache.txt" | sed 's/^/  cache: /'

say "== build explain_bench -j$JOBS"
TARGETS=(explain_bench)
[[ "${SERVER_CHECK:-1}" == 1 ]] && TARGETS+=(attattr-server)
cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}" || fail "build"
BIN="$BUILD/bin/explain_bench"
[[ -x "$BIN" ]] || fail "no $BIN"
say "built $BIN; its libraries:"
ldd "$BIN" | grep -E 'grpc|protobuf|spdlog|fmt|sqlite|httplib|absl_status\.|ssl|cares|re2|torch|c10|not found' || true
ldd "$BIN" | grep -q 'not found' && fail "unresolved libraries (ldd above)"
if [[ "${BUILD_ONLY:-0}" == 1 ]]; then say "BUILD_ONLY=1: done"; exit 0; fi

say "== run explain_bench"
[[ -f "$SRC/.gpu/model/config.json" ]] || fail "no .gpu/model/config.json (carry .gpu/model)"
[[ -f "$SRC/.gpu/dev.tsv" ]] || fail "no .gpu/dev.tsv (carry .gpu/dev.tsv)"
SHARED="$(mktemp -d /tmp/explain-shared-XXXXXX)"
mkdir -p "$SHARED/models" "$SHARED/data/sst2"
ln -s "$SRC/.gpu/model" "$SHARED/models/sst2-bert-l4-h256"
ln -s "$SRC/.gpu/dev.tsv" "$SHARED/data/sst2/dev.tsv"
DEVICE="${DEVICE:-cuda}"
rc_all=0
first=1
BATCH_LIST="${BATCHES:-16 8}"
[[ "${SKIP_BENCH:-0}" == 1 ]] && BATCH_LIST=""
for b in $BATCH_LIST; do
  say "-- --device $DEVICE --batch-max-examples $b"
  # shellcheck disable=SC2086
  timeout "${RUN_TIMEOUT:-240}" "$BIN" --shared "$SHARED" --device "$DEVICE" \
    ${BENCH_ARGS:---examples 64 --leak-calls 200} --batch-max-examples "$b" \
    --json "$OUT/explain-gpu-b$b.json" | tee "$OUT/explain-gpu-b$b.txt"
  rc=${PIPESTATUS[0]}
  say "explain_bench (--batch-max-examples $b) exited with $rc"
  ((rc == 0)) || rc_all=$rc
  if ((first)) && [[ -f "$OUT/explain-gpu-b$b.json" ]]; then cp "$OUT/explain-gpu-b$b.json" "$OUT/explain-gpu.json"; fi
  first=0
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
done

if [[ "${SERVER_CHECK:-1}" == 1 ]]; then
  say "== attattr-server --device $DEVICE: /metrics (GPU memory from NVML)"
  SRV_OUT="$OUT/server-stdout.txt"
  "$BUILD/bin/attattr-server" --models "$SHARED/models" --device "$DEVICE" --listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:19464 --store /tmp/gpu-check-jobs.db >"$SRV_OUT" 2>"$OUT/server-log.txt" &
  SRV_PID=$!
  for _ in $(seq 1 120); do grep -q "listening on port" "$SRV_OUT" 2>/dev/null && break; sleep 0.5; done
  if grep -q "listening on port" "$SRV_OUT"; then
    python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:19464/metrics').read().decode())" \
      >"$OUT/metrics.txt" || rc_all=1
    grep -E '^attattr_device_memory|^process_resident' "$OUT/metrics.txt" || { say "no GPU memory gauges"; rc_all=1; }
  else
    say "attattr-server did not start"; cat "$OUT/server-log.txt"; rc_all=1
  fi
  kill -TERM "$SRV_PID" 2>/dev/null; wait "$SRV_PID"; say "attattr-server exited with $?"
  tail -5 "$OUT/server-log.txt"
fi
exit $rc_all
