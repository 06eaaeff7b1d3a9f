"""pyperf benchmarks of asyncio event loops: stdlib asyncio, uvloop, cppcorn.loop.

Every benchmark runs once per event loop under test, named `<benchmark>[<loop>]`
(`call_soon[uvloop]`), and reports the time of one operation: one callback,
one timer, one echo round trip. pyperf runs every benchmark in its own worker
processes, so a worker only ever creates the one loop it measures. Each timed
call builds a fresh loop (and its server and connection), measures, checks
what came back, and tears everything down.

    python bench/loop.py --fast -o /tmp/loopbench.json        # about 1.5 minutes on 2 cores
    python bench/loop.py -o bench/results/loop.json           # about 3 minutes
    python bench/loop.py --event-loops asyncio,uvloop --bench 'tcp_*'
    python bench/loop.py --summary bench/results/loop.json    # the table again

After a run it prints a markdown table of the medians and the ratios between
loops (docs: bench/README.md, "Event loop benchmark"). Only 127.0.0.1 and a
Unix socket in a fresh temporary directory are used.
"""

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
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pyperf

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # the only address this script ever binds or connects to

LOOP_NAMES = ("asyncio", "uvloop", "cppcorn")
# The ratio columns compare every loop with these two, in this order.
REFERENCE_LOOPS = ("asyncio", "uvloop")

CALLBACKS_PER_BATCH = 10_000
TIMERS_PER_BATCH = 10_000
KIB = 1024

# pyperf calibrates one timed call to take 0.1-0.2 s, so these bounds are only
# ever reached by a loop that hangs. The first ends the call cleanly (sockets
# closed); the second kills the worker even if the loop is stuck in C, where
# no asyncio timeout can fire. Either way the benchmark is reported as failed.
CALL_TIMEOUT = 30.0
WATCHDOG_SECONDS = 60.0

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
Messages = tuple[bytes, bytes]


class EchoError(AssertionError):
    """What came back is not what was sent: the benchmark measured nothing useful."""


# --------------------------------------------------------------------------
# The loops under test.
# --------------------------------------------------------------------------


def import_cppcorn_loop() -> ModuleType:
    # An installed cppcorn wins (as in the other benchmarks); without one, use
    # this checkout, whose extensions are built in place. Appended, not
    # prepended, so that the checkout never shadows anything installed.
    if importlib.util.find_spec("cppcorn") is None and str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))
    import cppcorn.loop

    return cppcorn.loop


def loop_factory(name: str) -> LoopFactory:
    """The callable that makes a new loop; imports only that loop's module."""
    if name == "asyncio":
        # Named explicitly rather than asyncio.new_event_loop(), which would
        # follow whatever event loop policy something may have installed.
        return asyncio.SelectorEventLoop
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if name == "cppcorn":
        factory: LoopFactory = import_cppcorn_loop().new_event_loop  # an untyped module
        return factory
    raise ValueError(f"unknown event loop {name!r}")


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    return loop_factory(name)()


def loop_version(name: str) -> str:
    """Which build is measured, found without importing the loop's module.

    Computed in every worker (pyperf attaches it to the run there), so it must
    not import loops other than the one that worker measures.
    """
    if name == "asyncio":
        return f"Python {platform.python_version()}"
    if name == "uvloop":
        try:
            return f"uvloop {importlib.metadata.version('uvloop')}"
        except importlib.metadata.PackageNotFoundError:
            return "uvloop (version unknown)"
    if name == "cppcorn":
        # Which directory the package comes from, found without running it (a
        # top-level find_spec imports nothing); with no cppcorn on sys.path,
        # the checkout, as import_cppcorn_loop() does.
        spec = importlib.util.find_spec("cppcorn")
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        return f"cppcorn.loop from {locations[0] if locations else REPO_ROOT / 'cppcorn'}"
    raise ValueError(name)


