#!/usr/bin/env bash
# Nothing in the chart contradicts the server's flags: renders helm/attattr and starts the REAL
# attattr-server with the rendered arguments and ConfigMap INI (paths and ports moved to
# temporary ones; tests/deploy/k8s_server_flags.py), then stops it with SIGTERM (exit 0).
# values-gpu.yaml (--device=cuda) is checked to parse: without CUDA the server exits 1 at the
# model load, after the flags and the INI were accepted. The TLS, mutual TLS and token renders
# (ci/secure-values.yaml, ci/certmanager-values.yaml, ci/mesh-values.yaml) start with certificates
# made by openssl and a token file; the client then connects with them (k8s_server_flags.py).
# The PostgreSQL renders (ci/full-values.yaml: a URL and a password file; ci/secure-values.yaml: the
# URI from a Secret; ci/postgresql-values.yaml: in the cluster) have their store flags checked and
# start against a real PostgreSQL the test starts (tests/deploy/pg_for_tests.py; with TLS, so
# sslmode=require connects), where the server must create its schema.
# usage: helm_server_flags_test.sh SOURCE_DIR TOOLS_DIR VENV_DIR SERVER_BINARY [SHARED_DIR [CLIENT]]
#        exit 77: a tool or the shared model is missing
set -uo pipefail
src=$1 tools=$2 venv=$3 server=$4 shared=${5:-$1/../shared} client=${6:-}
. "$(dirname "$0")/k8s_tools.sh"
need_helm
need_venv
model=$shared/models/sst2-bert-l4-h256
[ -f "$model/config.json" ] || skip "$model not found (../shared beside the checkout)"
[ -x "$server" ] || { echo "FAIL: $server not built"; exit 1; }
command -v openssl >/dev/null || skip "openssl not found (it makes the TLS renders' certificates)"
chart=$src/helm/attattr
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=("$PY" "$(dirname "$0")/k8s_server_flags.py" --server "$server" --models-src "$model")
# With the client, `attattr models --server` (the command NOTES.txt suggests) must list the model.
[ -n "$client" ] && flags+=(--client "$client")

for values in "" ci/full-values.yaml ci/persistence-values.yaml ci/secure-values.yaml \
  ci/certmanager-values.yaml ci/mesh-values.yaml ci/postgresql-values.yaml values-gpu.yaml; do
  f=(); [ -n "$values" ] && f=(-f "$chart/$values")
  out=$tmp/$(basename "${values:-default}" .yaml).yaml
  "$HELM" template attattr "$chart" "${f[@]}" >"$out" || { echo "FAIL: helm template"; exit 1; }
  mode=--start; [ "$values" = values-gpu.yaml ] && mode=--parse-only
  check "server runs with the chart's flags (${values:-default values}, $mode)" "${flags[@]}" "$mode" "$out"
  tail -n 1 "$tmp/out"
done
finish
