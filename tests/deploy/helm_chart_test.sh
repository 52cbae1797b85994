#!/usr/bin/env bash
# helm lint and helm template of helm/attattr for the default values, values-gpu.yaml and the
# chart's ci/*.yaml; what the renders must contain; and values that must be refused at install
# time (values.schema.json and the chart's own checks), each by both `helm template` and `helm lint`.
# usage: helm_chart_test.sh SOURCE_DIR TOOLS_DIR VENV_DIR     (exit 77: a tool is missing)
set -uo pipefail
src=$1 tools=$2 venv=$3
. "$(dirname "$0")/k8s_tools.sh"
need_helm
need_venv
chart=$src/helm/attattr
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for values in "" values-gpu.yaml ci/full-values.yaml ci/persistence-values.yaml; do
  f=(); [ -n "$values" ] && f=(-f "$chart/$values")
  label=${values:-default values}
  check "helm lint --strict ($label)" "$HELM" lint --strict "$chart" "${f[@]}"
  check "helm template ($label)" "$HELM" template attattr "$chart" --namespace ml "${f[@]}"
  "$HELM" template attattr "$chart" --namespace ml "${f[@]}" >"$tmp/$(basename "${values:-default}").out" 2>/dev/null
done

# What the renders must say (the Kubernetes schema check is helm_schema_test).
check "rendered content" "$PY" - "$tmp" <<'PY'
import sys, yaml
tmp = sys.argv[1]
def load(name):
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(f"{tmp}/{name}.out")) if d}
def one(docs, kind):
    found = [d for (k, _), d in docs.items() if k == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]
errors = []
def expect(cond, msg):
    if not cond: errors.append(msg)