def probe_loop(name: str) -> str | None:
    """Make the loop and run a coroutine on it; None if that works, else why not."""
    try:
        loop = new_loop(name)
    except Exception as exc:  # noqa: BLE001 - any failure means: skip this loop
        return f"{type(exc).__name__}: {exc}"
    try:
        async def answer() -> int:
            await asyncio.sleep(0)
            return 42

        if loop.run_until_complete(answer()) != 42:
            return "a coroutine's result did not come back"
    except Exception as exc:  # noqa: BLE001 - the same
        return f"{type(exc).__name__}: {exc}"
    finally:
        loop.close()
    return None


# --------------------------------------------------------------------------
# Shared pieces: test messages, echo protocols.
# --------------------------------------------------------------------------


def make_messages(size: int) -> Messages:
    # Random bytes, two different messages sent alternately: an echo of
    # zeros, of stale buffer memory, or of the previous message never passes.
    return os.urandom(size), os.urandom(size)


class EchoServerProtocol(asyncio.Protocol):
    """Writes back everything it receives, as it arrives."""

    def __init__(self, transports: set[asyncio.BaseTransport]) -> None:
        # The benchmark closes these itself when it ends, instead of relying
        # on the server seeing the client's close in time.
        self.transports = transports
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not derive
        # from asyncio.Transport, they only behave like one.
        self.transport = cast(asyncio.Transport, transport)
        self.transports.add(transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.transports.discard(self.transport)


class PingPongClient(asyncio.Protocol):
    """Sends a message, waits for its complete echo, checks it, sends the next.

    Driven entirely from data_received, with no task or future per round trip:
    the time measured is the loop's (and the kernel's), not coroutine overhead.
    """

    def __init__(self, messages: Messages) -> None:
        self.messages = messages
        self.size = len(messages[0])
        self.buffer = bytearray()
        self.sent = 0  # messages sent so far; its parity picks the message
        self.remaining = 0
        self.echoed = 0  # complete, correct echoes received so far
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] | None = None
        loop = asyncio.get_running_loop()
        # Not every loop has called connection_made() by the time
        # create_connection() returns (uvloop has not): wait for it.
        self.connected: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.connected.set_result(None)

    def exchange(self, count: int) -> asyncio.Future[None]:
        """Start `count` round trips; the future completes after the last echo."""
        assert self.transport is not None and count > 0
        self.done = asyncio.get_running_loop().create_future()
        self.remaining = count
        self._send()
        return self.done

    def _send(self) -> None:
        assert self.transport is not None
        self.transport.write(self.messages[self.sent & 1])
        self.sent += 1

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        if not buffer and len(data) == self.size:
            received: bytes | bytearray = data  # the whole echo in one read: no copy
        else:
            buffer += data
            if len(buffer) < self.size:
                return
            received = buffer
        # Longer than one message is wrong too: ping-pong means the server has
        # nothing else to send.
        if received != self.messages[(self.sent - 1) & 1]:
            self._fail(EchoError(f"echo {self.echoed + 1} differs from the message sent "
                                 f"({len(received)} bytes, {self.size} expected)"))
            return
        buffer.clear()
        self.echoed += 1
        self.remaining -= 1
        if self.remaining:
            self._send()
        elif self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost after {self.echoed} echoes: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)


ServerStarter = Callable[[Callable[[], asyncio.Protocol]], Awaitable[asyncio.AbstractServer]]
Connector = Callable[[Callable[[], asyncio.Protocol]], Awaitable[tuple[asyncio.BaseTransport, Any]]]


async def protocol_echo(loops: int, messages: Messages, start_server: ServerStarter,
                        connect: Connector) -> float:
    """Ping-pong between a Protocol client and a Protocol echo server; `loops` round trips."""
    server_transports: set[asyncio.BaseTransport] = set()
    server = await start_server(lambda: EchoServerProtocol(server_transports))
    try:
        transport, client = await connect(lambda: PingPongClient(messages))
        assert isinstance(client, PingPongClient)
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
        for server_transport in list(server_transports):
            server_transport.close()
        await server.wait_closed()
    if client.echoed != loops + 1:
        raise EchoError(f"{client.echoed} echoes, {loops + 1} expected")
    return elapsed


