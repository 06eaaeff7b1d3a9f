"""Fixtures for the event loop conformance suite.

Every test in `tests/loop` runs on each event loop implementation listed in
`LOOP_IDS`: the stdlib asyncio loop ("asyncio", the reference the tests were
written against and must always pass on) and cppcorn's compiled loop with
each of its two backends ("cppcorn-epoll" and "cppcorn-poll", the poll
backend being selected by `CPPCORN_LOOP_BACKEND=poll` when a loop is
created). The cppcorn ids are skipped, with the import error as the reason,
while `cppcorn.loop` does not import.

Fixtures:

- `loop_impl`: the implementation under test (`LoopImpl`: loop factory, loop
  class, policy class, `run()` function);
- `loop_factory`: a zero-argument callable creating a new loop of that
  implementation (loops it created are closed at teardown);
- `loop`: a fresh loop; unexpected calls to its exception handler fail the
  test at teardown (request `errors` to expect them instead);
- `run`: `run(awaitable, timeout=TIMEOUT)` runs an awaitable on `loop` with
  `asyncio.wait_for`, so no test can hang on a loop that still runs timers.

Everything listens on 127.0.0.1 or on a Unix socket in a short temporary
directory. pytest-timeout (in the test extra) is the backstop for a loop that
blocks for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
import socket
import ssl
import sys
import tempfile
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CPPCORN_LOOP_API = ("new_event_loop", "Loop", "EventLoopPolicy", "run")
try:
    import cppcorn.loop as cppcorn_loop
except Exception as exc:  # not built yet, or broken: the asyncio reference still runs
    cppcorn_loop = None
    CPPCORN_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    _missing = [name for name in CPPCORN_LOOP_API if not hasattr(cppcorn_loop, name)]
    if _missing:  # e.g. a namespace package left by a partial build
        cppcorn_loop = None
        CPPCORN_IMPORT_ERROR = f"cppcorn.loop lacks {', '.join(_missing)}"
    else:
        CPPCORN_IMPORT_ERROR = ""

BACKEND_ENV = "CPPCORN_LOOP_BACKEND"
TIMEOUT = 10.0  # upper bound for any single awaited operation
WAIT = 5.0  # upper bound for something expected to happen "soon"

LOOP_IDS = ["asyncio", "cppcorn-epoll", "cppcorn-poll"]
_needs_cppcorn = pytest.mark.skipif(
    cppcorn_loop is None, reason=f"cppcorn.loop does not import yet ({CPPCORN_IMPORT_ERROR})"
)


@dataclass(frozen=True)
class LoopImpl:
    """One event loop implementation, with the API surface the tests need."""

    id: str
    new_event_loop: Callable[[], asyncio.AbstractEventLoop]
    loop_class: type
    policy_class: type
    # `run(coro, *, debug=None)`: asyncio.run for the reference, cppcorn.loop.run for cppcorn.
    run: Callable[..., Any]
    # Environment variables to set (value) or remove (None) while the test runs.
    env: dict[str, str | None] = field(default_factory=dict)
    # Whether a loop of this implementation holds an epoll descriptor.
    uses_epoll: bool = True

    @property
    def is_reference(self) -> bool:
        return self.id == "asyncio"


def _make_impl(loop_id: str) -> LoopImpl:
    if loop_id == "asyncio":
        return LoopImpl(
            id=loop_id,
            # Not asyncio.new_event_loop(): that goes through the current policy,
            # which a test of EventLoopPolicy may have changed.
            new_event_loop=asyncio.SelectorEventLoop,
            loop_class=asyncio.SelectorEventLoop,
            policy_class=asyncio.DefaultEventLoopPolicy,
            run=asyncio.run,
            env={BACKEND_ENV: None},
            uses_epoll=True,  # selectors.DefaultSelector is EpollSelector on Linux
        )
    assert cppcorn_loop is not None
    backend = {"cppcorn-epoll": None, "cppcorn-poll": "poll"}[loop_id]
    return LoopImpl(
        id=loop_id,
        new_event_loop=cppcorn_loop.new_event_loop,
        loop_class=cppcorn_loop.Loop,
        policy_class=cppcorn_loop.EventLoopPolicy,
        run=cppcorn_loop.run,
        env={BACKEND_ENV: backend},
        uses_epoll=backend is None,
    )


@pytest.fixture(
    params=[
        pytest.param(loop_id, marks=() if loop_id == "asyncio" else _needs_cppcorn, id=loop_id) for loop_id in LOOP_IDS
    ]
)
def loop_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> LoopImpl:
    impl = _make_impl(request.param)
    for name, value in impl.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return impl


@pytest.fixture
def loop_factory(loop_impl: LoopImpl) -> Iterator[Callable[[], asyncio.AbstractEventLoop]]:
    """Create new loops of the implementation under test; closed at teardown."""
    created: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        new_loop = loop_impl.new_event_loop()
        created.append(new_loop)
        return new_loop

    yield factory
    for new_loop in created:
        if not new_loop.is_closed() and not new_loop.is_running():
            new_loop.close()


class ErrorRecorder:
    """An exception handler that keeps the contexts it is called with."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.contexts.append(context)

    async def wait(self, count: int = 1, timeout: float = WAIT) -> list[dict[str, Any]]:
        await wait_until(lambda: len(self.contexts) >= count, timeout)
        return self.contexts

    def describe(self) -> str:
        return "; ".join(f"{c.get('message')!r} ({c.get('exception')!r})" for c in self.contexts)


