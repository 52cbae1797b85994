#!/usr/bin/env python3
"""Example Python client for the attattr gRPC service (service attattr.v1.Attattr).

A small module plus command line showing how to call attattr-server from Python:

    python3 attattr_client.py --server 127.0.0.1:50051 models
    python3 attattr_client.py --server 127.0.0.1:50051 model sst2
    python3 attattr_client.py --server 127.0.0.1:50051 explain --model sst2 \\
        --text "a gripping, beautifully acted film" --target predicted --top-k 5
    python3 attattr_client.py --server 127.0.0.1:50051 health
    python3 attattr_client.py --server 127.0.0.1:50051 job --model sst2 \\
        --text "a gripping film" --text "a dull one" --steps 4 --top-k 3

`job` is the long-running way: SubmitJob returns a job name at once, WaitJob blocks until it
finishes, and GetJobResult streams the result in chunks (reassembled here) — see
run_attribution_job(); `submit`, `wait NAME` and `result NAME` do one step each.

`explain` prints the prediction, each layer's completeness gap and its strongest attention
connections as JSON; --head-summed / --full-matrices / --attention add the matrices, and --fp16
asks the server to send them as IEEE half floats (decoded here with struct's 'e' format, no
numpy needed — see tensor_values()).

Security (see connect()): --tls-ca FILE (or --tls for public roots) turns on TLS, --tls-cert
FILE --tls-key FILE add a client certificate for servers that require one, and a bearer token
from --token-file FILE or $ATTATTR_TOKEN goes out as `authorization: Bearer` on every call:

    python3 attattr_client.py --server attattr.example:443 --tls-ca ca.pem \\
        --token-file ~/.attattr-token models

The stubs are generated from proto/attattr/v1/*.proto into ./gen by setup_venv.sh (run it once,
then use .venv/bin/python). Errors come back as canonical gRPC status codes whose details name
the offending field (e.g. "example.text: empty"); the CLI prints them on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import json
import os
import threading
import struct
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
GEN_DIR = HERE / "gen"
if str(GEN_DIR) not in sys.path:
    sys.path.insert(0, str(GEN_DIR))

try:
    import grpc
    from google.protobuf import json_format
    from google.protobuf import message as protobuf_message
    from attattr.v1 import attattr_service_pb2 as service_pb2
    from attattr.v1 import attattr_service_pb2_grpc as service_grpc
    from attattr.v1 import attribution_pb2
    from attattr.v1 import job_pb2
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"{e}: run {HERE / 'setup_venv.sh'} first and use {HERE / '.venv/bin/python'} "
        "(it installs grpcio and generates the stubs into gen/)") from e

DEFAULT_SERVER = os.environ.get("ATTATTR_SERVER", "127.0.0.1:50051")
DEFAULT_DEADLINE_S = 60.0


def _timeout(deadline_s: Optional[float]) -> Optional[float]:
    """A call's gRPC timeout for --deadline-seconds: 0 (or less) means no limit, as in the C++
    CLI; gRPC Python itself would take timeout=0 as already expired."""
    return None if deadline_s is None or deadline_s <= 0 else deadline_s
# The longest WaitJob timeout the server accepts (attattr_service.proto); longer waits loop.
MAX_WAIT_MS = 600_000

RULES = {
    "default": attribution_pb2.QUADRATURE_RULE_UNSPECIFIED,  # server default: Gauss-Legendre
    "gauss-legendre": attribution_pb2.GAUSS_LEGENDRE,
    "left-riemann": attribution_pb2.LEFT_RIEMANN,
    "trapezoid": attribution_pb2.TRAPEZOID,
}

PRECISIONS = {
    "default": attribution_pb2.PRECISION_UNSPECIFIED,  # the server's --default-precision
    "fp32": attribution_pb2.FP32,
    "bf16": attribution_pb2.BF16,  # matrix products in bfloat16 (README "Precision")
}


# --- Connecting -----------------------------------------------------------------------------

TOKEN_ENV = "ATTATTR_TOKEN"

# A path (str or os.PathLike) names a PEM file; bytes are the PEM itself.
PemSource = Any


def connect(server: str, *, tls_ca: PemSource = None, tls_cert: PemSource = None,
            tls_key: PemSource = None, tls_server_name: Optional[str] = None,
            tls: bool = False, token: Optional[str] = None, plaintext_token: bool = False,
            options: Sequence[Tuple[str, Any]] = ()) -> Tuple[grpc.Channel,
                                                              service_grpc.AttattrStub]:
    """Opens a channel to HOST:PORT and returns (channel, stub).

    Plaintext unless TLS is asked for: tls=True, or any tls_* argument (each a PEM file path,
    or the PEM bytes themselves).
      tls_ca           CA certificate(s) the server's certificate must chain to (default: gRPC's
                       default roots: the public CAs bundled with grpcio, or the file named by
                       $GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, e.g. /etc/ssl/certs/ca-certificates.crt).
      tls_cert/tls_key the client certificate chain and its private key, for servers that require
                       client certificates (mutual TLS); give both or neither.
      tls_server_name  the name to check the server's certificate against instead of the host in
                       `server` (gRPC option grpc.ssl_target_name_override).
    token: a bearer token sent as `authorization: Bearer <token>` metadata on every call. With
    TLS it travels as call credentials composed into the channel credentials; on a plaintext
    channel (where gRPC refuses call credentials) a client interceptor adds the same metadata,
    readable by anyone on the path: that is refused unless `server` is loopback (localhost,
    127.0.0.0/8, ::1, a unix: socket) or plaintext_token=True says a service mesh encrypts for
    you.
    options: extra gRPC channel options, (name, value) pairs.

    Raises ValueError (naming the argument) for an unreadable or non-PEM file, a certificate
    without its key (or the reverse), an empty or non-printable token, or a token that would
    travel in plain text to a host that is not loopback. Close the channel when
    done (channel.close(), or use it as a context manager).
    """
    token = None if token is None else check_token(token, "token")
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("tls_cert and tls_key go together (the client certificate and its "
                         "private key): give both or neither")
    options = list(options)
    use_tls = tls or any(v is not None for v in (tls_ca, tls_cert, tls_key, tls_server_name))
    if not use_tls and token is not None and not plaintext_token and not is_loopback(server):
        raise ValueError(
            f"server {server[:64]!r}: refusing to send the bearer token in plain "
            "text to a host that is not loopback, where anyone on the path could read it; "
            "connect with TLS (--tls / --tls-ca), or pass plaintext_token=True "
            "(--plaintext-token) inside a service mesh that encrypts for you")
    if not use_tls:
        channel = grpc.insecure_channel(server, options=options)
        if token is not None:
            channel = grpc.intercept_channel(channel, _BearerTokenInterceptor(token))
        return channel, service_grpc.AttattrStub(channel)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=None if tls_ca is None else read_pem(tls_ca, "tls_ca"),
        private_key=None if tls_key is None else read_pem(tls_key, "tls_key"),
        certificate_chain=None if tls_cert is None else read_pem(tls_cert, "tls_cert"))
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token))
    if tls_server_name:
        options.append(("grpc.ssl_target_name_override", tls_server_name))
    channel = grpc.secure_channel(server, credentials, options=options)
    return channel, service_grpc.AttattrStub(channel)


def is_loopback(server: str) -> bool:
    """Whether the gRPC target `server` (HOST:PORT, [V6]:PORT, dns:///HOST:PORT, ipv4:/ipv6:
    ADDR:PORT, unix:PATH) names this machine only: localhost, 127.0.0.0/8, ::1 or a Unix socket.
    Names that merely resolve to a loopback address are not (what they resolve to can change);
    the server and the C++ client apply the same rule (attattr/base/loopback_address.h)."""
    if server.startswith(("unix:", "unix-abstract:")):
        return True
    if "," in server:  # an address list (ipv4:A:P,B:P): the channel may move on to any entry
        return False
    if server.startswith("dns:"):
        server = server[4:]
        if server.startswith("//"):
            server = server[2:].partition("/")[2]
    elif server.startswith(("ipv4:", "ipv6:")):
        server = server[5:]
    if server.startswith("["):
        host = server[1:].partition("]")[0]
    elif server.count(":") == 1:
        host = server.partition(":")[0]
    else:
        host = server
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # An IPv4-mapped ::ffff:127.0.0.1 is not, as in C++ (Python 3.13 would say it is).
    return address.is_loopback and not (address.version == 6 and address.ipv4_mapped)


def read_pem(source: PemSource, what: str) -> bytes:
    """The PEM bytes of `source` (bytes as they are, else a file path). Raises ValueError naming
    `what` (an argument or a flag) when the file cannot be read or holds no PEM block."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        where = "PEM data"
    else:
        path = os.fspath(source)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ValueError(f"{what} {path}: cannot read: {e.strerror or e}") from None
        where = path
    if b"-----BEGIN " not in data:
        raise ValueError(f"{what} {where}: not PEM (no '-----BEGIN' line)")
    return data


