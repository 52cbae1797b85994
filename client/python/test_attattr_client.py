#!/usr/bin/env python3
"""End-to-end test of the Python example client against a real attattr-server (unittest).

Starts build/bin/attattr-server itself on a free port, serving the shared SST-2 test model
(../shared/models/sst2-bert-l4-h256, linked as 'sst2'), then checks ListModels, GetModel,
Explain (tokens, prediction, completeness gaps, top connections, fp16 matrices), the error codes
(INVALID_ARGUMENT naming the field, NOT_FOUND), the grpc.health.v1 Check, the CLI, the job round
trip (SubmitJob, WaitJob, GetJobResult chunks reassembled; results equal Explain's), and that
SIGTERM stops the server with exit code 0.

Security (issue 14): unit tests of the CLI's --tls*/--token-file flags and $ATTATTR_TOKEN
(SecurityOptionsTest, no server needed); every RPC helper through TLS, mutual TLS and bearer-token
channels against an in-process Python gRPC server (FakeServerSecurityTest, needs the openssl CLI);
and the same against attattr-server started with --tls-cert/--tls-key[/--tls-client-ca] and
--auth-tokens (SecureServerTest, MutualTlsServerTest). The certificates (a CA, a server
certificate with SAN DNS:localhost,IP:127.0.0.1, a client certificate, and an unrelated CA) are
made with the openssl CLI in a temporary directory.

Run with client/python/run_tests.sh (creates the venv), or .venv/bin/python -m unittest -v.
Skips (with the reason) when the shared folder, the server binary or the stubs are absent.
Environment: ATTATTR_SHARED_DIR (default: ATTATTR_SHARED_DIR_DEFAULT, which CTest sets from the
CMake cache, else the repository's sibling ../shared),
ATTATTR_SERVER_BIN (default: <repo>/build/bin/attattr-server).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SHARED = Path(os.environ.get("ATTATTR_SHARED_DIR") or os.environ.get("ATTATTR_SHARED_DIR_DEFAULT")
             or REPO.parent / "shared")
MODEL_DIR = SHARED / "models" / "sst2-bert-l4-h256"
SERVER_BIN = Path(os.environ.get("ATTATTR_SERVER_BIN") or REPO / "build" / "bin" / "attattr-server")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
OPENSSL = shutil.which("openssl")

sys.path.insert(0, str(HERE))
_import_error = None
try:
    import grpc
    import attattr_client as ac
except ImportError as e:  # reported as a skip below
    _import_error = e

try:
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # grpcio-health-checking
except ImportError as e:  # requirements.txt pins it: its absence fails the tests that use it
    health_pb2 = health_pb2_grpc = None
    _health_import_error = e
else:
    _health_import_error = None


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


def _security_skip_reason():
    """Why the attattr-server TLS/token tests cannot run here, or None."""
    reason = _skip_reason()
    if reason is not None:
        return reason
    if OPENSSL is None:
        return "no openssl CLI to make the test certificates (Debian: apt-get install openssl)"
    return None


class RequiredDependenciesTest(unittest.TestCase):
    """Where ATTATTR_REQUIRE_TEST_DEPS=1 (.ci/run sets it), a dependency the other tests would skip
    without is a failure: CI installs everything, so a skip there hides a broken set-up."""

    def test_nothing_the_tests_need_is_missing(self):
        if os.environ.get("ATTATTR_REQUIRE_TEST_DEPS") != "1":
            self.skipTest("ATTATTR_REQUIRE_TEST_DEPS is not 1")
        self.assertIsNone(_security_skip_reason())
        self.assertIsNone(_health_import_error)


def _cli_env(**extra):
    """The environment for a CLI subprocess: ours without ATTATTR_TOKEN / ATTATTR_SERVER (so
    that a developer's own settings do not leak in), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("ATTATTR_TOKEN", "ATTATTR_SERVER")}
    env.update(extra)
    return env


def run_cli(address, *args, timeout=60, **env):
    """Runs `attattr_client.py --server address *args` with _cli_env(**env) and returns the
    CompletedProcess (text stdout/stderr). A CLI that has not exited after `timeout` seconds
    fails the test with its Python stacks: the child runs with faulthandler on, so SIGABRT makes
    it print every thread's traceback to its stderr, which the failure message quotes (a hang
    once seen in CI, not reproduced since, must say where it was next time)."""
    argv = [sys.executable, str(HERE / "attattr_client.py"), "--server", address, *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_cli_env(PYTHONFAULTHANDLER="1", **env))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise AssertionError(f"{' '.join(argv[1:])} did not exit within {timeout} s; its "
                             f"stderr and stacks at SIGABRT:\n{err[-6000:]}") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


class Server:
    """attattr-server as a child process on 127.0.0.1:<free port> with the 'sst2' model, its job
    store in a temporary directory; `extra_args` are added to its command line."""

    def __init__(self, extra_args=()):
        self.models_dir = tempfile.TemporaryDirectory(prefix="attattr-models-")
        os.symlink(MODEL_DIR, os.path.join(self.models_dir.name, "sst2"))
        self.stderr = tempfile.TemporaryFile(mode="w+")
        # The job store: not attattr-jobs.db in the working directory.
        extra = ["--store", os.path.join(self.models_dir.name, "jobs.db")]
        self.proc = subprocess.Popen(
            [str(SERVER_BIN), "--models", self.models_dir.name, "--listen", "127.0.0.1:0",
             "--metrics-listen", "127.0.0.1:0", "--threads", "1", "--log-level", "warn",
             *extra, *extra_args],
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
        # Stored as loaded (--weights fp32, the default): 4 bytes per parameter.
        self.assertEqual(ac.model_to_dict(m)["weights"], "FP32")
        self.assertEqual(m.weight_bytes, 4 * m.parameter_count)

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

    def test_precision(self):
        # The server's default (fp32 here) unless asked; bf16 agrees within README's tolerance.
        exact = self.explain(layers=[0], top_k=0, full_matrices=True)
        self.assertEqual(exact.precision, ac.attribution_pb2.FP32)
        self.assertEqual(ac.attribution_to_dict(exact)["precision"], "FP32")
        low = self.explain(layers=[0], top_k=0, full_matrices=True, precision="bf16")
        self.assertEqual(low.precision, ac.attribution_pb2.BF16)
        a = list(exact.layers[0].attribution.f32.values)
        b = list(low.layers[0].attribution.f32.values)
        self.assertEqual(len(a), len(b))
        error = max(abs(x - y) for x, y in zip(a, b)) / max(abs(x) for x in a)
        self.assertLess(error, 1e-2)
        self.assertGreater(error, 0.0)  # really computed in bf16
        self.assertEqual(low.layers[0].target_at_full, exact.layers[0].target_at_full)

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
        self.assertIsNone(_health_import_error, "grpcio-health-checking (requirements.txt)")
        health = health_pb2_grpc.HealthStub(self.channel)
        for service in ("", "attattr.v1.Attattr"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            self.assertEqual(reply.status, health_pb2.HealthCheckResponse.SERVING, service)
        # The client's raw call, with no extra package.
        self.assertEqual(ac.health_status(self.channel, "", 10), "SERVING")
        self.assertEqual(ac.health_status(self.channel, "attattr.v1.Attattr", 10), "SERVING")

    def test_cli(self):
        def cli(*args):
            return run_cli(self.server.address, *args)

        r = cli("models")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)[0]["name"], "sst2")
        # Regression (client review): --deadline 0 means no limit, as in the C++ CLI; gRPC Python
        # took timeout=0 as already expired and failed every call.
        r = cli("models", "--deadline", "0")
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
            self.assertEqual([l.layer for l in e.layers], [0, 3])
            for lj, le in zip(a.layers, e.layers):
                self.assertAlmostEqual(lj.target_at_full, le.target_at_full, places=4)
                self.assertAlmostEqual(lj.attribution_sum, le.attribution_sum, places=3)
                self.assertEqual(len(lj.top_connections), 3)
                self.assertEqual(len(le.top_connections), 3)
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
            return run_cli(self.server.address, *args, timeout=120)

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


@unittest.skipIf(_import_error is not None, str(_import_error))
class JobResultToDictTest(unittest.TestCase):
    """Regression (client review): the result of a HEAD_IMPORTANCE or TRIGGER_SEARCH job printed as
    `"examples": []`, its contents dropped; it is the result message as JSON now."""

    def test_every_result_kind(self):
        job = ac.job_pb2.Job(name="jobs/x", state=ac.job_pb2.SUCCEEDED)
        result = ac.job_pb2.JobResult()
        result.head_importance.export_path = "pruned/half"
        out = ac.job_result_to_dict(job, result)
        self.assertEqual(out["head_importance"]["export_path"], "pruned/half")
        self.assertNotIn("examples", out)
        result = ac.job_pb2.JobResult()
        result.attribution.SetInParent()
        self.assertEqual(ac.job_result_to_dict(job, result)["examples"], [])

    def test_written_json_is_the_dicts_json_one_example_at_a_time(self):
        # Regression (client review): `result` built every example's nested lists before printing
        # (~8-15x the result in memory); it streams them now, with the same text.
        job = ac.job_pb2.Job(name="jobs/x", state=ac.job_pb2.SUCCEEDED)
        job.spec.model = "sst2"
        for count in (0, 1, 3):
            result = ac.job_pb2.JobResult()
            result.attribution.SetInParent()
            for i in range(count):
                a = result.attribution.examples.add()
                a.tokens.extend(["[CLS]", f"w{i}", "[SEP]"])
                layer = a.layers.add()
                layer.layer = i
                layer.attribution_sum = 0.5 + i
                layer.head_summed.shape.extend([3, 3])
                layer.head_summed.f32.values.extend([0.25 * k for k in range(9)])
            stream = io.StringIO()
            ac.write_job_result_json(job, result, stream)
            self.assertEqual(stream.getvalue(),
                             json.dumps(ac.job_result_to_dict(job, result), indent=2), count)
        result = ac.job_pb2.JobResult()
        result.trigger_search.mined_examples = 4
        stream = io.StringIO()
        ac.write_job_result_json(job, result, stream)
        self.assertEqual(json.loads(stream.getvalue())["trigger_search"]["mined_examples"], 4)

    def test_a_channel_close_that_hangs_is_not_waited_for(self):
        # gRPC Python's Channel.close can deadlock (grpc/grpc#20026; a CLI that never exited after
        # a refused mutual-TLS handshake, seen once in CI): the CLI waits a bounded time.
        class Hanging:
            def close(self):
                time.sleep(30)

        class Quick:
            def close(self):
                pass

        start = time.monotonic()
        self.assertFalse(ac._close_channel(Hanging(), 0.2))
        self.assertLess(time.monotonic() - start, 5)
        self.assertTrue(ac._close_channel(Quick(), 0.2))

    def test_timeout(self):
        self.assertIsNone(ac._timeout(0))
        self.assertIsNone(ac._timeout(-1))
        self.assertEqual(ac._timeout(2.5), 2.5)


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


# --- Security: TLS, mutual TLS and bearer tokens (issue 14) ---------------------------------

def _openssl(cwd, *args):
    r = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed (exit {r.returncode}):\n{r.stderr}")


class Pki:
    """Test certificates made with the openssl CLI (EC P-256 keys, valid 2 days) in a temporary
    directory:
      ca.pem                      the CA everything below except stranger-client is signed by
      server.pem / server.key     SAN DNS:localhost,IP:127.0.0.1 (serverAuth)
      alt-server.pem / .key       SAN DNS:attattr.internal only (for tls_server_name)
      client.pem / client.key     a client certificate (clientAuth, CN py-test-client)
      other-ca.pem                an unrelated CA ("wrong CA")
      stranger-client.pem / .key  a client certificate signed by other-ca
    """

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="attattr-pki-")
        self._ca("ca", "attattr test CA")
        self._ca("other-ca", "attattr unrelated test CA")
        self._leaf("server", "ca", "localhost", "serverAuth",
                   "DNS:localhost,IP:127.0.0.1")
        self._leaf("alt-server", "ca", "attattr.internal", "serverAuth", "DNS:attattr.internal")
        self._leaf("client", "ca", "py-test-client", "clientAuth", None)
        self._leaf("stranger-client", "other-ca", "py-test-stranger", "clientAuth", None)
        for name in os.listdir(self.dir.name):  # private keys readable by their owner only
            if name.endswith(".key"):
                os.chmod(self.path(name), 0o600)

    def path(self, name: str) -> str:
        return os.path.join(self.dir.name, name)

    def read(self, name: str) -> bytes:
        with open(self.path(name), "rb") as f:
            return f.read()

    _KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")

    def _ca(self, name, cn):
        _openssl(self.dir.name, "req", "-x509", "-new", *self._KEY, "-keyout", f"{name}.key",
                 "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={cn}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _leaf(self, name, ca, cn, usage, san):
        ext = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature",
               f"extendedKeyUsage={usage}"]
        if san:
            ext.append(f"subjectAltName={san}")
        with open(self.path(f"{name}.ext"), "w") as f:
            f.write("\n".join(ext) + "\n")
        _openssl(self.dir.name, "req", "-new", *self._KEY, "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        _openssl(self.dir.name, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem",
                 "-CAkey", f"{ca}.key", "-set_serial", str(secrets.randbits(63)), "-days", "2",
                 "-extfile", f"{name}.ext", "-out", f"{name}.pem")

    def cleanup(self):
        self.dir.cleanup()


