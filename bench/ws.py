"""WebSocket echo benchmark: cppcorn and its peers echoing binary messages (bench/README.md). The harness runs
the servers and rounds; here are the scenarios (size x connections) and the load generator (`ws.py client`)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import ClassVar

sys.path.append(str(Path(__file__).resolve().parent.parent))  # the repo root: this process never imports cppcorn
from bench import harness
from bench.harness import HOST, Run, Scenario, Server
from tests import websocket_client as wsc

SIZES = {"32B": 32, "4KiB": 4096, "1MiB": 1 << 20}


def unexpected(frame: wsc.Frame) -> bool:
    """Masked, or with RSV bits: no server sends that without an extension, and none is negotiated."""
    return frame.masked or frame.rsv1 or frame.rsv2 or frame.rsv3


def open_websocket(port: int) -> wsc.RawWebSocket:
    """A connection through the opening handshake, without permessage-deflate (not offered), so that no server
    compresses: all do the same work. RuntimeError (OSError) if the server answers otherwise."""
    client = wsc.RawWebSocket(port, HOST, timeout=10)
    response = client.connect()
    if response.status != 101 or response.header("sec-websocket-accept") != wsc.SAMPLE_ACCEPT or client.buffer \
            or response.header("sec-websocket-extensions"):
        client.close()
        raise RuntimeError(f"handshake answered {response.raw[:300]!r}, then {client.buffer[:20]!r}")
    return client


# -- The load generator (`ws.py client`): one process on uvloop. --------------
# It does almost nothing per round trip: every message is one pre-built frame (header, mask key, masked payload),
# reads go straight into a buffer exactly one echo frame long (a BufferedProtocol: no bytes object per read), and a
# full buffer is checked with one comparison against the pre-built expected frame. Anything else (a ping, a
# fragmented or wrong echo) goes through the general frame parser: correctness never depends on the fast path.
# RFC 6455 asks a client for a new unpredictable mask key per frame, which protects proxies, not the server: one
# random non-zero key per run (a zero key would let a server skip the unmasking).


class EchoLoad:
    """The connections of one client run, and what they measured."""

    def __init__(self, size: int) -> None:
        self.key = bytes(4)
        while self.key == bytes(4):
            self.key = os.urandom(4)
        self.payload = os.urandom(size)
        self.frame = wsc.encode_frame(wsc.BINARY, self.payload, key=self.key)
        self.expected = wsc.encode_frame(wsc.BINARY, self.payload, mask=False)
        self.running = False
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.in_flight = 0
        self.all_drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def drained(self) -> None:
        self.in_flight -= 1
        if self.in_flight <= 0 and not self.all_drained.done():
            self.all_drained.set_result(None)


class EchoConnection(asyncio.BufferedProtocol):
    """One connection, past its handshake: between messages its reads fill `echo`, exactly one expected echo frame long,
    which one comparison (a memcmp) then checks."""

    def __init__(self, load: EchoLoad) -> None:
        self.load = load
        self.fast, self.waiting, self.closing, self.failed = True, False, False, False
        self.echo = bytearray(len(load.expected))
        self.echo_view, self.filled = memoryview(self.echo), 0
        self.scratch = bytearray(65536)
        self.scratch_view = memoryview(self.scratch)
        self.pending = bytearray()  # off the fast path: frames until parsed
        self.fragments: list[bytes] | None = None
        self.sent_at = 0.0
        self.round_trips = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.fast:
            return self.echo_view[self.filled:] if self.filled else self.echo_view
        return self.scratch_view

    def buffer_updated(self, nbytes: int) -> None:
        if not self.fast:
            self.feed(self.scratch[:nbytes])
            return
        self.filled += nbytes
        if self.filled < len(self.echo):
            return
        self.filled = 0
        if self.waiting and self.echo == self.load.expected:
            self.echoed()
        else:  # not (only) the echo: a ping first, a fragmented or wrong echo
            self.fast = False
            self.feed(self.echo)

    def feed(self, data: bytes | bytearray) -> None:
        self.pending += data
        try:
            while not self.failed and (parsed := wsc.parse_frame(self.pending)):
                frame, end = parsed
                del self.pending[:end]
                self.on_frame(frame)
        except ValueError as exc:  # what the server sent
            self.fail(str(exc))
        # Back to the fast path at a message boundary.
        self.fast = not (self.pending or self.fragments or self.failed or self.closing)

    def on_frame(self, frame: wsc.Frame) -> None:
        if unexpected(frame):
            raise ValueError(f"a masked frame or RSV bits from the server (opcode {frame.opcode:#x})")
        if frame.opcode in (wsc.BINARY, wsc.CONT):
            if (frame.opcode == wsc.CONT) != (self.fragments is not None):
                raise ValueError("a continuation frame outside a message, or a message inside one")
            self.fragments = [*(self.fragments or ()), frame.payload]
            if frame.fin:
                message, self.fragments = b"".join(self.fragments), None
                if not self.waiting or message != self.load.payload:
                    raise ValueError(f"a wrong echo, or one with no message outstanding ({len(message)} bytes)")
                self.echoed()
        elif frame.opcode == wsc.PING:  # answered, as any client must
            self.transport.write(wsc.encode_frame(wsc.PONG, frame.payload, key=self.load.key))
        elif frame.opcode != wsc.PONG and not (frame.opcode == wsc.CLOSE and self.closing):
            raise ValueError(f"unexpected frame (opcode {frame.opcode:#x}, {frame.payload[:60]!r})")

    def send(self) -> None:
        self.waiting = True
        self.sent_at = time.monotonic()
        self.transport.write(self.load.frame)

    def echoed(self) -> None:
        load, now = self.load, time.monotonic()
        load.latencies.append(now - self.sent_at)
        self.round_trips += 1
        if load.running:
            self.sent_at = now
            self.transport.write(load.frame)
        else:
            self.waiting = False
            load.drained()

    def fail(self, reason: str) -> None:
        self.failed = True
        self.load.errors[reason] += 1
        if self.waiting:
            self.waiting = False
            self.load.drained()
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing and not self.failed:
            self.fail("connection closed by the server" + (f": {exc!r}" if exc else ""))

    def close(self) -> None:
        """A close frame, then the end of the connection: the run is over."""
        if not self.failed:
            self.closing, self.fast = True, False
            self.transport.write(wsc.encode_frame(wsc.CLOSE, wsc.close_payload(1000), key=self.load.key))
            self.transport.close()


async def run_client(args: argparse.Namespace) -> Run:
    loop = asyncio.get_running_loop()
    load = EchoLoad(args.size)
    conns = [EchoConnection(load) for _ in range(args.connections)]
    for conn in conns:  # the handshakes one at a time: a burst of connects can overflow a small backlog
        try:
            sock = open_websocket(args.port).sock
        except (OSError, RuntimeError) as exc:
            raise SystemExit(f"could not open the connections: {exc}") from exc
        sock.setblocking(False)
        await loop.create_connection(lambda conn=conn: conn, sock=sock)

    # The window, from right before the first send to right after the last echo; the /proc scans fall outside it, while
    # the server is idle.
    gc.collect()
    gc.disable()
    server_cpu_before = harness.tree_cpu_seconds(args.server_pid) if args.server_pid else 0.0
    usage_before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    load.running, load.in_flight = True, len(conns)
    for conn in conns:
        conn.send()
    loop.call_later(args.duration, setattr, load, "running", False)
    try:  # every connection finishes the round trip it has out, then stops
        await asyncio.wait_for(asyncio.shield(load.all_drained), args.duration + 10)
    except asyncio.TimeoutError:
        if stalled := sum(conn.waiting for conn in conns):
            load.errors["no echo within 10 s after the end of the run"] = stalled
    wall_s, usage = time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF)
    server_cpu_s = harness.tree_cpu_seconds(args.server_pid) - server_cpu_before if args.server_pid else 0.0
    gc.enable()

    for conn in conns:
        conn.close()
    await asyncio.sleep(0.1)  # for the close frames to leave
    latencies, counts = sorted(load.latencies), [conn.round_trips for conn in conns]
    p99_ms = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3 if latencies else None
    problems = [f"{n} × {reason}" for reason, n in load.errors.items()] or (
        [] if latencies else ["no round trip completed"])
    notes = []
    if max(counts) > 2 * max(min(counts), 1):
        notes.append(f"unfair: round trips per connection {min(counts)}-{max(counts)}")
    client_cpu_s = usage.ru_utime - usage_before.ru_utime + usage.ru_stime - usage_before.ru_stime
    return harness.make_run(len(latencies), len(latencies) / wall_s, p99_ms, wall_s, server_cpu_s,
                            client_cpu_s, problems, notes)


def client_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="ws.py client", description="WebSocket echo load generator: each "
                                     "connection sends a binary message, waits for its echo, repeats; prints JSON.")
    parser.add_argument("--port", type=int, required=True, help=f"the server's port on {HOST}")
    parser.add_argument("--size", type=int, default=32, help="payload bytes (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=1, help="(default: %(default)s)")
    parser.add_argument("--duration", type=float, default=4, help="seconds (default: %(default)s)")
    parser.add_argument("--server-pid", type=int, help="measure this process tree's CPU over the run")
    import uvloop  # the client's only dependency beyond the standard library (bench/requirements.txt)

    print(json.dumps(asdict(uvloop.run(run_client(parser.parse_args(argv))))))


class EchoBenchmark(harness.Benchmark):
    title = "WebSocket echo benchmark"
    results_prefix = "ws-"
    load_generator = "client"
    rate_label = "round trips/s"
    op = "rt"
    servers = tuple(n for n in harness.SERVERS if n != "nginx")
    shared_servers = True
    # cppcorn's and granian's own; websockets-sansio is what Uvicorn 0.54's
    # --ws auto picks when websockets is installed, named: no fallback.
    server_options: ClassVar[dict[str, tuple[str, ...]]] = {
        "cppcorn": ("--ws", "auto"), "uvicorn": ("--ws", "websockets-sansio"), "granian": ("--ws",)}
    # websockets/speedups: C unmasking.
    extra_native: ClassVar[dict[str, tuple[str, ...]]] = {"uvicorn": ("websockets",)}
    duration, warmup, pause = 4.0, 1.0, 0.3

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--sizes", default=",".join(SIZES),
                            help=f"message sizes, from: {','.join(SIZES)} (default: %(default)s)")
        parser.add_argument("--connections", default="1,100", help="connection counts (default: %(default)s)")

    def select_scenarios(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Scenario]:
        try:
            counts = sorted({int(c) for c in args.connections.split(",")})
        except ValueError:
            parser.error("--connections: comma-separated integers")
        if not 1 <= counts[0] <= counts[-1] <= 1000:
            parser.error("--connections: from 1 to 1000")
        return [Scenario(f"{size} x {n} conn", f"{SIZES[size]:,}-byte binary messages, {n} connection"
                         + "s" * (n > 1), "bench.apps.ws_echo:app", n, SIZES[size])
                for size in harness.choose(parser, "--sizes", args.sizes, tuple(SIZES)) for n in counts]

    def verify(self, server: Server) -> None:
        open_websocket(server.port).close()  # the load generator checks every echo

    def apply_load(self, server: Server, scenario: Scenario, args: argparse.Namespace, duration: float) -> Run:
        assert server.proc is not None
        argv = [*harness.pinned_to(args.load_cpu, args), sys.executable, __file__, "client", "--port", str(server.port),
                "--size", str(scenario.bytes_per_op), "--connections", str(scenario.connections),
                "--duration", str(duration), "--server-pid", str(server.proc.pid)]
        # The handshakes, the run, the last echoes 10 s.
        code, out, _ = harness.run_to_end(argv, timeout=duration + 60)
        try:
            return Run(**json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError, TypeError):
            raise harness.LoadError(f"client exited with {code}: {out.strip()[-300:]}") from None

    def method(self, args: argparse.Namespace) -> str:
        return ("the load generator (`bench/ws.py client`: one process, uvloop, pre-built masked frames, every echo "
                "checked byte for byte; each connection sends a binary message, waits for its echo, sends the next)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        client_main(sys.argv[2:])
    else:
        sys.exit(harness.main(EchoBenchmark()))