class _UnexpectedErrors(ErrorRecorder):
    pass


@pytest.fixture
def loop(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> Iterator[asyncio.AbstractEventLoop]:
    """A new loop of the implementation under test, closed at teardown."""
    new_loop = loop_factory()
    unexpected = _UnexpectedErrors()
    new_loop.set_exception_handler(unexpected)
    yield new_loop
    try:
        if not new_loop.is_closed() and not new_loop.is_running():
            _cancel_all_tasks(new_loop)
            new_loop.run_until_complete(asyncio.wait_for(new_loop.shutdown_asyncgens(), TIMEOUT))
    finally:
        if not new_loop.is_running():
            new_loop.close()
    if new_loop.get_exception_handler() is unexpected and unexpected.contexts:
        pytest.fail(f"unexpected calls to the loop's exception handler: {unexpected.describe()}")


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), TIMEOUT))


@pytest.fixture
def errors(loop: asyncio.AbstractEventLoop) -> ErrorRecorder:
    """Install a recording exception handler on `loop`: the test expects errors."""
    recorder = ErrorRecorder()
    loop.set_exception_handler(recorder)
    return recorder


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    """`run(awaitable, timeout=TIMEOUT)`: run it to completion on `loop`, bounded."""

    def _run(awaitable: Awaitable[Any], timeout: float = TIMEOUT) -> Any:
        return loop.run_until_complete(asyncio.wait_for(awaitable, timeout))

    return _run


async def wait_until(predicate: Callable[[], Any], timeout: float = WAIT, interval: float = 0.005) -> None:
    """Poll `predicate` on the running loop until it is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory path: Unix socket paths are limited to ~108 bytes."""
    with tempfile.TemporaryDirectory(prefix="cppcorn-loop-") as directory:
        yield Path(directory)


@pytest.fixture
def refused_addr() -> Iterator[tuple[str, int]]:
    """A 127.0.0.1 TCP address nothing listens on (bound, so no one else takes it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()
    finally:
        sock.close()


@dataclass
class TLSContexts:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="session")
def tls() -> TLSContexts:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return TLSContexts(server, client)


def nonblocking_socketpair(family: int = socket.AF_UNIX) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(family)
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def payload(size: int) -> bytes:
    """Deterministic bytes that do not repeat with a short period (a reordering is detected)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(counter.to_bytes(8, "big")).digest() * 64
        counter += 1
    return bytes(out[:size])


def open_fds() -> set[int]:
    """The descriptors this process has open (Linux /proc)."""
    return {int(name) for name in os.listdir("/proc/self/fd")}


def fd_kinds() -> list[str]:
    kinds = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            kinds.append(os.readlink(f"/proc/self/fd/{name}"))
    return kinds


def collect() -> None:
    for _ in range(3):
        gc.collect()


