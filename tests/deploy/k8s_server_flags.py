#!/usr/bin/env python3
"""Checks that a rendered deployment (Helm chart or kustomize overlay) does not contradict the
server's flags: takes the attattr-server container's command and arguments and the --config INI
from the ConfigMap it mounts, points the paths at temporary ones, and starts the REAL server
binary with them.

usage: k8s_server_flags.py --server BIN --models-src DIR (--start | --parse-only) MANIFESTS.yaml

--start:      the server must print "attattr-server listening on port N", then exit 0 on SIGTERM.
--parse-only: for --device cuda on a machine without CUDA: the flags and the INI must be accepted
              (a CLI11 parse or validation error exits 2); exit 1 naming cuda (the model could not
              be put on the device) counts as accepted, and so does a clean start where CUDA exists.
Exit 0 on success, 1 on failure.
"""
import argparse
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

import yaml

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
    for required in ("config", "models", "listen", "metrics-listen", "store", "device"):
        if required not in opts:
            fail("--%s is not passed" % required)

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

    store_mount = mount_for(opts["store"])
    if store_mount.get("readOnly"):
        fail("--store %s is on a read-only mount" % opts["store"])
    models_mount = mount_for(opts["models"])
    if not c.get("securityContext", {}).get("readOnlyRootFilesystem"):
        fail("readOnlyRootFilesystem is not set")

    # Ports: the listen addresses, named container ports, probes and the Service agree.
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for flag, name in (("listen", "grpc"), ("metrics-listen", "metrics")):
        host, _, port = opts[flag].rpartition(":")
        if host not in ("0.0.0.0", "[::]"):
            fail("--%s=%s does not listen on all interfaces" % (flag, opts[flag]))
        if name not in ports or int(port) != ports[name]:
            fail("--%s port %s is not the container port named %s (%s)" % (flag, port, name, ports.get(name)))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = c.get(probe)
        if not p or "grpc" not in p:
            fail("%s is not a gRPC probe" % probe)
        if p["grpc"]["port"] != ports["grpc"]:
            fail("%s probes port %s, the server listens on %s" % (probe, p["grpc"]["port"], ports["grpc"]))
    services = [d for d in docs if d.get("kind") == "Service"]
    for s in services:
        names = {p["name"]: p for p in s["spec"]["ports"]}
        for name in ("grpc", "metrics"):
            if name not in names or names[name].get("targetPort") not in (name, ports[name]):
                fail("Service %s has no port %s targeting the container" % (s["metadata"]["name"], name))

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
    with tempfile.TemporaryDirectory(prefix="attattr-k8s-") as tmp:
        ini_path = os.path.join(tmp, "attattr.ini")
        with open(ini_path, "w") as f:
            f.write(ini_text)
        models = os.path.join(tmp, "models")
        os.mkdir(models)
        os.symlink(os.path.abspath(args.models_src), os.path.join(models, os.path.basename(args.models_src)))
        replaced = {"config": ini_path, "models": models, "listen": "127.0.0.1:0",
                    "metrics-listen": "127.0.0.1:0", "store": os.path.join(tmp, "store", "jobs.db"),
                    "data-root": tmp, "export-root": tmp}
        os.mkdir(os.path.join(tmp, "store"))
        cmd = [os.path.abspath(args.server)] + ["--%s=%s" % (k, replaced.get(k, v)) for k, v in opts.items()]
        print("INI:\n" + ini_text)
        print("running: " + " ".join(cmd))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp)
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
            if args.parse_only and rc == 1 and "cuda" in err.lower():
                print("ok: the flags and the INI were accepted (exit 1 only because CUDA is not here)")
                return 0
            fail("the server did not start with the rendered flags")
        print("started on port %d" % port)
        if args.client:
            # The command NOTES.txt suggests, against the server as configured.
            r = subprocess.run([os.path.abspath(args.client), "models", "--server", "127.0.0.1:%d" % port],
                               capture_output=True, text=True, timeout=60)
            print("attattr models --server 127.0.0.1:%d -> exit %d\n%s%s" % (port, r.returncode, r.stdout, r.stderr))
            if r.returncode != 0 or os.path.basename(args.models_src) not in r.stdout:
                proc.kill()
                fail("`attattr models` did not list %s" % os.path.basename(args.models_src))
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
