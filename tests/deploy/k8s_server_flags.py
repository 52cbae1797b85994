#!/usr/bin/env python3
"""Checks that a rendered deployment (Helm chart or kustomize overlay) does not contradict the
server's flags: takes the attattr-server container's command and arguments and the --config INI
from the ConfigMap it mounts, points the paths at temporary ones, and starts the REAL server
binary with them.

usage: k8s_server_flags.py --server BIN --models-src DIR [--client BIN] (--start | --parse-only)
                           MANIFESTS.yaml

--start:      the server must print "attattr-server listening on port N", then exit 0 on SIGTERM.
--parse-only: for --device cuda on a machine without CUDA: the flags and the INI must be accepted
              (a CLI11 parse or validation error exits 2); exit 1 naming cuda (the model could not
              be put on the device) counts as accepted, and so does a clean start where CUDA exists.

Job store: --store is an SQLite file on a writable volume, or a PostgreSQL URI — as an argument
without a password (the server refuses one there), or the whole URI in the environment variable
ATTATTR_STORE from a Secret (secretKeyRef), never both. With PostgreSQL, --store-password-file
must come from a Secret volume mounted as a directory under a key the Secret has, and
--store-connections must be 1-256; --store-password-file with SQLite is refused. With --start the
server then runs against a real PostgreSQL started here (pg_for_tests.py, TLS on, so
sslmode=require connects): the rendered URI's user, database and parameters with this server's
host and port, the password in a file where the chart mounts one (or in ATTATTR_STORE, as a Secret
would hold it); the server must create its schema there. Only where no PostgreSQL can be started
does it fall back to a temporary SQLite store.

TLS and authentication (--tls-cert/--tls-key/--tls-client-ca, --auth-tokens): the files must come
from Secret volumes mounted as directories (no subPath: the kubelet then updates them when the
Secret changes, and the server re-reads them), under the keys the Secret has; the probes must be
HTTPS GET /healthz on the metrics port (the kubelet's gRPC probes cannot do mutual TLS) and a
ServiceMonitor must scrape over https. --start then runs the server with a CA, a server
certificate (localhost, 127.0.0.1) and a client certificate made with the openssl CLI, and a token
file (the render's own lines, when the chart made the Secret, plus a token of this test), and
checks what the deployment relies on: /healthz answers the kubelet (HTTPS, no certificate
verified, no client certificate), /metrics answers Prometheus without credentials, job reports
need them; and with --client: `attattr models` lists the model over TLS with the client
certificate and/or the token (--token-file, and ATTATTR_TOKEN), is refused without the token
(UNAUTHENTICATED) or without the client certificate, cannot talk plaintext to the TLS port, and
`attattr health` needs no token.
Exit 0 on success, 1 on failure.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

import yaml

import pg_for_tests

CONTAINER = "attattr-server"


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def find_container(docs):
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    if len(deployments) != 1:
        fail("expected one Deployment, found %d" % len(deployments))
    pod = deployments[0]["spec"]["template"]["spec"]
    for c in pod["containers"]:
        if c["name"] == CONTAINER:
            return deployments[0], pod, c
    fail("no container named %s" % CONTAINER)


def split_arg(arg):
    if not arg.startswith("--") or "=" not in arg:
        fail("argument %r is not --option=value" % arg)
    key, _, value = arg[2:].partition("=")
    return key, value


def free_port():
    """A port free on 127.0.0.1 now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_pki(tmp):
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate whose first SAN
    is a URI (the principal under mutual TLS), with the openssl CLI. Returns their paths."""
    d = os.path.join(tmp, "pki")
    os.mkdir(d)
    p = {k: os.path.join(d, k) for k in ("ca.crt", "ca.key", "tls.crt", "tls.key", "client.crt", "client.key")}

    def run(*cmd):
        r = subprocess.run(["openssl"] + list(cmd), capture_output=True, text=True)
        if r.returncode != 0:
            fail("openssl %s: %s" % (" ".join(cmd), r.stderr))

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", p["ca.key"], "-out", p["ca.crt"], "-days", "2",
        "-subj", "/CN=attattr-flags-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, ext in (("tls", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                      ("client", "subjectAltName=URI:%s\nextendedKeyUsage=clientAuth\n" % CLIENT_PRINCIPAL)):
        ext_file = os.path.join(d, name + ".ext")
        with open(ext_file, "w") as f:
            f.write(ext + "keyUsage=critical,digitalSignature\n")
        csr = os.path.join(d, name + ".csr")
        run("req", *ec, "-keyout", p[name + ".key"], "-out", csr, "-subj", "/CN=attattr-flags-test-" + name)
        run("x509", "-req", "-in", csr, "-CA", p["ca.crt"], "-CAkey", p["ca.key"], "-CAcreateserial",
            "-out", p[name + ".crt"], "-days", "2", "-extfile", ext_file)
    for k in ("ca.key", "tls.key", "client.key"):
        os.chmod(p[k], 0o600)
    return p


# The principals this test authenticates as: by token, and by client certificate (its URI SAN).
TOKEN_PRINCIPAL = "flags-test"
CLIENT_PRINCIPAL = "spiffe://attattr.test/flags-test"


def http_get(port, path, tls=True, ca=None, cert=None, token=None):
    """GET http(s)://127.0.0.1:port/path; over TLS verifies the server against `ca` when given (else,
    like the kubelet, not at all). Returns (status, body)."""
    if tls:
        ctx = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()
        if cert:
            ctx.load_cert_chain(cert[0], cert[1])
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def client_flag_position(client, flag):
    """Where the client takes `flag`: after the subcommand (its own option) or before it (global)."""
    sub = subprocess.run([client, "models", "--help"], capture_output=True, text=True).stdout
    if flag in sub:
        return "after"
    top = subprocess.run([client, "--help"], capture_output=True, text=True).stdout
    if flag in top:
        return "before"
    fail("the client %s has no %s option" % (client, flag))


def run_client(client, command, port, flags, env=None):
    """`attattr COMMAND --server 127.0.0.1:PORT` with flags [(flag, value)], each placed where the
    client takes it. Returns the CompletedProcess."""
    before, after = [], []
    for flag, value in flags:
        (before if client_flag_position(client, flag) == "before" else after).extend([flag, value])
    cmd = [client] + before + [command, "--server", "127.0.0.1:%d" % port] + after
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **(env or {})))
    print("%s%s -> exit %d\n%s%s" % (" ".join(cmd), " (with %s)" % ", ".join(env) if env else "",
                                      r.returncode, r.stdout, r.stderr))
    return r


def is_postgres_uri(value):
    """What the server takes as a PostgreSQL --store (store_uri.h: IsPostgresUri)."""
    return value.startswith(("postgresql://", "postgres://"))


def uri_has_password(uri):
    """A password in the user info (postgresql://user:secret@host) or a password= parameter."""
    if not is_postgres_uri(uri):
        return False
    return bool(re.match(r"^postgres(ql)?://[^/?#@]*:[^/?#@]*@", uri) or re.search(r"[?&]password=", uri))


def parse_ini(text):
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith(";"):
            continue
        if "=" not in line:
            fail("INI line %r is not key=value" % line)
        k, _, v = line.partition("=")
        values[k.strip()] = v.strip()
    return values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--models-src", required=True)
    ap.add_argument("--client", help="attattr client: `attattr models --server` must list the model")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--start", action="store_true")
    mode.add_argument("--parse-only", action="store_true")
    ap.add_argument("manifests")
    args = ap.parse_args()

    with open(args.manifests) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    deployment, pod, c = find_container(docs)

    # The command runs the server.
    command = c.get("command") or []
    if not command or os.path.basename(command[0]) != "attattr-server":
        fail("container command %r does not run attattr-server" % command)
    argv = list(command[1:]) + list(c.get("args") or [])
    opts = {}
    for a in argv:
        k, v = split_arg(a)
        if k in opts:
            fail("option --%s given twice" % k)
        opts[k] = v
    # The job store: an argument, or ATTATTR_STORE from a Secret (the server reads every flag from
    # ATTATTR_<NAME>; a URI with a password belongs there, not in the arguments).
    env = {e["name"]: e for e in c.get("env") or []}
    store_env = env.get("ATTATTR_STORE")
    if store_env is not None:
        if "store" in opts:
            fail("both --store and ATTATTR_STORE: the argument would silently win over the Secret")
        ref = (store_env.get("valueFrom") or {}).get("secretKeyRef")
        if ref is None and uri_has_password(store_env.get("value", "")):
            fail("ATTATTR_STORE holds a password as a literal in the pod spec: take it from a Secret (secretKeyRef)")
        if ref is not None:
            rendered = [d for d in docs if d.get("kind") == "Secret" and d["metadata"]["name"] == ref["name"]]
            if rendered and ref["key"] not in (rendered[0].get("data") or {}) and \
                    ref["key"] not in (rendered[0].get("stringData") or {}):
                fail("ATTATTR_STORE: Secret %s has no key %s" % (ref["name"], ref["key"]))
            print("job store: ATTATTR_STORE from Secret %s key %s" % (ref["name"], ref["key"]))
    for required in ("config", "models", "listen", "metrics-listen", "device"):
        if required not in opts:
            fail("--%s is not passed" % required)
    if "store" not in opts and store_env is None:
        fail("--store is not passed (nor ATTATTR_STORE)")
    # From the Secret: a URI by the chart's contract (store.postgresql.existingSecret).
    postgres = store_env is not None and "store" not in opts and \
        (store_env.get("valueFrom") is not None or is_postgres_uri(store_env.get("value", "")))
    if "store" in opts:
        postgres = is_postgres_uri(opts["store"])
        if postgres and uri_has_password(opts["store"]):
            fail("--store carries a PostgreSQL password on the command line (the server refuses it)")
    if postgres and "store-connections" in opts and not 1 <= int(opts["store-connections"]) <= 256:
        fail("--store-connections=%s is not in 1..256" % opts["store-connections"])
    if not postgres and "store-password-file" in opts:
        fail("--store-password-file with an SQLite --store (the server refuses it)")

    # Mounts: the config file comes from a ConfigMap volume; store is on a writable volume.
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = c.get("volumeMounts", [])

    def mount_for(path):
        best = None
        for m in mounts:
            mp = m["mountPath"].rstrip("/")
            if path == mp or path.startswith(mp + "/"):
                if best is None or len(mp) > len(best["mountPath"].rstrip("/")):
                    best = m
        if best is None:
            fail("%s is on no volume mount (the root filesystem is read-only)" % path)
        return best

    cfg_mount = mount_for(opts["config"])
    cfg_volume = volumes[cfg_mount["name"]]
    if "configMap" not in cfg_volume:
        fail("--config %s is not on a ConfigMap volume" % opts["config"])
    cm_name = cfg_volume["configMap"]["name"]
    cms = [d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == cm_name]
    if len(cms) != 1:
        fail("ConfigMap %s (mounted at %s) is not in the render" % (cm_name, cfg_mount["mountPath"]))
    key = os.path.relpath(opts["config"], cfg_mount["mountPath"])
    if key not in cms[0].get("data", {}):
        fail("ConfigMap %s has no key %s" % (cm_name, key))
    ini_text = cms[0]["data"][key]
    ini = parse_ini(ini_text)

    if not postgres:
        store_mount = mount_for(opts["store"])
        if store_mount.get("readOnly"):
            fail("--store %s is on a read-only mount" % opts["store"])
    elif any(m["name"] == "store" for m in mounts):
        fail("a PostgreSQL store, but the SQLite store volume is still mounted")
    models_mount = mount_for(opts["models"])
    if not c.get("securityContext", {}).get("readOnlyRootFilesystem"):
        fail("readOnlyRootFilesystem is not set")

    # TLS and token files: Secret volumes, mounted whole (rotation), holding the named key.
    tls = "tls-cert" in opts
    if tls != ("tls-key" in opts):
        fail("--tls-cert and --tls-key come together")
    if "tls-client-ca" in opts and not tls:
        fail("--tls-client-ca without --tls-cert: mutual TLS needs TLS")
    auth = "auth-tokens" in opts or "tls-client-ca" in opts
    certificates = [d for d in docs if d.get("kind") == "Certificate"]
    rendered_tokens = None
    for flag in ("tls-cert", "tls-key", "tls-client-ca", "auth-tokens", "store-password-file"):
        if flag not in opts:
            continue
        m = mount_for(opts[flag])
        if m.get("subPath"):
            fail("--%s %s is on a subPath mount: the kubelet never updates those, so a renewed "
                 "Secret would not reach the server" % (flag, opts[flag]))
        if not m.get("readOnly"):
            fail("--%s %s is on a writable mount" % (flag, opts[flag]))
        volume = volumes[m["name"]]
        if "secret" not in volume:
            fail("--%s %s is not on a Secret volume (%s)" % (flag, opts[flag], volume))
        secret_name = volume["secret"]["secretName"]
        key = os.path.relpath(opts[flag], m["mountPath"])
        rendered = [d for d in docs if d.get("kind") == "Secret" and d["metadata"]["name"] == secret_name]
        if rendered:
            data = dict(rendered[0].get("data") or {})
            data.update({k: base64.b64encode(v.encode()).decode()
                         for k, v in (rendered[0].get("stringData") or {}).items()})
            if key not in data:
                fail("--%s: Secret %s has no key %s" % (flag, secret_name, key))
            if flag == "auth-tokens":
                rendered_tokens = base64.b64decode(data[key]).decode()
        elif flag.startswith("tls-") and key not in ("tls.crt", "tls.key", "ca.crt"):
            fail("--%s: %s is not a key of a kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt)" % (flag, key))
        if flag == "tls-cert" and certificates and secret_name not in [
                x["spec"]["secretName"] for x in certificates]:
            fail("the Certificate writes %s, the pod mounts %s"
                 % ([x["spec"]["secretName"] for x in certificates], secret_name))

    # Ports: the listen addresses, named container ports, probes and the Service agree.
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    listeners = [("listen", "grpc"), ("metrics-listen", "metrics")]
    if opts.get("report-listen"):
        listeners.append(("report-listen", "reports"))
    for flag, name in listeners:
        host, _, port = opts[flag].rpartition(":")
        if host not in ("0.0.0.0", "[::]"):
            fail("--%s=%s does not listen on all interfaces" % (flag, opts[flag]))
        if name not in ports or int(port) != ports[name]:
            fail("--%s port %s is not the container port named %s (%s)" % (flag, port, name, ports.get(name)))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = c.get(probe)
        if tls:
            # The kubelet's gRPC probes speak plaintext (or TLS without a client certificate):
            # with TLS the probe is HTTPS GET /healthz on the metrics port, which needs none.
            # Readiness asks /readyz (also 503 while the job store is unreachable).
            path = "/readyz" if probe == "readinessProbe" else "/healthz"
            get = (p or {}).get("httpGet") or {}
            if get.get("scheme") != "HTTPS" or get.get("path") != path or \
                    get.get("port") not in ("metrics", ports["metrics"]):
                fail("with TLS, %s must be HTTPS GET %s on the metrics port: %s" % (probe, path, p))
            continue
        if not p or "grpc" not in p:
            fail("%s is not a gRPC probe" % probe)
        if p["grpc"]["port"] != ports["grpc"]:
            fail("%s probes port %s, the server listens on %s" % (probe, p["grpc"]["port"], ports["grpc"]))
    # The server's Services: those selecting its pods (not, e.g., the in-cluster PostgreSQL's).
    pod_labels = deployment["spec"]["template"]["metadata"].get("labels") or {}
    services = [d for d in docs if d.get("kind") == "Service" and (d["spec"].get("selector") or {}) and
                all(pod_labels.get(k) == v for k, v in d["spec"]["selector"].items())]
    if not services:
        fail("no Service selects the server's pods")
    for s in services:
        names = {p["name"]: p for p in s["spec"]["ports"]}
        for _, name in listeners:
            if name not in names or names[name].get("targetPort") not in (name, ports[name]):
                fail("Service %s has no port %s targeting the container" % (s["metadata"]["name"], name))
    for sm in [d for d in docs if d.get("kind") == "ServiceMonitor"]:
        for ep in sm["spec"]["endpoints"]:
            if (ep.get("scheme") == "https") != tls:
                fail("ServiceMonitor scheme %r, but the metrics port %s TLS"
                     % (ep.get("scheme"), "serves" if tls else "does not serve"))

    # Drain: the pod outlives the server's grace period.
    grace = int(opts.get("grace-seconds", ini.get("grace-seconds", 30)))
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    if tgps <= grace:
        fail("terminationGracePeriodSeconds %d <= --grace-seconds %d" % (tgps, grace))

    # GPU: cuda device <=> a GPU resource.
    limits = (c.get("resources") or {}).get("limits") or {}
    has_gpu = any(k.startswith("nvidia.com/") for k in limits)
    if opts["device"].startswith("cuda") != has_gpu:
        fail("--device=%s but GPU limits %s" % (opts["device"], limits))

    # CLI11 ignores unknown INI keys silently: every key (and argument) must be a server option.
    help_text = subprocess.run([os.path.abspath(args.server), "--help"], capture_output=True,
                               text=True, check=True).stdout
    known = set(re.findall(r"--([a-z][a-z0-9-]*)", help_text))
    for k in list(ini) + list(opts):
        if k not in known:
            fail("--%s (from the %s) is not an attattr-server option" % (k, "INI" if k in ini else "arguments"))

    # Run the real server with the rendered flags, paths moved to a temporary directory.
    cleanup = []
    try:
        return run_server(args, opts, ini, ini_text, tls, auth, postgres, rendered_tokens, cleanup)
    finally:
        for stop in cleanup:
            stop()


def point_at_postgres(pg, opts, replaced, env, tmp):
    """Points the rendered store flags at `pg` as a cluster's DNS would: the rendered URI (its
    user, database and parameters kept; host and port this server's) or, for ATTATTR_STORE from a
    Secret, a URI with a password; a role with a password in --store-password-file when rendered.
    Returns 'DATABASE"."SCHEMA' where the server is to make its tables, and the updated
    replacements and environment."""
    password = secrets.token_hex(16)
    if "store" in opts:
        parts = urllib.parse.urlsplit(opts["store"])
        user = parts.username or "attattr"
        database = parts.path.lstrip("/") or user
        uri = urllib.parse.urlunsplit((parts.scheme, "%s@127.0.0.1:%d" % (user, pg.port),
                                       "/" + database, parts.query, ""))
        replaced = dict(replaced, store=uri)
        if "store-password-file" not in opts:
            env = dict(env, PGPASSWORD=password)  # libpq's own; the chart passed no password
    else:
        user, database = "attattr", "attattr"
        env = dict(env, ATTATTR_STORE="postgresql://%s:%s@127.0.0.1:%d/%s?sslmode=require"
                   % (user, password, pg.port, database))
    pg.create_role(user, password)
    pg.create_database(database, owner=user)
    # A schema the URI selects (options=-csearch_path=NAME) is the operator's to create.
    schema = "public"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(replaced.get("store", "")).query)
    for option in query.get("options", []):
        m = re.search(r"-c\s*search_path=([A-Za-z_][A-Za-z0-9_]*)", option)
        if m:
            schema = m.group(1)
            pg.sql(database, 'CREATE SCHEMA "%s" AUTHORIZATION "%s"' % (schema, user))
    if "store-password-file" in opts:
        path = os.path.join(tmp, "store-password")
        with open(path, "w") as f:
            f.write(password + "\n")  # as a Secret key often ends
        replaced = dict(replaced, **{"store-password-file": path})
    print("PostgreSQL for the store: 127.0.0.1:%d, role %s, database %s, schema %s"
          % (pg.port, user, database, schema))
    return '%s"."%s' % (database, schema), replaced, env