def check_token(token: str, what: str) -> str:
    """Returns `token` after one trailing newline ("\n" or "\r\n") is stripped; raises
    ValueError naming `what` when it is empty or holds characters a gRPC metadata value cannot
    (anything but printable ASCII)."""
    if token.endswith("\r\n"):
        token = token[:-2]
    elif token.endswith("\n"):
        token = token[:-1]
    if not token:
        raise ValueError(f"{what}: the token is empty")
    bad = next((c for c in token if not " " <= c <= "~"), None)
    if bad is not None:
        raise ValueError(f"{what}: the token holds {bad!r}; only printable ASCII can travel "
                         "in gRPC metadata")
    return token


def token_from(token_file: Optional[str] = None,
               environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The CLI's bearer token: the contents of token_file (--token-file) when given, else
    $ATTATTR_TOKEN when set, else None. One trailing newline is stripped; an empty token is an
    error (ValueError naming the flag or the variable), as is an unreadable file."""
    environ = os.environ if environ is None else environ
    if token_file is not None:
        try:
            with open(token_file, "r", encoding="utf-8", newline="") as f:
                text = f.read()
        except OSError as e:
            raise ValueError(f"--token-file {token_file}: cannot read: {e.strerror or e}") \
                from None
        except UnicodeDecodeError:
            raise ValueError(f"--token-file {token_file}: not UTF-8 text") from None
        return check_token(text, f"--token-file {token_file}")
    if TOKEN_ENV in environ:
        return check_token(environ[TOKEN_ENV], f"${TOKEN_ENV}")
    return None


def connect_options(args: argparse.Namespace,
                    environ: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """connect()'s keyword arguments from the CLI's security flags (--tls, --tls-ca, --tls-cert,
    --tls-key, --tls-server-name, --token-file, $ATTATTR_TOKEN), with the files read here so
    that errors name the flag. Raises ValueError."""
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together (the client certificate and its "
                         "private key): give both or neither")
    out: Dict[str, Any] = {"tls": bool(args.tls), "token": token_from(args.token_file, environ),
                           "plaintext_token": bool(getattr(args, "plaintext_token", False))}
    for flag, dest in (("--tls-ca", "tls_ca"), ("--tls-cert", "tls_cert"),
                       ("--tls-key", "tls_key")):
        path = getattr(args, dest)
        out[dest] = None if path is None else read_pem(path, flag)
    if args.tls_server_name is not None:
        if not args.tls_server_name:
            raise ValueError("--tls-server-name: empty name")
        out["tls_server_name"] = args.tls_server_name
    return out


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                         "compression")), grpc.ClientCallDetails):
    pass


class _BearerTokenInterceptor(grpc.UnaryUnaryClientInterceptor,
                              grpc.UnaryStreamClientInterceptor,
                              grpc.StreamUnaryClientInterceptor,
                              grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call on a plaintext channel, where gRPC
    does not allow call credentials (grpc.access_token_call_credentials)."""

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, d: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [m for m in (d.metadata or ()) if m[0].lower() != "authorization"]
        metadata.append(self._header)
        return _CallDetails(d.method, d.timeout, metadata, d.credentials,
                            getattr(d, "wait_for_ready", None), getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


# --- Building requests ----------------------------------------------------------------------

TARGET_SPELLINGS = ("predicted | class:K | logit:K | logprob:K | similarity:TEXT | "
                    "next_token:TEXT | next_token_logprob:TEXT | next_token_logit:TEXT | "
                    "sequence_logprob:TEXT")


def parse_target(spec: str) -> attribution_pb2.Target:
    """Turns a target as the attattr CLI spells it (TARGET_SPELLINGS; K a class index, a token id
    on a language model) into a Target message."""
    T = attribution_pb2.Target
    if spec == "predicted":
        return T(kind=T.PREDICTED_CLASS_PROB)
    kind, sep, arg = spec.partition(":")
    by_class = {"class": T.CLASS_PROB, "logit": T.CLASS_LOGIT, "logprob": T.CLASS_LOG_PROB}
    by_token = {"next_token": T.CLASS_PROB, "next_token_logit": T.CLASS_LOGIT,
                "next_token_logprob": T.CLASS_LOG_PROB}
    if sep and kind in by_class:
        try:
            index = int(arg)
        except ValueError:
            raise ValueError(f"target {spec!r}: {kind}:K needs an integer class index") from None
        return T(kind=by_class[kind], class_index=index)
    if sep and arg and kind in by_token:
        return T(kind=by_token[kind], next_token=arg)
    if sep and arg and kind == "sequence_logprob":
        return T(kind=T.SEQUENCE_LOG_PROB, continuation=arg)
    if sep and kind == "similarity":
        return T(kind=T.EMBEDDING_SIMILARITY, reference_text=arg)
    raise ValueError(f"target {spec!r}: expected {TARGET_SPELLINGS}")


def parse_layers(spec: Optional[str]) -> List[int]:
    """Parses '0,3' into [0, 3]; None or '' means all layers ([])."""
    if not spec:
        return []
    try:
        return [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"layers {spec!r}: expected comma-separated integers like 0,3") from None


def build_explain_request(model: str, text: str, *, text_pair: Optional[str] = None,
                          target: str = "predicted", rule: str = "default", steps: int = 0,
                          layers: Sequence[int] = (), top_k: int = 10,
                          head_summed: bool = False, full_matrices: bool = False,
                          attention: bool = False, fp16: bool = False,
                          precision: str = "default") -> service_pb2.ExplainRequest:
    """Builds an ExplainRequest; steps=0, rule='default' and precision='default' leave the
    server's defaults (m=8 Gauss-Legendre nodes, --default-precision)."""
    example = attribution_pb2.Example(text=text, label=-1)
    if text_pair is not None:
        example.text_pair = text_pair
    options = attribution_pb2.AttributionOptions(
        target=parse_target(target), rule=RULES[rule], steps=steps, layers=list(layers),
        precision=PRECISIONS[precision])
    result = attribution_pb2.ResultOptions(
        top_k=top_k, head_summed=head_summed, full_matrices=full_matrices, attention=attention,
        fp16=fp16)
    return service_pb2.ExplainRequest(model=model, example=example, options=options,
                                      result=result)


def build_attribution_job(model: str, examples: Sequence[Any], *, target: str = "predicted",
                          rule: str = "default", steps: int = 0, layers: Sequence[int] = (),
                          top_k: int = 10, head_summed: bool = False,
                          full_matrices: bool = False, attention: bool = False,
                          fp16: bool = False, priority: int = 0,
                          timeout_ms: int = 0, precision: str = "default") -> job_pb2.JobSpec:
    """Builds an ATTRIBUTION JobSpec over inline examples: each item of `examples` is a text or a
    (text, text_pair) tuple. For a dataset file under the server's --data-root instead, set
    spec.attribution.examples.dataset.path (and .limit) on the returned spec."""
    inline = attribution_pb2.ExampleList()
    for item in examples:
        text, pair = (item, None) if isinstance(item, str) else item
        e = inline.examples.add(text=text, label=-1)
        if pair is not None:
            e.text_pair = pair
    attribution = attribution_pb2.AttributionSpec(
        examples=attribution_pb2.ExampleSource(inline=inline),
        options=attribution_pb2.AttributionOptions(
            target=parse_target(target), rule=RULES[rule], steps=steps, layers=list(layers),
            precision=PRECISIONS[precision]),
        result=attribution_pb2.ResultOptions(
            top_k=top_k, head_summed=head_summed, full_matrices=full_matrices,
            attention=attention, fp16=fp16))
    return job_pb2.JobSpec(model=model, priority=priority, attribution=attribution,
                           timeout_ms=timeout_ms)


# --- Reading results ------------------------------------------------------------------------

def tensor_values(tensor: attribution_pb2.Tensor) -> Tuple[List[int], List[float]]:
    """Returns (shape, flat row-major values) of a Tensor, fp32 or fp16.

    fp16 data is little-endian IEEE 754 half precision, 2 bytes per value; struct's 'e' format
    decodes it without numpy. (With numpy: np.frombuffer(t.f16, '<f2').reshape(t.shape).)
    """
    shape = list(tensor.shape)
    which = tensor.WhichOneof("data")
    if which == "f16":
        raw = tensor.f16
        return shape, list(struct.unpack(f"<{len(raw) // 2}e", raw))
    if which == "f32":
        return shape, list(tensor.f32.values)
    return shape, []


def tensor_to_nested(tensor: attribution_pb2.Tensor) -> Any:
    """Returns a Tensor as nested Python lists following its shape (e.g. [n][n])."""
    shape, values = tensor_values(tensor)

    def nest(offset: int, dims: List[int]) -> Any:
        if not dims:
            return values[offset]
        stride = 1
        for d in dims[1:]:
            stride *= d
        return [nest(offset + i * stride, dims[1:]) for i in range(dims[0])]

    return nest(0, shape) if shape else []


def model_to_dict(m: service_pb2.Model) -> Dict[str, Any]:
    return {
        "name": m.name, "architecture": m.architecture, "num_layers": m.num_layers,
        "num_heads": m.num_heads, "hidden_size": m.hidden_size, "max_length": m.max_length,
        "has_classifier": m.has_classifier, "labels": list(m.labels),
        "parameter_count": m.parameter_count, "device": m.device,
        "weights": attribution_pb2.Precision.Name(m.weights), "weight_bytes": m.weight_bytes,
    }


def attribution_to_dict(a: attribution_pb2.ExampleAttribution) -> Dict[str, Any]:
    """Summarises an ExampleAttribution as JSON-ready data: tokens, prediction, and per layer
    the completeness gap, the top connections (with their tokens) and any matrices sent."""
    tokens = list(a.tokens)

    def tok(i: int) -> str:
        return tokens[i] if 0 <= i < len(tokens) else "?"

    layers = []
    for l in a.layers:
        layer: Dict[str, Any] = {
            "layer": l.layer, "num_heads": l.num_heads,
            "target_at_full": l.target_at_full, "target_at_zero": l.target_at_zero,
            "attribution_sum": l.attribution_sum, "completeness_gap": l.completeness_gap,
            "top_connections": [
                {"head": c.head, "query": c.query, "key": c.key, "query_token": tok(c.query),
                 "key_token": tok(c.key), "score": c.score}
                for c in l.top_connections],
        }
        for field in ("head_summed", "attribution", "attention"):
            if l.HasField(field):
                t = getattr(l, field)
                layer[field] = {"shape": list(t.shape), "encoding": t.WhichOneof("data"),
                                "values": tensor_to_nested(t)}
        layers.append(layer)
    p = a.prediction
    return {
        "tokens": tokens,
        "prediction": {"predicted": p.predicted, "label": p.label,
                       "problem_type": p.problem_type,
                       "probabilities": list(p.probabilities), "logits": list(p.logits)},
        "target_class": a.target_class,
        "precision": attribution_pb2.Precision.Name(a.precision),
        "layers": layers,
    }


# --- Calls ----------------------------------------------------------------------------------

def list_models(stub: service_grpc.AttattrStub,
                deadline_s: float = DEFAULT_DEADLINE_S) -> List[service_pb2.Model]:
    return list(stub.ListModels(service_pb2.ListModelsRequest(),
                                timeout=_timeout(deadline_s)).models)


def get_model(stub: service_grpc.AttattrStub, name: str,
              deadline_s: float = DEFAULT_DEADLINE_S) -> service_pb2.Model:
    return stub.GetModel(service_pb2.GetModelRequest(name=name), timeout=_timeout(deadline_s))


def explain(stub: service_grpc.AttattrStub, request: service_pb2.ExplainRequest,
            deadline_s: float = DEFAULT_DEADLINE_S) -> attribution_pb2.ExampleAttribution:
    """Calls Explain; the deadline travels to the server, which gives up when it passes."""
    return stub.Explain(request, timeout=_timeout(deadline_s)).attribution


def submit_job(stub: service_grpc.AttattrStub, spec: job_pb2.JobSpec, request_id: str = "",
               deadline_s: float = DEFAULT_DEADLINE_S) -> job_pb2.Job:
    """SubmitJob: validates and stores the job and returns it at once (state QUEUED). The same
    non-empty request_id returns the same job (safe to retry after a lost reply)."""
    return stub.SubmitJob(service_pb2.SubmitJobRequest(spec=spec, request_id=request_id),
                          timeout=_timeout(deadline_s))


def get_job(stub: service_grpc.AttattrStub, name: str,
            deadline_s: float = DEFAULT_DEADLINE_S) -> job_pb2.Job:
    return stub.GetJob(service_pb2.GetJobRequest(name=name), timeout=_timeout(deadline_s))


def is_finished(job: job_pb2.Job) -> bool:
    return job.state in (job_pb2.SUCCEEDED, job_pb2.FAILED, job_pb2.CANCELLED)


def wait_job(stub: service_grpc.AttattrStub, name: str, timeout_s: Optional[float] = None,
             deadline_s: float = DEFAULT_DEADLINE_S) -> job_pb2.Job:
    """Blocks until the job finishes (timeout_s=None) or timeout_s passes, and returns it either
    way. The server waits at most 600 s per WaitJob call, so longer waits are several calls; each
    call's deadline is its wait plus deadline_s."""
    left_ms = None if timeout_s is None else max(0, int(timeout_s * 1000))
    while True:
        slice_ms = MAX_WAIT_MS if left_ms is None else min(left_ms, MAX_WAIT_MS)
        job = stub.WaitJob(service_pb2.WaitJobRequest(name=name, timeout_ms=slice_ms),
                           timeout=None if _timeout(deadline_s) is None
                           else slice_ms / 1000 + deadline_s)
        if left_ms is not None:
            left_ms -= slice_ms
        if is_finished(job) or (left_ms is not None and left_ms <= 0):
            return job


def read_job_result(stub: service_grpc.AttattrStub, name: str,
                    deadline_s: float = DEFAULT_DEADLINE_S) -> Tuple[job_pb2.JobResult, int]:
    """GetJobResult: reads the ResultChunk stream, concatenates the chunks' data in index order
    (checking that every index 0..count-1 came exactly once) and parses it as JobResult.
    Returns (result, serialized size in bytes)."""
    chunks: Dict[int, bytes] = {}
    count = None
    for chunk in stub.GetJobResult(service_pb2.GetJobResultRequest(name=name),
                                   timeout=_timeout(deadline_s)):
        if count is None:
            count = chunk.count
        if chunk.count != count or not 0 <= chunk.index < count or chunk.index in chunks:
            raise ValueError(f"{name}: bad result chunk {chunk.index} of {chunk.count}")
        chunks[chunk.index] = chunk.data
    if len(chunks) != (count or 0):
        raise ValueError(f"{name}: received {len(chunks)} of {count} result chunks")
    data = b"".join(chunks[i] for i in range(len(chunks)))
    chunks.clear()  # the result is held once as bytes while it parses, not twice
    result = job_pb2.JobResult()
    result.ParseFromString(data)
    return result, len(data)


def job_to_dict(job: job_pb2.Job) -> Dict[str, Any]:
    p = job.progress
    out: Dict[str, Any] = {
        "name": job.name, "request_id": job.request_id, "kind": job_pb2.JobKind.Name(job.kind),
        "state": job_pb2.JobState.Name(job.state), "model": job.spec.model,
        "progress": {"stage": p.stage, "done": p.done, "total": p.total,
                     "eta_seconds": p.eta_seconds},
        "create_time_ms": job.create_time_ms or None, "start_time_ms": job.start_time_ms or None,
        "end_time_ms": job.end_time_ms or None, "result_size_bytes": job.result_size_bytes,
    }
    if job.error_code or job.error_message:
        out["error"] = {"code": _status_code_name(job.error_code), "message": job.error_message}
    return out


def _status_code_name(code: int) -> str:
    """A canonical gRPC code number as its name (5 -> "NOT_FOUND")."""
    for c in grpc.StatusCode:
        if c.value[0] == code:
            return c.name
    return str(code)


def run_attribution_job(stub: service_grpc.AttattrStub, spec: job_pb2.JobSpec,
                        request_id: str = "", timeout_s: Optional[float] = None,
                        deadline_s: float = DEFAULT_DEADLINE_S
                        ) -> Tuple[job_pb2.Job, Optional[job_pb2.JobResult]]:
    """The whole job round trip: submit, wait until it finishes, and read the result when it
    SUCCEEDED. Returns (job, result); result is None when the job failed, was cancelled or did
    not finish within timeout_s (see job.state and job.error_message)."""
    job = submit_job(stub, spec, request_id, deadline_s)
    job = wait_job(stub, job.name, timeout_s, deadline_s)
    if job.state != job_pb2.SUCCEEDED:
        return job, None
    result, _ = read_job_result(stub, job.name, deadline_s)
    return job, result


def job_result_to_dict(job: job_pb2.Job, result: job_pb2.JobResult) -> Dict[str, Any]:
    """An ATTRIBUTION job's result: {"job": job_to_dict(job), "examples": [attribution_to_dict(...)
    per example]}; a HEAD_IMPORTANCE or TRIGGER_SEARCH job's: {"job": ..., "head_importance" or
    "trigger_search": the result message as JSON (protobuf's JSON mapping)}."""
    kind = result.WhichOneof("kind")
    if kind not in (None, "attribution"):
        return {"job": job_to_dict(job),
                kind: json_format.MessageToDict(getattr(result, kind),
                                                preserving_proto_field_name=True)}
    return {"job": job_to_dict(job),
            "examples": [{"model": job.spec.model, **attribution_to_dict(a)}
                         for a in result.attribution.examples]}


def write_job_result_json(job: job_pb2.Job, result: job_pb2.JobResult, stream: Any) -> None:
    """Writes job_result_to_dict(job, result) as json.dump(..., indent=2) does — the same text —
    one example at a time, so memory holds one example's dict, not the whole result's (nested
    lists of Python floats take ~8x a result's bytes). On an error part of it is written."""
    kind = result.WhichOneof("kind")
    examples = result.attribution.examples
    if kind not in (None, "attribution") or not examples:
        json.dump(job_result_to_dict(job, result), stream, indent=2)
        return
    head = json.dumps({"job": job_to_dict(job)}, indent=2)
    stream.write(head[:-len("\n}")] + ',\n  "examples": [')
    for i, a in enumerate(examples):
        text = json.dumps({"model": job.spec.model, **attribution_to_dict(a)}, indent=2)
        stream.write(("," if i else "") + "\n" + textwrap.indent(text, "    "))
    stream.write("\n  ]\n}")


def health_status(channel: grpc.Channel, service: str = "",
                  deadline_s: float = DEFAULT_DEADLINE_S) -> str:
    """grpc.health.v1.Health/Check as a raw call (no grpcio-health-checking needed): the request
    is HealthCheckRequest{service}, the reply HealthCheckResponse{status = field 1, an enum}."""
    svc = service.encode()
    request = (b"\x0a" + bytes([len(svc)]) + svc) if svc else b""  # len < 128 assumed
    check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=lambda b: b,
                                response_deserializer=lambda b: b)
    reply = check(request, timeout=_timeout(deadline_s))
    status = reply[1] if len(reply) >= 2 and reply[0] == 0x08 else 0
    return {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}.get(
        status, str(status))


# --- Command line ---------------------------------------------------------------------------

def terminal_text(text: str, stream: Any) -> str:
    """`text` (from a reply) as it may be written to `stream`: when `stream` is a terminal, C0
    controls but tab and newline, and DEL, become their Unicode control pictures (ESC as U+241B)
    and C1 controls U+FFFD, so no reply can drive the terminal; unchanged for pipes and files.
    (The JSON this client prints escapes every non-ASCII character already.)"""
    if not stream.isatty():
        return text

    def shown(c: str) -> str:
        code = ord(c)
        if (code < 0x20 and c not in "\t\n") or code == 0x7F:
            return chr(0x2421 if code == 0x7F else 0x2400 + code)
        return "\ufffd" if 0x80 <= code <= 0x9F else c

    return "".join(shown(c) for c in text)


def _error(message: str) -> None:
    """One error line on stderr, `message` made safe for a terminal (terminal_text)."""
    print(terminal_text(f"error: {message}", sys.stderr), file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--deadline-seconds", "--deadline", dest="deadline", type=float,
                        default=DEFAULT_DEADLINE_S, metavar="S",
                        help="seconds each call to the server may take, as in the C++ CLI "
                             "(default %(default)s)")
    p = argparse.ArgumentParser(
        description="Example client for attattr-server (attattr.v1.Attattr).")
    p.add_argument("--server", default=DEFAULT_SERVER, metavar="HOST:PORT",
                   help="server address (default %(default)s; env ATTATTR_SERVER)")
    sec = p.add_argument_group(
        "security", "TLS when --tls or any --tls-* flag is given, else plaintext. The bearer "
        "token comes from --token-file, else $ATTATTR_TOKEN; over plaintext it is readable on "
        "the wire, so use that only over loopback or inside an encrypting service mesh.")
    sec.add_argument("--tls", action="store_true",
                     help="use TLS, trusting gRPC's default roots (the public CAs bundled with "
                          "grpcio, or $GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)")
    sec.add_argument("--tls-ca", metavar="FILE",
                     help="PEM CA certificate(s) the server's certificate must chain to "
                          "(implies --tls)")
    sec.add_argument("--tls-cert", metavar="FILE",
                     help="PEM client certificate chain for mutual TLS (needs --tls-key)")
    sec.add_argument("--tls-key", metavar="FILE",
                     help="PEM private key of --tls-cert (needs --tls-cert)")
    sec.add_argument("--tls-server-name", metavar="NAME",
                     help="check the server's certificate against NAME instead of the host in "
                          "--server (implies --tls)")
    sec.add_argument("--token-file", metavar="FILE",
                     help="file holding the bearer token sent as 'authorization: Bearer' "
                          "(one trailing newline ignored; wins over $ATTATTR_TOKEN)")
    sec.add_argument("--plaintext-token", action="store_true",
                     help="send the token even over plain text to a host that is not loopback "
                          "(only inside a service mesh that encrypts for you)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("models", parents=[common], help="list the served models (JSON)")
    m = sub.add_parser("model", parents=[common], help="describe one model (JSON)")
    m.add_argument("name")
    sub.add_parser("health", parents=[common], help="grpc.health.v1 Check of the server")
    e = sub.add_parser("explain", parents=[common],
                       help="attribute one example; prints prediction, gaps, top connections")
    e.add_argument("--model", required=True, help="a served model name (see `models`)")
    e.add_argument("--text", required=True, help="the input text")
    e.add_argument("--text-pair", default=None, help="optional second segment")
    _add_attribution_options(e)
    for name, what in (("job", "submit an attribution job, wait for it and print its result"),
                       ("submit", "submit an attribution job; prints the job (JSON)")):
        j = sub.add_parser(name, parents=[common], help=what)
        j.add_argument("--model", required=True, help="a served model name (see `models`)")
        j.add_argument("--text", dest="examples", action=_TextAction, required=True, metavar="T",
                       help="an example's text; repeat for several examples")
        j.add_argument("--text-pair", dest="examples", action=_PairAction, metavar="P",
                       help="second segment for the --text just before it")
        j.add_argument("--request-id", default="", help="idempotency key")
        j.add_argument("--priority", type=int, default=0, help="-10..10, higher runs first")
        _add_attribution_options(j)
    w = sub.add_parser("wait", parents=[common],
                       help="wait until a job finishes; prints it (exit 3 unless SUCCEEDED)")
    w.add_argument("name", help="jobs/ID")
    w.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="give up after S seconds (default: until it finishes)")
    r = sub.add_parser("result", parents=[common],
                       help="a finished job's result: {job, examples} (JSON)")
    r.add_argument("name", help="jobs/ID")
    return p


class _TextAction(argparse.Action):
    """--text T: appends [T, None] to the example list."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        items.append([values, None])
        setattr(namespace, self.dest, items)


class _PairAction(argparse.Action):
    """--text-pair P: sets the pair of the last --text."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = getattr(namespace, self.dest, None) or []
        if not items or items[-1][1] is not None:
            parser.error("--text-pair must follow the --text it pairs with")
        items[-1][1] = values


def _add_attribution_options(e: argparse.ArgumentParser) -> None:
    e.add_argument("--target", default="predicted",
                   help=f"{TARGET_SPELLINGS} (default predicted)")
    e.add_argument("--rule", default="default", choices=sorted(RULES),
                   help="quadrature rule (default: the server's, Gauss-Legendre)")
    e.add_argument("--steps", type=int, default=0, metavar="M",
                   help="integration points m (0 = server default 8)")
    e.add_argument("--precision", default="default", choices=sorted(PRECISIONS),
                   help="the integrand's arithmetic: fp32, or bf16 (matrix products in bfloat16 "
                   "on AMX / tensor cores; default: the server's --default-precision)")
    e.add_argument("--layers", default=None, metavar="L,L",
                   help="comma-separated layers to attribute, e.g. 0,3 (default all)")
    e.add_argument("--top-k", type=int, default=10, metavar="K",
                   help="strongest connections per layer (default %(default)s)")
    e.add_argument("--head-summed", action="store_true", help="include the n x n head-summed "
                   "attribution matrix of each layer")
    e.add_argument("--full-matrices", action="store_true",
                   help="include every head's n x n attribution matrix")
    e.add_argument("--attention", action="store_true",
                   help="include the clean attention probabilities")
    e.add_argument("--fp16", action="store_true", help="send matrices as IEEE fp16")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Exit codes: 0 done; 1 an RPC failed (error: CODE: details on stderr, e.g. UNAUTHENTICATED
    for a missing or wrong token, UNAVAILABLE when the TLS handshake fails); 2 bad arguments,
    including unreadable --tls-*/--token-file files and an empty token; 3 (job, wait, result) the
    job did not succeed: FAILED, CANCELLED or not finished."""
    args = _parser().parse_args(argv)
    spec: Any = None  # the job command's JobSpec
    request: Any = None  # explain's ExplainRequest
    try:
        if args.command == "explain":
            request = build_explain_request(
                args.model, args.text, text_pair=args.text_pair, target=args.target,
                rule=args.rule, steps=args.steps, layers=parse_layers(args.layers),
                top_k=args.top_k, head_summed=args.head_summed,
                full_matrices=args.full_matrices, attention=args.attention, fp16=args.fp16,
                precision=args.precision)
        elif args.command in ("job", "submit"):
            spec = build_attribution_job(
                args.model, [tuple(e) for e in args.examples], target=args.target,
                rule=args.rule, steps=args.steps, layers=parse_layers(args.layers),
                top_k=args.top_k, head_summed=args.head_summed,
                full_matrices=args.full_matrices, attention=args.attention, fp16=args.fp16,
                priority=args.priority, precision=args.precision)
        security = connect_options(args)
        channel, stub = connect(args.server, **security)
    except ValueError as e:
        _error(str(e))
        return 2
    try:
        code = _run_command(args, channel, stub, spec, request)
    finally:
        closed = _close_channel(channel)
    if not closed:  # the process would hang in gRPC's shutdown too: leave now
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _close_channel(channel: grpc.Channel, seconds: float = 5.0) -> bool:
    """Closes `channel`, waiting `seconds` at most. gRPC Python's Channel.close can deadlock, e.g.
    after a refused TLS handshake (grpc/grpc#20026; seen in this project's CI as a CLI that never
    exited after printing its error); False then, and the caller exits without waiting on it."""
    closer = threading.Thread(target=channel.close, daemon=True)
    closer.start()
    closer.join(seconds)
    return not closer.is_alive()


def _run_command(args: argparse.Namespace, channel: grpc.Channel, stub: Any,
                 spec: Any, request: Any) -> int:
    """main's work once connected: the command's calls and output; returns the exit code."""
    try:
        if args.command == "models":
            out: Any = [model_to_dict(m) for m in list_models(stub, args.deadline)]
        elif args.command == "model":
            out = model_to_dict(get_model(stub, args.name, args.deadline))
        elif args.command == "health":
            out = {"status": health_status(channel, "", args.deadline)}
        elif args.command == "submit":
            out = job_to_dict(submit_job(stub, spec, args.request_id, args.deadline))
        elif args.command in ("job", "wait", "result"):
            if args.command == "job":
                job, result = run_attribution_job(stub, spec, args.request_id, None,
                                                  args.deadline)
            elif args.command == "wait":
                job, result = wait_job(stub, args.name, args.timeout, args.deadline), None
            else:
                job = get_job(stub, args.name, args.deadline)
                result = (read_job_result(stub, job.name, args.deadline)[0]
                          if job.state == job_pb2.SUCCEEDED else None)
            if result is not None:
                write_job_result_json(job, result, sys.stdout)
                sys.stdout.write("\n")
                return 0
            out = job_to_dict(job)
            if job.state != job_pb2.SUCCEEDED:
                json.dump(out, sys.stdout, indent=2)
                sys.stdout.write("\n")
                _error(f"job {job.name} is {job_pb2.JobState.Name(job.state)}"
                       + (f": {job.error_message}" if job.error_message else ""))
                return 3
        else:
            out = {"model": args.model,
                   **attribution_to_dict(explain(stub, request, args.deadline))}
    except grpc.RpcError as e:
        _error(f"{e.code().name}: {e.details()}")
        return 1
    except (ValueError, protobuf_message.DecodeError) as e:  # a result that does not add up
        _error(f"DATA_LOSS: {e}")
        return 1
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
