#!/usr/bin/env bash
# The main job, end to end: starts attattr-server on the models in models/ (the default
# all-MiniLM-L6-v2 that scripts/setup.sh fetched) on a free loopback port, asks it through the
# `attattr` client why two sentences are similar, prints the answer, and stops the server (SIGTERM).
# Usage: scripts/demo.sh [TEXT [REFERENCE_TEXT]]   (run scripts/setup.sh first)
set -euo pipefail
cd "$(dirname "$0")/.."
text=${1:-"A man is playing a guitar."}
reference=${2:-"Someone is playing an instrument."}

out=$(mktemp)
build/bin/attattr-server --models models --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --log-level warn >"$out" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 300); do
  port=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$out")
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || { echo "attattr-server exited before serving" >&2; exit 1; }
  sleep 0.1
done
[ -n "${port:-}" ] || { echo "attattr-server did not start within 30 s" >&2; exit 1; }
echo "attattr-server serving models/ on 127.0.0.1:$port"
build/bin/attattr explain --server "127.0.0.1:$port" --model all-MiniLM-L6-v2 \
  --text "$text" --target "similarity:$reference" --format text
