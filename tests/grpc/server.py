"""A gRPC test server for Userflux's gRPC tests, written with another stack
(Python grpcio) so the engine's client is checked against an independent
implementation. It serves tests/grpc/echo.proto without generated code:
grpcio's generic handlers pass the raw request bytes, and a small protobuf
wire-format reader (below) decodes them, so the server needs no protobuf
package and no protoc step.

- ``/echo.Echo/Say`` echoes the request (as ``SayReply.echo``), counts it
  (``SayReply.seen``) and appends what it decoded to ``--record`` as one
  JSON line (field names from echo.proto, int64 as numbers, bytes as hex):
  the tests compare it with what the engine meant to send. Metadata
  ``x-delay-ms`` sleeps first (deadlines), ``x-status`` answers with that
  status code instead, ``x-garbage`` with bytes that are no ``SayReply``.
- ``/echo.Echo/Fail`` answers with the status ``code`` and ``message`` the
  request asks for.
- ``/echo.Echo/Tick`` streams ``count`` replies (server streaming).

With ``--reflection FILE`` (a serialized ``FileDescriptorSet``, which the
Rust tests write with protox) it also serves gRPC server reflection
(grpcio-reflection: ``grpc.reflection.v1alpha`` only, so a client asking
v1 first gets UNIMPLEMENTED) for every service in the set. With ``--tls
CERT KEY`` (PEM files) it serves TLS, ALPN h2, instead of h2c.

Usage: ``python server.py --port 0 [--record FILE]``; it binds 127.0.0.1
only and prints ``listening 127.0.0.1:PORT`` once it serves. It stops on
SIGTERM/SIGINT, or after ``--max-seconds`` (default 600) so a test that
dies cannot leave it behind.
"""

from __future__ import annotations

import argparse
import json
import signal
import struct
import sys
import threading
import time
from concurrent import futures

import grpc

# echo.proto's fields: number -> (name, kind). Kinds: the wire reading.
USER = {1: ("id", "int64"), 2: ("name", "string"), 3: ("roles", "repeated_string")}
SAY_REQUEST = {
    1: ("text", "string"),
    2: ("count", "int32"),
    3: ("user", USER),
    4: ("loud", "bool"),
    5: ("ratio", "double"),
    6: ("blob", "bytes"),
    7: ("mood", "enum"),
    8: ("numbers", "packed_int32"),
    9: ("labels", "map"),
    10: ("big", "uint64"),
    11: ("delta", "sint32"),
    12: ("stamp", "fixed64"),
    13: ("weight", "float"),
    14: ("left", "string"),
    15: ("right", "int32"),
}
FAIL_REQUEST = {1: ("code", "int32"), 2: ("message", "string")}


class WireError(ValueError):
    """The request bytes are not valid protobuf for the message."""


