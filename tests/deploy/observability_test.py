#!/usr/bin/env python3
"""Checks of the Grafana dashboard and the Prometheus alert rules (CTest label `deploy`).

  observability_test.py rules      SOURCE_DIR
      promtool check rules + promtool test rules (unit tests for every alert); the expected alerts
      are defined, and each has a row in deploy/README.md's table and a runbook entry.
  observability_test.py dashboard  SOURCE_DIR
      the dashboard is a Grafana 10 model (schemaVersion, unique panel ids, grid positions, every
      panel and target on the templated `datasource`) and every PromQL expression in it parses
      (promtool check rules on a generated rules file, Grafana variables substituted).
  observability_test.py metric-names SOURCE_DIR BIN_DIR SHARED_DIR
      starts the real attattr-server on the shared SST-2 model, makes an Explain call and runs a job
      so every histogram and counter has series, scrapes /metrics and asserts that every metric name
      the dashboard and the rules use is exposed.

Exit 77 (CTest skip) only when a tool (promtool) or the shared data is missing.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

# CTest's "skipped"; a failure where ATTATTR_REQUIRE_TEST_DEPS=1 (.ci/run): a missing tool there is
# a broken set-up (tests/support/test_paths.h).
SKIP = 1 if os.environ.get("ATTATTR_REQUIRE_TEST_DEPS") == "1" else 77
DASHBOARD = "deploy/grafana/attattr.json"
RULES = "deploy/prometheus/rules.yaml"
RULES_TEST = "deploy/prometheus/rules_test.yaml"
MODEL = "sst2-bert-l4-h256"

# attattr_device_memory_{used,total}_bytes come from NVML and are registered only where the
# NVIDIA driver is; on a machine without one the server rightly does not expose them.
NVML_ONLY = {"attattr_device_memory_used_bytes", "attattr_device_memory_total_bytes"}
# Series Prometheus makes itself for every target (not exposed by the server).
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# Counters whose series (one per label value) appear only once the event happened — a store call
# that failed in the store itself. A healthy server declares the family (`# TYPE`) with no sample.
FAILURE_ONLY = {"attattr_store_errors_total"}
# The alerts the rules must define (deploy/README.md, "Alerts and what to do", has each runbook).
EXPECTED_ALERTS = {"AttattrQueueSaturated", "AttattrRpcErrorRatioHigh", "AttattrJobsFailing",
                   "AttattrNoReadyReplica", "AttattrNoServingReplica", "AttattrCompletenessGapDrifting",
                   "AttattrStoreDown",
                   "AttattrStoreErrors", "AttattrConfigReloadFailed"}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(SKIP)


def promtool():
    path = shutil.which("promtool")
    if not path:
        skip("promtool not found (Debian package `prometheus`, listed in scripts/packages.txt)")
    return path


# --- expressions ---------------------------------------------------------------------------------

def dashboard_exprs(dash):
    """(where, expr) for every target of every panel (rows' nested panels included)."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"panel {p.get('id')} '{p.get('title')}' {t.get('refId')}", t["expr"]))
            walk(p.get("panels", []))
    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if v.get("type") == "query":
            text = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"\s*label_values\((.+),\s*\w+\)\s*", text or "")
            if m:
                out.append((f"variable {v['name']}", m.group(1)))
    return out


def rules_exprs(path):
    """(where, expr) for every rule in a Prometheus rules file."""
    text = open(path).read()
    try:
        import yaml  # PyYAML when present; the fallback below reads this repository's layout
        doc = yaml.safe_load(text)
        return [(f"rule {r.get('alert') or r.get('record')}", r["expr"])
                for g in doc["groups"] for r in g["rules"]]
    except ImportError:
        pass
    out, lines, i = [], text.splitlines(), 0
    name = "?"
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*- (alert|record):\s*(\S+)", line)
        if m:
            name = m.group(2)
        m = re.match(r"(\s*)expr:\s*(.*)$", line)
        if m:
            indent, rest = len(m.group(1)), m.group(2)
            if rest.strip() in ("|", "|-", ">", ">-"):
                body = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    body.append(lines[i].strip())
                    i += 1
                out.append((f"rule {name}", "\n".join(body)))
                continue
            out.append((f"rule {name}", rest.strip().strip("'\"")))
        i += 1
    return out


KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "and", "or",
            "unless", "bool", "inf", "nan", "atan2"}


def metric_names(expr):
    """Metric names a PromQL expression selects: identifiers that are not functions, keywords,
    label names (in braces or grouping clauses), strings, durations or numbers."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    e = re.sub(r"\{[^}]*\}", "", e)                                               # matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                                              # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+-?\w+", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", e):
        ident, call = m.group(1), m.group(2)
        if call or ident.lower() in KEYWORDS:
            continue
        names.add(ident)
    return names


def substitute_grafana_vars(expr):
    e = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    return re.sub(r"\$\{?\w+\}?", ".*", e)


def promtool_parse(exprs):
    """Parses expressions with promtool by wrapping them as recording rules."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "exprs.yaml")
        with open(path, "w") as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for i, (_, e) in enumerate(exprs):
                f.write(f"      - record: dashboard:expr{i}\n        expr: {json.dumps(e)}\n")
        r = subprocess.run([promtool(), "check", "rules", path], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            for i, (where, e) in enumerate(exprs):
                if f"expr{i}" in r.stdout + r.stderr:
                    print(f"  dashboard:expr{i} = {where}: {e}")
            fail("promtool cannot parse the dashboard expressions")


# --- subcommands ---------------------------------------------------------------------------------

def cmd_rules(src):
    tool = promtool()
    for args in (["check", "rules", RULES], ["test", "rules", RULES_TEST]):
        print("$ promtool " + " ".join(args))
        r = subprocess.run([tool] + args, cwd=src, capture_output=True, text=True)
        print(r.stdout + r.stderr)
        if r.returncode != 0:
            fail("promtool " + " ".join(args))
    # Every alert has at least one firing and one not-firing case in the unit tests.
    alerts = [w.split(" ", 1)[1] for w, _ in rules_exprs(os.path.join(src, RULES))]
    if set(alerts) != EXPECTED_ALERTS:
        fail(f"{RULES}: alerts {sorted(alerts)}, expected {sorted(EXPECTED_ALERTS)}")
    readme = open(os.path.join(src, "deploy/README.md")).read()
    runbooks = readme.split("## Alerts and what to do", 1)[-1]
    for a in alerts:
        if f"**{a}**" not in runbooks:
            fail(f"deploy/README.md: no runbook entry **{a}** under 'Alerts and what to do'")
        if f"`{a}`" not in readme:
            fail(f"deploy/README.md: alert {a} is not in the alert table")
    tests = open(os.path.join(src, RULES_TEST)).read()
    for a in alerts:
        blocks = re.findall(r"alertname:\s*" + re.escape(a) + r"\s*\n\s*exp_alerts:(.*?)(?=\n\s*- eval_time|\n\s*#|\n  - interval|\Z)",
                            tests, re.S)
        fires = any(b.strip() and b.strip() != "[]" for b in blocks)
        quiet = any(b.strip() == "[]" for b in blocks)
        if not (fires and quiet):
            fail(f"{RULES_TEST}: alert {a} needs a firing and a not-firing case "
                 f"(firing {fires}, not firing {quiet})")
    text = open(os.path.join(src, RULES)).read()
    for a in alerts:
        block = text.split(f"alert: {a}", 1)[1].split("- alert:", 1)[0]
        for key in ("severity:", "summary:", "description:", "runbook:"):
            if key not in block:
                fail(f"{RULES}: alert {a} has no {key[:-1]}")
    print(f"OK: {len(alerts)} alerts, each with severity, summary, description, runbook, and unit-tested firing and not firing")


def cmd_dashboard(src):
    path = os.path.join(src, DASHBOARD)
    try:
        dash = json.load(open(path))
    except ValueError as e:
        fail(f"{DASHBOARD} is not JSON: {e}")
    errors = []
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        errors.append("schemaVersion must be >= 36 (Grafana 9/10 model)")
    for key in ("title", "uid", "panels", "templating", "time"):
        if key not in dash:
            errors.append(f"missing top-level '{key}'")
    if dash.get("id") is not None:
        errors.append("'id' must be null so the dashboard imports into any Grafana")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append("needs a templated datasource variable 'datasource' of type datasource (prometheus)")
    # Regression (conventions review): "All" as allValue ".*" matched every scrape target in
    # Prometheus, so up{job=~"$job"} counted node-exporter & co as attattr replicas. Without an
    # allValue Grafana expands "All" to the attattr jobs the variable's query found.
    for name, v in variables.items():
        if v.get("includeAll") and v.get("allValue") not in (None, ""):
            errors.append(f"variable '{name}': allValue {v.get('allValue')!r} matches beyond the "
                          "values its query finds; leave it unset")
    ids, panels = set(), []

    def walk(ps):
        for p in ps:
            panels.append(p)
            walk(p.get("panels", []))
    walk(dash.get("panels", []))
    for p in panels:
        where = f"panel {p.get('id')} '{p.get('title')}'"
        if p.get("id") in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")) or g.get("x", 0) + g.get("w", 0) > 24:
            errors.append(f"{where}: bad gridPos {g}")
        if p.get("type") == "row":
            continue
        if p.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
            errors.append(f"{where}: datasource must be the templated ${{datasource}}")
        if not p.get("targets"):
            errors.append(f"{where}: no targets")
        refs = [t.get("refId") for t in p.get("targets", [])]
        if len(set(refs)) != len(refs):
            errors.append(f"{where}: duplicate refIds {refs}")
        for t in p.get("targets", []):
            if not t.get("expr"):
                errors.append(f"{where}: target {t.get('refId')} has no expr")
            if t.get("datasource", p.get("datasource")) != p.get("datasource"):
                errors.append(f"{where}: target {t.get('refId')} on another datasource")
    # Grid: no two panels overlap.
    cells = {}
    for p in panels:
        g = p.get("gridPos", {})
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    errors.append(f"panel {p.get('id')} overlaps panel {cells[(x, y)]} at {x},{y}")
                    break
                cells[(x, y)] = p.get("id")
            else:
                continue
            break
    # What the dashboard must show (issue 6).
    exprs = dashboard_exprs(dash)
    all_text = "\n".join(e for _, e in exprs)
    for needed in ("attattr_queue_depth", "attattr_job_queue_duration_seconds_bucket",
                   "attattr_job_run_duration_seconds_bucket", "attattr_jobs_total", "attattr_jobs_running",
                   "attattr_rpc_requests_total", "attattr_rpc_duration_seconds_bucket",
                   "attattr_completeness_gap_bucket", "attattr_batch_size", "process_resident_memory_bytes",
                   "attattr_device_memory_used_bytes", "attattr_device_memory_total_bytes",
                   "attattr_store_up", "attattr_store_operation_seconds_bucket", "attattr_store_errors_total",
                   "attattr_job_lease_takeovers_total"):
        if needed not in all_text:
            errors.append(f"no panel shows {needed}")
    # The job store row (issue 7): up per replica, latency p50/p99 by operation, errors by
    # operation, lease takeovers.
    rows = [p for p in panels if p.get("type") == "row"]
    store_row = [r for r in rows if r.get("title") == "Job store"]
    if not store_row:
        errors.append("no row 'Job store'")
    else:
        y0 = store_row[0]["gridPos"]["y"]
        later_rows = [r["gridPos"]["y"] for r in rows if r["gridPos"]["y"] > y0]
        y1 = min(later_rows) if later_rows else 10 ** 6
        row_exprs = "\n".join(t.get("expr", "") for p in panels if y0 < p.get("gridPos", {}).get("y", -1) < y1
                              for t in p.get("targets", []))
        for needed in (r'attattr_store_up\{', r'histogram_quantile\(0\.5, sum by \(le, operation\) \(rate\(attattr_store_operation_seconds_bucket',
                       r'histogram_quantile\(0\.99, sum by \(le, operation\) \(rate\(attattr_store_operation_seconds_bucket',
                       r'sum by \(operation\) \(rate\(attattr_store_errors_total', r'attattr_job_lease_takeovers_total'):
            if not re.search(needed, row_exprs):
                errors.append(f"the 'Job store' row has no panel matching /{needed}/")
    if not re.search(r'code!="OK"', all_text):
        errors.append("no RPC error ratio (code!=\"OK\")")
    if errors:
        fail(f"{DASHBOARD}:\n  " + "\n  ".join(errors))
    promtool_parse([(w, substitute_grafana_vars(e)) for w, e in exprs])
    print(f"OK: {len(panels)} panels, {len(exprs)} expressions parse")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_client(bin_dir, args, timeout=120):
    cmd = [os.path.join(bin_dir, "attattr")] + args
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    print("$ " + " ".join(cmd) + f"  -> {r.returncode}")
    if r.returncode != 0:
        print(r.stdout[-2000:] + r.stderr[-2000:])
        fail("client command failed")
    return r.stdout


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def exposed_names(text):
    """Sample names in a Prometheus text exposition."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, 1)[0])
    return names


def cmd_metric_names(src, bin_dir, shared):
    model_src = os.path.join(shared, "models", MODEL)
    if not os.path.isfile(os.path.join(model_src, "config.json")):
        skip(f"shared model {model_src} not found (../shared, DESIGN.md §3)")
    server_bin = os.path.join(bin_dir, "attattr-server")
    for b in (server_bin, os.path.join(bin_dir, "attattr")):
        if not os.access(b, os.X_OK):
            fail(f"{b} not built")
    # Every name the dashboard and the rules use.
    used = {}
    dash = json.load(open(os.path.join(src, DASHBOARD)))
    for where, e in dashboard_exprs(dash) + rules_exprs(os.path.join(src, RULES)):
        for n in metric_names(substitute_grafana_vars(e)):
            used.setdefault(n, where)
    if len(used) < 10:
        fail(f"found only {sorted(used)} in the dashboard and rules: the extraction is broken")

    with tempfile.TemporaryDirectory() as tmp:
        models = os.path.join(tmp, "models")
        os.mkdir(models)
        os.symlink(os.path.abspath(model_src), os.path.join(models, MODEL))
        metrics_port = free_port()
        log = open(os.path.join(tmp, "server.log"), "w+")
        server = subprocess.Popen(
            [server_bin, "--models", models, "--listen", "127.0.0.1:0",
             "--metrics-listen", f"127.0.0.1:{metrics_port}", "--store", os.path.join(tmp, "jobs.db"),
             "--job-runners", "1", "--threads", "1", "--grace-seconds", "5"],
            stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            port = None
            deadline = time.time() + 120
            while time.time() < deadline:
                line = server.stdout.readline()
                if not line:
                    break
                m = re.search(r"listening on port (\d+)", line)
                if m:
                    port = int(m.group(1))
                    break
            if not port:
                log.seek(0)
                print(log.read()[-4000:])
                fail("attattr-server did not start")
            addr = f"127.0.0.1:{port}"
            run_client(bin_dir, ["explain", "--server", addr, "--model", MODEL,
                                 "--text", "a gorgeous , witty movie", "--format", "text"])
            job = json.loads(run_client(bin_dir, ["submit", "--server", addr, "--model", MODEL,
                                                  "--text", "a dull , lifeless film", "--top-k", "3"]))
            run_client(bin_dir, ["wait", job["name"], "--server", addr, "--timeout-seconds", "120"])
            text = scrape(metrics_port)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()

    exposed = exposed_names(text)
    declared = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    missing = []
    for name, where in sorted(used.items()):
        if name in exposed or name in PROMETHEUS_OWN:
            continue
        if name in FAILURE_ONLY and name in declared:
            print(f"declared without series (only failures make one): {name} ({where})")
            continue
        if name in NVML_ONLY:
            print(f"allowed without a GPU: {name} ({where}; registered only where the NVIDIA driver is)")
            continue
        missing.append(f"{name} (used in {where})")
    print(f"used: {len(used)} names; exposed: {len(exposed)} sample names")
    if missing:
        fail("not exposed by attattr-server:\n  " + "\n  ".join(missing))
    print("OK: every metric the dashboard and the rules use is exposed: " + ", ".join(sorted(used)))


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    cmd, src = argv[1], argv[2]
    if cmd == "rules":
        cmd_rules(src)
    elif cmd == "dashboard":
        cmd_dashboard(src)
    elif cmd == "metric-names" and len(argv) == 5:
        cmd_metric_names(src, argv[3], argv[4])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
