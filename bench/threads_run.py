#!/usr/bin/env python3
"""Intra-op threads against concurrent engine work: one attattr-server per thread setting.

The server runs engine work on several threads at once (the dynamic batcher's --workers and up to
--job-runners jobs), and each of them fans out into --threads LibTorch intra-op (OpenMP) threads.
This program measures what that costs on this machine. For every --config (intra-op threads, the
OpenMP wait policy, batching) it starts build/bin/attattr-server (bench/load_run.py's Server: its
own store, data root and ports) on the shared SST-2 model and runs three phases:

  explain  --clients concurrent clients calling Explain (SST-2 dev sentences, LEFT_RIEMANN m = 20,
           all layers, top 10) until --explain-calls calls are answered
  jobs     --jobs attribution jobs of --job-examples sentences each (same options), submitted at
           once; the phase ends when all have SUCCEEDED
  mixed    the same jobs again while the clients call Explain until the jobs are done

and prints, per configuration, Explain calls/s and p50 latency alone and mixed, the jobs'
examples/s alone and mixed, and the server's CPU seconds per wall second in each phase (above the
cores' work, CPU time spent waiting: OpenMP threads spinning). A program, not a test: it asserts no
timings. Needs the Python client's venv (client/python/setup_venv.sh) and a Release build:

    client/python/.venv/bin/python bench/threads_run.py
    client/python/.venv/bin/python bench/threads_run.py --config workers=1,threads=2 \\
        --config workers=1,threads=2,wait=passive --config defaults --json out.json

A configuration is "defaults" (the server's own) or comma-separated key=value, each a server flag
left at its default unless given: threads (--threads), workers (--workers), batch
(--batch-max-examples), runners (--job-runners), jobthreads (--job-threads), precision
(--default-precision: fp32 or bf16), and
wait (OMP_WAIT_POLICY in the server's environment: passive or active; unset = libgomp's default,
which spins for a while before sleeping).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_run import ROOT, Server, percentile  # noqa: E402

import grpc  # noqa: E402

from attattr.v1 import attattr_service_pb2 as pb  # noqa: E402
from attattr.v1 import attattr_service_pb2_grpc as pb_grpc  # noqa: E402
from attattr.v1 import attribution_pb2, job_pb2  # noqa: E402

STEPS = 20
DEADLINE_S = 600.0


# Configuration keys that are server flags; "wait" is the one other key (the environment).
FLAGS = {"threads": "--threads", "runners": "--job-runners", "workers": "--workers",
         "batch": "--batch-max-examples", "precision": "--default-precision",
         "jobthreads": "--job-threads"}
CONFIG_KEYS = set(FLAGS) | {"wait"}


def parse_config(text: str) -> dict:
    """The keys given; "defaults" = none (the server's own defaults)."""
    config = {}
    for item in ([] if text == "defaults" else text.split(",")):
        key, _, value = item.partition("=")
        if key not in CONFIG_KEYS or not value:
            raise argparse.ArgumentTypeError(f"--config: unknown or empty key in {item!r}")
        config[key] = value
    if config.get("wait") not in (None, "passive", "active"):
        raise argparse.ArgumentTypeError("--config: wait must be passive or active")
    return config


def server_flags(config: dict) -> list:
    flags = ["--max-queued-jobs", "1000", "--max-queued-jobs-per-principal", "1000"]
    for key, flag in FLAGS.items():
        if key in config:
            flags += [flag, config[key]]
    return flags


def server_env(config: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if "wait" in config:
        env["OMP_WAIT_POLICY"] = config["wait"].upper()
    return env


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, all threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def options(message) -> None:
    message.rule = attribution_pb2.LEFT_RIEMANN
    message.steps = STEPS


def job_spec(sentences: list) -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec(model="sst2")
    a = spec.attribution
    for text in sentences:
        a.examples.inline.examples.add(text=text)
    options(a.options)
    a.result.top_k = 10
    return spec


async def explain_clients(stub, sentences: list, clients: int, until) -> list:
    """Latencies (s) of Explain calls made by `clients` loops while until() is false."""
    latencies = []
    counter = iter(range(1 << 30))

    async def loop():
        while not until(len(latencies)):
            req = pb.ExplainRequest(model="sst2")
            req.example.text = sentences[next(counter) % len(sentences)]
            options(req.options)
            start = time.perf_counter()
            await stub.Explain(req, timeout=DEADLINE_S)
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*[loop() for _ in range(clients)])
    return latencies


async def run_jobs(stub, batches: list) -> None:
    names = [(await stub.SubmitJob(pb.SubmitJobRequest(spec=job_spec(b)), timeout=DEADLINE_S)).name
             for b in batches]
    pending = set(names)
    while pending:
        await asyncio.sleep(0.1)
        for name in list(pending):
            job = await stub.GetJob(pb.GetJobRequest(name=name), timeout=DEADLINE_S)
            if job.state == job_pb2.SUCCEEDED:
                pending.discard(name)
            elif job.state in (job_pb2.FAILED, job_pb2.CANCELLED):
                raise RuntimeError(f"job {name} ended {job_pb2.JobState.Name(job.state)}: "
                                   f"{job.error.message}")


async def measure(args, config: dict, sentences: list) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="attattr-threads-"))
    server = Server(Path(args.server_bin), Path(args.model), workdir, server_flags(config),
                    server_env(config))
    batches = [sentences[i * args.job_examples:(i + 1) * args.job_examples]
               for i in range(args.jobs)]
    figures = {"config": config}
    try:
        await server.wait_serving()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = pb_grpc.AttattrStub(channel)
            await explain_clients(stub, sentences, 1, lambda done: done >= 2)  # warm-up

            async def phase(name, work):
                cpu0, t0 = cpu_seconds(server.proc.pid), time.perf_counter()
                result = await work()
                wall = time.perf_counter() - t0
                figures[name] = {"seconds": round(wall, 2),
                                 "cpu_per_wall": round((cpu_seconds(server.proc.pid) - cpu0) / wall, 2)}
                return result, wall

            lat, wall = await phase("explain", lambda: explain_clients(
                stub, sentences, args.clients, lambda done: done >= args.explain_calls))
            figures["explain"].update(calls_per_s=round(len(lat) / wall, 2),
                                      p50_ms=round(1000 * percentile(lat, 0.5)))
            _, wall = await phase("jobs", lambda: run_jobs(stub, batches))
            figures["jobs"]["examples_per_s"] = round(args.jobs * args.job_examples / wall, 2)

            async def mixed():
                jobs = asyncio.ensure_future(run_jobs(stub, batches))
                lat = await explain_clients(stub, sentences, args.clients,
                                            lambda done: jobs.done())
                await jobs
                return lat

            lat, wall = await phase("mixed", mixed)
            figures["mixed"].update(
                examples_per_s=round(args.jobs * args.job_examples / wall, 2),
                explain_calls_per_s=round(len(lat) / wall, 2),
                explain_p50_ms=round(1000 * percentile(lat, 0.5)) if lat else None)
    finally:
        code = server.stop()
    if code != 0:
        raise RuntimeError(f"attattr-server exited {code}; see {workdir}/server.log")
    shutil.rmtree(workdir, ignore_errors=True)
    return figures


