#!/usr/bin/env bash
# helm lint and helm template of helm/attattr for the default values, values-gpu.yaml and the
# chart's ci/*.yaml (every optional feature; TLS, mutual TLS, tokens, cert-manager, NetworkPolicy,
# a service mesh; the PostgreSQL job store from a URL, from a Secret, and in the cluster); what the
# renders must contain; and values that must be refused at install time (values.schema.json and
# the chart's own checks), each by both `helm template` and `helm lint`.
# usage: helm_chart_test.sh SOURCE_DIR TOOLS_DIR VENV_DIR     (exit 77: a tool is missing)
set -uo pipefail
src=$1 tools=$2 venv=$3
. "$(dirname "$0")/k8s_tools.sh"
need_helm
need_venv
chart=$src/helm/attattr
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for values in "" values-gpu.yaml ci/full-values.yaml ci/persistence-values.yaml ci/secure-values.yaml \
  ci/certmanager-values.yaml ci/mesh-values.yaml ci/postgresql-values.yaml; do
  f=(); [ -n "$values" ] && f=(-f "$chart/$values")
  label=${values:-default values}
  check "helm lint --strict ($label)" "$HELM" lint --strict "$chart" "${f[@]}"
  check "helm template ($label)" "$HELM" template attattr "$chart" --namespace ml "${f[@]}"
  "$HELM" template attattr "$chart" --namespace ml "${f[@]}" >"$tmp/$(basename "${values:-default}").out" 2>/dev/null
done

# What the renders must say (the Kubernetes schema check is helm_schema_test).
check "rendered content" "$PY" - "$tmp" <<'PY'
import base64, sys, yaml
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

def arg(c, flag):
    """The value of --flag=VALUE in the container's args (None when absent)."""
    found = [a.split("=", 1)[1] for a in c["args"] if a.startswith(flag + "=")]
    return found[0] if found else None
def ingress_from(docs, port):
    rules = [r for r in one(docs, "NetworkPolicy")["spec"]["ingress"] if any(p["port"] == port for p in r["ports"])]
    return [peer for r in rules for peer in r["from"]]

def env_of(c):
    return {e["name"]: e for e in c.get("env") or []}
def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())

names = ("default", "values-gpu.yaml", "full-values.yaml", "persistence-values.yaml", "secure-values.yaml",
         "certmanager-values.yaml", "mesh-values.yaml", "postgresql-values.yaml")
