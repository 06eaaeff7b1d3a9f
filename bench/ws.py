"""WebSocket benchmark: cppcorn and its peers echoing binary messages, in one run.

Method (docs: bench/README.md, "WebSocket benchmark"; binding: DESIGN.md
section 4): every server runs pinned to one CPU, the load generator (this
file's `client` mode, a separate process) pinned to the other. Each connection
sends a binary message, waits for its echo, and sends the next, for a fixed
time (a closed loop). Each server gets a warm-up per scenario, then the rounds
are interleaved (round 1 of every server, then round 2, ...) and the tables
show medians. Besides round trips/s, MB/s and p99 latency it reports the CPU
time the server's process tree spent per round trip, which still compares
servers when the client, not the server, is the bottleneck.

The client does not offer permessage-deflate, so no server compresses: the
servers are compared on the same work.

Two modes:

    python bench/ws.py [options]            # the benchmark (all servers)
    python bench/ws.py client --port N ...  # the load generator alone, against
                                            # any echo server on 127.0.0.1

Prints markdown on stdout, progress on stderr, and writes the raw results as
JSON to bench/results/ws-<timestamp>.json. Shares the server's life (start,
checks, log), its process, CPU and /proc helpers with bench/load.py, in
bench/common.py.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import gc
import hashlib
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:
    # Run as `python bench/ws.py`, only bench/ is on the path. Appended, not
    # prepended: this process never imports cppcorn, and must not shadow
    # anything installed.
    sys.path.append(str(REPO_ROOT))

from bench.common import (  # the path is set just above
    CLOCK_TICKS,
    HOST,
    SHARED_CORE_PERCENT,
    ServerProcess,
    command_line,
    core_ticks,
    exit_on_signal,
    forget,
    format_value,
    free_port,
    log,
    median,
    portable_argv,
    short_number,
    spawn,
    stop,
    stop_everything,
    table_cell,
    tree_cpu_seconds,
    without_repo_path,
)

SERVERS = ("cppcorn", "uvicorn", "granian")
APP = "bench.apps.ws_echo:app"
SIZES = {"32B": 32, "4KiB": 4096, "1MiB": 1 << 20}
CONNECTIONS = (1, 100)
# Client CPU at or above this share of its core: the client is the bottleneck.
CLIENT_SATURATED_PERCENT = 90.0
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PEER_PACKAGES = ("uvicorn", "websockets", "uvloop", "httptools", "granian")


# ==========================================================================
# The load generator (`ws.py client`): one process, uvloop, raw Protocols.
#
# Fast because it does almost nothing per round trip: every message is one
# pre-built frame (header, mask key, masked payload: the same bytes object for
# every send); reads go straight into a buffer exactly one expected echo frame
# long (a BufferedProtocol: no bytes object per read, no concatenation, which
# matters at 1 MiB), and a full buffer is checked with one comparison against
# the pre-built expected frame. Anything else (a ping, a fragmented or wrong
# echo) goes through a general RFC 6455 frame parser, so correctness never
# depends on the fast path.
#
# RFC 6455 5.3 asks a client for a fresh, unpredictable masking key per frame;
# it exists to protect intermediaries, not the server, which unmasks whatever
# key it gets. This load generator uses one random, non-zero key per run for
# every frame (a zero key would let a server skip the unmasking work).
# ==========================================================================


def client_frame(opcode: int, payload: bytes, key: bytes) -> bytes:
    """A complete, masked client-to-server frame with FIN set."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + key + mask(payload, key)


