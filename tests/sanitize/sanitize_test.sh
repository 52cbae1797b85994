#!/usr/bin/env bash
# The sanitizer builds of tests/sanitize/CMakeLists.txt. Usage: sanitize_test.sh SOURCE_DIR
#   ASan + UBSan  preset `asan` (build-asan/): every torch-free unit test and the fuzz corpora,
#                 then the end-to-end RPC tests with the real server (LibTorch and gRPC)
#   TSan          preset `tsan` (build-tsan/): the multi-threaded components' tests, run against
#                 Abseil built with -fsanitize=thread from the Debian source of the installed
#                 libabsl (fetched with apt-get source into build-tsan/absl/, once)
# Any sanitizer report fails the test (halt_on_error); the first lines of each log are printed.
set -uo pipefail
src=$(cd "$1" && pwd)
cd "$src"
fails=0
log_dir=$src/build-asan/sanitize-logs
mkdir -p "$log_dir"

catches() { # catches NAME PATTERN CMD...: CMD must fail with a sanitizer report saying PATTERN
  local name=$1 pattern=$2; shift 2
  if "$@" >"$log_dir/$name.log" 2>&1; then
    echo "FAIL $name: the deliberate bug went unreported (is the build instrumented?)"
    fails=$((fails + 1))
  elif ! grep -q -- "$pattern" "$log_dir/$name.log"; then
    echo "FAIL $name: failed without reporting '$pattern':"; head -20 "$log_dir/$name.log"
    fails=$((fails + 1))
  else
    echo "ok   $name: reported ($pattern)"
  fi
}

run() { # run NAME CMD...: CMD must exit 0
  local name=$1; shift
  if "$@" >"$log_dir/$name.log" 2>&1; then
    echo "ok   $name ($(tail -1 "$log_dir/$name.log"))"
  else
    echo "FAIL $name:"; grep -m1 -A25 -E "ERROR: |WARNING: ThreadSanitizer|runtime error|FAILED" \
      "$log_dir/$name.log" | sed 's/^/     /'; fails=$((fails + 1))
  fi
}

# Tests that link no LibTorch (tests/CMakeLists.txt), and the fuzz targets' replayers.
unit_tests=(field_error_test quote_test worker_pool_test gold_label_test wordpiece_tokenizer_test
  safetensors_reader_test dataset_tsv_test quadrature_test attribution_tree_test
  trigger_insertion_test convert_test html_report_test attribution_tree_render_test metrics_test
  metrics_http_test job_store_test job_scheduler_test sharded_stages_test auth_test
  host_resources_test engine_parallelism_test terminal_output_test)
fuzz_targets=(safetensors_header_fuzz model_config_fuzz wordpiece_fuzz hf_tokenizer_fuzz
  dataset_fuzz server_flags_fuzz)
# The components where threads meet: the worker pool, the HTTP listener, the metrics registry, the
# store under concurrent callers, the scheduler.
tsan_tests=(worker_pool_test metrics_http_test metrics_test job_store_test job_scheduler_test
  sharded_stages_test auth_test)

# --- ASan + UBSan ----------------------------------------------------------------------------
echo "== ASan + UBSan (build-asan)"
cmake --preset asan -DATTATTR_WERROR=OFF >"$log_dir/configure.log" 2>&1 \
  || { cat "$log_dir/configure.log"; exit 1; }
replayers=("${fuzz_targets[@]/%/_replay}")
cmake --build build-asan -j 2 --target sanitizer_canary "${unit_tests[@]}" "${replayers[@]}" \
  >"$log_dir/build.log" 2>&1 || { tail -40 "$log_dir/build.log"; exit 1; }
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
catches "asan:canary" "heap-buffer-overflow" build-asan/bin/sanitizer_canary heap-overflow
catches "ubsan:canary" "signed integer overflow" build-asan/bin/sanitizer_canary signed-overflow
for t in "${unit_tests[@]}"; do run "asan:$t" "build-asan/bin/$t"; done
for t in "${fuzz_targets[@]}"; do
  run "asan:${t}_corpus" "build-asan/bin/${t}_replay" "tests/fuzz/corpus/$t"
done
unset ASAN_OPTIONS UBSAN_OPTIONS

# --- ASan + UBSan through LibTorch and gRPC ---------------------------------------------------
# The end-to-end tests with the real attattr-server of this build (ServerProcess starts
# build-asan/bin/attattr-server): Explain, every job kind and the job RPCs, hostile inputs. The
# servers they start report into files (log_path), so a report from a child process — which its
# test might outlive — fails too; the canary checks that such a file appears.
e2e_tests=(explain_rpc_test job_rpc_test hostile_input_test)
echo "== ASan + UBSan, LibTorch and gRPC end to end (build-asan)"
cmake --build build-asan -j 2 --target attattr-server "${e2e_tests[@]}" \
  >"$log_dir/e2e-build.log" 2>&1 || { tail -40 "$log_dir/e2e-build.log"; exit 1; }
rm -f "$log_dir"/e2e-report.* "$log_dir"/canary-report.*
ASAN_OPTIONS=halt_on_error=1:log_path=$log_dir/canary-report \
  build-asan/bin/sanitizer_canary heap-overflow >/dev/null 2>&1
if grep -qs "heap-buffer-overflow" "$log_dir"/canary-report.*; then
  echo "ok   asan:canary-to-file: reported into $log_dir/canary-report.*"
else
  echo "FAIL asan:canary-to-file: no report file"; fails=$((fails + 1))
fi
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:log_path=$log_dir/e2e-report
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$log_dir/e2e-report
for t in "${e2e_tests[@]}"; do run "asan:$t" "build-asan/bin/$t"; done
if ls "$log_dir"/e2e-report.* >/dev/null 2>&1; then
  echo "FAIL asan:e2e-processes: reports in $log_dir/e2e-report.*:"
  head -30 "$log_dir"/e2e-report.* | sed 's/^/     /'; fails=$((fails + 1))
else
  echo "ok   asan:e2e-processes: no report from the tests or the servers they started"
fi
unset ASAN_OPTIONS UBSAN_OPTIONS

# --- TSan ------------------------------------------------------------------------------------
echo "== TSan (build-tsan)"
absl_lib=$src/build-tsan/absl/lib
if [ ! -f "$absl_lib/libabsl_synchronization.so.20220623" ]; then
  "$src/tests/sanitize/build_tsan_abseil.sh" "$src/build-tsan/absl" >"$log_dir/tsan-abseil.log" 2>&1 \
    || { tail -30 "$log_dir/tsan-abseil.log"; exit 1; }
fi
cmake --preset tsan -DATTATTR_WERROR=OFF >"$log_dir/tsan-configure.log" 2>&1 \
  || { cat "$log_dir/tsan-configure.log"; exit 1; }
cmake --build build-tsan -j 2 --target sanitizer_canary "${tsan_tests[@]}" \
  >"$log_dir/tsan-build.log" 2>&1 \
  || { tail -40 "$log_dir/tsan-build.log"; exit 1; }
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$src/tests/sanitize/tsan.supp"
catches "tsan:canary" "WARNING: ThreadSanitizer: data race" build-tsan/bin/sanitizer_canary race
for t in "${tsan_tests[@]}"; do
  run "tsan:$t" env LD_LIBRARY_PATH="$absl_lib" "build-tsan/bin/$t"
done

echo "$fails failure(s); logs in $log_dir"
[ "$fails" -eq 0 ]