def read_varint(buf: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise WireError("truncated varint")
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return n, i


def fields(buf: bytes):
    """Yields (field number, wire type, raw value) in wire order."""
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = read_varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise WireError(f"wire type {wire} of field {number}")
        if i > len(buf):
            raise WireError(f"field {number} runs past the end")
        yield number, wire, value


def signed(n: int, bits: int) -> int:
    n &= (1 << 64) - 1
    if n >= 1 << 63:
        n -= 1 << 64
    if bits == 32:
        n = ((n & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
    return n


def decode(buf: bytes, schema: dict) -> dict:
    """Decodes a message the way protobuf does: the last value of a singular
    field wins, a singular message field seen twice is merged."""
    out: dict = {}
    for number, _wire, raw in fields(buf):
        if number not in schema:
            out.setdefault("_unknown", []).append(number)
            continue
        name, kind = schema[number]
        if isinstance(kind, dict):
            sub = decode(raw, kind)
            out[name] = {**out.get(name, {}), **sub}
        elif kind in ("int64", "int32", "enum"):
            out[name] = signed(raw, 32 if kind != "int64" else 64)
        elif kind in ("uint64",):
            out[name] = raw
        elif kind == "sint32":
            out[name] = (raw >> 1) ^ -(raw & 1)
        elif kind == "bool":
            out[name] = raw != 0
        elif kind == "double":
            out[name] = struct.unpack("<d", raw)[0]
        elif kind == "float":
            out[name] = struct.unpack("<f", raw)[0]
        elif kind == "fixed64":
            out[name] = struct.unpack("<Q", raw)[0]
        elif kind == "string":
            out[name] = raw.decode("utf-8")
        elif kind == "bytes":
            out[name] = raw.hex()
        elif kind == "repeated_string":
            out.setdefault(name, []).append(raw.decode("utf-8"))
        elif kind == "packed_int32":
            values = out.setdefault(name, [])
            if isinstance(raw, int):
                values.append(signed(raw, 32))
            else:
                j = 0
                while j < len(raw):
                    v, j = read_varint(raw, j)
                    values.append(signed(v, 32))
        elif kind == "map":
            entry = decode(raw, {1: ("key", "string"), 2: ("value", "string")})
            out.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
        if kind != "repeated_string" and name in ("left", "right"):
            out.pop("right" if name == "left" else "left", None)
    return out


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def length_delimited(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


class Echo:
    def __init__(self, record: str | None):
        self.lock = threading.Lock()
        self.seen = 0
        self.record = open(record, "a", encoding="utf-8") if record else None  # noqa: SIM115

    def reply(self, request: bytes) -> bytes:
        with self.lock:
            self.seen += 1
            seen = self.seen
        return length_delimited(1, request) + length_delimited(2, b"py") + varint(3 << 3) + varint(seen)

    def say(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = dict(context.invocation_metadata())
        try:
            decoded = decode(request, SAY_REQUEST)
        except (WireError, UnicodeDecodeError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"undecodable request: {e}")
        if self.record:
            line = {"method": "Say", "request": decoded, "metadata": metadata}
            with self.lock:
                self.record.write(json.dumps(line, sort_keys=True) + "\n")
                self.record.flush()
        if "x-delay-ms" in metadata:
            time.sleep(int(metadata["x-delay-ms"]) / 1000)
        if "x-status" in metadata:
            context.abort(grpc.StatusCode(_code(int(metadata["x-status"]))), "asked by x-status")
        if "x-garbage" in metadata:
            return b"\xff\xff\xff\xff"  # no valid SayReply: a field 31 of wire type 7
        return self.reply(request)

    def fail(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        decoded = decode(request, FAIL_REQUEST)
        code = decoded.get("code", 0)
        if code == 0:
            return self.reply(b"")
        context.abort(grpc.StatusCode(_code(code)), decoded.get("message", ""))

    def tick(self, request: bytes, context: grpc.ServicerContext):
        count = decode(request, SAY_REQUEST).get("count", 1)
        for _ in range(max(0, min(count, 1000))):
            yield self.reply(request)


def _code(n: int) -> tuple:
    for c in grpc.StatusCode:
        if c.value[0] == n:
            return c.value
    return grpc.StatusCode.UNKNOWN.value


def reflection_pool(path: str):
    """The descriptors of a serialized FileDescriptorSet as a pool (files
    added after their imports), and the full names of its services."""
    from google.protobuf import descriptor_pb2, descriptor_pool

    with open(path, "rb") as f:
        files = list(descriptor_pb2.FileDescriptorSet.FromString(f.read()).file)
    names = [f"{f.package}.{s.name}" if f.package else s.name for f in files for s in f.service]
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()
    while files:
        ready = [f for f in files if all(d in added for d in f.dependency)]
        if not ready:
            raise ValueError(f"imports not in the set: {[f.name for f in files]}")
        for f in ready:
            pool.AddSerializedFile(f.SerializeToString())
            added.add(f.name)
            files.remove(f)
    return pool, names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--record", help="append each decoded request to this file (JSON lines)")
    ap.add_argument("--max-seconds", type=float, default=600)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--reflection", help="serve reflection for this FileDescriptorSet file")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve TLS (ALPN h2) with these PEM files")
    ap.add_argument("--max-streams", type=int, help="SETTINGS_MAX_CONCURRENT_STREAMS to announce")
    args = ap.parse_args(argv)

    echo = Echo(args.record)
    identity = None  # raw bytes in and out: no generated code
    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(echo.say, identity, identity),
        "Fail": grpc.unary_unary_rpc_method_handler(echo.fail, identity, identity),
        "Tick": grpc.unary_stream_rpc_method_handler(echo.tick, identity, identity),
    }
    options = [("grpc.max_concurrent_streams", args.max_streams)] if args.max_streams else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers), options=options)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("echo.Echo", handlers),))
    if args.reflection:
        from grpc_reflection.v1alpha import reflection

        pool, names = reflection_pool(args.reflection)
        reflection.enable_server_reflection([*names, reflection.SERVICE_NAME], server, pool=pool)
    if args.tls:
        with open(args.tls[0], "rb") as c, open(args.tls[1], "rb") as k:
            credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port(f"127.0.0.1:{args.port}", credentials)
    else:
        port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"listening 127.0.0.1:{port}", flush=True)

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait(args.max_seconds)
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
