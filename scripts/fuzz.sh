#!/usr/bin/env bash
# Builds the libFuzzer targets (CMake preset `fuzz`, clang-14) and fuzzes the safetensors header
# parser for $1 seconds (default 600) with one worker, on a scratch copy of the seed corpus so the
# checked-in seeds stay small. Crashes land in build-fuzz/artifacts/; the exit status is
# libFuzzer's. Does not minimise or check in the grown corpus. Usage: scripts/fuzz.sh [seconds]
set -euo pipefail

seconds="${1:-600}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

cmake --preset fuzz
cmake --build --preset fuzz --target safetensors_header_fuzz

corpus="$(mktemp -d /tmp/safetensors_corpus.XXXXXX)"
cp tests/fuzz/corpus/safetensors/* "${corpus}/"
mkdir -p build-fuzz/artifacts
echo "fuzzing for ${seconds}s; corpus copy in ${corpus}"
exec build-fuzz/bin/safetensors_header_fuzz \
  -max_total_time="${seconds}" -rss_limit_mb=2048 \
  -dict=tests/fuzz/safetensors.dict \
  -artifact_prefix=build-fuzz/artifacts/ \
  "${corpus}"
