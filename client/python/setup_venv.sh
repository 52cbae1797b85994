#!/usr/bin/env bash
# Creates client/python/.venv (git-ignored) with the pinned packages of requirements.txt and
# generates the Python gRPC stubs from proto/attattr/v1/*.proto into client/python/gen/
# (git-ignored). Idempotent: each step is skipped when already up to date (the venv is keyed on
# requirements.txt's hash, the stubs on the protos' and requirements' hash).
#
# Environment: PYTHON (interpreter that creates the venv; default python3).
# Exit codes: 0 ready; 77 this machine cannot provide the venv (no venv module, or pip cannot
# install from PyPI, e.g. no network) — the reason is printed on stderr; other = a real error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$here/.venv"
gen="$here/gen"
python=${PYTHON:-python3}

say() { printf 'setup_venv: %s\n' "$*" >&2; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# One setup at a time (parallel ctest runs, two shells).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$here/.setup.lock"
  flock 9
fi

# 1. The virtual environment -------------------------------------------------------------------
if ! command -v "$python" >/dev/null 2>&1; then
  say "no '$python' interpreter found (Debian: apt-get install python3)"
  exit 77
fi
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  if ! "$python" -m venv "$venv" >/dev/null 2>"$here/.venv-error.log"; then
    say "'$python -m venv' failed (Debian: apt-get install python3-venv):"
    cat "$here/.venv-error.log" >&2
    rm -rf "$venv" "$here/.venv-error.log"
    exit 77
  fi
  rm -f "$here/.venv-error.log"
fi

req_hash=$(hash_of "$here/requirements.txt")
req_stamp="$venv/.requirements.sha256"
if [ "$(cat "$req_stamp" 2>/dev/null)" != "$req_hash" ]; then
  say "installing $(grep -v '^\s*#' "$here/requirements.txt" | sed '/^\s*$/d' | tr '\n' ' ')"
  log=$(mktemp)
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 20 \
       --retries 2 -r "$here/requirements.txt" >"$log" 2>&1; then
    say "pip could not install requirements.txt from PyPI (no network or no index?):"
    tail -n 5 "$log" >&2
    rm -f "$log"
    exit 77
  fi
  rm -f "$log"
  echo "$req_hash" >"$req_stamp"
fi

# 2. The generated stubs -----------------------------------------------------------------------
protos=("$root"/proto/attattr/v1/*.proto)
gen_hash=$(hash_of "$here/requirements.txt" "${protos[@]}")
gen_stamp="$gen/.protos.sha256"
if [ "$(cat "$gen_stamp" 2>/dev/null)" != "$gen_hash" ]; then
  say "generating stubs into $gen"
  tmp=$(mktemp -d "$here/.gen.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$root" && "$venv/bin/python" -m grpc_tools.protoc -I proto --python_out="$tmp" \
     --pyi_out="$tmp" --grpc_python_out="$tmp" proto/attattr/v1/*.proto)
  echo "$gen_hash" >"$tmp/.protos.sha256"
  rm -rf "$gen"
  mv "$tmp" "$gen"
  trap - EXIT
fi
say "ready: $venv/bin/python, stubs in $gen"
