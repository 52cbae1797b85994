#!/usr/bin/env python3
"""Bounded load run of attattr-server: many clients on loopback, normal and hostile calls mixed.

Starts build/bin/attattr-server on a copy of the shared SST-2 model (its own store, data root and
ports), then runs --clients concurrent gRPC clients (grpc.aio, one channel per 8 clients) for
--seconds. Each client loops over a weighted mix of calls:

  normal   Explain of a short sentence, ListModels, health Check, SubmitJob of a one-example
           attribution job followed by GetJob, ListJobs (BASIC view), GET /metrics
  hostile  the tokenizer bomb (64k alternating combining marks), a 3.9 MiB text of one-letter
           words, a 1 MiB model name, a ListJobs page_size of 1000 in the FULL view, a job asking
           for 10,000 examples x 256 steps, a 33 MiB request (above --max-request-mib), a spec
           whose only text is control characters, a slow HTTP client trickling its head, a 64 KiB
           HTTP header line (the gRPC ones serialized once, so the client is not the bottleneck)

Every call must end with a gRPC status (or an HTTP status): a client-side deadline (30 s) or a
transport failure counts as unanswered. While it runs, the server's RSS (VmRSS from /proc) is
sampled every second. At the end it prints the calls per kind and status, p50/p90/p99/max latency
of the normal calls (all answered, and per kind those that succeeded: a full Explain queue answers
RESOURCE_EXHAUSTED at once), and RSS at start (after a warm-up), every 10 s, at the end and at
most; with --json FILE it writes them too. Exit status: 0 when every call was answered, 1 otherwise.

A program, not a test: it asserts no timings. Needs the Python client's venv
(client/python/setup_venv.sh) and a Release build:

    client/python/setup_venv.sh
    client/python/.venv/bin/python bench/load_run.py --clients 200 --seconds 180
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "client" / "python" / "gen"))

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from attattr.v1 import attattr_service_pb2 as pb  # noqa: E402
from attattr.v1 import attattr_service_pb2_grpc as pb_grpc  # noqa: E402
from attattr.v1 import job_pb2  # noqa: E402

DEADLINE_S = 30.0
SENTENCES = [
    "a gripping , beautifully acted film .",
    "the plot is thin and the jokes fall flat .",
    "an unexpectedly moving story about two brothers .",
    "it 's a charming and often affecting journey .",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Server:
    """attattr-server as a child process with its own store, models and ports."""

    # The flags load_run gives it beside models, ports, store and data root.
    LOAD_RUN_FLAGS = ["--job-runners", "2", "--max-queued-jobs", "1000",
                      "--max-queued-jobs-per-principal", "1000", "--threads", "1"]

    def __init__(self, binary: Path, model: Path, workdir: Path, flags=None, env=None):
        self.grpc_port, self.http_port = free_port(), free_port()
        models = workdir / "models"
        models.mkdir()
        (models / "sst2").symlink_to(model)
        data = workdir / "data"
        data.mkdir()
        self.log = open(workdir / "server.log", "w")
        self.proc = subprocess.Popen(
            [str(binary), "--models", str(models), "--listen", f"127.0.0.1:{self.grpc_port}",
             "--metrics-listen", f"127.0.0.1:{self.http_port}", "--store", str(workdir / "jobs.db"),
             "--data-root", str(data)] + (self.LOAD_RUN_FLAGS if flags is None else flags),
            stdout=self.log, stderr=subprocess.STDOUT, env=env)

    async def wait_serving(self) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.grpc_port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            for _ in range(300):
                if self.proc.poll() is not None:
                    raise RuntimeError("attattr-server exited while starting; see server.log")
                try:
                    r = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if r.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("attattr-server did not become SERVING in 60 s")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.log.close()


class Stats:
    def __init__(self) -> None:
        self.outcomes: Counter = Counter()        # (kind, status) -> calls
        self.latency: dict = defaultdict(list)    # normal kind -> seconds
        self.unanswered: Counter = Counter()      # kind -> calls without a status
        self.ok_latency: dict = defaultdict(list) # normal kind -> seconds, calls that succeeded

    def record(self, kind: str, normal: bool, status: str, seconds: float, answered: bool) -> None:
        self.outcomes[(kind, status)] += 1
        if not answered:
            self.unanswered[kind] += 1
        elif normal:
            self.latency[kind].append(seconds)
            if status in ("OK", "HTTP 200"):
                self.ok_latency[kind].append(seconds)


async def timed(stats: Stats, kind: str, normal: bool, call) -> None:
    start = time.perf_counter()
    try:
        await call()
        status, answered = "OK", True
    except grpc.aio.AioRpcError as e:
        # The client's own deadline passing (the server never answered) or a dropped connection
        # is no answer; every other code is the server's status (none of these calls runs long
        # enough for the server to answer DEADLINE_EXCEEDED, and it is not draining).
        status = e.code().name
        answered = e.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
    except (OSError, asyncio.TimeoutError) as e:
        status, answered = type(e).__name__, False
    stats.record(kind, normal, status, time.perf_counter() - start, answered)


async def http_get(port: int, head: bytes, trickle: bool = False) -> str:
    """Sends `head` (byte by byte every 100 ms when trickling); the status line's code."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), DEADLINE_S)
    try:
        # Read while sending: the server may answer (408/431/503) and close before the head is
        # sent, and asyncio drops what was received once a write fails.
        answer = asyncio.ensure_future(reader.readline())
        pieces = [bytes([b]) for b in head[:40]] if trickle else [head]
        for piece in pieces:
            if answer.done():
                break
            try:
                writer.write(piece)
                await writer.drain()
            except ConnectionError:
                break
            if trickle:
                await asyncio.sleep(0.1)
        line = await asyncio.wait_for(answer, DEADLINE_S)
        if not line.startswith(b"HTTP/"):
            raise OSError("no HTTP status line")
        await asyncio.wait_for(reader.read(), DEADLINE_S)
        return line.split()[1].decode()
    finally:
        writer.close()