_pki_instance = None
_pki_lock = threading.Lock()


def _pki() -> Pki:
    """The module's one Pki, made on first use (about 0.1 s) and removed by tearDownModule."""
    global _pki_instance
    with _pki_lock:
        if _pki_instance is None:
            _pki_instance = Pki()
        return _pki_instance


def tearDownModule():
    global _pki_instance
    if _pki_instance is not None:
        _pki_instance.cleanup()
        _pki_instance = None


def _write(directory: str, name: str, text: str) -> str:
    """Writes `text` to directory/name, mode 0600 (tokens are secrets), and returns the path."""
    path = os.path.join(directory, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", newline="") as f:
        f.write(text)
    return path


FAKE_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@unittest.skipIf(_import_error is not None, f"python client unavailable ({_import_error})")
class ParseTargetTest(unittest.TestCase):
    """The --target spellings, as the attattr CLI's (no server)."""

    def test_spellings(self):
        T = ac.attribution_pb2.Target
        self.assertEqual(ac.parse_target("predicted").kind, T.PREDICTED_CLASS_PROB)
        self.assertEqual(ac.parse_target("logprob:3"), T(kind=T.CLASS_LOG_PROB, class_index=3))
        self.assertEqual(ac.parse_target("next_token: Paris"),
                         T(kind=T.CLASS_PROB, next_token=" Paris"))
        self.assertEqual(ac.parse_target("next_token_logprob: the"),
                         T(kind=T.CLASS_LOG_PROB, next_token=" the"))
        self.assertEqual(ac.parse_target("sequence_logprob: is good"),
                         T(kind=T.SEQUENCE_LOG_PROB, continuation=" is good"))
        for bad in ("next_token:", "logprob:x", "sequence_logprob", "bogus:1"):
            with self.assertRaises(ValueError, msg=bad):
                ac.parse_target(bad)


@unittest.skipIf(_import_error is not None, f"python client unavailable ({_import_error})")
class TerminalTextTest(unittest.TestCase):
    """Reply text written to a terminal cannot drive it; pipes get it unchanged."""

    class _Stream(io.StringIO):
        def __init__(self, tty: bool):
            super().__init__()
            self._tty = tty

        def isatty(self) -> bool:
            return self._tty

    def test_terminal_and_pipe(self):
        hostile = "job\x1b]0;owned\x07 a\tb\nc\x7f\u009b31m naïve"
        self.assertEqual(ac.terminal_text(hostile, self._Stream(True)),
                         "job\u241b]0;owned\u2407 a\tb\nc\u2421\ufffd31m naïve")
        self.assertEqual(ac.terminal_text(hostile, self._Stream(False)), hostile)
        tty = self._Stream(True)
        with mock.patch.object(sys, "stderr", tty):
            ac._error("INTERNAL: \x1b[2J")
        self.assertEqual(tty.getvalue(), "error: INTERNAL: \u241b[2J\n")


class SecurityOptionsTest(unittest.TestCase):
    """The CLI's security flags and token sourcing, and connect()'s argument checks (no server)."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="attattr-flags-")
        self.addCleanup(self.tmp.cleanup)
        self.pem = _write(self.tmp.name, "ca.pem", FAKE_PEM)

    def options(self, *argv, environ=None):
        args = ac._parser().parse_args([*argv, "models"])
        return ac.connect_options(args, {} if environ is None else environ)

    def main(self, *argv, environ=None):
        """ac.main(argv + ['models']) in-process: (exit code, stderr)."""
        err = io.StringIO()
        env = _cli_env(**(environ or {}))
        with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(io.StringIO()):
            code = ac.main([*argv, "models"])
        return code, err.getvalue()

    def test_flags_parse_on_the_main_parser(self):
        key = _write(self.tmp.name, "c.key", "-----BEGIN PRIVATE KEY-----\nx\n")
        tok = _write(self.tmp.name, "tok", "s3cret\n")
        args = ac._parser().parse_args(
            ["--server", "h:1", "--tls-ca", self.pem, "--tls-cert", self.pem, "--tls-key", key,
             "--tls-server-name", "attattr.internal", "--token-file", tok, "health"])
        self.assertEqual((args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name,
                          args.token_file, args.tls, args.command),
                         (self.pem, self.pem, key, "attattr.internal", tok, False, "health"))
        o = ac.connect_options(args, {})
        self.assertEqual(o["tls_ca"], FAKE_PEM.encode())
        self.assertEqual(o["tls_cert"], FAKE_PEM.encode())
        self.assertTrue(o["tls_key"].startswith(b"-----BEGIN PRIVATE KEY"))
        self.assertEqual(o["tls_server_name"], "attattr.internal")
        self.assertEqual(o["token"], "s3cret")

    def test_defaults_are_plaintext_without_token(self):
        self.assertEqual(self.options(), {"tls": False, "token": None, "tls_ca": None,
                                          "tls_cert": None, "tls_key": None,
                                          "plaintext_token": False})
        self.assertEqual(self.options("--tls")["tls"], True)
        self.assertEqual(self.options("--plaintext-token")["plaintext_token"], True)

    def test_token_sources(self):
        tok = _write(self.tmp.name, "tok", "from-file\n")
        self.assertEqual(self.options(environ={"ATTATTR_TOKEN": "from-env"})["token"],
                         "from-env")
        # The file wins over the environment.
        self.assertEqual(self.options("--token-file", tok,
                                      environ={"ATTATTR_TOKEN": "from-env"})["token"],
                         "from-file")
        self.assertEqual(ac.token_from(None, {}), None)
        self.assertEqual(ac.token_from(None, {"ATTATTR_TOKEN": "t\n"}), "t")

    def test_token_strips_one_trailing_newline(self):
        for text, want in (("tok", "tok"), ("tok\n", "tok"), ("tok\r\n", "tok"),
                           ("a b=c/+", "a b=c/+")):
            path = _write(self.tmp.name, "tok", text)
            self.assertEqual(ac.token_from(path, {}), want, repr(text))
        for text in ("tok\n\n", "tok\nmore", "t\tok", "tök"):
            path = _write(self.tmp.name, "tok", text)
            with self.assertRaises(ValueError, msg=repr(text)) as cm:
                ac.token_from(path, {})
            self.assertIn("--token-file", str(cm.exception))

    def test_empty_token_is_an_error(self):
        for text in ("", "\n", "\r\n"):
            path = _write(self.tmp.name, "tok", text)
            code, err = self.main("--token-file", path)
            self.assertEqual(code, 2, err)
            self.assertIn(f"--token-file {path}: the token is empty", err)
        code, err = self.main(environ={"ATTATTR_TOKEN": ""})
        self.assertEqual(code, 2, err)
        self.assertIn("$ATTATTR_TOKEN: the token is empty", err)

    def test_missing_or_unreadable_file_names_the_flag(self):
        missing = os.path.join(self.tmp.name, "no-such-file")
        key = _write(self.tmp.name, "c.key", "-----BEGIN PRIVATE KEY-----\nx\n")
        for argv, flag in ((["--tls-ca", missing], "--tls-ca"),
                           (["--tls-cert", missing, "--tls-key", key], "--tls-cert"),
                           (["--tls-cert", self.pem, "--tls-key", missing], "--tls-key"),
                           (["--token-file", missing], "--token-file"),
                           (["--token-file", self.tmp.name], "--token-file"),  # a directory
                           (["--tls-ca", self.tmp.name], "--tls-ca")):
            code, err = self.main(*argv)
            self.assertEqual(code, 2, (argv, err))
            self.assertIn(f"error: {flag} ", err)
            self.assertIn("cannot read", err)
            self.assertNotIn("Traceback", err)

    def test_non_pem_file_is_an_error(self):
        junk = _write(self.tmp.name, "junk.pem", "not a certificate\n")
        code, err = self.main("--tls-ca", junk)
        self.assertEqual(code, 2, err)
        self.assertIn(f"--tls-ca {junk}: not PEM", err)

    def test_cert_and_key_go_together(self):
        for argv in (["--tls-cert", self.pem], ["--tls-key", self.pem]):
            code, err = self.main(*argv)
            self.assertEqual(code, 2, err)
            self.assertIn("--tls-cert and --tls-key go together", err)
        with self.assertRaisesRegex(ValueError, "tls_cert and tls_key go together"):
            ac.connect("127.0.0.1:1", tls_cert=FAKE_PEM.encode())

    def test_cli_error_exits_2_without_traceback(self):
        r = run_cli("127.0.0.1:1", "--tls-ca", os.path.join(self.tmp.name, "missing.pem"),
                    "models")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("error: --tls-ca ", r.stderr)
        self.assertIn("missing.pem: cannot read: No such file or directory", r.stderr)
        self.assertNotIn("Traceback", r.stderr)

    def test_connect_arguments(self):
        # The positional call of before still works and makes a plaintext channel.
        channel, stub = ac.connect("127.0.0.1:1")
        channel.close()
        self.assertIsNotNone(stub)
        for kwargs in ({"token": "t"}, {"tls": True}, {"tls_ca": self.pem, "token": "t"},
                       {"tls_server_name": "x"}, {"tls_ca": Path(self.pem)}):
            channel, _ = ac.connect("127.0.0.1:1", **kwargs)
            with channel:  # a context manager, interceptor or not
                self.assertTrue(hasattr(channel, "unary_unary"))
        with self.assertRaisesRegex(ValueError, "token: the token is empty"):
            ac.connect("127.0.0.1:1", token="")

    def test_token_is_not_sent_in_plain_text_to_another_host(self):
        # Regression (security review): a forgotten --tls sent the token in plain text anywhere.
        for server in ("attattr.prod:50051", "10.0.0.1:50051", "dns:///attattr:1",
                       "127.evil.example:1", "[::2]:1", "[::ffff:127.0.0.1]:1",
                       # address lists: the channel may move on to any entry
                       "ipv4:127.0.0.1:50051,10.0.0.5", "ipv6:[::1]:1,[2001:db8::5]:50051"):
            self.assertFalse(ac.is_loopback(server), server)
            with self.assertRaisesRegex(ValueError, "refusing to send the bearer token in plain "
                                                    "text to a host that is not loopback"):
                ac.connect(server, token="t")
            for kwargs in ({"token": "t", "plaintext_token": True}, {"token": "t", "tls": True},
                           {}):
                channel, _ = ac.connect(server, **kwargs)
                channel.close()
        for server in ("localhost:1", "127.0.0.2:1", "[::1]:1", "::1", "ipv4:127.0.0.1:1",
                       "dns:///localhost:1", "unix:/tmp/x.sock"):
            self.assertTrue(ac.is_loopback(server), server)
            channel, _ = ac.connect(server, token="t")
            channel.close()
        r = run_cli("10.255.255.1:50051", "models", ATTATTR_TOKEN="t")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("refusing to send the bearer token", r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        with self.assertRaisesRegex(ValueError, "tls_ca .*no-such: cannot read"):
            ac.connect("127.0.0.1:1", tls_ca=os.path.join(self.tmp.name, "no-such"))


class FakeAttattr(ac.service_grpc.AttattrServicer if _import_error is None else object):
    """An in-process stand-in for attattr-server answering every RPC the client helpers use,
    with canned replies; it records each call's `authorization` metadata and, when given a
    token, answers UNAUTHENTICATED unless it is exactly `Bearer <token>`."""

    def __init__(self, token=None):
        self.token = token
        self.seen = []  # per call: the list of authorization values

    def check(self, context):
        auth = [v for k, v in context.invocation_metadata() if k == "authorization"]
        self.seen.append(auth)
        if self.token is not None and auth != [f"Bearer {self.token}"]:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

    def ListModels(self, request, context):
        self.check(context)
        return ac.service_pb2.ListModelsResponse(models=[ac.service_pb2.Model(name="fake")])

    def GetModel(self, request, context):
        self.check(context)
        return ac.service_pb2.Model(name=request.name)

    def Explain(self, request, context):
        self.check(context)
        r = ac.service_pb2.ExplainResponse()
        r.attribution.tokens.extend(["[CLS]", request.example.text, "[SEP]"])
        return r

    def SubmitJob(self, request, context):
        self.check(context)
        return ac.job_pb2.Job(name="jobs/1", request_id=request.request_id,
                              state=ac.job_pb2.QUEUED)

    def GetJob(self, request, context):
        self.check(context)
        return ac.job_pb2.Job(name=request.name, state=ac.job_pb2.SUCCEEDED)

    def WaitJob(self, request, context):
        return self.GetJob(request, context)

    def GetJobResult(self, request, context):  # server streaming
        self.check(context)
        result = ac.job_pb2.JobResult()
        result.attribution.examples.add(tokens=["[CLS]", "fine", "[SEP]"])
        data = result.SerializeToString()
        half = len(data) // 2
        yield ac.job_pb2.ResultChunk(index=0, count=2, data=data[:half])
        yield ac.job_pb2.ResultChunk(index=1, count=2, data=data[half:])


class FakeServer:
    """FakeAttattr plus a raw grpc.health.v1 Check on 127.0.0.1:<free port>: plaintext, or TLS
    with `cert` (a Pki name: 'server' or 'alt-server'), requiring a client certificate signed by
    the Pki's CA when client_ca."""

    def __init__(self, token=None, cert=None, client_ca=False):
        self.servicer = FakeAttattr(token)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        ac.service_grpc.add_AttattrServicer_to_server(self.servicer, self.server)

        def health_check(request, context):
            self.servicer.check(context)
            return b"\x08\x01"  # HealthCheckResponse{status: SERVING}

        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(
                health_check, request_deserializer=lambda b: b,
                response_serializer=lambda b: b)}),))
        if cert is None:
            port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            pki = _pki()
            creds = grpc.ssl_server_credentials(
                [(pki.read(f"{cert}.key"), pki.read(f"{cert}.pem"))],
                root_certificates=pki.read("ca.pem") if client_ca else None,
                require_client_auth=client_ca)
            port = self.server.add_secure_port("127.0.0.1:0", creds)
        self.address = f"127.0.0.1:{port}"
        self.server.start()

    def stop(self):
        self.server.stop(None).wait()