# --------------------------------------------------------------------------
# The benchmarks. Each is a coroutine function taking pyperf's loop count and
# returning the seconds its timed part took; it sets up and cleans up outside
# the timed part and raises if anything came back wrong.
# --------------------------------------------------------------------------


class OrderedCounter:
    """A callback that checks it is called with 0, 1, 2, ... in turn."""

    def __init__(self) -> None:
        self.next = 0

    def tick(self, index: int) -> None:
        # Exceptions raised in callbacks only reach the loop's exception
        # handler, so a call out of order is recorded by not counting it.
        if index == self.next:
            self.next = index + 1


async def bench_call_soon(loops: int) -> float:
    """`loops` batches of CALLBACKS_PER_BATCH call_soon callbacks, all run in one iteration."""
    loop = asyncio.get_running_loop()
    counter = OrderedCounter()
    tick = counter.tick
    indexes = range(CALLBACKS_PER_BATCH)
    start = time.perf_counter()
    for _ in range(loops):
        done = loop.create_future()
        call_soon = loop.call_soon
        for index in indexes:
            call_soon(tick, index)
        # Callbacks run first in, first out: this one runs after all the others.
        call_soon(done.set_result, None)
        await done
        if counter.next != CALLBACKS_PER_BATCH:
            raise EchoError(f"{counter.next} of {CALLBACKS_PER_BATCH} callbacks ran in order")
        counter.next = 0
    return time.perf_counter() - start


# Delays spread over 1-61 s in a scrambled order (7919 is prime, so i*7919 mod
# N visits every slot once): the timer queue sees inserts all over it, not
# only at one end, and no timer can come due while a batch runs.
TIMER_DELAYS = tuple(1.0 + 60.0 * ((i * 7919) % TIMERS_PER_BATCH) / TIMERS_PER_BATCH
                     for i in range(TIMERS_PER_BATCH))


async def check_timers_work() -> None:
    """Untimed: a due timer fires and a cancelled one does not, so cancel is not a no-op."""
    loop = asyncio.get_running_loop()
    fired = loop.create_future()
    loop.call_later(0.002, fired.set_result, "kept")
    # Due first: if cancel() were ignored, this one would set the result.
    loop.call_later(0.001, fired.set_result, "cancelled").cancel()
    if await fired != "kept":
        raise EchoError("a cancelled timer fired")


async def bench_call_later_cancel(loops: int) -> float:
    """`loops` batches: TIMERS_PER_BATCH call_later timers, each cancelled, then one loop turn."""
    loop = asyncio.get_running_loop()
    await check_timers_work()
    fired = 0

    def never() -> None:
        nonlocal fired
        fired += 1

    handles: list[asyncio.TimerHandle] = []
    start = time.perf_counter()
    for _ in range(loops):
        call_later = loop.call_later
        handles = [call_later(delay, never) for delay in TIMER_DELAYS]
        for handle in handles:
            handle.cancel()
        # One turn of the loop, which is where it drops cancelled timers.
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    if fired or not all(handle.cancelled() for handle in handles):
        raise EchoError(f"{fired} cancelled timers fired")
    return elapsed


async def bench_tcp_protocol(loops: int, size: int) -> float:
    loop = asyncio.get_running_loop()
    server: asyncio.AbstractServer | None = None

    async def start_server(factory: Callable[[], asyncio.Protocol]) -> asyncio.AbstractServer:
        nonlocal server
        server = await loop.create_server(factory, HOST, 0)
        return server

    async def connect(factory: Callable[[], asyncio.Protocol]) -> tuple[asyncio.BaseTransport, Any]:
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return await loop.create_connection(factory, HOST, port)

    return await protocol_echo(loops, make_messages(size), start_server, connect)


