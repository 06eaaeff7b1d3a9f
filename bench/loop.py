"""pyperf benchmarks of asyncio event loops (stdlib, uvloop, cppcorn.loop), each named `<benchmark>[<loop>]`,
timing one operation: a callback, a timer, an echo round trip. Each runs in its own worker processes, which
create only the loop they measure, on a fresh loop per timed call; every answer is checked. A markdown table of
medians and ratios follows (bench/README.md). Only 127.0.0.1 and a Unix socket in a new directory are used."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import fnmatch
import functools
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pyperf

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
LOOP_NAMES = ("asyncio", "uvloop", "cppcorn")
REFERENCE_LOOPS = ("asyncio", "uvloop")  # the ratio columns compare every loop with these
BATCH = 10_000  # callbacks or timers per pyperf loop
# pyperf calibrates a timed call to 0.1-0.2 s: only a hung loop reaches these. The first ends the call cleanly, the
# second kills a worker stuck in C, where no asyncio timeout fires; either way the benchmark fails.
CALL_TIMEOUT, WATCHDOG_SECONDS = 30.0, 60.0

Messages = tuple[bytes, bytes]
Factory = Callable[[], asyncio.Protocol]


class EchoError(AssertionError):
    """What came back is not what was sent: the benchmark measured nothing useful."""


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "asyncio":
        return asyncio.SelectorEventLoop()  # not new_event_loop(): it follows whatever policy is set
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    # An installed cppcorn wins; without one, this checkout's, built in place (appended: it shadows nothing).
    if importlib.util.find_spec("cppcorn") is None and str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))
    import cppcorn.loop

    return cppcorn.loop.new_event_loop()


def loop_version(name: str) -> str:
    """Which build is measured, found without importing any loop: every worker computes it, and must import only the
    loop it measures."""
    if name == "asyncio":
        return f"Python {platform.python_version()}"
    if name == "uvloop":
        return f"uvloop {importlib.metadata.version('uvloop')}" if importlib.util.find_spec("uvloop") else "no uvloop"
    spec = importlib.util.find_spec("cppcorn")  # a top-level find_spec imports nothing
    return f"cppcorn.loop from {spec.submodule_search_locations[0] if spec else REPO_ROOT / 'cppcorn'}"


# -- Echo pieces (bench/loop_memory.py uses them too). ------------------------


def make_messages(size: int) -> Messages:
    # Two different random messages, sent alternately: an echo of zeros, of stale buffer memory or of the previous
    # message never passes.
    return os.urandom(size), os.urandom(size)


class EchoServerProtocol(asyncio.Protocol):
    """Writes back everything it receives, as it arrives."""

    def __init__(self, transports: set[asyncio.BaseTransport]) -> None:
        # The benchmark closes these itself rather than wait for the server to see the client's close.
        self.transports = transports

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast: uvloop's transports only behave like asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.transports.add(transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transports.discard(self.transport)


class PingPongClient(asyncio.Protocol):
    """Sends a message, waits for its whole echo, checks it, sends the next: driven from data_received, with no task or
    future per round trip, so that the time is the loop's (and the kernel's), not coroutine overhead."""

    def __init__(self, messages: Messages) -> None:
        self.messages, self.size = messages, len(messages[0])
        self.buffer = bytearray()
        self.sent = self.remaining = self.echoed = 0  # the parity of `sent` picks the message
        self.done: asyncio.Future[None] | None = None
        loop = asyncio.get_running_loop()
        # Not every loop has called connection_made() when create_connection() returns (uvloop has not).
        self.connected: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.connected.set_result(None)

    def exchange(self, count: int) -> asyncio.Future[None]:
        """Starts `count` round trips; the future completes after the last echo."""
        self.done = asyncio.get_running_loop().create_future()
        self.remaining = count
        self.transport.write(self.messages[self.sent & 1])
        self.sent += 1
        return self.done

    def data_received(self, data: bytes) -> None:
        if not self.buffer and len(data) == self.size:
            received: bytes | bytearray = data  # the whole echo in one read: no copy
        else:
            self.buffer += data
            if len(self.buffer) < self.size:
                return
            received = self.buffer
        # Longer than one message is wrong too: in a ping-pong the server has nothing else to send.
        if received != self.messages[(self.sent - 1) & 1]:
            self._fail(EchoError(f"echo {self.echoed + 1} differs from the message ({len(received)} bytes)"))
            return
        self.buffer.clear()
        self.echoed += 1
        self.remaining -= 1
        if self.remaining:
            self.transport.write(self.messages[self.sent & 1])
            self.sent += 1
        elif self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost after {self.echoed} echoes: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)


async def protocol_echo(loops: int, size: int, start_server: Callable[[Factory], Awaitable[asyncio.AbstractServer]],
                        connect: Callable[[Factory, asyncio.AbstractServer], Awaitable[tuple[Any, Any]]]) -> float:
    """`loops` round trips between a PingPongClient and an echo server."""
    transports: set[asyncio.BaseTransport] = set()
    server = await start_server(lambda: EchoServerProtocol(transports))
    try:
        transport, client = await connect(lambda: PingPongClient(make_messages(size)), server)
        try:
            await client.connected
            await client.exchange(1)  # untimed: the connection works both ways
            start = time.perf_counter()
            await client.exchange(loops)
            elapsed = time.perf_counter() - start
        finally:
            transport.close()
            await client.closed
    finally:
        server.close()
        for server_transport in list(transports):
            server_transport.close()
        await server.wait_closed()
    if client.echoed != loops + 1:
        raise EchoError(f"{client.echoed} echoes, {loops + 1} expected")
    return elapsed


# -- The benchmarks: coroutine functions taking pyperf's loop count and
# returning the seconds of their timed part; they raise if anything came back wrong.
# ------------------------------------------------------------------------


async def bench_call_soon(loops: int) -> float:
    """`loops` batches of call_soon() callbacks, each batch run in one iteration."""
    loop = asyncio.get_running_loop()
    ran = 0

    def tick(index: int) -> None:
        # An exception in a callback only reaches the loop's handler: one out of order is recorded by not counting it.
        nonlocal ran
        ran += index == ran

    call_soon, indexes = loop.call_soon, range(BATCH)
    start = time.perf_counter()
    for _ in range(loops):
        done = loop.create_future()
        for index in indexes:
            call_soon(tick, index)
        loop.call_soon(done.set_result, None)  # first in, first out: it runs last
        await done
        if ran != BATCH:
            raise EchoError(f"{ran} of {BATCH} callbacks ran in order")
        ran = 0
    return time.perf_counter() - start


# Delays over 1-61 s in a scrambled order (7919 is prime: i*7919 mod N visits every slot once): inserts all over the
# timer queue, and none comes due.
TIMER_DELAYS = tuple(1.0 + 60.0 * ((i * 7919) % BATCH) / BATCH for i in range(BATCH))


async def bench_call_later_cancel(loops: int) -> float:
    """`loops` batches: call_later() timers, each cancelled, then one loop turn."""
    loop = asyncio.get_running_loop()
    fired = loop.create_future()  # untimed first: a cancelled timer must not fire
    loop.call_later(0.002, fired.set_result, "kept")
    loop.call_later(0.001, fired.set_result, "cancelled").cancel()
    if await fired != "kept":
        raise EchoError("a cancelled timer fired")
    late = 0

    def never() -> None:
        nonlocal late
        late += 1

    call_later, handles = loop.call_later, []
    start = time.perf_counter()
    for _ in range(loops):
        handles = [call_later(delay, never) for delay in TIMER_DELAYS]
        for handle in handles:
            handle.cancel()
        await asyncio.sleep(0)  # one turn of the loop, where it drops cancelled timers
    elapsed = time.perf_counter() - start
    if late or not all(handle.cancelled() for handle in handles):
        raise EchoError(f"{late} cancelled timers fired")
    return elapsed


async def bench_tcp_protocol(loops: int, size: int) -> float:
    loop = asyncio.get_running_loop()
    return await protocol_echo(loops, size, lambda factory: loop.create_server(factory, HOST, 0),
                               lambda factory, server: loop.create_connection(
                                   factory, HOST, server.sockets[0].getsockname()[1]))


async def bench_unix_protocol(loops: int, size: int) -> float:
    loop = asyncio.get_running_loop()
    directory = tempfile.mkdtemp(prefix="cppcorn-loopbench-")  # nothing else can listen there
    path = os.path.join(directory, "echo.sock")
    try:
        return await protocol_echo(loops, size, lambda factory: loop.create_unix_server(factory, path),
                                   lambda factory, _server: loop.create_unix_connection(factory, path))
    finally:
        shutil.rmtree(directory, ignore_errors=True)  # not every loop removes the socket file


async def ping_pong(loops: int, messages: Messages, send: Callable[[bytes], Awaitable[None]],
                    receive: Callable[[], Awaitable[bytes]]) -> float:
    """An untimed round trip (the connection works), then `loops` timed ones, every echo checked."""
    start = 0.0
    for i in range(loops + 1):
        if i == 1:
            start = time.perf_counter()  # after the untimed round trip
        await send(messages[i & 1])
        if await receive() != messages[i & 1]:
            raise EchoError(f"echo {i + 1} differs from the message sent")
    return time.perf_counter() - start


async def bench_tcp_streams(loops: int, size: int) -> float:
    """Ping-pong with asyncio streams on both ends: write, drain, readexactly."""
    handler_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    data = await reader.readexactly(size)
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        raise  # cut mid-message: the client sees a missing echo
                    break  # the client closed between messages: done
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            handler_done.set_result(None)

    server = await asyncio.start_server(echo, HOST, 0)
    try:
        reader, writer = await asyncio.open_connection(HOST, server.sockets[0].getsockname()[1])

        async def send(message: bytes) -> None:
            writer.write(message)
            await writer.drain()

        try:
            elapsed = await ping_pong(loops, make_messages(size), send, lambda: reader.readexactly(size))
        finally:
            writer.close()
            await writer.wait_closed()
        await handler_done  # the server saw the close and finished cleanly
    finally:
        server.close()
        await server.wait_closed()
    return elapsed


async def bench_sock(loops: int, size: int) -> float:
    """Ping-pong between two non-blocking sockets with loop.sock_* on both ends."""
    loop = asyncio.get_running_loop()

    async def receive(sock: socket.socket) -> bytes:
        """`size` bytes, or fewer if the peer closed first (one read, as a rule: no copy)."""
        data = await loop.sock_recv(sock, size)
        while data and len(data) < size and (chunk := await loop.sock_recv(sock, size - len(data))):
            data += chunk
        return data

    async def echo(conn: socket.socket) -> None:
        while data := await receive(conn):
            await loop.sock_sendall(conn, data)

    with socket.socket() as listener, socket.socket() as client:
        listener.bind((HOST, 0))
        listener.listen(1)
        for sock in (listener, client):
            sock.setblocking(False)
        accepting = asyncio.ensure_future(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        conn, _ = await accepting
        with conn:
            conn.setblocking(False)
            # Raw sockets keep Nagle's algorithm (transports turn it off), which with delayed ACKs stalls a ping-pong
            # for tens of milliseconds.
            for sock in (client, conn):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            server_task = asyncio.ensure_future(echo(conn))
            try:
                elapsed = await ping_pong(loops, make_messages(size), lambda m: loop.sock_sendall(client, m),
                                          lambda: receive(client))
                client.shutdown(socket.SHUT_WR)  # the echo side sees EOF and returns
                await server_task
            finally:
                server_task.cancel()
    return elapsed


@dataclass(frozen=True)
class Case:
    name: str
    operation: str  # what one measured operation is, for the table
    run: Callable[[int], Awaitable[float]]
    inner_loops: int | None = None  # operations per pyperf loop, when several


CASES = (
    Case("call_soon", "per callback", bench_call_soon, BATCH),
    Case("call_later_cancel", "per timer", bench_call_later_cancel, BATCH),
    *(Case(f"tcp_{kind}_{k}k", "per round trip", functools.partial(run, size=k << 10))
      for kind, run in (("protocol", bench_tcp_protocol), ("streams", bench_tcp_streams)) for k in (1, 64)),
    Case("sock_1k", "per round trip", functools.partial(bench_sock, size=1024)),
    Case("unix_protocol_1k", "per round trip", functools.partial(bench_unix_protocol, size=1024)),
)


def time_case(loops: int, loop_name: str, case: Case) -> float:
    """pyperf's time function: a fresh loop per call, torn down afterwards."""
    loop = new_loop(loop_name)
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    try:
        return loop.run_until_complete(asyncio.wait_for(case.run(loops), CALL_TIMEOUT))
    finally:
        faulthandler.cancel_dump_traceback_later()
        loop.close()