async def http_call(stats: Stats, kind: str, normal: bool, port: int, head: bytes,
                    trickle: bool = False) -> None:
    start = time.perf_counter()
    try:
        code = await http_get(port, head, trickle)
        stats.record(kind, normal, f"HTTP {code}", time.perf_counter() - start, True)
    except (OSError, asyncio.TimeoutError, ConnectionError) as e:
        stats.record(kind, normal, type(e).__name__, time.perf_counter() - start, False)


def example_spec(text: str, examples: int = 1, steps: int = 4) -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec(model="sst2")
    a = spec.attribution
    for i in range(examples):
        a.examples.inline.examples.add(text=text if i == 0 else f"{text} {i}")
    a.options.steps = steps
    a.result.top_k = 3
    return spec


def explain_bytes(text: str, model: str = "sst2") -> bytes:
    req = pb.ExplainRequest(model=model)
    req.example.text = text
    return req.SerializeToString()


# The hostile requests, serialized once (sending them must not cost the client more than the
# server): the tokenizer bomb (64k alternating combining marks), 3.9 MiB of one-letter words, a
# 1 MiB model name, a 33 MiB request (above the server's 32 MiB receive limit), a 10,000-example x
# 256-step job and a spec whose only text is control characters.
HOSTILE = {
    "tokenizer bomb": ("Explain", explain_bytes("a" + "\u0301\u0316" * 32768)),
    "3.9 MiB text": ("Explain", explain_bytes(("a " * (2 << 20))[: int(3.9 * (1 << 20))])),
    "1 MiB model name": ("Explain", explain_bytes("fine", "m" * (1 << 20))),
    "33 MiB request": ("Explain", explain_bytes("x" * (33 << 20))),
    "huge job": ("SubmitJob", pb.SubmitJobRequest(
        spec=example_spec("fine", 10000, 256)).SerializeToString()),
}
_garbage = job_pb2.JobSpec(model="sst2")
_garbage.attribution.examples.inline.examples.add(text="\x00\x01\x02\x1b\x7f\t")
HOSTILE["garbage spec"] = ("SubmitJob", pb.SubmitJobRequest(spec=_garbage).SerializeToString())


def calls(channel, stub, health, rng: random.Random):
    """The weighted mix: (weight, kind, normal, coroutine factory)."""
    t = lambda: rng.choice(SENTENCES)  # noqa: E731

    async def submit_and_get():
        job = await stub.SubmitJob(pb.SubmitJobRequest(spec=example_spec(t())), timeout=DEADLINE_S)
        await stub.GetJob(pb.GetJobRequest(name=job.name), timeout=DEADLINE_S)

    def explain(text):
        req = pb.ExplainRequest(model="sst2")
        req.example.text = text
        return lambda: stub.Explain(req, timeout=DEADLINE_S)

    def raw(kind):
        method, body = HOSTILE[kind]
        call = channel.unary_unary(f"/attattr.v1.Attattr/{method}")  # bytes in, bytes out
        return lambda: call(body, timeout=DEADLINE_S)

    return [
        (30, "Explain", True, lambda: explain(t())()),
        (10, "ListModels", True, lambda: stub.ListModels(pb.ListModelsRequest(), timeout=DEADLINE_S)),
        (10, "health.Check", True,
         lambda: health.Check(health_pb2.HealthCheckRequest(service=""), timeout=DEADLINE_S)),
        (6, "SubmitJob+GetJob", True, submit_and_get),
        (5, "ListJobs", True, lambda: stub.ListJobs(pb.ListJobsRequest(page_size=50), timeout=DEADLINE_S)),
        (5, "GET /metrics", True, None),
        (2, "tokenizer bomb", False, raw("tokenizer bomb")),
        (1, "3.9 MiB text", False, raw("3.9 MiB text")),
        (2, "1 MiB model name", False, raw("1 MiB model name")),
        (1, "ListJobs FULL 1000", False,
         lambda: stub.ListJobs(pb.ListJobsRequest(page_size=1000, view=pb.JOB_VIEW_FULL),
                               timeout=DEADLINE_S)),
        (2, "huge job", False, raw("huge job")),
        (1, "33 MiB request", False, raw("33 MiB request")),
        (2, "garbage spec", False, raw("garbage spec")),
        (1, "slow HTTP head", False, None),
        (1, "64 KiB HTTP header", False, None),
    ]