async def bench_unix_protocol(loops: int, size: int) -> float:
    loop = asyncio.get_running_loop()
    # A fresh private directory: nothing else can be listening on that path.
    directory = tempfile.mkdtemp(prefix="cppcorn-loopbench-")
    path = os.path.join(directory, "echo.sock")
    try:
        async def start_server(factory: Callable[[], asyncio.Protocol]) -> asyncio.AbstractServer:
            return await loop.create_unix_server(factory, path)

        async def connect(factory: Callable[[], asyncio.Protocol]) -> tuple[asyncio.BaseTransport, Any]:
            return await loop.create_unix_connection(factory, path)

        return await protocol_echo(loops, make_messages(size), start_server, connect)
    finally:
        # Not every loop removes the socket file when its server closes.
        shutil.rmtree(directory, ignore_errors=True)


async def bench_tcp_streams(loops: int, size: int) -> float:
    """Ping-pong with asyncio streams on both ends: write, drain, readexactly."""
    loop = asyncio.get_running_loop()
    messages = make_messages(size)
    handler_done: asyncio.Future[None] = loop.create_future()

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
            if not handler_done.done():
                handler_done.set_result(None)

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       first: int, count: int) -> None:
        for i in range(first, first + count):
            message = messages[i & 1]
            writer.write(message)
            await writer.drain()
            if await reader.readexactly(size) != message:
                raise EchoError(f"echo {i + 1} differs from the message sent")

    server = await asyncio.start_server(echo, HOST, 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            await exchange(reader, writer, 0, 1)  # untimed: the connection works
            start = time.perf_counter()
            await exchange(reader, writer, 1, loops)
            elapsed = time.perf_counter() - start
        finally:
            writer.close()
            await writer.wait_closed()
        await handler_done  # the server saw the close and finished cleanly
    finally:
        server.close()
        await server.wait_closed()
    return elapsed


async def sock_recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    """Exactly `size` bytes, or fewer only if the peer closed first."""
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = await loop.sock_recv(sock, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def bench_sock(loops: int, size: int) -> float:
    """Ping-pong between two non-blocking sockets with loop.sock_* on both ends."""
    loop = asyncio.get_running_loop()
    messages = make_messages(size)

    async def echo(conn: socket.socket) -> None:
        while True:
            data = await sock_recv_exactly(loop, conn, size)
            if len(data) < size:
                if data:
                    raise EchoError(f"connection closed mid-message ({len(data)} bytes)")
                return  # the client closed between messages: done
            await loop.sock_sendall(conn, data)

    async def exchange(client: socket.socket, first: int, count: int) -> None:
        for i in range(first, first + count):
            message = messages[i & 1]
            await loop.sock_sendall(client, message)
            if await sock_recv_exactly(loop, client, size) != message:
                raise EchoError(f"echo {i + 1} differs from the message sent")

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener, \
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        listener.setblocking(False)
        listener.bind((HOST, 0))
        listener.listen(1)
        client.setblocking(False)
        accepting = asyncio.ensure_future(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        conn, _ = await accepting
        with conn:
            conn.setblocking(False)
            # Raw sockets keep Nagle's algorithm on (transports turn it off),
            # and Nagle with delayed ACKs stalls a ping-pong for tens of ms.
            for sock in (client, conn):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            server_task = asyncio.ensure_future(echo(conn))
            try:
                await exchange(client, 0, 1)  # untimed: the connection works
                start = time.perf_counter()
                await exchange(client, 1, loops)
                elapsed = time.perf_counter() - start
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
    Case("call_soon", "per callback", bench_call_soon, CALLBACKS_PER_BATCH),
    Case("call_later_cancel", "per timer", bench_call_later_cancel, TIMERS_PER_BATCH),
    Case("tcp_protocol_1k", "per round trip", functools.partial(bench_tcp_protocol, size=KIB)),
    Case("tcp_protocol_64k", "per round trip", functools.partial(bench_tcp_protocol, size=64 * KIB)),
    Case("tcp_streams_1k", "per round trip", functools.partial(bench_tcp_streams, size=KIB)),
    Case("tcp_streams_64k", "per round trip", functools.partial(bench_tcp_streams, size=64 * KIB)),
    Case("sock_1k", "per round trip", functools.partial(bench_sock, size=KIB)),
    Case("unix_protocol_1k", "per round trip", functools.partial(bench_unix_protocol, size=KIB)),
)


def time_case(loops: int, factory: LoopFactory, case: Case) -> float:
    """pyperf's time function: one fresh loop per call, torn down afterwards."""
    loop = factory()
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    try:
        return loop.run_until_complete(asyncio.wait_for(case.run(loops), CALL_TIMEOUT))
    finally:
        faulthandler.cancel_dump_traceback_later()
        loop.close()


# --------------------------------------------------------------------------
# The summary table.
# --------------------------------------------------------------------------

NAME_RE = re.compile(r"^(?P<case>[\w-]+)\[(?P<loop>[\w-]+)\]$")


def format_seconds(seconds: float) -> str:
    """Three significant digits in the largest unit that keeps the number >= 1."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            value = seconds / scale
            decimals = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{decimals}f} {unit}"
    raise AssertionError("unreachable")


def summary_table(benchmarks: list[pyperf.Benchmark]) -> str:
    """Markdown: one row per benchmark, each loop's median, then speed ratios."""
    medians: dict[str, dict[str, float]] = {}
    spreads: dict[tuple[str, str], float] = {}  # median absolute deviation / median
    versions: dict[str, set[str]] = {}
    for bench in benchmarks:
        match = NAME_RE.match(bench.get_name())
        if match is None:
            continue
        median = bench.median()
        medians.setdefault(match["case"], {})[match["loop"]] = median
        if bench.get_nvalue() > 1:
            spreads[match["case"], match["loop"]] = bench.median_abs_dev() / median
        # Per run, not per benchmark: pyperf drops metadata that differs
        # between runs, and a build replaced mid-run must show, not vanish.
        for run in bench.get_runs():
            version = run.get_metadata().get("event_loop_version")
            if version:
                versions.setdefault(match["loop"], set()).add(str(version))
    if not medians:
        return "no loop benchmarks found"

    seen = {loop for row in medians.values() for loop in row}
    loops = [name for name in LOOP_NAMES if name in seen] + sorted(seen - set(LOOP_NAMES))
    ratios = [(loop, ref) for ref in REFERENCE_LOOPS if ref in seen
              for loop in loops if loop != ref and not (ref == "uvloop" and loop == "asyncio")]
    operations = {case.name: case.operation for case in CASES}

    header = ["benchmark", "op", *loops, *(f"{loop} vs {ref}" for loop, ref in ratios)]
    lines = ["| " + " | ".join(header) + " |",
             "|---|---|" + "---:|" * (len(header) - 2)]
    order = [case.name for case in CASES if case.name in medians] + sorted(set(medians) - set(operations))
    for case_name in order:
        row = medians[case_name]
        cells = [case_name, operations.get(case_name, "")]
        for loop in loops:
            if loop not in row:
                cells.append("-")
            elif (case_name, loop) in spreads:
                cells.append(f"{format_seconds(row[loop])} ±{spreads[case_name, loop]:.0%}")
            else:
                cells.append(format_seconds(row[loop]))
        for loop, ref in ratios:
            if loop in row and ref in row:
                cells.append(f"{row[ref] / row[loop]:.2f}x")
            else:
                cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Medians of pyperf's values, ± their median absolute deviation. `A vs B` = B's "
                 "median / A's: above 1, A is that many times faster than B; below 1, slower.")
    described = []
    for loop in loops:
        if loop in versions:
            text = " / ".join(sorted(versions[loop]))
            if len(versions[loop]) > 1:
                text += " (CHANGED during the run: the figures mix these builds)"
            described.append(f"{loop} = {text}")
    if described:
        lines.append("Loops: " + "; ".join(described) + ".")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def selected_cases(patterns: list[str] | None) -> list[Case]:
    if not patterns:
        return list(CASES)
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(case.name, pattern) for case in CASES):
            raise SystemExit(f"--bench {pattern!r} matches no benchmark; they are: "
                             + ", ".join(case.name for case in CASES))
    return [case for case in CASES if any(fnmatch.fnmatchcase(case.name, p) for p in patterns)]


