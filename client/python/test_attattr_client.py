#!/usr/bin/env python3
"""End-to-end test of the Python example client against a real attattr-server (unittest).

Starts build/bin/attattr-server itself on a free port, serving the shared SST-2 test model
(../shared/models/sst2-bert-l4-h256, linked as 'sst2'), then checks ListModels, GetModel,
Explain (tokens, prediction, completeness gaps, top connections, fp16 matrices), the error codes
(INVALID_ARGUMENT naming the field, NOT_FOUND), the grpc.health.v1 Check, the CLI, the job round
trip (SubmitJob, WaitJob, GetJobResult chunks reassembled; results equal Explain's), and that
SIGTERM stops the server with exit code 0.

Run with client/python/run_tests.sh (creates the venv), or .venv/bin/python -m unittest -v.
Skips (with the reason) when the shared folder, the server binary or the stubs are absent.
Environment: ATTATTR_SHARED_DIR (default: ATTATTR_SHARED_DIR_DEFAULT, which CTest sets from the
CMake cache, else the repository's sibling ../shared),
ATTATTR_SERVER_BIN (default: <repo>/build/bin/attattr-server).
"""

from __future__ import annotations

import json
import math
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SHARED = Path(os.environ.get("ATTATTR_SHARED_DIR") or os.environ.get("ATTATTR_SHARED_DIR_DEFAULT")
             or REPO.parent / "shared")
MODEL_DIR = SHARED / "models" / "sst2-bert-l4-h256"
SERVER_BIN = Path(os.environ.get("ATTATTR_SERVER_BIN") or REPO / "build" / "bin" / "attattr-server")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0

sys.path.insert(0, str(HERE))
_import_error = None
try:
    import grpc
    import attattr_client as ac
except ImportError as e:  # reported as a skip below
    _import_error = e

try:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
except ImportError:
    health_pb2 = health_pb2_grpc = None


def _skip_reason():
    if _import_error is not None:
        return (f"python client unavailable ({_import_error}); run {HERE / 'setup_venv.sh'} "
                f"and use {HERE / '.venv/bin/python'}")
    if not (MODEL_DIR / "config.json").is_file():
        return (f"shared test model not found at {MODEL_DIR} (the repository's sibling "
                "../shared folder; set ATTATTR_SHARED_DIR to point elsewhere)")
    if not os.access(SERVER_BIN, os.X_OK):
        return f"server binary not found at {SERVER_BIN} (build it, or set ATTATTR_SERVER_BIN)"
    return None


_server_help = None


def _server_has_flag(flag: str) -> bool:
    """Whether attattr-server --help lists `flag` (options that land with the job scheduler)."""
    global _server_help
    if _server_help is None:
        _server_help = subprocess.run([str(SERVER_BIN), "--help"], capture_output=True,
                                      text=True, timeout=60).stdout
    return flag in _server_help


