#!/usr/bin/env bash
# Every manifest helm/attattr renders (default values, values-gpu.yaml, ci/*.yaml) validated
# offline and strictly against the Kubernetes schemas of the oldest supported (1.27) and the
# newest shipped (1.37) version (kubernetes-validate); the ServiceMonitor CRD structurally.
# usage: helm_schema_test.sh SOURCE_DIR TOOLS_DIR VENV_DIR     (exit 77: a tool is missing)
set -uo pipefail
src=$1 tools=$2 venv=$3
. "$(dirname "$0")/k8s_tools.sh"
need_helm
need_venv
chart=$src/helm/attattr
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
validate=("$PY" "$(dirname "$0")/k8s_validate.py" --versions 1.27.0,1.37.0)

files=()
for values in "" values-gpu.yaml ci/full-values.yaml ci/persistence-values.yaml; do
  f=(); [ -n "$values" ] && f=(-f "$chart/$values")
  out=$tmp/$(basename "${values:-default}" .yaml).yaml
  check "helm template ${values:-(default values)}" "$HELM" template attattr "$chart" --namespace ml "${f[@]}"
  "$HELM" template attattr "$chart" --namespace ml "${f[@]}" >"$out" 2>/dev/null && files+=("$out")
done
check "schemas of the rendered manifests" "${validate[@]}" "${files[@]}"
cat "$tmp/out"

# The validator is not vacuous: a field the schema lacks and a wrong type are caught.
sed -e 's/^  replicas: 1$/  replicas: "one"/' "$tmp/default.yaml" >"$tmp/bad-type.yaml"
sed -e 's/^      enableServiceLinks: false$/      enableServiceLinks: false\n      gpuCount: 1/' \
  "$tmp/default.yaml" >"$tmp/bad-field.yaml"
refuse "a wrong type is caught" 'replicas.*(not of type|is not)' "${validate[@]}" "$tmp/bad-type.yaml"
refuse "an unknown field is caught" 'gpuCount' "${validate[@]}" "$tmp/bad-field.yaml"
finish
