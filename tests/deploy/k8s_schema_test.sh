#!/usr/bin/env bash
# deploy/k8s: the kustomize base and the cpu, gpu, secure, postgresql and postgresql-in-cluster
# overlays build (kustomize or kubectl kustomize), and every manifest validates offline and
# strictly against the Kubernetes 1.27 and 1.37 schemas (kubernetes-validate); the NetworkPolicies
# against the pods and ports of the build; the PostgreSQL overlays share one job store.
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
for dir in base overlays/cpu overlays/gpu overlays/secure overlays/postgresql overlays/postgresql-in-cluster; do
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
check "secure overlay: TLS, mutual TLS, tokens, HTTPS probes, Secrets as directories" "$PY" - "$tmp/secure.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
pod = dep["spec"]["template"]["spec"]; c = pod["containers"][0]
errors = []
for flag in ("--tls-cert=/etc/attattr-tls/tls.crt", "--tls-key=/etc/attattr-tls/tls.key",
             "--tls-client-ca=/etc/attattr-tls/ca.crt", "--auth-tokens=/etc/attattr-auth/tokens"):
    if flag not in c["args"]: errors.append("missing " + flag)
for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
    path = "/readyz" if probe == "readinessProbe" else "/healthz"
    if c[probe].get("httpGet") != {"path": path, "port": "metrics", "scheme": "HTTPS"} or "grpc" in c[probe]:
        errors.append("%s is not HTTPS GET %s: %s" % (probe, path, c[probe]))
vols = {v["name"]: v for v in pod["volumes"]}
for m in c["volumeMounts"]:
    if "secret" in vols[m["name"]] and ("subPath" in m or not m.get("readOnly")):
        errors.append("Secret volume %s must be mounted read-only as a directory: %s" % (m["name"], m))
if {vols[n]["secret"]["secretName"] for n in ("tls", "auth-tokens")} != {"attattr-tls", "attattr-tokens"}:
    errors.append("Secrets attattr-tls and attattr-tokens are not the ones mounted")
print("\n".join(errors)); sys.exit(1 if errors else 0)
PY
# kustomize's labels (includeSelectors) reach every matchLabels of a NetworkPolicy: the client
# selector must not end up demanding attattr's own labels of the clients.
check "NetworkPolicy: the gRPC clients are selected by attattr-client alone" "$PY" - "$tmp/cpu.yaml" <<'PY'
import sys, yaml
np = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "NetworkPolicy")
peers = [p for r in np["spec"]["ingress"] if r["ports"][0]["port"] == "grpc" for p in r["from"]]
want = [{"podSelector": {"matchExpressions": [{"key": "attattr-client", "operator": "In", "values": ["true"]}]}}]
print(peers); sys.exit(0 if peers == want else 1)
PY
check "postgresql overlays: replicas share a PostgreSQL store, no SQLite volume, no password in args" \
  "$PY" - "$tmp/postgresql.yaml" "$tmp/postgresql-in-cluster.yaml" <<'PY'
import sys, yaml
errors = []
for path in sys.argv[1:]:
    name = path.rsplit("/", 1)[1]
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]; c = pod["containers"][0]
    env = {e["name"]: e for e in c.get("env") or []}
    stores = [a for a in c["args"] if a.startswith("--store=")]
    if dep["spec"]["replicas"] != 3 or dep["spec"]["strategy"]["type"] != "RollingUpdate":
        errors.append("%s: 3 replicas, RollingUpdate" % name)
    if any(v["name"] == "store" for v in pod["volumes"]) or any(m["name"] == "store" for m in c["volumeMounts"]):
        errors.append("%s: the SQLite store volume is still there" % name)
    if "--store-connections=8" not in c["args"] or "--device=cpu" not in c["args"]:
        errors.append("%s: --store-connections=8, --device=cpu: %s" % (name, c["args"]))
    if name == "postgresql.yaml":
        if stores or env.get("ATTATTR_STORE", {}).get("valueFrom") != {"secretKeyRef": {"name": "attattr-store", "key": "url"}}:
            errors.append("postgresql: the URI only from the Secret attattr-store (ATTATTR_STORE): %s %s" % (stores, env))
    else:
        sts = next(d for d in docs if d["kind"] == "StatefulSet")
        labels = sts["spec"]["template"]["metadata"]["labels"]
        if stores != ["--store=postgresql://attattr@attattr-postgresql:5432/attattr?sslmode=disable"] or "ATTATTR_STORE" in env:
            errors.append("in-cluster: --store at the StatefulSet's Service: %s %s" % (stores, env))
        vols = {v["name"]: v for v in pod["volumes"]}
        pg_env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
        if "--store-password-file=/etc/attattr-store/password" not in c["args"] or \
                vols["store-password"]["secret"]["secretName"] != \
                pg_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]:
            errors.append("in-cluster: the server's password file and the database's password share a Secret")
        for d in docs:
            sel = (d.get("spec") or {}).get("selector")
            sel = (sel or {}).get("matchLabels", sel) if d["kind"] != "StatefulSet" else None
            if d["kind"] in ("Service", "PodDisruptionBudget") and d["metadata"]["name"] == "attattr" and \
                    all(labels.get(k) == v for k, v in sel.items()):
                errors.append("in-cluster: %s attattr selects the database pod" % d["kind"])
print("\n".join(errors)); sys.exit(1 if errors else 0)
PY
sed -e 's/^  replicas: 1$/  replicas: "one"/' "$tmp/cpu.yaml" >"$tmp/bad-type.yaml"
refuse "the validator catches a wrong type" 'replicas' "${validate[@]}" "$tmp/bad-type.yaml"
finish