class Server:
    """attattr-server as a child process on 127.0.0.1:<free port> with the 'sst2' model, its job
    store in a temporary directory."""

    def __init__(self):
        self.models_dir = tempfile.TemporaryDirectory(prefix="attattr-models-")
        os.symlink(MODEL_DIR, os.path.join(self.models_dir.name, "sst2"))
        self.stderr = tempfile.TemporaryFile(mode="w+")
        extra = []
        if _server_has_flag("--store"):  # not attattr-jobs.db in the working directory
            extra += ["--store", os.path.join(self.models_dir.name, "jobs.db")]
        self.proc = subprocess.Popen(
            [str(SERVER_BIN), "--models", self.models_dir.name, "--listen", "127.0.0.1:0",
             "--metrics-listen", "127.0.0.1:0", "--threads", "1", "--log-level", "warn",
             *extra],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.port = self._wait_for_port()
        self.address = f"127.0.0.1:{self.port}"

    def _wait_for_port(self) -> int:
        # The server prints "attattr-server listening on port N" once it serves.
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if sel.select(timeout=deadline - time.monotonic()):
                line = self.proc.stdout.readline()
                if not line:  # EOF: the server exited
                    break
                if "listening on port" in line:
                    return int(line.rsplit(" ", 1)[1])
        self.kill()
        raise RuntimeError(f"attattr-server did not start (exit {self.proc.returncode}):\n"
                           f"{self.stderr_text()}")

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self) -> int:
        """SIGTERM, then the exit code (drain: health NOT_SERVING, in-flight calls finish)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self):
        self.kill()
        self.proc.stdout.close()
        self.stderr.close()
        self.models_dir.cleanup()


@unittest.skipIf(_skip_reason() is not None, _skip_reason() or "")
class AttattrClientTest(unittest.TestCase):
    TEXT = "the movie was dull and far too long"

    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.channel, cls.stub = ac.connect(cls.server.address)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        try:
            code = cls.server.stop()  # SIGTERM after the calls above, errors included
            if code != 0:
                raise AssertionError(f"attattr-server exited {code} on SIGTERM:\n"
                                     f"{cls.server.stderr_text()}")
        finally:
            cls.server.close()

    def explain(self, text=TEXT, **kwargs):
        return ac.explain(self.stub, ac.build_explain_request("sst2", text, **kwargs), 60)

    def assert_rpc_error(self, code, fn, *args):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        return cm.exception.details()

    def test_list_models(self):
        models = ac.list_models(self.stub, 10)
        self.assertEqual([m.name for m in models], ["sst2"])
        self.assertEqual(models[0].num_layers, 4)

    def test_get_model(self):
        m = ac.get_model(self.stub, "sst2", 10)
        self.assertEqual(m.name, "sst2")
        self.assertEqual((m.num_layers, m.num_heads, m.hidden_size), (4, 8, 256))
        self.assertTrue(m.has_classifier)
        self.assertEqual(list(m.labels), ["negative", "positive"])

    def test_explain(self):
        a = self.explain()
        self.assertEqual(a.tokens[0], "[CLS]")
        self.assertEqual(a.tokens[-1], "[SEP]")
        self.assertEqual(len(a.input_ids), len(a.tokens))
        self.assertIn(a.prediction.label, ("positive", "negative"))
        self.assertEqual(len(a.prediction.probabilities), 2)
        self.assertAlmostEqual(sum(a.prediction.probabilities), 1.0, places=4)
        self.assertEqual(a.target_class, a.prediction.predicted)
        self.assertEqual([l.layer for l in a.layers], [0, 1, 2, 3])
        n = len(a.tokens)
        for l in a.layers:
            # Default: m = 8 Gauss-Legendre nodes, integration error well under 1e-3.
            self.assertLess(l.completeness_gap, 1e-3, f"layer {l.layer}")
            self.assertEqual(len(l.top_connections), 10)  # default top_k of the client
            scores = [c.score for c in l.top_connections]
            self.assertEqual(scores, sorted(scores, reverse=True), f"layer {l.layer}")
            for c in l.top_connections:
                self.assertEqual(c.layer, l.layer)
                self.assertTrue(0 <= c.head < l.num_heads and 0 <= c.query < n and 0 <= c.key < n)
        d = ac.attribution_to_dict(a)  # JSON-ready, as the CLI prints it
        json.dumps(d)
        self.assertEqual(len(d["layers"]), 4)

    def test_explain_options(self):
        a = self.explain("a gripping film", text_pair="i loved it", target="logit:0",
                         rule="trapezoid", steps=16, layers=[0, 3], top_k=3)
        self.assertEqual([l.layer for l in a.layers], [0, 3])
        self.assertEqual(a.target_class, 0)
        self.assertEqual(list(a.tokens).count("[SEP]"), 2)
        self.assertIn(1, a.token_type_ids)
        for l in a.layers:
            self.assertEqual(len(l.top_connections), 3)
            self.assertAlmostEqual(l.target_at_full, a.prediction.logits[0], places=4)

    def test_fp16_matrices_match_fp32(self):
        full = self.explain(layers=[1], top_k=0, head_summed=True)
        half = self.explain(layers=[1], top_k=0, head_summed=True, fp16=True)
        t32, t16 = full.layers[0].head_summed, half.layers[0].head_summed
        self.assertEqual(t32.WhichOneof("data"), "f32")
        self.assertEqual(t16.WhichOneof("data"), "f16")
        shape32, v32 = ac.tensor_values(t32)
        shape16, v16 = ac.tensor_values(t16)
        n = len(full.tokens)
        self.assertEqual(shape32, [n, n])
        self.assertEqual(shape16, [n, n])
        self.assertEqual(len(t16.f16), 2 * n * n)
        for x, y in zip(v32, v16):
            self.assertTrue(math.isclose(x, y, rel_tol=2e-3, abs_tol=1e-6), (x, y))
        # The head-summed matrix sums to the layer's attribution sum.
        self.assertAlmostEqual(sum(v32), full.layers[0].attribution_sum, places=3)
        self.assertEqual(len(ac.tensor_to_nested(t16)), n)

    def test_invalid_argument_names_field(self):
        details = self.assert_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, self.explain, "")
        self.assertIn("example.text", details)

    def test_not_found(self):
        details = self.assert_rpc_error(grpc.StatusCode.NOT_FOUND, ac.get_model, self.stub,
                                        "no-such-model", 10)
        self.assertIn("no-such-model", details)
        self.assert_rpc_error(grpc.StatusCode.NOT_FOUND, ac.explain, self.stub,
                              ac.build_explain_request("no-such-model", "hello"), 10)

    def test_health_serving(self):
        if health_pb2_grpc is not None:  # grpcio-health-checking (requirements.txt)
            health = health_pb2_grpc.HealthStub(self.channel)
            for service in ("", "attattr.v1.Attattr"):
                reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                self.assertEqual(reply.status, health_pb2.HealthCheckResponse.SERVING, service)
        # The client's raw call, with no extra package.
        self.assertEqual(ac.health_status(self.channel, "", 10), "SERVING")
        self.assertEqual(ac.health_status(self.channel, "attattr.v1.Attattr", 10), "SERVING")

    def test_cli(self):
        def cli(*args):
            return subprocess.run(
                [sys.executable, str(HERE / "attattr_client.py"), "--server",
                 self.server.address, *args], capture_output=True, text=True, timeout=60)

        r = cli("models")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)[0]["name"], "sst2")
        r = cli("explain", "--model", "sst2", "--text", self.TEXT, "--layers", "0,3",
                "--top-k", "2", "--deadline", "30")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["tokens"][0], "[CLS]")
        self.assertEqual([l["layer"] for l in out["layers"]], [0, 3])
        self.assertEqual(len(out["layers"][0]["top_connections"]), 2)
        r = cli("explain", "--model", "sst2", "--text", "")
        self.assertEqual(r.returncode, 1)
        self.assertIn("INVALID_ARGUMENT", r.stderr)
        self.assertIn("example.text", r.stderr)


@unittest.skipIf(_skip_reason() is not None, _skip_reason() or "")
class JobTest(unittest.TestCase):
    """The long-running path: SubmitJob -> WaitJob -> GetJobResult (README's job example)."""
    TEXTS = ["a gripping , beautifully acted film", ("the movie was dull", "far too long")]

    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.channel, cls.stub = ac.connect(cls.server.address)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        try:
            code = cls.server.stop()
            if code != 0:
                raise AssertionError(f"attattr-server exited {code} on SIGTERM:\n"
                                     f"{cls.server.stderr_text()}")
        finally:
            cls.server.close()

    def test_submit_wait_result(self):
        spec = ac.build_attribution_job("sst2", self.TEXTS, steps=4, layers=[0, 3], top_k=3,
                                        head_summed=True, fp16=True)
        job = ac.submit_job(self.stub, spec, request_id="py-job-1", deadline_s=30)
        self.assertTrue(job.name.startswith("jobs/"), job.name)
        self.assertEqual(job.request_id, "py-job-1")
        self.assertEqual(ac.job_pb2.JobKind.Name(job.kind), "ATTRIBUTION")
        # The same request id returns the same job.
        self.assertEqual(ac.submit_job(self.stub, spec, "py-job-1", 30).name, job.name)

        done = ac.wait_job(self.stub, job.name, timeout_s=120, deadline_s=30)
        self.assertEqual(ac.job_pb2.JobState.Name(done.state), "SUCCEEDED", done.error_message)
        result, size = ac.read_job_result(self.stub, job.name, deadline_s=60)
        self.assertEqual(size, done.result_size_bytes)
        examples = result.attribution.examples
        self.assertEqual(len(examples), 2)
        for item, a in zip(self.TEXTS, examples):
            text, pair = (item, None) if isinstance(item, str) else item
            # The same numbers as a synchronous Explain of that example (batching aside).
            e = self.explain_like_job(text, pair)
            self.assertEqual(list(a.tokens), list(e.tokens))
            self.assertEqual(a.prediction.label, e.prediction.label)
            self.assertEqual([l.layer for l in a.layers], [0, 3])
            for lj, le in zip(a.layers, e.layers):
                self.assertAlmostEqual(lj.target_at_full, le.target_at_full, places=4)
                self.assertAlmostEqual(lj.attribution_sum, le.attribution_sum, places=3)
                self.assertEqual(len(lj.top_connections), 3)
                for cj, ce in zip(lj.top_connections, le.top_connections):
                    self.assertTrue(math.isclose(cj.score, ce.score, rel_tol=1e-3, abs_tol=1e-5),
                                    (cj, ce))
                shape, values = ac.tensor_values(lj.head_summed)  # fp16
                n = len(a.tokens)
                self.assertEqual(shape, [n, n])
                self.assertAlmostEqual(sum(values), lj.attribution_sum, places=2)
        self.assertEqual(list(examples[1].tokens).count("[SEP]"), 2)
        d = ac.job_result_to_dict(done, result)
        json.dumps(d)
        self.assertEqual(d["job"]["state"], "SUCCEEDED")

    def explain_like_job(self, text, pair):
        return ac.explain(self.stub, ac.build_explain_request(
            "sst2", text, text_pair=pair, steps=4, layers=[0, 3], top_k=3), 60)

    def test_run_attribution_job(self):
        job, result = ac.run_attribution_job(
            self.stub, ac.build_attribution_job("sst2", ["fine"], steps=2, layers=[1], top_k=1),
            timeout_s=120, deadline_s=30)
        self.assertEqual(ac.job_pb2.JobState.Name(job.state), "SUCCEEDED", job.error_message)
        self.assertEqual(len(result.attribution.examples), 1)

    def test_unknown_job(self):
        with self.assertRaises(grpc.RpcError) as cm:
            ac.get_job(self.stub, "jobs/no-such-job", 10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND, cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            ac.wait_job(self.stub, "jobs/no-such-job", 1, 10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND, cm.exception.details())

    def test_cli(self):
        def cli(*args):
            return subprocess.run(
                [sys.executable, str(HERE / "attattr_client.py"), "--server",
                 self.server.address, *args], capture_output=True, text=True, timeout=120)

        r = cli("job", "--model", "sst2", "--text", "a gripping film", "--text", "a dull one",
                "--text-pair", "i left early", "--steps", "2", "--layers", "3", "--top-k", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["job"]["state"], "SUCCEEDED")
        self.assertEqual(len(out["examples"]), 2)
        self.assertEqual(len(out["examples"][0]["layers"][0]["top_connections"]), 2)
        r = cli("submit", "--model", "sst2", "--text", "fine", "--steps", "2", "--layers", "0")
        self.assertEqual(r.returncode, 0, r.stderr)
        name = json.loads(r.stdout)["name"]
        r = cli("wait", name, "--timeout", "120")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["state"], "SUCCEEDED")
        r = cli("result", name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["examples"][0]["tokens"][1], "fine")
        r = cli("result", "jobs/no-such-job")
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)


@unittest.skipIf(_skip_reason() is not None, _skip_reason() or "")
class ServerShutdownTest(unittest.TestCase):
    def test_sigterm_exits_zero(self):
        server = Server()
        try:
            channel, stub = ac.connect(server.address)
            with channel:
                ac.explain(stub, ac.build_explain_request("sst2", "fine", top_k=1), 60)
            self.assertEqual(server.stop(), 0, server.stderr_text())
        finally:
            server.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