def close_loop_expecting_unclosed_transport(loop: asyncio.AbstractEventLoop, transport_ref: Any) -> None:
    """Close `loop` and collect garbage: the transport behind the weak
    reference `transport_ref`, never closed, is freed and says so with a
    ResourceWarning (as asyncio's transports do)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.close()
        collect()
    assert transport_ref() is None
    messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert any(message.startswith("unclosed transport") for message in messages), messages


class RecordingProtocol(asyncio.Protocol):
    """A stream protocol that records everything that happens to it.

    `eof_result` is what eof_received() returns. Await `made`, `eof`, `lost`
    (the latter's result is the exception passed to connection_lost), or
    `wait_bytes(n)`.
    """

    def __init__(self, eof_result: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.data = bytearray()
        self.events: list[Any] = []
        self.eof_result = eof_result
        self.made = self.loop.create_future()
        self.eof = self.loop.create_future()
        self.lost = self.loop.create_future()
        self.lost_calls = 0
        self.paused = 0
        self.resumed = 0
        self.resume_waiter: asyncio.Future[None] | None = None
        self.pause_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")
        self.transport = transport  # type: ignore[assignment]
        self.made.set_result(transport)

    def data_received(self, data: bytes) -> None:
        assert isinstance(data, bytes), type(data)
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data

    def eof_received(self) -> Any:
        self.events.append("eof")
        self.eof.set_result(None)
        return self.eof_result

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost_calls += 1
        if not self.lost.done():
            self.lost.set_result(exc)

    def pause_writing(self) -> None:
        self.events.append("pause_writing")
        self.paused += 1
        if self.pause_waiter is not None and not self.pause_waiter.done():
            self.pause_waiter.set_result(None)

    def resume_writing(self) -> None:
        self.events.append("resume_writing")
        self.resumed += 1
        if self.resume_waiter is not None and not self.resume_waiter.done():
            self.resume_waiter.set_result(None)

    async def wait_bytes(self, size: int, timeout: float = WAIT) -> bytes:
        await wait_until(lambda: len(self.data) >= size or self.lost.done(), timeout, interval=0.002)
        return bytes(self.data)


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]

    def eof_received(self) -> None:
        return None  # close when the client half-closes


@dataclass
class TCPPair:
    """A connected client/server pair made by the loop under test."""

    server: asyncio.AbstractServer
    client: RecordingProtocol
    peer: RecordingProtocol  # the server side's protocol

    @property
    def client_transport(self) -> asyncio.Transport:
        assert self.client.transport is not None
        return self.client.transport

    @property
    def peer_transport(self) -> asyncio.Transport:
        assert self.peer.transport is not None
        return self.peer.transport

    async def aclose(self) -> None:
        for proto in (self.client, self.peer):
            if proto.transport is not None:
                proto.transport.close()
        self.server.close()
        await asyncio.wait_for(asyncio.gather(self.client.lost, self.peer.lost), WAIT)
        await self.server.wait_closed()


async def tcp_pair(
    client_factory: Callable[[], RecordingProtocol] = RecordingProtocol,
    server_factory: Callable[[], RecordingProtocol] = RecordingProtocol,
) -> TCPPair:
    loop = asyncio.get_running_loop()
    peers: list[RecordingProtocol] = []

    def make_server_protocol() -> RecordingProtocol:
        proto = server_factory()
        peers.append(proto)
        return proto

    server = await loop.create_server(make_server_protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, client = await loop.create_connection(client_factory, "127.0.0.1", port)
    await wait_until(lambda: peers and peers[0].made.done())
    return TCPPair(server, client, peers[0])


def server_port(server: asyncio.AbstractServer) -> int:
    return server.sockets[0].getsockname()[1]


__all__ = [
    "BACKEND_ENV",
    "TIMEOUT",
    "WAIT",
    "EchoProtocol",
    "ErrorRecorder",
    "LoopImpl",
    "RecordingProtocol",
    "TCPPair",
    "collect",
    "fd_kinds",
    "nonblocking_socketpair",
    "open_fds",
    "payload",
    "server_port",
    "tcp_pair",
    "wait_until",
]

if sys.platform == "win32":  # pragma: no cover - the loop is Linux-only
    collect_ignore_glob = ["test_*.py"]
