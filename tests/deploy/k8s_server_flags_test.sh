#!/usr/bin/env bash
# Nothing in deploy/k8s contradicts the server's flags: builds the cpu and gpu overlays and starts
# the REAL attattr-server with their arguments and ConfigMap INI (tests/deploy/k8s_server_flags.py);
# the gpu overlay (--device=cuda) is checked to parse; the secure overlay (TLS, mutual TLS, tokens)
# starts with certificates made by openssl and a token file, and the client connects with them;
# the postgresql overlays' store flags are checked and the server started against a real
# PostgreSQL the test starts (tests/deploy/pg_for_tests.py), where it must create its schema.
# usage: k8s_server_flags_test.sh SOURCE_DIR TOOLS_DIR VENV_DIR SERVER_BINARY [SHARED_DIR [CLIENT]]
#        exit 77: a tool or the shared model is missing
set -uo pipefail
src=$1 tools=$2 venv=$3 server=$4 shared=${5:-$1/../shared} client=${6:-}
. "$(dirname "$0")/k8s_tools.sh"
need_kustomize
need_venv
model=$shared/models/sst2-bert-l4-h256
[ -f "$model/config.json" ] || skip "$model not found (../shared beside the checkout)"
[ -x "$server" ] || { echo "FAIL: $server not built"; exit 1; }
command -v openssl >/dev/null || skip "openssl not found (it makes the secure overlay's certificates)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=("$PY" "$(dirname "$0")/k8s_server_flags.py" --server "$server" --models-src "$model")
# With the client, `attattr models --server` (the command NOTES.txt suggests) must list the model.
[ -n "$client" ] && flags+=(--client "$client")

for overlay in cpu gpu secure postgresql postgresql-in-cluster; do
  out=$tmp/$overlay.yaml
  "${KUSTOMIZE[@]}" "$src/deploy/k8s/overlays/$overlay" >"$out" || { echo "FAIL: kustomize"; exit 1; }
  mode=--start; [ "$overlay" = gpu ] && mode=--parse-only
  check "server runs with overlays/$overlay's flags ($mode)" "${flags[@]}" "$mode" "$out"
  tail -n 1 "$tmp/out"
done
finish