def assert_rpc_code(test, code, fn, *args):
    """`fn(*args)` raises an RpcError with `code`; returns its details."""
    with test.assertRaises(grpc.RpcError) as cm:
        fn(*args)
    test.assertEqual(cm.exception.code(), code, cm.exception.details())
    return cm.exception.details()


def call_every_helper(test, channel, stub):
    """Calls each RPC helper of the client once (unary calls, the GetJobResult stream, the raw
    health check) and checks the canned replies; returns the number of calls made."""
    test.assertEqual([m.name for m in ac.list_models(stub, 10)], ["fake"])
    test.assertEqual(ac.get_model(stub, "sst2", 10).name, "sst2")
    a = ac.explain(stub, ac.build_explain_request("sst2", "fine"), 10)
    test.assertEqual(list(a.tokens), ["[CLS]", "fine", "[SEP]"])
    test.assertEqual(ac.get_job(stub, "jobs/1", 10).name, "jobs/1")
    test.assertEqual(ac.health_status(channel, "", 10), "SERVING")
    # submit_job + wait_job + read_job_result (two result chunks).
    job, result = ac.run_attribution_job(stub, ac.build_attribution_job("sst2", ["fine"]),
                                         "r1", 10, 10)
    test.assertEqual(ac.job_pb2.JobState.Name(job.state), "SUCCEEDED")
    test.assertEqual(list(result.attribution.examples[0].tokens), ["[CLS]", "fine", "[SEP]"])
    return 8


