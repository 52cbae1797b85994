#!/usr/bin/env bash
# Builds the libFuzzer targets (CMake preset `fuzz`, clang-14, ASan + UBSan) and fuzzes each one
# named (default: all) for SECONDS (default 600) with one worker, starting from its committed corpus
# in tests/fuzz/corpus/<target>/. The corpus is then rewritten as the hand-written seeds plus the
# fewest inputs the run found that keep its coverage (libFuzzer -merge=1), so commit it: CTest
# replays every corpus (fuzz_corpus.* tests). Crashes land in build-fuzz/artifacts/ and stop the script with
# libFuzzer's status; a summary line per target (runs, coverage, corpus size) goes to stdout.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   targets: safetensors_header_fuzz model_config_fuzz wordpiece_fuzz hf_tokenizer_fuzz dataset_fuzz
#            server_flags_fuzz job_spec_fuzz (built by the fuzz-server preset: clang with LibTorch,
#            ~15 min once). hf_tokenizer_fuzz also instruments the Rust tokenizers crate for coverage.
set -euo pipefail

seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(safetensors_header_fuzz model_config_fuzz wordpiece_fuzz hf_tokenizer_fuzz dataset_fuzz
    server_flags_fuzz job_spec_fuzz)
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

# job_spec_fuzz needs the server library, so LibTorch: its own build (preset fuzz-server).
plain=() server=()
for target in "${targets[@]}"; do
  if [ "$target" = job_spec_fuzz ]; then server+=("$target"); else plain+=("$target"); fi
done
if [ ${#plain[@]} -gt 0 ]; then
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz --target "${plain[@]}"
fi
if [ ${#server[@]} -gt 0 ]; then
  cmake --preset fuzz-server >/dev/null
  cmake --build --preset fuzz-server --target "${server[@]}"
fi
mkdir -p build-fuzz/artifacts build-fuzz/logs

for target in "${targets[@]}"; do
  bin=build-fuzz/bin
  [ "$target" = job_spec_fuzz ] && bin=build-fuzz-server/bin
  seeds="tests/fuzz/corpus/${target}"
  scratch="$(mktemp -d "/tmp/${target}.XXXXXX")"
  cp "${seeds}"/* "${scratch}/"
  dict=()
  [ -f "tests/fuzz/${target%_fuzz}.dict" ] && dict=(-dict="tests/fuzz/${target%_fuzz}.dict")
  [ -f "tests/fuzz/${target%_header_fuzz}.dict" ] && dict=(-dict="tests/fuzz/${target%_header_fuzz}.dict")
  log="build-fuzz/logs/${target}.log"
  echo "== ${target}: fuzzing for ${seconds}s (log ${log})"
  "${bin}/${target}" -max_total_time="${seconds}" -rss_limit_mb=2048 -max_len=65536 \
    -timeout=10 -print_final_stats=1 "${dict[@]}" -artifact_prefix=build-fuzz/artifacts/ \
    "${scratch}" >"${log}" 2>&1 || { tail -40 "${log}"; exit 1; }
  runs=$(grep -m1 '^stat::number_of_executed_units' "${log}" | awk '{print $2}')
  cov=$(grep -E '^#[0-9]+' "${log}" | tail -1 | grep -oE 'cov: [0-9]+' || true)
  # The new corpus: the hand-written seeds (named; never dropped), then the fewest inputs found by
  # fuzzing (named by their SHA-1) that cover what the run reached.
  before=$(ls "${seeds}" | wc -l)
  merged="$(mktemp -d "/tmp/${target}.merged.XXXXXX")"
  find "${seeds}" -type f ! -regex '.*/[0-9a-f]\{40\}' -exec cp -t "${merged}" {} +
  "${bin}/${target}" -merge=1 "${merged}" "${scratch}" >>"${log}" 2>&1
  rm -rf "${seeds}" && mkdir -p "${seeds}" && cp "${merged}"/* "${seeds}/"
  after=$(ls "${seeds}" | wc -l)
  echo "${target}: ${runs} runs in ${seconds}s, ${cov}, corpus ${before} -> ${after} inputs"
  rm -rf "${scratch}" "${merged}"
done