def server_frame(opcode: int, payload: bytes) -> bytes:
    """The unmasked, unfragmented frame a server sends for a message."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + payload


def mask(payload: bytes, key: bytes) -> bytes:
    # One big-integer XOR: fast enough for the pre-built frames and the checks.
    n = len(payload)
    if not n:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(n, "little")


def handshake_request(port: int) -> tuple[bytes, bytes]:
    """(request, expected Sec-WebSocket-Accept). No extension, no subprotocol offered."""
    key = base64.b64encode(os.urandom(16))
    request = (f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    return request, base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def check_handshake_response(head: bytes, accept: bytes) -> str | None:
    """An error, or None if `head` (up to the blank line) is a valid 101 for us."""
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 101"):
        return f"handshake answered {lines[0]!r}"
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("sec-websocket-accept", "").encode() != accept:
        return f"wrong Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}"
    if "sec-websocket-extensions" in headers:
        return f"extension negotiated although none offered: {headers['sec-websocket-extensions']!r}"
    return None


class ProtocolError(Exception):
    pass


class EchoConnection(asyncio.BufferedProtocol):
    """One WebSocket connection of the load generator.

    A BufferedProtocol: the kernel copies each read straight into a buffer of
    ours. Between messages, that buffer is exactly one expected echo frame
    long, so reads stop at the end of the echo, and a complete echo is checked
    with one comparison of the whole buffer against the pre-built frame (a
    memcmp). Anything else goes to the general parser (`_feed`).
    """

    def __init__(self, load: EchoLoad) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.opened = load.loop.create_future()
        self.request, self.accept = handshake_request(load.port)
        self.head = b""  # the handshake response, until complete
        self.is_open = False
        # The fast path: reads go into `echo` until it holds one whole frame.
        self.fast = False
        self.echo = bytearray(len(load.expected))
        self.echo_view = memoryview(self.echo)
        self.filled = 0
        # The slow path: reads go into `scratch`, and are parsed from `buf`.
        self.scratch = bytearray(65536)
        self.scratch_view = memoryview(self.scratch)
        self.buf: bytearray | None = None  # unparsed frame bytes
        self.need = 0  # bytes buf must hold before a frame can be complete
        self.fragments: list[bytes] | None = None
        self.sent_at = 0.0
        self.waiting = False  # a message is out, its echo not yet back
        self.round_trips = 0
        self.closing = False
        self.close_reply: asyncio.Future[None] | None = None
        self.failed = False

    # -- asyncio.BufferedProtocol -------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.fast:
            filled = self.filled
            return self.echo_view[filled:] if filled else self.echo_view
        return self.scratch_view

    def buffer_updated(self, nbytes: int) -> None:
        if self.fast:
            self.filled += nbytes
            if self.filled < len(self.echo):
                return
            self.filled = 0
            if self.waiting and self.echo == self.load.expected:
                self._echoed()
                return
            # Not (only) the echo: a ping first, a fragmented or wrong echo...
            self.fast = False
            self._feed(bytes(self.echo))
        else:
            self._feed(self.scratch[:nbytes])

    def _feed(self, data: bytes | bytearray) -> None:
        if self.buf is None:
            if not self.is_open:
                data = self._handshake(data)
            if data:
                self.buf = bytearray(data)
        else:
            self.buf += data
        if self.buf is not None and len(self.buf) >= self.need:
            try:
                self._parse()
            except ProtocolError as exc:
                self._fail(str(exc))
        # Back to the fast path at a message boundary.
        self.fast = (self.is_open and self.buf is None and self.fragments is None
                     and not self.failed and not self.closing)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection lost during handshake: {exc!r}"))
        if self.close_reply is not None and not self.close_reply.done():
            self.close_reply.set_result(None)  # the server closed the TCP connection: fine too
        if not self.closing and not self.failed:
            self._fail("connection closed by the server" + (f": {exc!r}" if exc else ""))

    # -- the handshake --------------------------------------------------------

    def _handshake(self, data: bytes | bytearray) -> bytes:
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > 65536:
                self.opened.set_exception(ConnectionError("handshake response too long"))
                self.transport.close()
            return b""
        error = check_handshake_response(self.head[:end], self.accept)
        rest, self.head = self.head[end + 4:], b""
        if error:
            self.failed = True
            self.opened.set_exception(ConnectionError(error))
            self.transport.close()
            return b""
        self.is_open = True
        self.opened.set_result(None)
        return rest

    # -- the load -------------------------------------------------------------

    def send(self) -> None:
        self.waiting = True
        self.sent_at = self.load.clock()
        self.transport.write(self.load.frame)

    def _echoed(self) -> None:
        load = self.load
        now = load.clock()
        load.latencies.append(now - self.sent_at)
        self.round_trips += 1
        if load.running:
            self.sent_at = now
            self.transport.write(load.frame)
        else:
            self.waiting = False
            load.drained(self)

    # -- the general frame parser (slow path) -------------------------------

    def _parse(self) -> None:
        buf = self.buf
        assert buf is not None
        pos, end = 0, len(buf)
        while True:
            available = end - pos
            if available < 2:
                self.need = 2
                break
            b0, b1 = buf[pos], buf[pos + 1]
            if b1 & 0x80:
                raise ProtocolError("masked frame from the server")
            length, header = b1 & 0x7F, 2
            if length == 126:
                header = 4
            elif length == 127:
                header = 10
            if available < header:
                self.need = header
                break
            if header > 2:
                length = int.from_bytes(buf[pos + 2:pos + header], "big")
            if available < header + length:
                self.need = header + length
                break
            payload = bytes(buf[pos + header:pos + header + length])
            pos += header + length
            self._frame(b0, payload)
            if self.failed:
                return
        if pos == end:
            self.buf = None
            self.need = 0
        elif pos:
            del buf[:pos]

    def _frame(self, b0: int, payload: bytes) -> None:
        opcode, fin = b0 & 0x0F, bool(b0 & 0x80)
        if b0 & 0x70:
            raise ProtocolError(f"RSV bits set ({b0:#04x}) although no extension was negotiated")
        if opcode == 0x9:  # ping: answer it, as any client must
            self.transport.write(client_frame(0xA, payload, self.load.key))
        elif opcode == 0xA:
            pass
        elif opcode == 0x8:
            if self.closing and self.close_reply is not None:
                if not self.close_reply.done():
                    self.close_reply.set_result(None)
                return
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            raise ProtocolError(f"server sent close (code {code}, reason {payload[2:][:60]!r})")
        elif opcode in (0x1, 0x2):
            if self.fragments is not None:
                raise ProtocolError("new message inside a fragmented one")
            if opcode == 0x1:
                raise ProtocolError("text message received for a binary one")
            if fin:
                self._message(payload)
            else:
                self.fragments = [payload]
        elif opcode == 0x0:
            if self.fragments is None:
                raise ProtocolError("continuation frame outside a message")
            self.fragments.append(payload)
            if fin:
                message, self.fragments = b"".join(self.fragments), None
                self._message(message)
        else:
            raise ProtocolError(f"reserved opcode {opcode:#x}")

    def _message(self, message: bytes) -> None:
        if not self.waiting:
            raise ProtocolError(f"unexpected message ({len(message)} bytes) with none outstanding")
        expected = self.load.payload
        if message != expected:
            raise ProtocolError(f"wrong echo: {describe_difference(message, expected)}")
        self._echoed()

    def _fail(self, reason: str) -> None:
        self.failed = True
        self.load.error(reason)
        if self.waiting:
            self.waiting = False
            self.load.drained(self)
        if self.transport is not None:
            self.transport.abort()

    # -- closing --------------------------------------------------------------

    async def close(self, timeout: float) -> bool:
        """The closing handshake; True if the server answered with a close frame in time."""
        if self.failed or self.transport is None or self.transport.is_closing():
            return True
        self.closing = True
        self.fast = False
        self.close_reply = self.load.loop.create_future()
        self.transport.write(client_frame(0x8, (1000).to_bytes(2, "big"), self.load.key))
        try:
            await asyncio.wait_for(self.close_reply, timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            self.transport.close()


def describe_difference(got: bytes, expected: bytes) -> str:
    if len(got) != len(expected):
        return f"{len(got)} bytes instead of {len(expected)}"
    at = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
    return (f"{len(got)} bytes, first difference at offset {at}: "
            f"{got[at:at + 8].hex()} instead of {expected[at:at + 8].hex()}")


class EchoLoad:
    """All connections of one client run, and what they measured."""

    def __init__(self, loop: asyncio.AbstractEventLoop, port: int, size: int) -> None:
        self.loop = loop
        self.port = port
        self.clock = time.monotonic
        self.key = b"\x00\x00\x00\x00"
        while self.key == b"\x00\x00\x00\x00":
            self.key = os.urandom(4)
        self.payload = os.urandom(size)
        self.frame = client_frame(0x2, self.payload, self.key)
        self.expected = server_frame(0x2, self.payload)
        self.running = False
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.in_flight = 0
        self.all_drained: asyncio.Future[None] = loop.create_future()

    def error(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def drained(self, _conn: EchoConnection) -> None:
        self.in_flight -= 1
        if self.in_flight <= 0 and not self.all_drained.done():
            self.all_drained.set_result(None)


async def run_client(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    load = EchoLoad(loop, args.port, args.size)
    result: dict[str, Any] = {"connections": args.connections, "size": args.size}

    started = time.monotonic()
    conns = [EchoConnection(load) for _ in range(args.connections)]
    try:
        # A few at a time: a burst of 100 SYNs can overflow a small backlog.
        for i in range(0, len(conns), 20):
            await asyncio.gather(*(loop.create_connection(lambda c=c: c, HOST, args.port)
                                   for c in conns[i:i + 20]))
        await asyncio.wait_for(asyncio.gather(*(c.opened for c in conns)), 30)
    except (OSError, ConnectionError, asyncio.TimeoutError) as exc:
        for c in conns:
            if c.transport is not None:
                c.transport.abort()
        return {**result, "fatal": f"could not open the connections: {exc!r}"}
    result["connect_s"] = time.monotonic() - started

    # The window: samples of the server's CPU and both cores right before the
    # first send and right after the last echo. The /proc scans happen outside
    # it, while the server is idle.
    gc.collect()
    gc.disable()
    server_before = tree_cpu_seconds(args.server_pid) if args.server_pid else 0.0
    server_core_before = core_ticks([args.server_cpu])
    client_core_before = core_ticks([args.client_cpu])
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    load.running = True
    load.in_flight = len(conns)
    for c in conns:
        c.send()

    def stop_sending() -> None:
        load.running = False

    loop.call_at(loop.time() + args.duration, stop_sending)
    stalled = 0
    try:
        # Every connection finishes the round trip it has out, then stops.
        await asyncio.wait_for(asyncio.shield(load.all_drained), args.duration + args.drain_timeout)
    except asyncio.TimeoutError:
        stalled = sum(1 for c in conns if c.waiting)
    t1 = time.monotonic()
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    client_core_after = core_ticks([args.client_cpu])
    server_core_after = core_ticks([args.server_cpu])
    server_after = tree_cpu_seconds(args.server_pid) if args.server_pid else 0.0
    gc.enable()

    if stalled:
        load.errors[f"no echo within {args.drain_timeout:g} s after the end of the run "
                    f"(message lost or connection stuck)"] = stalled

    closes = await asyncio.gather(*(c.close(2.0) for c in conns))
    no_close_reply = sum(1 for ok in closes if not ok)

    latencies = sorted(load.latencies)
    counts = [c.round_trips for c in conns]

    def percentile(p: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e3

    return {
        **result,
        "round_trips": len(latencies),
        "wall_s": t1 - t0,
        "p50_ms": percentile(50),
        "p99_ms": percentile(99),
        "max_ms": latencies[-1] * 1e3 if latencies else None,
        "per_connection_min": min(counts),
        "per_connection_max": max(counts),
        "client_cpu_s": (usage_after.ru_utime - usage_before.ru_utime)
                        + (usage_after.ru_stime - usage_before.ru_stime),
        # User time is the client's Python; system time is mostly the kernel's
        # loopback TCP work, which a client in C would pay as well.
        "client_user_s": usage_after.ru_utime - usage_before.ru_utime,
        "server_cpu_s": server_after - server_before,
        "server_core_ticks": [a - b for a, b in zip(server_core_after, server_core_before)],
        "client_core_ticks": [a - b for a, b in zip(client_core_after, client_core_before)],
        "errors": load.errors,
        "no_close_reply": no_close_reply,
        "mask_key": load.key.hex(),
    }


def client_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="ws.py client",
        description="WebSocket echo load generator: each connection sends a binary message, "
                    "waits for the echo, repeats. Prints one JSON object.")
    parser.add_argument("--port", type=int, required=True, help=f"the server's port on {HOST}")
    parser.add_argument("--size", type=int, default=32, help="payload bytes (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=1, help="(default: %(default)s)")
    parser.add_argument("--duration", type=float, default=4, help="seconds (default: %(default)s)")
    parser.add_argument("--drain-timeout", type=float, default=10,
                        help="seconds to wait for the last echoes (default: %(default)s)")
    parser.add_argument("--server-pid", type=int, default=0,
                        help="measure this process tree's CPU over the run (default: none)")
    parser.add_argument("--server-cpu", type=int, default=0, help="(for the core-busy figures)")
    parser.add_argument("--client-cpu", type=int, default=1, help="(for the core-busy figures)")
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        raise SystemExit("the client needs uvloop (bench/requirements.txt)")
    result = uvloop.run(run_client(args))
    print(json.dumps(result))
    return 0 if "fatal" not in result else 1


# ==========================================================================
# A blocking check, before measuring: does the server echo correctly across
# the frame length encodings, text included, and close properly?
# ==========================================================================


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise RuntimeError("connection closed by the server")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv_message(sock: socket.socket) -> tuple[int, bytes]:
    """(opcode, payload) of the next message; pings are skipped, fragments joined."""
    opcode, parts = None, []
    while True:
        b0, b1 = _recv_exact(sock, 2)
        if b1 & 0x80:
            raise RuntimeError("masked frame from the server")
        if b0 & 0x70:
            raise RuntimeError(f"RSV bits set ({b0:#04x}) although no extension was negotiated")
        length = b1 & 0x7F
        if length >= 126:
            length = int.from_bytes(_recv_exact(sock, 2 if length == 126 else 8), "big")
        payload = _recv_exact(sock, length)
        op = b0 & 0x0F
        if op in (0x9, 0xA):
            continue
        if op != 0:
            opcode = op
        parts.append(payload)
        if b0 & 0x80:
            return opcode or 0, b"".join(parts)


def check_echo(port: int, timeout: float = 10) -> None:
    """Raises RuntimeError when the server does not echo or close as it should."""
    sizes = (0, 1, 32, 125, 126, 127, 4096, 65535, 65536, 1 << 20)
    key = os.urandom(3) + b"\x01"
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        request, accept = handshake_request(port)
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError("connection closed during the handshake")
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        error = check_handshake_response(head, accept)
        if error:
            raise RuntimeError(error)
        if rest:
            raise RuntimeError(f"{len(rest)} unexpected bytes after the handshake")
        messages = [(0x2, os.urandom(n)) for n in sizes]
        messages.append((0x1, "héllo, wörld ✓".encode()))
        for opcode, payload in messages:
            sock.sendall(client_frame(opcode, payload, key))
            got_opcode, got = _recv_message(sock)
            kind = "text" if opcode == 0x1 else "binary"
            if got_opcode != opcode:
                raise RuntimeError(f"{kind} message of {len(payload)} bytes echoed with opcode {got_opcode:#x}")
            if got != payload:
                raise RuntimeError(f"{kind} message of {len(payload)} bytes: wrong echo: "
                                   f"{describe_difference(got, payload)}")
        sock.sendall(client_frame(0x8, (1000).to_bytes(2, "big"), key))
        opcode, payload = _recv_message(sock)
        if opcode != 0x8:
            raise RuntimeError(f"close answered with opcode {opcode:#x}")
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
        if code != 1000:
            raise RuntimeError(f"close 1000 answered with close code {code}")


# ==========================================================================
# The servers
# ==========================================================================


def server_command(name: str, port: int) -> list[str]:
    py = sys.executable
    common = ["--host", HOST, "--port", str(port), "--no-access-log", "--log-level", "warning"]
    if name == "cppcorn":
        # WebSockets are on by default (--ws auto: cppcorn's own compiled
        # protocol); permessage-deflate is offered by default, as Uvicorn's,
        # but the client does not ask for it.
        return [py, "-m", "cppcorn", APP, "--app-dir", str(REPO_ROOT), *common,
                "--loop", "uvloop", "--ws", "auto"]
    if name == "uvicorn":
        # websockets-sansio is what Uvicorn 0.54's --ws auto picks when the
        # websockets package is installed (uvicorn/protocols/websockets/auto.py);
        # named explicitly so that uvicorn fails rather than falls back.
        return [py, "-m", "uvicorn", APP, "--app-dir", str(REPO_ROOT), *common,
                "--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio"]
    if name == "granian":
        return [py, "-m", "granian", APP, "--working-dir", str(REPO_ROOT),
                "--interface", "asgi", "--workers", "1", "--loop", "uvloop", "--ws", *common]
    raise ValueError(name)


# Extension modules (.so) that must be mapped in the server's process tree.
REQUIRED_NATIVE = {
    "cppcorn": ("uvloop", "cppcorn"),
    "uvicorn": ("uvloop", "httptools", "websockets"),  # websockets/speedups: C unmasking
    "granian": ("uvloop", "granian"),
}
# Python modules that must (and must not) be imported in the server, as the
# app's GET /modules reports them: which WebSocket implementation is in use.
REQUIRED_MODULES = {
    "cppcorn": (("cppcorn.http.websocket",), ()),
    "uvicorn": (("uvicorn.protocols.websockets.websockets_sansio_impl", "websockets.speedups"),
                ("uvicorn.protocols.websockets.websockets_impl",
                 "uvicorn.protocols.websockets.wsproto_impl")),
    "granian": ((), ()),
}


@dataclass
class Run:
    round: int
    round_trips: int
    round_trips_per_s: float
    mb_per_s: float  # payload bytes echoed per second (each way), 10^6
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    server_cpu_s: float
    cpu_us_per_round_trip: float
    server_cpu_percent: float
    core_busy_percent: float  # the server's core, whoever used it, softirq included
    core_softirq_percent: float
    core_other_percent: float  # other processes on the server's core (a lower bound)
    client_cpu_percent: float
    client_user_percent: float  # the Python part of it
    client_core_busy_percent: float
    client_core_other_percent: float  # other processes on the client's core
    wall_s: float
    connect_s: float
    per_connection_min: int
    per_connection_max: int
    errors: dict[str, int]
    no_close_reply: int
    problems: list[str]


@dataclass
class ServerUnderTest(ServerProcess):
    modules: list[str] = field(default_factory=list)
    final_log: str = ""  # what it logged over the whole run (log level warning: nothing, normally)

    def command(self, args: argparse.Namespace) -> list[str]:
        return server_command(self.name, self.port)

    def verify(self) -> None:
        self.modules = self._get_json("/modules")
        check_echo(self.port)
        missing = self.check_native(REQUIRED_NATIVE[self.name])
        required, forbidden = REQUIRED_MODULES[self.name]
        missing += [m for m in required if m not in self.modules]
        unwanted = [m for m in forbidden if m in self.modules]
        if missing:
            raise RuntimeError(f"{', '.join(missing)} not loaded in the server's processes")
        if unwanted:
            raise RuntimeError(f"{', '.join(unwanted)} loaded: not the WebSocket implementation asked for")

    def _get_json(self, path: str) -> Any:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise RuntimeError(f"GET {path} failed: {exc!r}") from exc
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        return json.loads(body)


@dataclass
class Scenario:
    size_name: str
    size: int
    connections: int
    results: dict[str, ScenarioResult] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.size_name} x {self.connections} conn"


@dataclass
class ScenarioResult:
    warmup: dict[str, Any] | None = None
    runs: list[Run] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def clean_runs(self) -> list[Run]:
        return [r for r in self.runs if not r.problems]


def run_client_process(server: ServerUnderTest, scenario: Scenario, duration: float,
                       args: argparse.Namespace) -> dict[str, Any]:
    assert server.proc is not None
    argv = ["taskset", "-c", str(args.client_cpu), sys.executable, str(Path(__file__).resolve()),
            "client", "--port", str(server.port), "--size", str(scenario.size),
            "--connections", str(scenario.connections), "--duration", str(duration),
            "--server-pid", str(server.proc.pid), "--server-cpu", str(args.server_cpu),
            "--client-cpu", str(args.client_cpu)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = spawn(argv, stdout=out, stderr=err)
        # The client ends on its own; the timer only keeps a hung one from
        # hanging the benchmark (connect 30 s + run + drain 10 s + close 2 s).
        timer = threading.Timer(duration + 60, os.kill, (proc.pid, signal.SIGKILL))
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
            forget(proc)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    try:
        return json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"client exited with {proc.returncode}: "
                           f"{(errors.strip() or text.strip())[-400:]}") from None


def measure(server: ServerUnderTest, scenario: Scenario, round_no: int, duration: float,
            args: argparse.Namespace) -> Run | None:
    result = scenario.results.setdefault(server.name, ScenarioResult())
    what = "warm-up" if round_no == 0 else f"round {round_no}"
    try:
        out = run_client_process(server, scenario, duration, args)
    except RuntimeError as exc:
        if server.alive():
            result.notes.append(f"{what}: client failed: {str(exc).splitlines()[0]}")
            log(f"  {server.name}: {result.notes[-1]}")
        return None
    if "fatal" in out:
        if server.alive():
            result.notes.append(f"{what}: {out['fatal']}")
            log(f"  {server.name}: {result.notes[-1]}")
        return None
    wall = out["wall_s"]
    busy, softirq = out["server_core_ticks"]
    cbusy, csoftirq = out["client_core_ticks"]
    cpu_s, client_s, n = out["server_cpu_s"], out["client_cpu_s"], out["round_trips"]
    problems = [f"{count} × {reason}" for reason, count in out["errors"].items()]
    if n == 0 and not problems:
        problems.append("no round trip completed")
    if not server.alive():
        problems.append("server died")
    return Run(
        round=round_no,
        round_trips=n,
        round_trips_per_s=n / wall,
        mb_per_s=n * scenario.size / wall / 1e6,
        p50_ms=out["p50_ms"],
        p99_ms=out["p99_ms"],
        max_ms=out["max_ms"],
        server_cpu_s=cpu_s,
        cpu_us_per_round_trip=cpu_s * 1e6 / n if n else float("nan"),
        server_cpu_percent=100 * cpu_s / wall,
        core_busy_percent=100 * busy / CLOCK_TICKS / wall,
        core_softirq_percent=100 * softirq / CLOCK_TICKS / wall,
        core_other_percent=max(0.0, 100 * (busy - softirq) / CLOCK_TICKS / wall - 100 * cpu_s / wall),
        client_cpu_percent=100 * client_s / wall,
        client_user_percent=100 * out["client_user_s"] / wall,
        client_core_busy_percent=100 * cbusy / CLOCK_TICKS / wall,
        client_core_other_percent=max(0.0, 100 * (cbusy - csoftirq) / CLOCK_TICKS / wall
                                      - 100 * client_s / wall),
        wall_s=wall,
        connect_s=out["connect_s"],
        per_connection_min=out["per_connection_min"],
        per_connection_max=out["per_connection_max"],
        errors=out["errors"],
        no_close_reply=out["no_close_reply"],
        problems=problems,
    )


def run_scenario(scenario: Scenario, servers: list[ServerUnderTest], args: argparse.Namespace) -> None:
    log(f"scenario {scenario.name}")
    ready = [s for s in servers if s.alive()]
    for server in ready:
        result = scenario.results.setdefault(server.name, ScenarioResult())
        if args.warmup > 0 and server.alive():
            run = measure(server, scenario, 0, args.warmup, args)
            result.warmup = asdict(run) if run else None
            if run is not None and run.problems:
                log(f"  warm-up {server.name}: !! {', '.join(run.problems)}")
    for round_no in range(1, args.rounds + 1):
        # The order rotates each round: no server is always measured right
        # after a particular other.
        shift = (round_no - 1) % max(len(ready), 1)
        for server in ready[shift:] + ready[:shift]:
            if not server.alive():
                continue
            time.sleep(args.pause)
            run = measure(server, scenario, round_no, args.duration, args)
            if run is None:
                continue
            scenario.results[server.name].runs.append(run)
            flag = f"  !! {', '.join(run.problems)}" if run.problems else ""
            log(f"  round {round_no} {server.name:8} {run.round_trips_per_s:>9,.0f} rt/s "
                f"{run.mb_per_s:8.1f} MB/s  p99 {format_value(run.p99_ms, '7.2f')} ms "
                f"{run.cpu_us_per_round_trip:7.1f} us/rt  server {run.server_cpu_percent:3.0f}% "
                f"(core {run.core_busy_percent:3.0f}%)  client {run.client_cpu_percent:3.0f}% "
                f"(user {run.client_user_percent:3.0f}%){flag}")


# ==========================================================================
# Report
# ==========================================================================


def summarise(result: ScenarioResult | None) -> dict[str, Any]:
    clean = result.clean_runs() if result else []

    def med(attr: str) -> float | None:
        return median([getattr(r, attr) for r in clean if getattr(r, attr) is not None])

    return {
        "round_trips_per_s": med("round_trips_per_s"),
        "mb_per_s": med("mb_per_s"),
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "cpu_us_per_round_trip": med("cpu_us_per_round_trip"),
        "server_cpu_percent": med("server_cpu_percent"),
        "core_busy_percent": med("core_busy_percent"),
        "client_cpu_percent": med("client_cpu_percent"),
        "client_user_percent": med("client_user_percent"),
        "clean_rounds": len(clean),
    }


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value is not None and base else "—"


def markdown_table(scenario: Scenario, servers: list[ServerUnderTest], args: argparse.Namespace) -> str:
    summaries = {s.name: summarise(scenario.results.get(s.name)) for s in servers}
    base = summaries.get("uvicorn", {})
    rows = [
        ("| server | round trips/s | vs uvicorn | MB/s | p99 ms | CPU µs/rt | CPU vs uvicorn "
         "| server CPU | core busy | client CPU (user) | rt/s per round | CPU µs/rt per round | notes |"),
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|---|",
    ]
    for server in servers:
        result = scenario.results.get(server.name)
        s = summaries[server.name]
        if result is None or (not result.runs and not server.ok):
            rows.append(f"| {server.name} | — | — | — | — | — | — | — | — | — | | "
                        f"| **failed**: {table_cell(server.failure_summary())} |")
            continue
        marks = [(r, "!" if r.problems else "") for r in result.runs]
        notes = [f"round {r.round}: {'; '.join(r.problems)} (not in the medians)"
                 for r in result.runs if r.problems] + list(result.notes)
        if s["client_cpu_percent"] is not None and s["client_cpu_percent"] >= CLIENT_SATURATED_PERCENT:
            notes.append("**client saturated**: round trips/s understates this server; compare CPU µs/rt")
        unfair = [r for r in result.runs if r.per_connection_max > 2 * max(r.per_connection_min, 1)
                  and scenario.connections > 1]
        if unfair:
            r = unfair[0]
            notes.append(f"round {r.round}: unfair, round trips per connection "
                         f"{r.per_connection_min}-{r.per_connection_max}")
        unclosed = [r for r in result.runs if r.no_close_reply]
        if unclosed:
            notes.append("no close frame back within 2 s after the run: "
                         + ", ".join(f"round {r.round}: {r.no_close_reply} conn" for r in unclosed))
        for r in result.runs:
            taken = [f"≥{pct:.0f}% of CPU {cpu}" for pct, cpu in
                     ((r.core_other_percent, args.server_cpu), (r.client_core_other_percent, args.client_cpu))
                     if pct > SHARED_CORE_PERCENT]
            if taken:
                notes.append(f"round {r.round}: other processes took {' and '.join(taken)}")
        if not server.ok:
            notes.append(f"**failed**: {server.failure_summary()}")
        rows.append(
            f"| {server.name} | {format_value(s['round_trips_per_s'], ',.0f')} "
            f"| {_ratio(s['round_trips_per_s'], base.get('round_trips_per_s'))} "
            f"| {format_value(s['mb_per_s'], ',.1f')} | {format_value(s['p99_ms'], '.2f')} "
            f"| {format_value(s['cpu_us_per_round_trip'], ',.1f')} "
            f"| {_ratio(s['cpu_us_per_round_trip'], base.get('cpu_us_per_round_trip'))} "
            f"| {format_value(s['server_cpu_percent'], '.0f', '%')} | {format_value(s['core_busy_percent'], '.0f', '%')} "
            f"| {format_value(s['client_cpu_percent'], '.0f', '%')} ({format_value(s['client_user_percent'], '.0f', '%')}) "
            f"| {' / '.join(short_number(r.round_trips_per_s) + m for r, m in marks)} "
            f"| {' / '.join(f'{r.cpu_us_per_round_trip:,.1f}{m}' for r, m in marks)} "
            f"| {table_cell('; '.join(notes))} |")
    return "\n".join(rows)


def summary_table(scenarios: list[Scenario], servers: list[ServerUnderTest]) -> str:
    names = [s.name for s in servers]
    rows = ["| scenario | " + " | ".join(f"{n} rt/s | {n} CPU µs/rt" for n in names) + " |",
            "|---|" + "--:|--:|" * len(names)]
    for scenario in scenarios:
        cells = []
        for n in names:
            s = summarise(scenario.results.get(n))
            cells += [format_value(s["round_trips_per_s"], ",.0f"), format_value(s["cpu_us_per_round_trip"], ",.1f")]
        rows.append(f"| {scenario.name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def environment(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    cpu_model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    versions = {}
    # Asked of the interpreter the servers run, from where they run (with the
    # same environment): the cppcorn they import may be a build in place.
    probe = ("import importlib.metadata as m, json\n"
             "out = {}\n"
             f"for p in {PEER_PACKAGES!r}:\n"
             "    try: out[p] = m.version(p)\n"
             "    except m.PackageNotFoundError: out[p] = 'not installed'\n"
             "try:\n"
             "    import cppcorn; out['cppcorn'] = getattr(cppcorn, '__version__', '?') + ' from ' + cppcorn.__file__\n"
             "except Exception as e: out['cppcorn'] = 'not importable: %r' % (e,)\n"
             "print(json.dumps(out))\n")
    try:
        out = subprocess.run([sys.executable, "-c", probe], cwd=scratch, capture_output=True, check=False,
                             text=True, timeout=30)
        versions = json.loads(out.stdout)
        versions["cppcorn"] = without_repo_path(versions["cppcorn"])
    except (ValueError, subprocess.TimeoutExpired, KeyError):
        versions = {"error": "could not ask the interpreter"}
    try:
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], check=False,
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = "unknown"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(),
        "commit": commit or "unknown",
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "load_average_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "python": f"{platform.python_implementation()} {platform.python_version()} "
                  f"({platform.python_compiler()}, {platform.python_build()[1]})",
        "versions": versions,
        "settings": {k: getattr(args, k) for k in (
            "sizes", "connections", "duration", "rounds", "warmup", "pause", "server_cpu", "client_cpu")},
    }


def markdown_report(env: dict[str, Any], scenarios: list[Scenario], servers: list[ServerUnderTest],
                    args: argparse.Namespace) -> str:
    st = env["settings"]
    v = env["versions"]
    lines = [
        f"### WebSocket echo benchmark, {env['date']}",
        "",
        f"- command: `{env['command']}` (commit {env['commit']})",
        (f"- machine: {env['cpu_model']}, {env['cpus']} CPUs, Linux {env['kernel']}, "
         f"load average at start {' '.join(env['load_average_at_start'])}"),
        f"- {env['python']}; " + ", ".join(f"{k} {v[k]}" for k in v),
        "- servers: " + "; ".join(f"{s.name}: `{' '.join(portable_argv(s.argv)[1:])}`" for s in servers),
        (f"- method: server pinned to CPU {st['server_cpu']}, the load generator (`bench/ws.py "
         f"client`: one process, uvloop, pre-built masked frames, every echo checked byte for byte) "
         f"pinned to CPU {st['client_cpu']}. Each connection sends a binary message, waits for its "
         f"echo, sends the next (a closed loop) for {st['duration']:g} s; {st['warmup']:g} s warm-up "
         f"per server and scenario, then {st['rounds']} interleaved rounds; medians over the rounds "
         "without errors (rounds marked ! had errors and are left out). The client offers no "
         "permessage-deflate, so no server compresses (cppcorn and uvicorn would agree to it, "
         "granian does not implement it)."),
        ("- columns: MB/s = payload echoed per second, each way (10⁶ bytes); p99 = 99th percentile "
         "round-trip time, send to complete echo; CPU µs/rt = utime+stime of the server's process "
         "tree over the run / round trips (lower is better; it still compares servers when the "
         "client saturates); CPU vs uvicorn < 1 is cheaper than uvicorn; server CPU, core busy "
         "(all use of the server's core, softirq included) and client CPU are % of one core; "
         "client CPU (user): the client's user time, its Python, apart from the kernel's work."),
    ]
    saturated = []
    for scenario in scenarios:
        for server in servers:
            s = summarise(scenario.results.get(server.name))
            if s["client_cpu_percent"] is not None and s["client_cpu_percent"] >= CLIENT_SATURATED_PERCENT:
                saturated.append(f"{scenario.name} / {server.name}")
    if saturated:
        lines.append(f"- **the client saturated its core** (≥{CLIENT_SATURATED_PERCENT:.0f}%) in: "
                     + ", ".join(saturated) + ". There, round trips/s is the client's limit, not "
                     "the server's: compare CPU µs/rt.")
    else:
        lines.append("- the client never saturated its core: round trips/s compares servers.")
    for server in servers:
        if server.final_log.strip():
            lines.append(f"- {server.name} logged (last lines): "
                         f"`{table_cell(' / '.join(server.final_log.strip().splitlines()[-3:]))[:600]}`")
    lines += ["", "#### Summary (medians)", "", summary_table(scenarios, servers)]
    for scenario in scenarios:
        title = (f"#### {scenario.name}: {scenario.size:,}-byte binary messages, "
                 f"{scenario.connections} connection{'s' if scenario.connections > 1 else ''}")
        lines += ["", title, "", markdown_table(scenario, servers, args)]
    return "\n".join(lines) + "\n"


def to_json(env: dict[str, Any], scenarios: list[Scenario], servers: list[ServerUnderTest]) -> dict[str, Any]:
    return {
        "environment": env,
        "servers": [
            {"server": s.name, "command": portable_argv(s.argv), "error": s.error,
             "log_excerpt": s.log_excerpt, "final_log": s.final_log,
             "native_modules_loaded": s.native, "modules": s.modules}
            for s in servers
        ],
        "scenarios": [
            {
                "size": sc.size,
                "connections": sc.connections,
                "results": {
                    name: {"summary": summarise(r), "notes": r.notes, "warmup": r.warmup,
                           "runs": [asdict(run) for run in r.runs]}
                    for name, r in sc.results.items()
                },
            }
            for sc in scenarios
        ],
    }


# ==========================================================================
# Command line
# ==========================================================================


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="WebSocket echo benchmark of cppcorn and its peers (see bench/README.md). "
                    "`ws.py client --help`: the load generator alone.")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated, from: %(default)s")
    parser.add_argument("--sizes", default=",".join(SIZES),
                        help=f"message sizes, from: {','.join(SIZES)} (default: %(default)s)")
    parser.add_argument("--connections", default=",".join(map(str, CONNECTIONS)),
                        help="connection counts (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=4, help="seconds per round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=1,
                        help="warm-up seconds per server and scenario (default: %(default)s; 0: none)")
    parser.add_argument("--pause", type=float, default=0.3,
                        help="idle seconds before each run (default: %(default)s)")
    parser.add_argument("--start-timeout", type=float, default=30,
                        help="seconds a server may take to answer (default: %(default)s)")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU the servers run on")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU the client runs on")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results",
                        help="where the JSON goes (default: bench/results)")
    args = parser.parse_args()

    def names(option: str, value: str, known: tuple[str, ...]) -> list[str]:
        got = [n.strip() for n in value.split(",") if n.strip()]
        unknown = [n for n in got if n not in known]
        if unknown or not got:
            parser.error(f"{option}: unknown {unknown}; choose from {', '.join(known)}")
        return [n for n in known if n in got]  # a fixed order keeps reports comparable

    args.servers = names("--servers", args.servers, SERVERS)
    args.sizes = names("--sizes", args.sizes, tuple(SIZES))
    try:
        args.connections = sorted({int(c) for c in args.connections.split(",") if c.strip()})
    except ValueError:
        parser.error("--connections: comma-separated integers")
    if (args.rounds < 1 or args.duration <= 0 or args.warmup < 0 or not args.connections
            or min(args.connections) < 1 or max(args.connections) > 1000):
        parser.error("--rounds, --duration, --connections (1-1000) must be positive")
    available = os.sched_getaffinity(0)
    if {args.server_cpu, args.client_cpu} - available or args.server_cpu == args.client_cpu:
        parser.error(f"--server-cpu and --client-cpu must be two different CPUs of {sorted(available)}")
    return args


def estimated_seconds(args: argparse.Namespace) -> float:
    runs = len(args.sizes) * len(args.connections) * len(args.servers)
    # Per client run: about 0.7 s of interpreter start, connecting and closing.
    return 10 * len(args.servers) + runs * (
        (args.warmup + 0.7 if args.warmup else 0) + args.rounds * (args.duration + args.pause + 0.7))


def main() -> int:
    args = parse_args()
    if shutil.which("taskset") is None:
        raise SystemExit("taskset not found: run bench/setup.sh first")
    signal.signal(signal.SIGTERM, exit_on_signal)
    signal.signal(signal.SIGHUP, exit_on_signal)
    # The harness only waits while the client runs; what it does do (start-up
    # checks, /proc scans) stays off the servers' CPU.
    os.sched_setaffinity(0, {args.client_cpu})

    scenarios = [Scenario(size_name, SIZES[size_name], conns)
                 for size_name in args.sizes for conns in args.connections]
    log(f"about {estimated_seconds(args) / 60:.1f} min: servers {','.join(args.servers)}, "
        f"{len(scenarios)} scenarios")
    servers: list[ServerUnderTest] = []
    try:
        with tempfile.TemporaryDirectory(prefix="cppcorn-ws-bench-") as scratch:
            env = environment(args, Path(scratch))
            # Every server is started once (one at a time: start-up CPU would
            # disturb the others) and serves every scenario.
            for name in args.servers:
                rundir = Path(scratch) / name
                rundir.mkdir()
                server = ServerUnderTest(name, free_port(), rundir)
                servers.append(server)
                server.start(args)
            for scenario in scenarios:
                run_scenario(scenario, servers, args)
            for server in servers:
                if server.alive() and server.proc is not None:
                    stop(server.proc)
                    server.final_log = without_repo_path(server.log_tail(40))
                    if server.final_log.strip():
                        log(f"  {server.name} logged:\n{server.final_log}")
    finally:
        stop_everything()

    report = markdown_report(env, scenarios, servers, args)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.results_dir / f"ws-{stamp}.json"
    out.write_text(json.dumps(to_json(env, scenarios, servers), indent=2) + "\n")
    print(report)
    log(f"raw results: {os.path.relpath(out)}")
    measured = any(r.runs for sc in scenarios for r in sc.results.values())
    return 0 if measured else 1


if __name__ == "__main__":
    try:
        if len(sys.argv) > 1 and sys.argv[1] == "client":
            sys.exit(client_main(sys.argv[2:]))
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted: every process it started is stopped; no report")
        sys.exit(130)