def run_server(args, opts, ini, ini_text, tls, auth, postgres, rendered_tokens, cleanup):
    with tempfile.TemporaryDirectory(prefix="attattr-k8s-") as tmp:
        ini_path = os.path.join(tmp, "attattr.ini")
        with open(ini_path, "w") as f:
            f.write(ini_text)
        models = os.path.join(tmp, "models")
        os.mkdir(models)
        os.symlink(os.path.abspath(args.models_src), os.path.join(models, os.path.basename(args.models_src)))
        metrics_port = free_port()
        report_port = free_port() if opts.get("report-listen") else metrics_port
        replaced = {"config": ini_path, "models": models, "listen": "127.0.0.1:0",
                    "metrics-listen": "127.0.0.1:%d" % metrics_port,
                    "report-listen": "127.0.0.1:%d" % report_port,
                    "store": os.path.join(tmp, "store", "jobs.db"),
                    "data-root": tmp, "export-root": tmp}
        os.mkdir(os.path.join(tmp, "store"))
        pki = token = None
        if tls:
            pki = make_pki(tmp)
            replaced.update({"tls-cert": pki["tls.crt"], "tls-key": pki["tls.key"], "tls-client-ca": pki["ca.crt"]})
        if "auth-tokens" in opts:
            # The render's token lines (when the chart made the Secret) and one of this test's.
            token = secrets.token_hex(32)
            token_file = os.path.join(tmp, "token")
            with open(token_file, "w") as f:
                f.write(token + "\n")  # as `openssl rand -hex 32 >token` writes it
            tokens_path = os.path.join(tmp, "tokens")
            with open(tokens_path, "w") as f:
                f.write((rendered_tokens or "") + "%s\t%s\n" % (TOKEN_PRINCIPAL, hashlib.sha256(token.encode()).hexdigest()))
            os.chmod(tokens_path, 0o600)
            replaced["auth-tokens"] = tokens_path
            print("token file:\n" + open(tokens_path).read())
        server_env = dict(os.environ)
        pg = pg_database = None
        if postgres:
            pg = pg_for_tests.start()
            if pg is None:
                # Only where no PostgreSQL can be installed: the same flags on a temporary SQLite
                # store (which refuses a password file).
                print("no PostgreSQL here (%s): started on a temporary SQLite store instead"
                      % pg_for_tests.why_not())
                opts.pop("store-password-file", None)
                opts.setdefault("store", "")
            else:
                cleanup.append(pg.stop)
                pg_database, replaced, server_env = point_at_postgres(pg, opts, replaced, server_env, tmp)
        cmd = [os.path.abspath(args.server)] + ["--%s=%s" % (k, replaced.get(k, v)) for k, v in opts.items()]
        print("INI:\n" + ini_text)
        print("running: " + " ".join(cmd))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp,
                                env=server_env)
        port = None
        deadline = time.time() + 120
        out = ""
        while time.time() < deadline and port is None:
            r, _, _ = select.select([proc.stdout], [], [], 1.0)
            if r:
                line = proc.stdout.readline()
                if not line:
                    break
                out += line
                m = re.match(r"attattr-server listening on port (\d+)", line)
                if m:
                    port = int(m.group(1))
            elif proc.poll() is not None:
                break
        if port is None:
            if proc.poll() is None:
                proc.kill()
            rc = proc.wait()
            err = proc.stderr.read()
            print("exit %s\nstdout:\n%s\nstderr:\n%s" % (rc, out, err))
            if args.parse_only and rc == 1 and "sees no CUDA device" in err:
                print("ok: the flags and the INI were accepted (exit 1 only because CUDA is not here)")
                return 0
            fail("the server did not start with the rendered flags")
        print("started on port %d" % port)
        if pg is not None:
            # The rendered store flags reached the real database: the server made its schema there.
            database, schema = pg_database.split('"."')
            version = pg.sql(database, 'SELECT max(version) FROM "%s".attattr_schema' % schema)
            print("PostgreSQL database %s: attattr_schema version %s" % (pg_database, version))
            if not version.isdigit() or int(version) < 1:
                proc.kill()
                fail("the server did not create its schema in the PostgreSQL database")

        def stop_and_fail(msg):
            proc.kill()
            proc.wait()
            print("server stderr:\n" + proc.stderr.read())
            fail(msg)

        model = os.path.basename(args.models_src)
        if tls:
            # The kubelet's probe: HTTPS, the certificate not verified, no client certificate.
            status, body = None, ""
            for _ in range(60):
                try:
                    status, body = http_get(metrics_port, "/healthz")
                except (OSError, ssl.SSLError) as e:
                    status, body = None, str(e)
                if status == 200:
                    break
                time.sleep(0.5)
            print("GET https://127.0.0.1:%d/healthz (as the kubelet) -> %s %s" % (metrics_port, status, body.strip()))
            if status != 200:
                stop_and_fail("/healthz over HTTPS did not answer 200 as the kubelet asks it")
            status, body = http_get(metrics_port, "/readyz")
            print("GET https://127.0.0.1:%d/readyz (as the kubelet) -> %s %s" % (metrics_port, status, body.strip()))
            if status != 200:
                stop_and_fail("/readyz over HTTPS did not answer 200 as the kubelet asks it")
            # Prometheus: verifies the server certificate, presents no credentials.
            status, body = http_get(metrics_port, "/metrics", ca=pki["ca.crt"])
            print("GET https://127.0.0.1:%d/metrics (CA verified, no credentials) -> %s" % (metrics_port, status))
            if status != 200 or "attattr_" not in body:
                stop_and_fail("/metrics over HTTPS did not answer 200 without credentials")
        if auth:
            # Reports need credentials; with a token (or the client certificate) they are found or not.
            path = "/jobs/%s/report" % ("0" * 32)
            ca = pki["ca.crt"] if tls else None
            status, _ = http_get(report_port, path, tls=tls, ca=ca)
            print("GET %s without credentials -> %s" % (path, status))
            if status not in (401, 403):
                stop_and_fail("a job report without credentials answered %s, not 401/403" % status)
            cred = {"token": token} if token else {"cert": (pki["client.crt"], pki["client.key"])}
            status, _ = http_get(report_port, path, tls=tls, ca=ca, **cred)
            print("GET %s with %s -> %s" % (path, ", ".join(cred), status))
            if status in (401, 403):
                stop_and_fail("a job report with credentials answered %s" % status)
        if args.client:
            # The command NOTES.txt suggests, against the server as configured.
            client = os.path.abspath(args.client)
            tls_flags = [("--tls-ca", pki["ca.crt"]), ("--tls-server-name", "localhost")] if tls else []
            cert_flags = [("--tls-cert", pki["client.crt"]), ("--tls-key", pki["client.key"])] \
                if "tls-client-ca" in opts else []
            token_flags = [("--token-file", os.path.join(tmp, "token"))] if token else []
            r = run_client(client, "models", port, tls_flags + cert_flags + token_flags)
            if r.returncode != 0 or model not in r.stdout:
                stop_and_fail("`attattr models` did not list %s" % model)
            if token:
                r = run_client(client, "models", port, tls_flags + cert_flags, env={"ATTATTR_TOKEN": token})
                if r.returncode != 0 or model not in r.stdout:
                    stop_and_fail("`attattr models` with ATTATTR_TOKEN did not list %s" % model)
            if token and not cert_flags:
                # Refused for want of credentials (UNAUTHENTICATED; `models` prints the message,
                # which names them), not for any other reason.
                refused = re.compile(r"UNAUTHENTICATED|credentials|token", re.I)
                r = run_client(client, "models", port, tls_flags)
                if r.returncode == 0 or not refused.search(r.stderr):
                    stop_and_fail("`attattr models` without a token was not refused UNAUTHENTICATED")
                r = run_client(client, "models", port, tls_flags, env={"ATTATTR_TOKEN": "0" * 64})
                if r.returncode == 0 or not refused.search(r.stderr):
                    stop_and_fail("`attattr models` with a wrong token was not refused UNAUTHENTICATED")
            if cert_flags:
                r = run_client(client, "models", port, tls_flags + token_flags)
                if r.returncode == 0:
                    stop_and_fail("`attattr models` without a client certificate was served under mutual TLS")
            if tls:
                r = run_client(client, "models", port, token_flags)
                if r.returncode == 0:
                    stop_and_fail("`attattr models` in plaintext was served by the TLS port")
            if auth:
                # grpc.health.v1 stays open: no token (the TLS handshake still needs the certificate).
                r = run_client(client, "health", port, tls_flags + cert_flags)
                if r.returncode != 0:
                    stop_and_fail("`attattr health` without a token did not say SERVING")
        print("sending SIGTERM")
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            fail("the server did not stop within 60 s of SIGTERM")
        err = proc.stderr.read()
        print("stderr:\n" + err)
        if rc != 0:
            fail("exit %d after SIGTERM" % rc)
        # The INI was read, not ignored: its log format shows in the log.
        first = next((l for l in err.splitlines() if l.strip()), "")
        fmt = ini.get("log-format", "text")
        try:
            json.loads(first)
            is_json = True
        except ValueError:
            is_json = False
        if is_json != (fmt == "json"):
            fail("log-format=%s in the INI, but the log's first line is %r" % (fmt, first))
        print("ok: the server started with the rendered flags and INI and exited 0 on SIGTERM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