def label(config: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items()) or "defaults"


def table(results: list) -> str:
    rows = ["| config | Explain alone calls/s (p50 ms) | jobs alone ex/s | mixed: jobs ex/s, "
            "Explain calls/s (p50 ms) | CPU s per s: explain / jobs / mixed |",
            "|---|---|---|---|---|"]
    for r in results:
        e, j, m = r["explain"], r["jobs"], r["mixed"]
        rows.append(f"| {label(r['config'])} | {e['calls_per_s']} ({e['p50_ms']}) | "
                    f"{j['examples_per_s']} | {m['examples_per_s']}, {m['explain_calls_per_s']} "
                    f"({m['explain_p50_ms']}) | {e['cpu_per_wall']} / {j['cpu_per_wall']} / "
                    f"{m['cpu_per_wall']} |")
    return "\n".join(rows)


def read_sentences(path: Path, count: int) -> list:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    texts = [line.split("\t")[0].strip() for line in lines]
    typical = [t for t in texts if 18 <= len(t.split()) <= 24]
    if len(typical) < count:
        raise SystemExit(f"{path}: fewer than {count} sentences of 18-24 words")
    return typical[:count]


async def run(args) -> int:
    sentences = read_sentences(Path(args.dev_tsv), max(args.jobs * args.job_examples, 8))
    results = []
    for config in args.config or [parse_config(c) for c in ("workers=1", "defaults")]:
        results.append(await measure(args, config, sentences))
        print(json.dumps(results[-1]), flush=True)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def main() -> int:
    shared = Path(os.environ.get("ATTATTR_SHARED_DIR", ROOT.parent / "shared"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", action="append", type=parse_config,
                   help="key=value,... or defaults (see above); repeat for several; default: "
                        "workers=1 (one worker with every core) and defaults")
    p.add_argument("--clients", type=int, default=4, help="concurrent Explain callers")
    p.add_argument("--explain-calls", type=int, default=32)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--job-examples", type=int, default=16)
    p.add_argument("--server-bin", default=str(ROOT / "build" / "bin" / "attattr-server"))
    p.add_argument("--model", default=str(shared / "models" / "sst2-bert-l4-h256"))
    p.add_argument("--dev-tsv", default=str(shared / "data" / "sst2" / "dev.tsv"))
    p.add_argument("--json", help="also write the figures to this file")
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