@unittest.skipIf(_import_error is not None, f"python client unavailable ({_import_error})")
@unittest.skipIf(OPENSSL is None, "no openssl CLI to make the test certificates")
class FakeServerSecurityTest(unittest.TestCase):
    """connect()'s TLS, mutual TLS and token channels, each RPC helper through them, and the
    CLI flags, against the in-process FakeServer (no attattr-server or model needed)."""
    TOKEN = "fake-token-0123"

    def serve(self, **kwargs) -> FakeServer:
        server = FakeServer(**kwargs)
        self.addCleanup(server.stop)
        return server

    def connect(self, server, **kwargs):
        channel, stub = ac.connect(server.address, **kwargs)
        self.addCleanup(channel.close)
        return channel, stub

    assert_code = assert_rpc_code

    def test_plaintext_token_on_every_call(self):
        server = self.serve(token=self.TOKEN)
        n = call_every_helper(self, *self.connect(server, token=self.TOKEN))
        self.assertEqual(server.servicer.seen, [[f"Bearer {self.TOKEN}"]] * n)

    def test_plaintext_without_token(self):
        server = self.serve()
        call_every_helper(self, *self.connect(server))
        self.assertTrue(all(auth == [] for auth in server.servicer.seen))
        server = self.serve(token=self.TOKEN)
        _, stub = self.connect(server)
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED, ac.list_models, stub, 10)

    def test_tls_token_on_every_call(self):
        server = self.serve(token=self.TOKEN, cert="server")
        n = call_every_helper(self, *self.connect(server, tls_ca=_pki().path("ca.pem"),
                                                   token=self.TOKEN))
        self.assertEqual(server.servicer.seen, [[f"Bearer {self.TOKEN}"]] * n)

    def test_tls_missing_or_wrong_token(self):
        server = self.serve(token=self.TOKEN, cert="server")
        for token in (None, "wrong-token"):
            _, stub = self.connect(server, tls_ca=_pki().path("ca.pem"), token=token)
            self.assert_code(grpc.StatusCode.UNAUTHENTICATED, ac.list_models, stub, 10)

    def test_wrong_ca_is_unavailable(self):
        server = self.serve(cert="server")
        channel, stub = self.connect(server, tls_ca=_pki().path("other-ca.pem"),
                                     token=self.TOKEN)
        self.assert_code(grpc.StatusCode.UNAVAILABLE, ac.list_models, stub, 10)
        self.assert_code(grpc.StatusCode.UNAVAILABLE, ac.health_status, channel, "", 10)
        self.assertEqual(server.servicer.seen, [])  # the token never left the client

    def test_plaintext_client_to_tls_server_is_unavailable(self):
        server = self.serve(cert="server")
        _, stub = self.connect(server)
        self.assert_code(grpc.StatusCode.UNAVAILABLE, ac.list_models, stub, 10)

    def test_tls_server_name(self):
        server = self.serve(cert="alt-server")  # SAN DNS:attattr.internal only
        _, stub = self.connect(server, tls_ca=_pki().path("ca.pem"))
        self.assert_code(grpc.StatusCode.UNAVAILABLE, ac.list_models, stub, 10)
        call_every_helper(self, *self.connect(server, tls_ca=_pki().path("ca.pem"),
                                               tls_server_name="attattr.internal"))

    def test_mutual_tls(self):
        pki = _pki()
        server = self.serve(cert="server", client_ca=True, token=self.TOKEN)
        _, stub = self.connect(server, tls_ca=pki.path("ca.pem"), token=self.TOKEN)
        self.assert_code(grpc.StatusCode.UNAVAILABLE, ac.list_models, stub, 10)
        _, stub = self.connect(server, tls_ca=pki.path("ca.pem"), token=self.TOKEN,
                               tls_cert=pki.path("stranger-client.pem"),
                               tls_key=pki.path("stranger-client.key"))
        self.assert_code(grpc.StatusCode.UNAVAILABLE, ac.list_models, stub, 10)
        # PEM bytes work as well as paths.
        n = call_every_helper(self, *self.connect(
            server, tls_ca=pki.read("ca.pem"), tls_cert=pki.read("client.pem"),
            tls_key=pki.read("client.key"), token=self.TOKEN))
        self.assertEqual(server.servicer.seen, [[f"Bearer {self.TOKEN}"]] * n)

    def cli(self, server, *args, **env):
        return run_cli(server.address, *args, **env)

    def test_cli(self):
        pki = _pki()
        tmp = tempfile.TemporaryDirectory(prefix="attattr-cli-")
        self.addCleanup(tmp.cleanup)
        tok = _write(tmp.name, "token", self.TOKEN + "\n")
        server = self.serve(token=self.TOKEN, cert="server", client_ca=True)
        tls = ["--tls-ca", pki.path("ca.pem"), "--tls-cert", pki.path("client.pem"),
               "--tls-key", pki.path("client.key")]
        r = self.cli(server, *tls, "--token-file", tok, "models")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)[0]["name"], "fake")
        r = self.cli(server, *tls, "health", ATTATTR_TOKEN=self.TOKEN)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"status": "SERVING"})
        r = self.cli(server, *tls, "models")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("error: UNAUTHENTICATED", r.stderr)
        r = self.cli(server, "--tls-ca", pki.path("ca.pem"), "--token-file", tok, "models")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("error: UNAVAILABLE", r.stderr)
        # Plaintext with a token (the interceptor path).
        server = self.serve(token=self.TOKEN)
        r = self.cli(server, "--token-file", tok, "result", "jobs/1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["examples"][0]["tokens"][1], "fine")


class _SecureServerBase(unittest.TestCase):
    """attattr-server with TLS (server.pem) and --auth-tokens (principal 'py-test' holding
    TOKEN); subclasses add flags in EXTRA (e.g. --tls-client-ca)."""
    TOKEN = "attattr-test-" + secrets.token_hex(8)
    EXTRA: tuple = ()

    @classmethod
    def setUpClass(cls):
        cls.pki = _pki()
        cls.tokens = _write(cls.pki.dir.name, f"tokens-{cls.__name__}.tsv",
                            "py-test\t" + hashlib.sha256(cls.TOKEN.encode()).hexdigest() + "\n")
        cls.token_file = _write(cls.pki.dir.name, f"token-{cls.__name__}", cls.TOKEN + "\n")
        cls.server = Server(["--tls-cert", cls.pki.path("server.pem"),
                             "--tls-key", cls.pki.path("server.key"),
                             "--auth-tokens", cls.tokens, *cls.EXTRA])

    @classmethod
    def tearDownClass(cls):
        try:
            code = cls.server.stop()
            if code != 0:
                raise AssertionError(f"attattr-server exited {code} on SIGTERM:\n"
                                     f"{cls.server.stderr_text()}")
        finally:
            cls.server.close()

    def connect(self, **kwargs):
        channel, stub = ac.connect(self.server.address, **kwargs)
        self.addCleanup(channel.close)
        return channel, stub

    assert_code = assert_rpc_code

    def cli(self, *args, **env):
        return run_cli(self.server.address, *args, timeout=120, **env)


@unittest.skipIf(_security_skip_reason() is not None, _security_skip_reason() or "")
class SecureServerTest(_SecureServerBase):
    """attattr-server --tls-cert --tls-key --auth-tokens: TLS + token works for every helper, a
    missing or wrong token is UNAUTHENTICATED, a client trusting another CA is UNAVAILABLE."""

    def test_tls_token_lists_models(self):
        _, stub = self.connect(tls_ca=self.pki.path("ca.pem"), token=self.TOKEN)
        self.assertEqual([m.name for m in ac.list_models(stub, 10)], ["sst2"])

    def test_every_helper(self):
        channel, stub = self.connect(tls_ca=self.pki.path("ca.pem"), token=self.TOKEN,
                                     tls_server_name="localhost")
        self.assertEqual(ac.get_model(stub, "sst2", 10).num_layers, 4)
        a = ac.explain(stub, ac.build_explain_request("sst2", "fine", layers=[1], top_k=1), 60)
        self.assertEqual(list(a.tokens), ["[CLS]", "fine", "[SEP]"])
        self.assertEqual(ac.health_status(channel, "", 10), "SERVING")
        job, result = ac.run_attribution_job(
            stub, ac.build_attribution_job("sst2", ["fine"], steps=2, layers=[1], top_k=1),
            "py-secure-1", 120, 30)
        self.assertEqual(ac.job_pb2.JobState.Name(job.state), "SUCCEEDED", job.error_message)
        self.assertEqual(ac.get_job(stub, job.name, 10).name, job.name)
        self.assertEqual(list(result.attribution.examples[0].tokens), ["[CLS]", "fine", "[SEP]"])

    def test_missing_or_wrong_token_is_unauthenticated(self):
        for token in (None, "not-the-token"):
            _, stub = self.connect(tls_ca=self.pki.path("ca.pem"), token=token)
            self.assert_code(grpc.StatusCode.UNAUTHENTICATED, ac.list_models, stub, 10)
            self.assert_code(grpc.StatusCode.UNAUTHENTICATED, ac.explain, stub,
                             ac.build_explain_request("sst2", "fine"), 10)

    def test_wrong_ca_is_unavailable(self):
        _, stub = self.connect(tls_ca=self.pki.path("other-ca.pem"), token=self.TOKEN)
        self.assert_code(grpc.StatusCode.UNAVAILABLE, ac.list_models, stub, 10)

    def test_cli(self):
        ca = ["--tls-ca", self.pki.path("ca.pem")]
        r = self.cli(*ca, "--token-file", self.token_file, "models")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)[0]["name"], "sst2")
        r = self.cli(*ca, "model", "sst2", ATTATTR_TOKEN=self.TOKEN)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["num_layers"], 4)
        r = self.cli(*ca, "models")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        r = self.cli("--tls-ca", self.pki.path("other-ca.pem"), "--token-file", self.token_file,
                     "models")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("UNAVAILABLE", r.stderr)