def format_seconds(seconds: float) -> str:
    """Three significant digits in the largest unit that keeps the number >= 1."""
    units = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))
    unit, scale = next((u, s) for u, s in units if seconds >= s or u == "ns")
    value = seconds / scale
    return f"{value:.{0 if value >= 100 else 1 if value >= 10 else 2}f} {unit}"


def summary_table(benchmarks: list[pyperf.Benchmark]) -> str:
    """Markdown: a row per benchmark, each loop's median ± median absolute deviation, then speed ratios."""
    medians: dict[str, dict[str, str]] = {}
    values: dict[tuple[str, str], float] = {}
    versions: dict[str, str] = {}
    for bench in benchmarks:
        case, _, loop = bench.get_name().rstrip("]").partition("[")
        values[case, loop] = median = bench.median()
        spread = f" ±{bench.median_abs_dev() / median:.0%}" if bench.get_nvalue() > 1 else ""
        medians.setdefault(case, {})[loop] = format_seconds(median) + spread
        versions[loop] = str(bench.get_metadata().get("event_loop_version", "?"))
    seen = {loop for _, loop in values}
    loops = [n for n in LOOP_NAMES if n in seen] + sorted(seen - set(LOOP_NAMES))
    ratios = [(loop, ref) for ref in REFERENCE_LOOPS if ref in seen
              for loop in loops if loop != ref and not (ref == "uvloop" and loop == "asyncio")]
    operations = {case.name: case.operation for case in CASES}
    header = ["benchmark", "op", *loops, *(f"{loop} vs {ref}" for loop, ref in ratios)]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for case, row in medians.items():  # in the order they ran
        cells = [case, operations.get(case, ""), *(row.get(loop, "-") for loop in loops)]
        cells += [f"{values[case, ref] / values[case, loop]:.2f}x" if (case, loop) in values and (case, ref) in values
                  else "-" for loop, ref in ratios]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", "Medians of pyperf's values, ± their median absolute deviation. `A vs B` = B's "
                      "median / A's: above 1, A is that many times faster than B.",
                      "Loops: " + "; ".join(f"{loop} = {versions[loop]}" for loop in loops) + "."])