def pass_options_to_worker(cmd: list[str], args: argparse.Namespace) -> None:
    # Workers get the loops the main process found usable, not the ones asked
    # for: all processes must register the same benchmarks in the same order
    # (pyperf picks a worker's benchmark by its position), even if cppcorn.loop
    # becomes importable, or stops being, while the run goes on.
    cmd.extend(["--event-loops", ",".join(args.event_loops)])
    if args.bench:
        cmd.extend(["--bench", ",".join(args.bench)])


def main() -> None:
    # Fewer worker processes than pyperf's default 20 (`-p` still overrides
    # it; --fast halves it): 6 processes x 3 values still give 18 values per
    # benchmark, and 8 benchmarks x 3 loops stay within ~3-4 minutes.
    runner = pyperf.Runner(processes=6, add_cmdline_args=pass_options_to_worker)
    runner.metadata["description"] = "asyncio event loops compared: callbacks, timers, echo round trips"
    parser = runner.argparser
    parser.add_argument("--event-loops", type=comma_list, default=list(LOOP_NAMES), metavar="LIST",
                        help="comma-separated event loops to compare (default: %(default)s); "
                             "any that cannot be imported is skipped with a message")
    parser.add_argument("--bench", type=comma_list, default=None, metavar="PATTERNS",
                        help="comma-separated benchmark names or shell patterns (default: all): "
                             + ", ".join(case.name for case in CASES))
    parser.add_argument("--summary", metavar="FILE.json",
                        help="print the median table of a pyperf JSON file written with -o, and exit")
    args = runner.parse_args()

    if args.summary:
        print(summary_table(list(pyperf.BenchmarkSuite.load(args.summary).get_benchmarks())))
        return

    unknown = [name for name in args.event_loops if name not in LOOP_NAMES]
    if unknown:
        raise SystemExit(f"--event-loops: unknown {', '.join(unknown)} (known: {', '.join(LOOP_NAMES)})")
    cases = selected_cases(args.bench)

    if not args.worker:
        usable = []
        for name in args.event_loops:
            problem = probe_loop(name)
            if problem is None:
                usable.append(name)
                print(f"{name}: {loop_version(name)}", file=sys.stderr)
            else:
                print(f"{name}: skipped, it does not work here ({problem})", file=sys.stderr)
        if not usable:
            raise SystemExit("no event loop left to measure")
        args.event_loops = usable

    failed: list[str] = []
    results: list[pyperf.Benchmark] = []
    for case in cases:
        # All loops of one benchmark run back to back, so that drift on a
        # shared machine hits them alike.
        for name in args.event_loops:
            bench_name = f"{case.name}[{name}]"
            metadata = {"event_loop": name, "event_loop_version": loop_version(name),
                        "operation": case.operation}
            # Only the worker that measures this benchmark imports the loop.
            factory: LoopFactory = functools.partial(new_loop, name)
            try:
                bench = runner.bench_time_func(bench_name, time_case, factory, case,
                                               inner_loops=case.inner_loops, metadata=metadata)
            except RuntimeError as exc:
                if args.worker:
                    raise
                # A worker failed (its traceback is above): report it and go
                # on with the others. pyperf counts benchmarks only when they
                # succeed; keep its count in step with the workers', which
                # count every benchmark registered (a private attribute of
                # pyperf 2.11, the version bench/requirements.txt pins).
                runner._worker_task += 1
                failed.append(bench_name)
                print(f"\n{bench_name}: FAILED ({exc}); skipped", file=sys.stderr)
                continue
            if bench is not None:
                results.append(bench)

    if not args.worker and results:
        print()
        print(summary_table(results))
        if failed:
            print(f"Failed, not in the table: {', '.join(failed)}.")


if __name__ == "__main__":
    main()