for name in ("default", "values-gpu.yaml", "full-values.yaml", "persistence-values.yaml"):
    docs = load(name)
    dep = one(docs, "Deployment"); pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    sc, psc = c["securityContext"], pod["securityContext"]
    expect(psc.get("runAsNonRoot") and sc.get("runAsNonRoot"), f"{name}: runAsNonRoot")
    expect(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem")
    expect(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation")
    expect(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: drop ALL")
    expect(c["livenessProbe"]["grpc"]["service"] == "", f"{name}: liveness grpc.health.v1 ''")
    expect(c["readinessProbe"]["grpc"]["service"] == "attattr.v1.Attattr", f"{name}: readiness service")
    svc = one(docs, "Service")
    expect({p["name"] for p in svc["spec"]["ports"]} == {"grpc", "metrics"}, f"{name}: service ports")
    expect("--config=/etc/attattr/attattr.ini" in c["args"], f"{name}: --config")
    one(docs, "ConfigMap"); one(docs, "PodDisruptionBudget")
    vols = {v["name"]: v for v in pod["volumes"]}
    expect("emptyDir" in vols["tmp"], f"{name}: /tmp emptyDir")
    gpu = name == "values-gpu.yaml"
    expect(("--device=cuda" in c["args"]) == gpu, f"{name}: --device")
    expect(("nvidia.com/gpu" in c.get("resources", {}).get("limits", {})) == gpu, f"{name}: nvidia.com/gpu")
    if gpu:
        expect(c["resources"]["limits"]["nvidia.com/gpu"] == 1, "gpu: one GPU")
        expect(pod.get("nodeSelector") and pod.get("tolerations"), "gpu: nodeSelector and tolerations")
    if name == "default":
        expect("emptyDir" in vols["store"], "default: store on an emptyDir")
        expect(vols["models"]["persistentVolumeClaim"]["claimName"] == "attattr-models", "default: models PVC")
        expect(pod["terminationGracePeriodSeconds"] == 45, "default: grace 30 + 15")
        for kind in ("ServiceMonitor", "HorizontalPodAutoscaler", "PersistentVolumeClaim"):
            expect(not any(k == kind for k, _ in docs), f"default: no {kind}")
    if name == "full-values.yaml":
        sm = one(docs, "ServiceMonitor")
        expect(sm["spec"]["endpoints"][0]["port"] == "metrics", "full: ServiceMonitor port")
        hpa = one(docs, "HorizontalPodAutoscaler")
        m = hpa["spec"]["metrics"][0]
        expect(m["type"] == "Pods" and m["pods"]["metric"]["name"] == "attattr_queue_depth", "full: HPA metric")
        expect("replicas" not in dep["spec"], "full: replicas left to the HPA")
        init = pod["initContainers"][0]
        expect(init["name"] == "fetch-models" and "emptyDir" in vols["models"], "full: model download")
        script = init["args"][0]
        env = {e["name"]: e["value"] for e in init["env"]}
        expect("sha256sum -c -" in script and script.index("sha256sum") < script.index("tar -xzf"),
               "full: each archive checked before it is unpacked")
        expect(env.get("MODEL_SHA256_1") == "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
               "full: the second model's sha256 reaches the init container")
        expect("--data-root=/data" in c["args"], "full: --data-root")
        expect("--export-root=/exports" in c["args"], "full: --export-root")
        expect(vols["exports"]["persistentVolumeClaim"]["claimName"] == "attattr-exports", "full: exports PVC")
        expect(not any(m.get("readOnly") for m in c["volumeMounts"] if m["name"] == "exports"), "full: exports writable")
        expect(pod["terminationGracePeriodSeconds"] == 90, "full: terminationGracePeriodSeconds")
        expect(one(docs, "PodDisruptionBudget")["spec"].keys() >= {"minAvailable"} and
               "maxUnavailable" not in one(docs, "PodDisruptionBudget")["spec"], "full: PDB minAvailable")
        ini = one(docs, "ConfigMap")["data"]["attattr.ini"]
        expect("batch-max-delay-us=1000000\n" in ini, f"full: big integers stay integers: {ini}")
    if name == "persistence-values.yaml":
        expect(dep["spec"]["strategy"]["type"] == "Recreate", "persistence: Recreate")
        expect(one(docs, "PersistentVolumeClaim")["spec"]["storageClassName"] == "standard", "persistence: PVC")
        expect(vols["models"]["hostPath"]["path"] == "/mnt/models", "persistence: hostPath models")
for e in errors: print("  " + e)
sys.exit(1 if errors else 0)
PY

# NOTES.txt (helm template does not print it: render it through a copy of the chart).
cp -r "$chart" "$tmp/chart"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: %s\n' \
  '{{ include "attattr/templates/NOTES.txt" . | quote }}' >"$tmp/chart/templates/notes-copy.yaml"
"$HELM" template attattr "$tmp/chart" --namespace ml --show-only templates/notes-copy.yaml \
  | "$PY" -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)["data"]["notes"])' >"$tmp/notes"
check "NOTES.txt: attattr models --server" grep -q 'attattr models --server 127.0.0.1:50051' "$tmp/notes"
check "NOTES.txt: attattr explain --server --model" \
  grep -q 'attattr explain --server 127.0.0.1:50051 --model ' "$tmp/notes"
check "NOTES.txt: port-forward of the named ports" grep -q 'port-forward svc/attattr 50051:grpc 9464:metrics' "$tmp/notes"

# Values that must be refused, with the reason named: values.schema.json refuses them in
# `helm lint` and `helm template`/`install`.
bad() { # bad NAME PATTERN HELM_ARGS...
  local name=$1 pattern=$2; shift 2
  refuse "helm template refuses $name" "$pattern" "$HELM" template attattr "$chart" "$@"
  refuse "helm lint refuses $name" "$pattern" "$HELM" lint "$chart" "$@"
}
# Relations between values JSON schema cannot state fail in the templates (`fail`): `helm
# template`/`install` refuse them; `helm lint` only reports a template `fail` as [INFO].
bad_template() { # bad_template NAME PATTERN HELM_ARGS...
  local name=$1 pattern=$2; shift 2
  refuse "helm template refuses $name" "$pattern" "$HELM" template attattr "$chart" "$@"
}
cat >"$tmp/negative-replicas.yaml" <<'Y'
replicaCount: -1
Y
bad "replicaCount: -1 (values file)" "replicaCount" -f "$tmp/negative-replicas.yaml"
bad "an unknown device" "device" --set server.device=tpu
bad "an unknown log format" "logFormat" --set server.logFormat=xml
bad "maxSteps above the server's 1024" "maxSteps" --set server.maxSteps=5000
bad "workers 0" "workers" --set server.workers=0
bad "a misspelt server option" "workrs" --set server.workrs=2
bad "a string for an integer" "graceSeconds" --set-string server.graceSeconds=thirty
bad "gpu.count 0" "count" --set gpu.enabled=true --set gpu.count=0
bad "an unknown model source" "source" --set models.source=s3
bad "download without items" "items" --set models.source=download
bad "a download without its sha256" "sha256" --set models.source=download \
  --set 'models.download.items[0].name=m' --set 'models.download.items[0].url=https://h/m.tar.gz'
bad "a download with a malformed sha256" "sha256" --set models.source=download \
  --set 'models.download.items[0].name=m' --set 'models.download.items[0].url=https://h/m.tar.gz' \
  --set 'models.download.items[0].sha256=abc'

# The init container's script, run here against a local archive (curl reads file:// URLs; /models
# becomes a temporary directory): a matching checksum unpacks the model, a wrong one stops before
# unpacking and leaves nothing behind.
"$HELM" template attattr "$chart" -f "$chart/ci/full-values.yaml" --show-only templates/deployment.yaml \
  | "$PY" -c 'import sys, yaml; d = yaml.safe_load(sys.stdin); print(d["spec"]["template"]["spec"]["initContainers"][0]["args"][0])' \
  | sed "s#/models#$tmp/models#g" >"$tmp/fetch.sh"
mkdir -p "$tmp/archive" "$tmp/models"
printf '{}' >"$tmp/archive/config.json"
tar -czf "$tmp/model.tar.gz" -C "$tmp/archive" config.json
good_sha=$(sha256sum "$tmp/model.tar.gz" | cut -d' ' -f1)
fetch() { # fetch SHA_OF_THE_SECOND_MODEL: runs the script with the first model already present
  mkdir -p "$tmp/models/sst2-bert" && printf '{}' >"$tmp/models/sst2-bert/config.json"
  MODEL_URL_0=unused MODEL_SHA256_0=unused MODEL_URL_1="file://$tmp/model.tar.gz" MODEL_SHA256_1=$1 \
    sh -ec "$(cat "$tmp/fetch.sh")"
}
check "the init script unpacks an archive whose SHA-256 matches" fetch "$good_sha"
check "  ... and the model is there" test -f "$tmp/models/minilm/config.json"
rm -rf "$tmp/models"
refuse "the init script refuses an archive whose SHA-256 differs" "minilm: the archive's SHA-256" \
  fetch "$(printf '%064d' 0)"
check "  ... leaving neither the model nor the archive" \
  test ! -e "$tmp/models/minilm" -a ! -e "$tmp/models/.minilm.tar.gz"

bad "a relative hostPath" "path" --set models.source=hostPath --set models.hostPath.path=models
bad "an out-of-range port" "grpcPort" --set service.grpcPort=70000
bad_template "the same port twice" "must differ" --set service.metricsPort=50051
bad "an unknown Service type" "type" --set service.type=Ingress
bad_template "a pod grace period shorter than the drain" "terminationGracePeriodSeconds" \
  --set terminationGracePeriodSeconds=20
bad "cuda without a GPU" "server/device" --set server.device=cuda
bad "a shared SQLite store" "replicaCount" --set store.persistence.enabled=true --set replicaCount=2
bad "a shared SQLite store under an autoscaler" "autoscaling" --set store.persistence.enabled=true \
  --set autoscaling.enabled=true
bad_template "minReplicas above maxReplicas" "minReplicas" --set autoscaling.enabled=true \
  --set autoscaling.minReplicas=5 --set autoscaling.maxReplicas=2
finish