for name in names:
    rendered = load(name)
    # The server's objects; the in-cluster PostgreSQL's (component: database) are checked below.
    database = {k: d for k, d in rendered.items()
                if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "database"}
    docs = {k: d for k, d in rendered.items() if k not in database}
    expect(bool(database) == (name == "postgresql-values.yaml"), f"{name}: in-cluster PostgreSQL objects: {sorted(database)}")
    dep = one(docs, "Deployment"); pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    psc = pod["securityContext"]
    expect(psc.get("runAsNonRoot") and psc.get("seccompProfile") == {"type": "RuntimeDefault"},
           f"{name}: pod runAsNonRoot, RuntimeDefault seccomp")
    for ct in pod["containers"] + pod.get("initContainers", []):
        sc = ct["securityContext"]
        expect(sc.get("runAsNonRoot"), f"{name}: {ct['name']}: runAsNonRoot")
        expect(sc.get("readOnlyRootFilesystem") is True, f"{name}: {ct['name']}: readOnlyRootFilesystem")
        expect(sc.get("allowPrivilegeEscalation") is False, f"{name}: {ct['name']}: allowPrivilegeEscalation")
        expect(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: {ct['name']}: drop ALL")
    tls = name in ("secure-values.yaml", "certmanager-values.yaml")
    if tls:
        # The kubelet's gRPC probes cannot do (mutual) TLS: HTTPS GET /healthz on the metrics port.
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = "/readyz" if probe == "readinessProbe" else "/healthz"
            expect(c[probe].get("httpGet") == {"path": path, "port": "metrics", "scheme": "HTTPS"}
                   and "grpc" not in c[probe], f"{name}: {probe} is HTTPS {path}: {c[probe]}")
        expect(arg(c, "--tls-cert") == "/etc/attattr-tls/tls.crt" and arg(c, "--tls-key") == "/etc/attattr-tls/tls.key",
               f"{name}: --tls-cert/--tls-key")
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        expect(mounts["tls"]["mountPath"] == "/etc/attattr-tls" and "subPath" not in mounts["tls"],
               f"{name}: the TLS Secret is mounted as a directory (rotation reaches the pod)")
    else:
        expect(c["livenessProbe"]["grpc"]["service"] == "", f"{name}: liveness grpc.health.v1 ''")
        expect(c["readinessProbe"]["grpc"]["service"] == "attattr.v1.Attattr", f"{name}: readiness service")
        expect(not any(a.startswith("--tls-") for a in c["args"]), f"{name}: no --tls-* without tls.enabled")
    svc = one(docs, "Service")
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    expect(set(ports) == ({"grpc", "metrics", "reports"} if name == "secure-values.yaml" else {"grpc", "metrics"}),
           f"{name}: service ports {sorted(ports)}")
    expect(ports["grpc"]["appProtocol"] == ("tls" if tls else "grpc"), f"{name}: grpc appProtocol")
    expect("--config=/etc/attattr/attattr.ini" in c["args"], f"{name}: --config")
    one(docs, "ConfigMap"); one(docs, "PodDisruptionBudget")
    ini = one(docs, "ConfigMap")["data"]["attattr.ini"]
    expect(("NetworkPolicy", "attattr") in docs or name == "mesh-values.yaml", f"{name}: a NetworkPolicy by default")
    vols = {v["name"]: v for v in pod["volumes"]}
    expect("emptyDir" in vols["tmp"], f"{name}: /tmp emptyDir")
    # The job store: SQLite on the store volume, or PostgreSQL shared by the replicas (no volume,
    # never a password in the arguments, RollingUpdate).
    postgres = name in ("full-values.yaml", "secure-values.yaml", "postgresql-values.yaml")
    store = arg(c, "--store")
    expect(("store" not in vols) == postgres and
           any(m["name"] == "store" for m in c["volumeMounts"]) == (not postgres),
           f"{name}: the SQLite store volume only without PostgreSQL: {sorted(vols)}")
    if postgres:
        expect(dep["spec"]["strategy"]["type"] == "RollingUpdate", f"{name}: RollingUpdate with PostgreSQL")
        expect(store is None or (store.startswith("postgresql://") and ":" not in store.split("@")[0][len("postgresql://"):]
                                 and "password=" not in store), f"{name}: no password in --store: {store}")
    else:
        expect(store == "/var/lib/attattr/attattr-jobs.db", f"{name}: --store is the SQLite file: {store}")
        expect(not any(a.startswith(("--store-connections", "--store-password-file")) for a in c["args"]) and
               "ATTATTR_STORE" not in env_of(c), f"{name}: no PostgreSQL flags with SQLite")
        expect(dep["spec"].get("replicas", 1) <= 1 and not any(k == "HorizontalPodAutoscaler" for k, _ in docs),
               f"{name}: one replica with SQLite")
    gpu = name == "values-gpu.yaml"
    expect(("--device=cuda" in c["args"]) == gpu, f"{name}: --device")
    expect(("nvidia.com/gpu" in c.get("resources", {}).get("limits", {})) == gpu, f"{name}: nvidia.com/gpu")
    if gpu:
        expect(c["resources"]["limits"]["nvidia.com/gpu"] == 1, "gpu: one GPU")
        expect(pod.get("nodeSelector") and pod.get("tolerations"), "gpu: nodeSelector and tolerations")
    if name == "default":
        expect("emptyDir" in vols["store"], "default: store on an emptyDir")
        for line in ("lease-seconds=30", "heartbeat-seconds=10", "grace-seconds=30", "default-precision=fp32"):
            expect(line + "\n" in ini, f"default: {line} in the INI")
        expect(vols["models"]["persistentVolumeClaim"]["claimName"] == "attattr-models", "default: models PVC")
        expect(pod["terminationGracePeriodSeconds"] == 45, "default: grace 30 + 15")
        for kind in ("ServiceMonitor", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "Secret", "Certificate"):
            expect(not any(k == kind for k, _ in docs), f"default: no {kind}")
        for line in ("reflection=true", "max-queued-jobs-per-principal=64", "explain-rate-per-principal=0",
                     "max-user-priority=0"):
            expect(line + "\n" in ini, f"default: {line} in the INI")
        expect(not any(a.startswith(("--auth-tokens", "--admin-principals", "--export-principals",
                                     "--dataset-principals", "--report-listen")) for a in c["args"]),
               f"default: no auth, principal or report flags: {c['args']}")
        np = one(docs, "NetworkPolicy")["spec"]
        expect(np["policyTypes"] == ["Ingress"], "default: egress not restricted")
        expect(np["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"],
               "default: the NetworkPolicy selects the Deployment's pods")
        expect(ingress_from(docs, "grpc") == [{"podSelector": {"matchLabels": {"attattr-client": "true"}}}],
               f"default: gRPC from pods labelled attattr-client=true: {ingress_from(docs, 'grpc')}")
        expect(ingress_from(docs, "metrics") ==
               [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
               f"default: metrics from the monitoring namespace: {ingress_from(docs, 'metrics')}")
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
        expect("batch-max-delay-us=1000000\n" in ini, f"full: big integers stay integers: {ini}")
        egress = one(docs, "NetworkPolicy")["spec"]["egress"]
        expect([p["port"] for r in egress for p in r["ports"]] == [53, 53, 443, 5432],
               f"full: restricted egress allows DNS, HTTPS for the download and PostgreSQL: {egress}")
        # A managed PostgreSQL: the URL (no password) as --store, the password as a file.
        expect(arg(c, "--store") == "postgresql://attattr@db.example.internal:5432/attattr?sslmode=require"
               "&options=-csearch_path%3Dattattr", f"full: --store is the PostgreSQL URL: {arg(c, '--store')}")
        expect(arg(c, "--store-connections") == "4", "full: --store-connections")
        expect(arg(c, "--store-password-file") == "/etc/attattr-store/db-password", "full: --store-password-file")
        expect(vols["store-password"]["secret"] == {"secretName": "attattr-db", "defaultMode": 0o440},
               f"full: the password Secret: {vols['store-password']}")
        mount = [m for m in c["volumeMounts"] if m["name"] == "store-password"]
        expect(mount == [{"name": "store-password", "mountPath": "/etc/attattr-store", "readOnly": True}],
               f"full: the password Secret mounted read-only as a directory: {mount}")
        expect("ATTATTR_STORE" not in env_of(c), "full: no ATTATTR_STORE with a URL")
        for line in ("lease-seconds=20", "heartbeat-seconds=5"):
            expect(line + "\n" in ini, f"full: {line} in the INI")
    if name == "persistence-values.yaml":
        expect(dep["spec"]["strategy"]["type"] == "Recreate", "persistence: Recreate")
        expect(vols["store"]["persistentVolumeClaim"]["claimName"] == "attattr-store", "persistence: store PVC")
        expect(one(docs, "PersistentVolumeClaim")["spec"]["storageClassName"] == "standard", "persistence: PVC")
        expect(vols["models"]["hostPath"]["path"] == "/mnt/models", "persistence: hostPath models")
    if name == "secure-values.yaml":
        # The whole PostgreSQL URI from a Secret, through the environment: no --store at all.
        expect(arg(c, "--store") is None, f"secure: no --store argument with store.postgresql.existingSecret: {c['args']}")
        expect(env_of(c).get("ATTATTR_STORE") == {"name": "ATTATTR_STORE", "valueFrom": {
            "secretKeyRef": {"name": "attattr-store", "key": "uri"}}},
            f"secure: ATTATTR_STORE from the Secret's key: {env_of(c).get('ATTATTR_STORE')}")
        expect(arg(c, "--store-connections") == "8" and arg(c, "--store-password-file") is None,
               "secure: --store-connections, no password file")
        expect(dep["spec"]["replicas"] == 2, "secure: two replicas")
        expect(arg(c, "--tls-client-ca") == "/etc/attattr-client-ca/ca.crt", "secure: --tls-client-ca from clientCASecret")
        expect(vols["client-ca"]["secret"]["secretName"] == "attattr-client-ca", "secure: client CA Secret")
        expect(vols["tls"]["secret"]["secretName"] == "attattr-tls", "secure: TLS Secret")
        expect(arg(c, "--tls-reload-seconds") == "30", "secure: --tls-reload-seconds")
        expect(arg(c, "--auth-tokens") == "/etc/attattr-auth/tokens", "secure: --auth-tokens")
        expect(arg(c, "--admin-principals") == "alice", "secure: --admin-principals")
        expect(arg(c, "--export-principals") == "alice,ci-pipeline", "secure: --export-principals")
        expect(arg(c, "--dataset-principals") == "alice,ci-pipeline,spiffe://cluster.local/ns/ml/sa/notebooks",
               "secure: --dataset-principals")
        expect(arg(c, "--report-listen") == "0.0.0.0:9465", "secure: --report-listen")
        expect({"name": "reports", "containerPort": 9465, "protocol": "TCP"} in c["ports"], "secure: reports port")
        for m in c["volumeMounts"]:
            if "secret" in vols[m["name"]]:
                expect(m.get("readOnly") and "subPath" not in m, f"secure: Secret {m['name']} read-only, no subPath")
                expect(vols[m["name"]]["secret"]["defaultMode"] == 0o440, f"secure: Secret {m['name']} mode 0440")
        secret = one(docs, "Secret")
        expect(vols["auth-tokens"]["secret"]["secretName"] == secret["metadata"]["name"] == "attattr-tokens",
               "secure: the chart's token Secret is the one mounted")
        lines = [l for l in base64.b64decode(secret["data"]["tokens"]).decode().splitlines() if not l.startswith("#")]
        expect(lines == ["alice\t2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90",
                         "ci-pipeline\t81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd9ec58ce9",
                         "alice\t4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce"],
               f"secure: token file lines principal<TAB>sha256: {lines}")
        for line in ("reflection=false", "explain-rate-per-principal=2.5", "explain-burst-per-principal=10",
                     "max-queued-jobs-per-principal=16", "max-running-jobs-per-principal=2", "max-user-priority=5"):
            expect(line + "\n" in ini, f"secure: {line} in the INI")
        sm = one(docs, "ServiceMonitor")["spec"]["endpoints"][0]
        expect(sm["scheme"] == "https" and sm["tlsConfig"] == {"ca": {"secret": {"name": "attattr-tls", "key": "ca.crt"}},
                                                               "serverName": "attattr.ml.svc"},
               f"secure: ServiceMonitor over https, verified: {sm}")
        expect(ports["metrics"]["appProtocol"] == "https" and ports["reports"]["appProtocol"] == "https",
               "secure: https appProtocol")
        expect(ingress_from(docs, "grpc") == [{"namespaceSelector": {"matchLabels": {"team": "ml"}},
                                               "podSelector": {"matchLabels": {"attattr-client": "true"}}}],
               f"secure: gRPC clients in namespaces labelled team=ml (one peer: both selectors): {ingress_from(docs, 'grpc')}")
        expect(ingress_from(docs, "metrics") == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                                                  "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
               f"secure: metrics from Prometheus' pods only: {ingress_from(docs, 'metrics')}")
        expect(ingress_from(docs, "reports") == [{"namespaceSelector": {"matchLabels": {"team": "ml"}},
                                                  "podSelector": {"matchLabels": {"app": "report-viewer"}}}],
               f"secure: reports from the report readers: {ingress_from(docs, 'reports')}")
    if name == "certmanager-values.yaml":
        cert = one(docs, "Certificate")["spec"]
        expect(cert["secretName"] == "attattr-tls" == vols["tls"]["secret"]["secretName"],
               "certmanager: the Certificate writes the Secret the pod mounts")
        expect(cert["dnsNames"] == ["attattr", "attattr.ml", "attattr.ml.svc", "attattr.ml.svc.cluster.local"],
               f"certmanager: dnsNames default to the Service's names: {cert['dnsNames']}")
        expect(cert["issuerRef"] == {"name": "internal-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"},
               "certmanager: issuerRef")
        expect(cert["duration"] == "720h" and cert["renewBefore"] == "240h", "certmanager: duration, renewBefore")
        expect(cert["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}, "certmanager: key")
        expect("server auth" in cert["usages"] and "key encipherment" not in cert["usages"], "certmanager: ECDSA usages")
        expect(arg(c, "--tls-client-ca") is None, "certmanager: no mutual TLS")
        expect(arg(c, "--auth-tokens") == "/etc/attattr-auth/tokens.tsv", "certmanager: --auth-tokens with tokensKey")
        expect(vols["auth-tokens"]["secret"]["secretName"] == "attattr-tokens", "certmanager: the existing token Secret")
        expect(not any(k == "Secret" for k, _ in docs), "certmanager: no chart-made Secret")
        np = one(docs, "NetworkPolicy")["spec"]
        expect(np["policyTypes"] == ["Ingress", "Egress"] and [p["port"] for r in np["egress"] for p in r["ports"]] == [53, 53],
               f"certmanager: egress restricted to DNS: {np}")
        sm = one(docs, "ServiceMonitor")["spec"]["endpoints"][0]
        expect(sm["scheme"] == "https" and sm["tlsConfig"] == {"insecureSkipVerify": True},
               "certmanager: serviceMonitor.tlsConfig replaces the default")
    if name == "mesh-values.yaml":
        expect(arg(c, "--auth-tokens") == "/etc/attattr-auth/tokens", "mesh: tokens without TLS")
        expect(pod.get("terminationGracePeriodSeconds") == 45, "mesh: grace")
        expect(dep["spec"]["template"]["metadata"]["labels"].get("sidecar.istio.io/inject") == "true",
               "mesh: podLabels reach the pod")
    if name == "postgresql-values.yaml":
        # The in-cluster PostgreSQL: a StatefulSet of the official image under restricted Pod
        # Security, its Service, a generated password, and the server pointed at it.
        sts = one(database, "StatefulSet"); spod = sts["spec"]["template"]["spec"]
        pg = spod["containers"][0]
        expect(sts["metadata"]["name"] == "attattr-postgresql" and sts["spec"]["replicas"] == 1, "postgresql: one instance")
        expect(pg["image"] == "postgres:15", f"postgresql: the official image: {pg['image']}")
        expect(spod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999, "fsGroup": 999,
                                           "fsGroupChangePolicy": "OnRootMismatch",
                                           "seccompProfile": {"type": "RuntimeDefault"}},
               f"postgresql: pod securityContext: {spod['securityContext']}")
        sc = pg["securityContext"]
        expect(sc.get("allowPrivilegeEscalation") is False and sc.get("capabilities", {}).get("drop") == ["ALL"]
               and sc.get("readOnlyRootFilesystem") is True and sc.get("runAsNonRoot"),
               f"postgresql: container securityContext: {sc}")
        expect({m["mountPath"] for m in pg["volumeMounts"]} ==
               {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"}, "postgresql: writable paths")
        claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
        expect(claim["storageClassName"] == "standard" and claim["resources"]["requests"]["storage"] == "2Gi",
               f"postgresql: the data claim: {claim}")
        expect("max_connections=100" in pg["args"], f"postgresql: max_connections: {pg['args']}")
        pg_env = env_of(pg)
        pod_labels = sts["spec"]["template"]["metadata"]["labels"]
        svc_db = one(database, "Service")
        expect(svc_db["metadata"]["name"] == sts["spec"]["serviceName"] == "attattr-postgresql" and
               selects(svc_db["spec"]["selector"], pod_labels) and svc_db["spec"]["ports"][0]["port"] == 5432,
               "postgresql: its Service selects its pod on 5432")
        expect(not selects(svc["spec"]["selector"], pod_labels) and
               not selects(one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels) and
               not selects(sts["spec"]["selector"]["matchLabels"], dep["spec"]["template"]["metadata"]["labels"]),
               "postgresql: the server's Service and PDB do not select the database, nor its selector the server")
        secret = one(database, "Secret")
        password = base64.b64decode(secret["data"]["password"]).decode()
        expect(len(password) == 32 and password.isalnum(), "postgresql: a generated 32-character password")
        expect(secret["metadata"]["annotations"].get("helm.sh/resource-policy") == "keep",
               "postgresql: the password Secret outlives an uninstall (as the data volume does)")
        expect(pg_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": "password"}
               and pg_env["POSTGRES_USER"]["value"] == "attattr" and pg_env["POSTGRES_DB"]["value"] == "attattr",
               f"postgresql: the database is initialised from the Secret: {pg_env}")
        expect(arg(c, "--store") == "postgresql://attattr@attattr-postgresql:5432/attattr?sslmode=disable",
               f"postgresql: the server points at the in-cluster database: {arg(c, '--store')}")
        expect(arg(c, "--store-password-file") == "/etc/attattr-store/password" and
               vols["store-password"]["secret"]["secretName"] == secret["metadata"]["name"],
               "postgresql: the server reads the password from the same Secret")
        expect(arg(c, "--store-connections") == "4" and dep["spec"]["replicas"] == 3, "postgresql: 3 replicas, 4 connections")
        egress = one(docs, "NetworkPolicy")["spec"]["egress"]
        to_db = [r for r in egress if any(selects(p.get("podSelector", {}).get("matchLabels", {}), pod_labels)
                                          and "namespaceSelector" not in p for p in r.get("to", []))]
        expect(len(to_db) == 1 and to_db[0]["ports"] == [{"port": 5432, "protocol": "TCP"}],
               f"postgresql: restricted server egress reaches the database on 5432: {egress}")
        np_db = one(database, "NetworkPolicy")["spec"]
        expect(selects(np_db["podSelector"]["matchLabels"], pod_labels) and
               np_db["ingress"] == [{"ports": [{"port": "postgresql", "protocol": "TCP"}],
                                     "from": [{"podSelector": {"matchLabels": dep["spec"]["selector"]["matchLabels"]}}]}]
               and np_db.get("egress") == [], f"postgresql: only the server pods reach the database: {np_db}")
for e in errors: print("  " + e)
sys.exit(1 if errors else 0)
PY

# Store variants set on the command line: the SQLite file's volume disappears with PostgreSQL,
# and an existingSecret's URI reaches the server only through the environment.
"$HELM" template attattr "$chart" --namespace ml --set replicaCount=2 \
  --set store.postgresql.url='postgresql://attattr@db:5432/attattr?sslmode=require' >"$tmp/pg-url.out"
"$HELM" template attattr "$chart" --namespace ml --set autoscaling.enabled=true \
  --set store.postgresql.existingSecret=db-uri >"$tmp/pg-secret.out"
check "store.postgresql.url and existingSecret renders" "$PY" - "$tmp" <<'PY'
import sys, yaml
tmp = sys.argv[1]
errors = []
for name in ("pg-url", "pg-secret"):
    docs = [d for d in yaml.safe_load_all(open(f"{tmp}/{name}.out")) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment"); pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    if any(v["name"] == "store" for v in pod["volumes"]) or any(m["name"] == "store" for m in c["volumeMounts"]):
        errors.append(f"{name}: the SQLite store volume is still there")
    if any(d["kind"] in ("PersistentVolumeClaim", "StatefulSet") for d in docs):
        errors.append(f"{name}: a PVC or StatefulSet without persistence or postgresql.enabled")
    stores = [a for a in c["args"] if a.startswith("--store=")]
    env = {e["name"]: e for e in c.get("env") or []}
    if name == "pg-url":
        if stores != ["--store=postgresql://attattr@db:5432/attattr?sslmode=require"] or "ATTATTR_STORE" in env:
            errors.append(f"pg-url: --store {stores}, env {env}")
    else:
        if stores or env.get("ATTATTR_STORE", {}).get("valueFrom") != {"secretKeyRef": {"name": "db-uri", "key": "url"}}:
            errors.append(f"pg-secret: --store {stores}, ATTATTR_STORE {env.get('ATTATTR_STORE')}")
        if "replicas" in dep["spec"] or not any(d["kind"] == "HorizontalPodAutoscaler" for d in docs):
            errors.append("pg-secret: the autoscaler owns the replicas")
    if "--store-connections=8" not in c["args"]:
        errors.append(f"{name}: --store-connections=8")
print("\n".join(errors)); sys.exit(1 if errors else 0)
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
check "NOTES.txt: the NetworkPolicy's client label" grep -q 'attattr-client' "$tmp/notes"
notes() { # notes VALUES_FILE: NOTES.txt rendered with those values
  "$HELM" template attattr "$tmp/chart" --namespace ml -f "$chart/$1" --show-only templates/notes-copy.yaml \
    | "$PY" -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)["data"]["notes"])'
}
notes ci/secure-values.yaml >"$tmp/notes-secure"
check "NOTES.txt with mutual TLS and tokens: the client's TLS and token flags" grep -qF \
  'attattr models --server 127.0.0.1:50051 --tls-ca ca.crt --tls-server-name attattr.ml.svc --tls-cert client.crt --tls-key client.key --token-file token' \
  "$tmp/notes-secure"
check "NOTES.txt with TLS: metrics over https" grep -qF 'https://attattr.ml.svc:9464/metrics' "$tmp/notes-secure"
notes ci/mesh-values.yaml >"$tmp/notes-mesh"
check "NOTES.txt warns of tokens without TLS" grep -q 'tokens cross the network in plaintext' "$tmp/notes-mesh"
check "NOTES.txt does not warn with TLS" sh -c '! grep -q plaintext "$1"' sh "$tmp/notes-secure"
notes ci/postgresql-values.yaml >"$tmp/notes-postgresql"
check "NOTES.txt with PostgreSQL: the shared job store" grep -q 'shared by every replica' "$tmp/notes-postgresql"
check "NOTES.txt with the in-cluster PostgreSQL: not for production" grep -q 'is for trying this out' "$tmp/notes-postgresql"
check "NOTES.txt with PostgreSQL: no emptyDir note" sh -c '! grep -q emptyDir "$1"' sh "$tmp/notes-postgresql"

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
bad "an unknown default precision" "defaultPrecision" --set server.defaultPrecision=fp64
bad "an unknown weight storage" "weights" --set server.weights=int8
bad_template "bf16 weights with the fp32 default precision" "defaultPrecision=bf16" \
  --set server.weights=bf16
bad "workers -1" "workers" --set server.workers=-1
bad "workers above the server's 64" "workers" --set server.workers=65
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

# The job store: several replicas only with PostgreSQL, and the refusal says why (the schema's
# message, and the template's own check behind it).
why="own job queue, so its jobs are invisible to the other replicas and lost when it is scaled down"
bad "several replicas without PostgreSQL" "$why" --set replicaCount=2
bad "an autoscaler without PostgreSQL" "$why" --set autoscaling.enabled=true
refuse "helm template --skip-schema-validation refuses several replicas without PostgreSQL" "$why" \
  "$HELM" template attattr "$chart" --skip-schema-validation --set replicaCount=2
refuse "helm template --skip-schema-validation refuses an autoscaler without PostgreSQL" "$why" \
  "$HELM" template attattr "$chart" --skip-schema-validation --set autoscaling.enabled=true
bad "a password in store.postgresql.url" "store/postgresql/url" \
  --set store.postgresql.url='postgresql://attattr:secret@db/attattr'
refuse "helm template --skip-schema-validation refuses a password in the URL" "carries a password" \
  "$HELM" template attattr "$chart" --skip-schema-validation --set store.postgresql.url='postgresql://attattr:secret@db/attattr'
bad_template "a password= parameter in store.postgresql.url" "carries a password" \
  --set store.postgresql.url='postgresql://attattr@db/attattr?password=secret'
bad "a store URL that is not PostgreSQL" "store/postgresql/url" --set store.postgresql.url=mysql://db/attattr
bad "both store.postgresql.url and existingSecret" "existingSecret" \
  --set store.postgresql.url=postgresql://attattr@db/attattr --set store.postgresql.existingSecret=db-uri
bad "the in-cluster PostgreSQL and a URL" "store/postgresql/url" --set postgresql.enabled=true \
  --set store.postgresql.url=postgresql://attattr@db/attattr
bad "store persistence with PostgreSQL" "store/postgresql/url" --set store.persistence.enabled=true \
  --set store.postgresql.url=postgresql://attattr@db/attattr
refuse "helm template --skip-schema-validation refuses store persistence with PostgreSQL" "SQLite store's volume" \
  "$HELM" template attattr "$chart" --skip-schema-validation --set store.persistence.enabled=true \
  --set store.postgresql.url=postgresql://attattr@db/attattr
bad "store.postgresql.connections above 256" "connections" --set store.postgresql.connections=300
bad_template "a store password Secret without a PostgreSQL store" "no PostgreSQL store is set" \
  --set store.postgresql.passwordSecret=db-password
bad_template "a GPU index the pod does not get" "cuda:1 but the pod gets gpu.count=1" \
  --set gpu.enabled=true --set server.device=cuda:1
bad "an admin principal longer than the server's 256 characters" "adminPrincipals" \
  --set "auth.adminPrincipals[0]=$(printf 'p%.0s' $(seq 257))"

# The cores the server sizes itself by: by default the container's CPU request (the downward API:
# without a CPU limit the pod would see every core of its node); server.cpus in the INI instead.
check "ATTATTR_CPUS from the container's CPU request by default" sh -c \
  '"$1" template attattr "$2" --show-only templates/deployment.yaml | grep -A5 "name: ATTATTR_CPUS" | grep -q "resource: requests.cpu"' \
  sh "$HELM" "$chart"
check "server.cpus=4: cpus=4 in the INI and no ATTATTR_CPUS" sh -c \
  '"$1" template attattr "$2" --set server.cpus=4 > "$3/cpus.yaml" && grep -q "^    cpus=4$" "$3/cpus.yaml" && ! grep -q ATTATTR_CPUS "$3/cpus.yaml"' \
  sh "$HELM" "$chart" "$tmp"
check "no cpus= line in the INI by default" sh -c \
  '! "$1" template attattr "$2" --show-only templates/configmap.yaml | grep -q "cpus="' \
  sh "$HELM" "$chart"

# podDisruptionBudget.maxUnavailable 0 (no voluntary evictions) stays 0.
check "PDB maxUnavailable 0 renders as 0" sh -c \
  '"$1" template attattr "$2" --set podDisruptionBudget.maxUnavailable=0 --show-only templates/pdb.yaml | grep -qx "  maxUnavailable: 0"' \
  sh "$HELM" "$chart"
check "PDB maxUnavailable unset renders as 1" sh -c \
  '"$1" template attattr "$2" --show-only templates/pdb.yaml | grep -qx "  maxUnavailable: 1"' \
  sh "$HELM" "$chart"
bad "a misspelt store.postgresql key" "existingSecrets" --set store.postgresql.existingSecrets=db-uri
bad_template "a lease shorter than two heartbeats" "leaseSeconds.*2 x server.heartbeatSeconds" \
  --set server.leaseSeconds=15 --set server.heartbeatSeconds=10
bad "a heartbeat of 0" "heartbeatSeconds" --set server.heartbeatSeconds=0
bad_template "more connections than the in-cluster PostgreSQL allows" "postgresql.maxConnections" \
  --set postgresql.enabled=true --set replicaCount=20
bad "a PostgreSQL user name that needs quoting" "username" --set postgresql.enabled=true \
  --set postgresql.auth.username=Attattr-Server
bad_template "minReplicas above maxReplicas" "minReplicas" --set autoscaling.enabled=true \
  --set autoscaling.minReplicas=5 --set autoscaling.maxReplicas=2 --set store.postgresql.existingSecret=db-uri

# TLS, tokens, principals, quotas, NetworkPolicy.
bad "TLS without a Secret or cert-manager" "secretName" --set tls.enabled=true
bad "mutual TLS without TLS" "tls/enabled" --set tls.clientAuth=true
# Regression (security review): mutual TLS fell back to the server certificate's issuer as the
# client CA, so whoever could get a certificate from it could name themselves an administrator.
bad_template "mutual TLS without a client CA of its own" "tls.trustServerIssuerForClients=true" \
  --set tls.enabled=true --set tls.secretName=attattr-tls --set tls.clientAuth=true
bad_template "a client CA and the server's issuer both" "one or the other" --set tls.enabled=true \
  --set tls.secretName=attattr-tls --set tls.clientAuth=true --set tls.clientCASecret=ca \
  --set tls.trustServerIssuerForClients=true
check "mutual TLS trusting the server's issuer when asked: --tls-client-ca from the TLS Secret" sh -c \
  '"$1" template attattr "$2" --set tls.enabled=true --set tls.secretName=attattr-tls --set tls.clientAuth=true --set tls.trustServerIssuerForClients=true --show-only templates/deployment.yaml | grep -q -- "--tls-client-ca=/etc/attattr-tls/ca.crt"' \
  sh "$HELM" "$chart"
bad "cert-manager without TLS" "tls/enabled" --set tls.certManager.enabled=true \
  --set tls.certManager.issuerRef.name=ca
bad "cert-manager without an issuer" "issuerRef" --set tls.enabled=true --set tls.certManager.enabled=true
bad "an unknown private key algorithm" "algorithm" --set tls.enabled=true --set tls.certManager.enabled=true \
  --set tls.certManager.issuerRef.name=ca --set tls.certManager.privateKey.algorithm=DSA
bad "a malformed certificate duration" "duration" --set tls.enabled=true --set tls.certManager.enabled=true \
  --set tls.certManager.issuerRef.name=ca --set tls.certManager.duration=90d
bad "a TLS Secret name that is not a DNS name" "secretName" --set tls.enabled=true --set tls.secretName=My_Secret
bad "tokens both inline and from a Secret" "tokens" --set auth.tokensSecret=attattr-tokens \
  --set 'auth.tokens[0].principal=alice' --set "auth.tokens[0].sha256=$(printf '%064d' 0)"
bad "a token without its sha256" "sha256" --set 'auth.tokens[0].principal=alice'
bad "a token's sha256 in capitals" "sha256" --set 'auth.tokens[0].principal=alice' \
  --set "auth.tokens[0].sha256=$(printf '%064d' 0 | tr 0 A)"
bad "a principal with a space" "principal" --set 'auth.tokens[0].principal=alice smith' \
  --set "auth.tokens[0].sha256=$(printf '%064d' 0)"
bad_template "the same token twice" "listed twice" --set 'auth.tokens[0].principal=alice' \
  --set "auth.tokens[0].sha256=$(printf '%064d' 0)" --set 'auth.tokens[1].principal=bob' \
  --set "auth.tokens[1].sha256=$(printf '%064d' 0)"
bad "a principal longer than 128 bytes" "principal" --set "auth.tokens[0].principal=$(printf '%0129d' 0)" \
  --set "auth.tokens[0].sha256=$(printf '%064d' 0)"
bad "a principal with a comma" "exportPrincipals" --set 'auth.exportPrincipals[0]=a\,b'
bad "everyone as admin" "adminPrincipals" --set 'auth.adminPrincipals[0]=*'
printf 'auth:\n  datasetPrincipals: []\n' >"$tmp/no-dataset-principals.yaml"
bad "no dataset principals at all" "datasetPrincipals" -f "$tmp/no-dataset-principals.yaml"
bad "a misspelt auth key" "tokenSecret" --set auth.tokenSecret=x
bad "a negative Explain rate" "explainRatePerPrincipal" --set server.explainRatePerPrincipal=-1
bad "a negative maxQueuedJobsPerPrincipal" "maxQueuedJobsPerPrincipal" --set server.maxQueuedJobsPerPrincipal=-1
bad "reflection as a string" "reflection" --set-string server.reflection=yes
bad "a reports port out of range" "reports" --set reports.port=0
bad_template "the reports port on the metrics port" "reports.port" --set reports.port=9464
bad_template "a client CA without mutual TLS" "clientCASecret" --set tls.enabled=true --set tls.secretName=t \
  --set tls.clientCASecret=ca
bad "a NetworkPolicy without a client selector" "podSelector" --set networkPolicy.clients.podSelector=null
bad "a misspelt NetworkPolicy key" "egres" --set networkPolicy.egres.restrict=true
finish
