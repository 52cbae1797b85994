#!/usr/bin/env bash
# Every manifest helm/attattr renders (default values, values-gpu.yaml, ci/*.yaml: also the
# in-cluster PostgreSQL's StatefulSet, Service, Secret and NetworkPolicy) validated
# offline and strictly against the Kubernetes schemas of the oldest supported (1.27) and the
# newest shipped (1.37) version (kubernetes-validate); the ServiceMonitor and cert-manager
# Certificate CRDs structurally, the NetworkPolicy against the pods and ports of the render.
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
for values in "" values-gpu.yaml ci/full-values.yaml ci/persistence-values.yaml ci/secure-values.yaml \
  ci/certmanager-values.yaml ci/mesh-values.yaml ci/postgresql-values.yaml; do
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
# ... and the structural checks: a Certificate whose Secret no pod mounts, renewal after expiry, a
# NetworkPolicy naming a port the pods do not have, a ServiceMonitor with a TLS config over http.
sed -e 's/^  secretName: attattr-tls$/  secretName: attattr-other/' "$tmp/certmanager-values.yaml" >"$tmp/bad-cert.yaml"
refuse "a Certificate whose Secret no pod mounts is caught" 'mounts its Secret attattr-other' \
  "${validate[@]}" "$tmp/bad-cert.yaml"
sed -e 's/^  renewBefore: 240h$/  renewBefore: 800h/' "$tmp/certmanager-values.yaml" >"$tmp/bad-renew.yaml"
refuse "renewBefore beyond the duration is caught" 'renewBefore' "${validate[@]}" "$tmp/bad-renew.yaml"
sed -e 's/^        - port: metrics$/        - port: metric/' "$tmp/default.yaml" >"$tmp/bad-netpol.yaml"
refuse "a NetworkPolicy port the pods lack is caught" "port 'metric'" "${validate[@]}" "$tmp/bad-netpol.yaml"
# ... also for the in-cluster PostgreSQL's policy, whose pods are a StatefulSet's.
sed -e 's/^        - port: postgresql$/        - port: postgres/' "$tmp/postgresql-values.yaml" >"$tmp/bad-netpol-db.yaml"
refuse "a PostgreSQL NetworkPolicy port its pods lack is caught" "port 'postgres'" "${validate[@]}" "$tmp/bad-netpol-db.yaml"
sed -e 's/^      scheme: https$/      scheme: http/' "$tmp/secure-values.yaml" >"$tmp/bad-sm.yaml"
refuse "a ServiceMonitor tlsConfig over http is caught" 'tlsConfig' "${validate[@]}" "$tmp/bad-sm.yaml"
finish