def main() -> None:
    def pass_options_to_worker(cmd: list[str], args: argparse.Namespace) -> None:
        # Every process must register the same benchmarks in the same order: pyperf picks a worker's benchmark by its
        # position.
        cmd.extend(["--event-loops", ",".join(args.event_loops), "--bench", ",".join(args.bench or ["*"])])

    def comma_list(text: str) -> list[str]:
        return [item.strip() for item in text.split(",") if item.strip()]

    # 6 worker processes, not pyperf's 20 (`-p` overrides it, --fast halves it): 18 values per benchmark, and all of
    # them in 3-4 minutes.
    runner = pyperf.Runner(processes=6, add_cmdline_args=pass_options_to_worker)
    runner.metadata["description"] = "asyncio event loops compared: callbacks, timers, echo round trips"
    parser = runner.argparser
    parser.add_argument("--event-loops", type=comma_list, default=list(LOOP_NAMES), metavar="LIST",
                        help="comma-separated loops (default: %(default)s)")
    parser.add_argument("--bench", type=comma_list, metavar="PATTERNS",
                        help="comma-separated names or shell patterns (default: all): "
                             + ", ".join(c.name for c in CASES))
    args = runner.parse_args()
    if unknown := set(args.event_loops) - set(LOOP_NAMES):
        raise SystemExit(f"--event-loops: unknown {', '.join(unknown)} (known: {', '.join(LOOP_NAMES)})")
    patterns = args.bench or ["*"]
    if unmatched := [p for p in patterns if not any(fnmatch.fnmatchcase(c.name, p) for c in CASES)]:
        raise SystemExit(f"--bench {', '.join(unmatched)} matches no benchmark")
    cases = [c for c in CASES if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]

    failed, results = [], []
    for case in cases:
        for name in args.event_loops:  # a benchmark's loops back to back: drift hits them alike
            bench_name = f"{case.name}[{name}]"
            metadata = {"event_loop": name, "event_loop_version": loop_version(name), "operation": case.operation}
            try:
                bench = runner.bench_time_func(bench_name, time_case, name, case, inner_loops=case.inner_loops,
                                               metadata=metadata)
            except RuntimeError as exc:
                if args.worker:
                    raise
                # A worker failed (its traceback is above; a loop that does not work here fails every time): report it,
                # go on. pyperf counts only benchmarks that succeed, its workers every one (a private attribute of
                # pyperf 2.11, pinned in bench/requirements.txt).
                runner._worker_task += 1
                failed.append(bench_name)
                print(f"\n{bench_name}: FAILED ({exc}); skipped", file=sys.stderr)
                continue
            if bench is not None:
                results.append(bench)
    if not args.worker and results:
        print("\n" + summary_table(results) + (f"\nFailed, not in the table: {', '.join(failed)}." if failed else ""))


if __name__ == "__main__":
    main()