@unittest.skipIf(_security_skip_reason() is not None, _security_skip_reason() or "")
class MutualTlsServerTest(_SecureServerBase):
    """attattr-server --tls-client-ca too: a client certificate signed by that CA is required,
    and identifies the caller when no token is sent."""

    @classmethod
    def setUpClass(cls):
        cls.EXTRA = ("--tls-client-ca", _pki().path("ca.pem"))
        super().setUpClass()

    def test_without_client_cert_refused(self):
        _, stub = self.connect(tls_ca=self.pki.path("ca.pem"), token=self.TOKEN)
        self.assert_code(grpc.StatusCode.UNAVAILABLE, ac.list_models, stub, 10)

    def test_client_cert_of_another_ca_refused(self):
        _, stub = self.connect(tls_ca=self.pki.path("ca.pem"), token=self.TOKEN,
                               tls_cert=self.pki.path("stranger-client.pem"),
                               tls_key=self.pki.path("stranger-client.key"))
        self.assert_code(grpc.StatusCode.UNAVAILABLE, ac.list_models, stub, 10)

    def test_with_client_cert_ok(self):
        channel, stub = self.connect(tls_ca=self.pki.path("ca.pem"), token=self.TOKEN,
                                     tls_cert=self.pki.path("client.pem"),
                                     tls_key=self.pki.path("client.key"))
        self.assertEqual([m.name for m in ac.list_models(stub, 10)], ["sst2"])
        self.assertEqual(ac.health_status(channel, "", 10), "SERVING")
        r = self.cli("--tls-ca", self.pki.path("ca.pem"), "--tls-cert",
                     self.pki.path("client.pem"), "--tls-key", self.pki.path("client.key"),
                     "--token-file", self.token_file, "models")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)[0]["name"], "sst2")
        r = self.cli("--tls-ca", self.pki.path("ca.pem"), "--token-file", self.token_file,
                     "models")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("UNAVAILABLE", r.stderr)

    def test_client_cert_identifies_without_token(self):
        # The certificate names the caller (its CN, py-test-client), no token needed.
        _, stub = self.connect(tls_ca=self.pki.path("ca.pem"),
                               tls_cert=self.pki.path("client.pem"),
                               tls_key=self.pki.path("client.key"))
        self.assertEqual([m.name for m in ac.list_models(stub, 10)], ["sst2"])
        # A token that is present but wrong is still refused.
        _, stub = self.connect(tls_ca=self.pki.path("ca.pem"), token="not-the-token",
                               tls_cert=self.pki.path("client.pem"),
                               tls_key=self.pki.path("client.key"))
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED, ac.list_models, stub, 10)


if __name__ == "__main__":
    unittest.main(verbosity=2)
