#!/usr/bin/env bash
# deploy/k8s: the kustomize base and the cpu and gpu overlays build (kustomize or kubectl
# kustomize), and every manifest validates offline and strictly against the Kubernetes 1.27 and
# 1.37 schemas (kubernetes-validate).
# usage: k8s_schema_test.sh SOURCE_DIR TOOLS_DIR VENV_DIR     (exit 77: a tool is missing)
set -uo pipefail
src=$1 tools=$2 venv=$3
. "$(dirname "$0")/k8s_tools.sh"
need_kustomize
need_venv
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
validate=("$PY" "$(dirname "$0")/k8s_validate.py" --versions 1.27.0,1.37.0)

files=()
for dir in base overlays/cpu overlays/gpu; do
  out=$tmp/$(basename "$dir").yaml
  check "kustomize build deploy/k8s/$dir" "${KUSTOMIZE[@]}" "$src/deploy/k8s/$dir"
  "${KUSTOMIZE[@]}" "$src/deploy/k8s/$dir" >"$out" 2>/dev/null && files+=("$out")
done
check "schemas of the kustomized manifests" "${validate[@]}" "${files[@]}"
cat "$tmp/out"
check "gpu overlay: --device=cuda, one nvidia.com/gpu, GPU nodes" \
  grep -q -e '- --device=cuda' "$tmp/gpu.yaml"
check "gpu overlay: nvidia.com/gpu limit" grep -qE '^ +nvidia.com/gpu: 1$' "$tmp/gpu.yaml"
check "gpu overlay: toleration" grep -q 'key: nvidia.com/gpu' "$tmp/gpu.yaml"
check "cpu overlay: --device=cpu" grep -q -e '- --device=cpu' "$tmp/cpu.yaml"
sed -e 's/^  replicas: 1$/  replicas: "one"/' "$tmp/cpu.yaml" >"$tmp/bad-type.yaml"
refuse "the validator catches a wrong type" 'replicas' "${validate[@]}" "$tmp/bad-type.yaml"
finish
