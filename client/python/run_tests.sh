#!/usr/bin/env bash
# Runs the Python example client's end-to-end test (test_attattr_client.py) the way CTest does
# (test python_client_test): makes sure client/python/.venv and the generated stubs exist
# (setup_venv.sh; about 20 s the first time, instant afterwards), then runs the unittest suite
# with the venv's interpreter. Extra arguments go to unittest (e.g. -k health).
#
# Exit codes: 0 passed; 77 skipped — the venv cannot be made here (e.g. no network for pip) or
# every test skipped (no ../shared folder or no server binary), the reason printed; 1 failed.
# Where ATTATTR_REQUIRE_TEST_DEPS=1 (.ci/run sets it) a missing dependency fails instead
# (test_attattr_client.py RequiredDependenciesTest, and the venv set-up below).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

"$here/setup_venv.sh"
rc=$?
if [ "$rc" -eq 77 ]; then
  echo "run_tests: SKIPPED — cannot set up the Python venv (reason above)" >&2
  [ "${ATTATTR_REQUIRE_TEST_DEPS:-}" = 1 ] && exit 1
  exit 77
elif [ "$rc" -ne 0 ]; then
  echo "run_tests: setup_venv.sh failed (exit $rc)" >&2
  exit "$rc"
fi

cd "$here" || exit 1
exec "$here/.venv/bin/python" - "$@" <<'PY'
import sys, unittest
argv = ["run_tests", "-v", *sys.argv[1:], "test_attattr_client"]
program = unittest.main(module=None, argv=argv, exit=False)
result = program.result
if not result.wasSuccessful():
    sys.exit(1)
if result.testsRun and len(result.skipped) == result.testsRun:
    print("run_tests: SKIPPED — " + result.skipped[0][1], file=sys.stderr)
    sys.exit(77)
PY
