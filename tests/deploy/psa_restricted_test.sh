#!/usr/bin/env bash
# Pod Security Standard `restricted`: every pod spec that helm/attattr renders (default values,
# values-gpu.yaml, ci/*.yaml: the model download init container, TLS, mutual TLS, tokens,
# cert-manager, NetworkPolicy, a mesh, the in-cluster PostgreSQL's StatefulSet) and that
# deploy/k8s builds (base and overlays, the in-cluster PostgreSQL too) is allowed
# at the policy versions latest and v1.27 (the oldest supported Kubernetes), judged by the
# admission controller's own checks (k8s.io/pod-security-admission, tests/deploy/psa_check) as in
# a namespace labelled pod-security.kubernetes.io/enforce=restricted. The one exception is
# models.source=hostPath (ci/persistence-values.yaml): a hostPath volume is outside restricted
# (and baseline), and is refused naming it. The checker is not vacuous: a render with privilege
# escalation allowed, or an init container without its securityContext, is refused.
# usage: psa_restricted_test.sh SOURCE_DIR TOOLS_DIR VENV_DIR     (exit 77: a tool is missing)
set -uo pipefail
src=$1 tools=$2 venv=$3
. "$(dirname "$0")/k8s_tools.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
need_helm
need_kustomize
need_venv
need_psa_check
chart=$src/helm/attattr
psa=("$PSA_CHECK" -level restricted -versions latest,v1.27)

for values in "" values-gpu.yaml ci/full-values.yaml ci/secure-values.yaml ci/certmanager-values.yaml \
  ci/mesh-values.yaml ci/postgresql-values.yaml; do
  f=(); [ -n "$values" ] && f=(-f "$chart/$values")
  out=$tmp/helm-$(basename "${values:-default}" .yaml).yaml
  "$HELM" template attattr "$chart" --namespace ml "${f[@]}" >"$out" || { echo "FAIL: helm template $values"; exit 1; }
  check "restricted: helm/attattr (${values:-default values})" "${psa[@]}" "$out"
  grep -E '^(ok|FAIL)' "$tmp/out" | sed 's/^/     /'
done
for dir in base overlays/cpu overlays/gpu overlays/secure overlays/postgresql overlays/postgresql-in-cluster; do
  out=$tmp/k8s-$(basename "$dir").yaml
  "${KUSTOMIZE[@]}" "$src/deploy/k8s/$dir" >"$out" || { echo "FAIL: kustomize $dir"; exit 1; }
  check "restricted: deploy/k8s/$dir" "${psa[@]}" "$out"
  grep -E '^(ok|FAIL)' "$tmp/out" | sed 's/^/     /'
done

# hostPath models cannot be restricted; the refusal names the volume.
"$HELM" template attattr "$chart" -f "$chart/ci/persistence-values.yaml" >"$tmp/hostpath.yaml"
refuse "restricted refuses models.source=hostPath" 'volume "models".*hostPath' "${psa[@]}" "$tmp/hostpath.yaml"

# Not vacuous: what restricted forbids is caught, in the main and in the init container.
"$HELM" template attattr "$chart" --set securityContext.allowPrivilegeEscalation=true >"$tmp/escalation.yaml"
refuse "restricted refuses allowPrivilegeEscalation: true" 'allowPrivilegeEscalation' "${psa[@]}" "$tmp/escalation.yaml"
"$PY" - "$tmp/helm-full-values.yaml" >"$tmp/init.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "Deployment":
        del d["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]
yaml.safe_dump_all(docs, sys.stdout)
PY
refuse "restricted refuses an init container without its securityContext" 'fetch-models' \
  "${psa[@]}" "$tmp/init.yaml"
"$HELM" template attattr "$chart" --set podSecurityContext.seccompProfile=null \
  --set podSecurityContext.runAsNonRoot=null --set securityContext.runAsNonRoot=null >"$tmp/seccomp.yaml"
refuse "restricted refuses a pod without seccompProfile and runAsNonRoot" 'seccompProfile.*runAsNonRoot|runAsNonRoot.*seccompProfile' \
  "${psa[@]}" "$tmp/seccomp.yaml"
finish
