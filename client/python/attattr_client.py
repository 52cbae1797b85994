#!/usr/bin/env python3
"""Example Python client for the attattr gRPC service (service attattr.v1.Attattr).

A small module plus command line showing how to call attattr-server from Python:

    python3 attattr_client.py --server 127.0.0.1:50051 models
    python3 attattr_client.py --server 127.0.0.1:50051 model sst2
    python3 attattr_client.py --server 127.0.0.1:50051 explain --model sst2 \\
        --text "a gripping, beautifully acted film" --target predicted --top-k 5
    python3 attattr_client.py --server 127.0.0.1:50051 health

`explain` prints the prediction, each layer's completeness gap and its strongest attention
connections as JSON; --head-summed / --full-matrices / --attention add the matrices, and --fp16
asks the server to send them as IEEE half floats (decoded here with struct's 'e' format, no
numpy needed — see tensor_values()).

The stubs are generated from proto/attattr/v1/*.proto into ./gen by setup_venv.sh (run it once,
then use .venv/bin/python). Errors come back as canonical gRPC status codes whose details name
the offending field (e.g. "example.text: empty"); the CLI prints them on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
GEN_DIR = HERE / "gen"
if str(GEN_DIR) not in sys.path:
    sys.path.insert(0, str(GEN_DIR))

try:
    import grpc
    from attattr.v1 import attattr_service_pb2 as service_pb2
    from attattr.v1 import attattr_service_pb2_grpc as service_grpc
    from attattr.v1 import attribution_pb2
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"{e}: run {HERE / 'setup_venv.sh'} first and use {HERE / '.venv/bin/python'} "
        "(it installs grpcio and generates the stubs into gen/)") from e

DEFAULT_SERVER = os.environ.get("ATTATTR_SERVER", "127.0.0.1:50051")
DEFAULT_DEADLINE_S = 60.0

RULES = {
    "default": attribution_pb2.QUADRATURE_RULE_UNSPECIFIED,  # server default: Gauss-Legendre
    "gauss-legendre": attribution_pb2.GAUSS_LEGENDRE,
    "left-riemann": attribution_pb2.LEFT_RIEMANN,
    "trapezoid": attribution_pb2.TRAPEZOID,
}


# --- Connecting -----------------------------------------------------------------------------

def connect(server: str) -> Tuple[grpc.Channel, service_grpc.AttattrStub]:
    """Opens an insecure channel to HOST:PORT and returns (channel, stub).

    Close the channel when done (channel.close(), or use it as a context manager).
    """
    channel = grpc.insecure_channel(server)
    return channel, service_grpc.AttattrStub(channel)


# --- Building requests ----------------------------------------------------------------------

def parse_target(spec: str) -> attribution_pb2.Target:
    """Turns 'predicted', 'class:K', 'logit:K' or 'similarity:TEXT' into a Target message."""
    T = attribution_pb2.Target
    if spec == "predicted":
        return T(kind=T.PREDICTED_CLASS_PROB)
    kind, sep, arg = spec.partition(":")
    if sep and kind in ("class", "logit"):
        try:
            index = int(arg)
        except ValueError:
            raise ValueError(f"target {spec!r}: {kind}:K needs an integer class index") from None
        return T(kind=T.CLASS_PROB if kind == "class" else T.CLASS_LOGIT, class_index=index)
    if sep and kind == "similarity":
        return T(kind=T.EMBEDDING_SIMILARITY, reference_text=arg)
    raise ValueError(f"target {spec!r}: expected predicted | class:K | logit:K | similarity:TEXT")


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
                          attention: bool = False,
                          fp16: bool = False) -> service_pb2.ExplainRequest:
    """Builds an ExplainRequest; steps=0 and rule='default' leave the server's defaults (m=8
    Gauss-Legendre nodes)."""
    example = attribution_pb2.Example(text=text, label=-1)
    if text_pair is not None:
        example.text_pair = text_pair
    options = attribution_pb2.AttributionOptions(
        target=parse_target(target), rule=RULES[rule], steps=steps, layers=list(layers))
    result = attribution_pb2.ResultOptions(
        top_k=top_k, head_summed=head_summed, full_matrices=full_matrices, attention=attention,
        fp16=fp16)
    return service_pb2.ExplainRequest(model=model, example=example, options=options,
                                      result=result)


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
                       "probabilities": list(p.probabilities), "logits": list(p.logits)},
        "target_class": a.target_class,
        "layers": layers,
    }


# --- Calls ----------------------------------------------------------------------------------

def list_models(stub: service_grpc.AttattrStub,
                deadline_s: float = DEFAULT_DEADLINE_S) -> List[service_pb2.Model]:
    return list(stub.ListModels(service_pb2.ListModelsRequest(), timeout=deadline_s).models)


def get_model(stub: service_grpc.AttattrStub, name: str,
              deadline_s: float = DEFAULT_DEADLINE_S) -> service_pb2.Model:
    return stub.GetModel(service_pb2.GetModelRequest(name=name), timeout=deadline_s)


def explain(stub: service_grpc.AttattrStub, request: service_pb2.ExplainRequest,
            deadline_s: float = DEFAULT_DEADLINE_S) -> attribution_pb2.ExampleAttribution:
    """Calls Explain; the deadline travels to the server, which gives up when it passes."""
    return stub.Explain(request, timeout=deadline_s).attribution


def health_status(channel: grpc.Channel, service: str = "",
                  deadline_s: float = DEFAULT_DEADLINE_S) -> str:
    """grpc.health.v1.Health/Check as a raw call (no grpcio-health-checking needed): the request
    is HealthCheckRequest{service}, the reply HealthCheckResponse{status = field 1, an enum}."""
    svc = service.encode()
    request = (b"\x0a" + bytes([len(svc)]) + svc) if svc else b""  # len < 128 assumed
    check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=lambda b: b,
                                response_deserializer=lambda b: b)
    reply = check(request, timeout=deadline_s)
    status = reply[1] if len(reply) >= 2 and reply[0] == 0x08 else 0
    return {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}.get(
        status, str(status))


# --- Command line ---------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S, metavar="S",
                        help="call deadline in seconds (default %(default)s)")
    p = argparse.ArgumentParser(
        description="Example client for attattr-server (attattr.v1.Attattr).")
    p.add_argument("--server", default=DEFAULT_SERVER, metavar="HOST:PORT",
                   help="server address (default %(default)s; env ATTATTR_SERVER)")
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
    e.add_argument("--target", default="predicted",
                   help="predicted | class:K | logit:K | similarity:TEXT (default predicted)")
    e.add_argument("--rule", default="default", choices=sorted(RULES),
                   help="quadrature rule (default: the server's, Gauss-Legendre)")
    e.add_argument("--steps", type=int, default=0, metavar="M",
                   help="integration points m (0 = server default 8)")
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
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "explain":
            request = build_explain_request(
                args.model, args.text, text_pair=args.text_pair, target=args.target,
                rule=args.rule, steps=args.steps, layers=parse_layers(args.layers),
                top_k=args.top_k, head_summed=args.head_summed,
                full_matrices=args.full_matrices, attention=args.attention, fp16=args.fp16)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    channel, stub = connect(args.server)
    with channel:
        try:
            if args.command == "models":
                out: Any = [model_to_dict(m) for m in list_models(stub, args.deadline)]
            elif args.command == "model":
                out = model_to_dict(get_model(stub, args.name, args.deadline))
            elif args.command == "health":
                out = {"status": health_status(channel, "", args.deadline)}
            else:
                out = {"model": args.model,
                       **attribution_to_dict(explain(stub, request, args.deadline))}
        except grpc.RpcError as e:
            print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
            return 1
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