async def client(channel, stub, health, http_port: int, stats: Stats, stop_at: float,
                 seed: int) -> None:
    rng = random.Random(seed)
    mix = calls(channel, stub, health, rng)
    weights = [w for w, *_ in mix]
    while time.monotonic() < stop_at:
        _, kind, normal, factory = rng.choices(mix, weights)[0]
        if kind == "GET /metrics":
            await http_call(stats, kind, True, http_port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        elif kind == "slow HTTP head":
            await http_call(stats, kind, False, http_port, b"GET /healthz HTTP/1.1\r\nX-Slow: " +
                            b"a" * 100, trickle=True)
        elif kind == "64 KiB HTTP header":
            await http_call(stats, kind, False, http_port,
                            b"GET /healthz HTTP/1.1\r\nX-Long: " + b"a" * 65536 + b"\r\n\r\n")
        else:
            await timed(stats, kind, normal, factory)


def percentile(values, q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="attattr-load-"))
    server = Server(Path(args.server_bin), Path(args.model), workdir)
    stats = Stats()
    rss = []
    try:
        await server.wait_serving()
        channels = [grpc.aio.insecure_channel(
            f"127.0.0.1:{server.grpc_port}",
            options=[("grpc.max_send_message_length", 64 << 20)])
            for _ in range((args.clients + 7) // 8)]
        stubs = [(c, pb_grpc.AttattrStub(c), health_pb2_grpc.HealthStub(c)) for c in channels]
        # Warm-up: one of each normal call, so the start RSS includes the loaded model and pools.
        warm = Stats()
        await timed(warm, "Explain", True, lambda: stubs[0][1].Explain(
            pb.ExplainRequest(model="sst2", example={"text": SENTENCES[0]}), timeout=DEADLINE_S))
        rss_start = rss_mib(server.proc.pid)
        stop_at = time.monotonic() + args.seconds

        async def sample():
            while time.monotonic() < stop_at:
                rss.append(rss_mib(server.proc.pid))
                await asyncio.sleep(1)


        began = time.perf_counter()
        await asyncio.gather(sample(), *[
            client(*stubs[i // 8], server.http_port, stats, stop_at, args.seed + i)
            for i in range(args.clients)])
        elapsed = time.perf_counter() - began
        rss_end = rss_mib(server.proc.pid)
        for c in channels:
            await c.close()
    finally:
        code = server.stop()
    total = sum(stats.outcomes.values())
    unanswered = sum(stats.unanswered.values())
    normal = [s for k, v in stats.latency.items() for s in v]
    report = {
        "clients": args.clients, "seconds": round(elapsed, 1), "calls": total,
        "calls_per_second": round(total / elapsed, 1), "unanswered": unanswered,
        "server_exit_code": code,
        "normal_latency_ms": {
            "calls": len(normal),
            "p50": round(1000 * percentile(normal, 0.50), 1),
            "p90": round(1000 * percentile(normal, 0.90), 1),
            "p99": round(1000 * percentile(normal, 0.99), 1),
            "max": round(1000 * max(normal), 1) if normal else None,
        },
        "normal_latency_ms_by_kind": {
            k: {"calls": len(v), "p50": round(1000 * percentile(v, 0.5), 1),
                "p99": round(1000 * percentile(v, 0.99), 1)} for k, v in sorted(stats.latency.items())},
        "ok_latency_ms": {
            k: {"calls": len(v), "p50": round(1000 * percentile(v, 0.5), 1),
                "p99": round(1000 * percentile(v, 0.99), 1)} for k, v in sorted(stats.ok_latency.items())},
        "rss_mib": {"start": round(rss_start, 1), "end": round(rss_end, 1),
                    "max": round(max(rss + [rss_end]), 1),
                    "every_10_s": [round(r, 1) for r in rss[::10]]},
        "outcomes": {f"{k} -> {s}": n for (k, s), n in sorted(stats.outcomes.items())},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if unanswered:
        print(f"log: {workdir}/server.log", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if unanswered == 0 and code == 0 else 1


def main() -> int:
    shared = Path(os.environ.get("ATTATTR_SHARED_DIR", ROOT.parent / "shared"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--server-bin", default=str(ROOT / "build" / "bin" / "attattr-server"))
    p.add_argument("--model", default=str(shared / "models" / "sst2-bert-l4-h256"))
    p.add_argument("--json", help="also write the figures to this file")
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
