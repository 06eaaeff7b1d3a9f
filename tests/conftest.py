"""Shared test fixtures: a real cppcorn server on an ephemeral port, and a raw
socket client for the bytes on the wire.

`serve(app, **config)` starts `cppcorn.Server` in a background thread running
its own event loop (stdlib asyncio or uvloop, from the `loop` fixture, so that
protocol tests run on both), waits until it listens, and stops it at the end
of the test. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cppcorn.config import Config
from cppcorn.server import Server
from tests.subprocesses import ASGI_HELPERS_MODULE, BROKEN_MODULE, ServerProcess, base_env, cppcorn_command
from tests.websocket_client import RawWebSocket

try:
    import uvloop
except ImportError:  # uvloop is not available on every platform
    uvloop = None

# Signals sent to a subprocess, Unix domain sockets and inherited descriptors
# are POSIX facilities.
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals, Unix sockets or fd passing")

try:
    import cppcorn.loop  # noqa: F401  (only: does it import here?)
except ImportError:  # no backend on this platform yet (Windows)
    HAVE_CPPCORN_LOOP = False
else:
    HAVE_CPPCORN_LOOP = True

LOOPS = ["asyncio"] + (["uvloop"] if uvloop is not None else []) + (["cppcorn"] if HAVE_CPPCORN_LOOP else [])

T = TypeVar("T")

STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 10.0
WAIT = 5.0  # upper bound for any cross-thread wait


def pytest_assertrepr_compare(op: str, left: Any, right: Any) -> list[str] | None:
    """A failed comparison of two observations (tests/compat.py) as a diff."""
    from tests.compat import Observation, explain_difference

    if op == "==" and isinstance(left, Observation) and isinstance(right, Observation):
        return explain_difference(left, right)
    return None


@pytest.fixture(params=LOOPS)
def loop(request: pytest.FixtureRequest) -> str:
    """The event loop the server under test runs on."""
    return request.param


@dataclass
class RunningServer:
    server: Server
    thread: threading.Thread
    port: int
    errors: list[BaseException] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> Any:
        return self.server.server_state

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(SHUTDOWN_TIMEOUT)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(SHUTDOWN_TIMEOUT)
        assert not self.thread.is_alive(), "server thread did not stop"


def start_server(app: Any, loop: str = "asyncio", **kwargs: Any) -> RunningServer:
    kwargs.setdefault("port", 0)
    kwargs.setdefault("log_config", None)
    kwargs.setdefault("lifespan", "off")
    config = Config(app, loop=loop, **kwargs)
    server = Server(config)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            server.run()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if errors or not thread.is_alive():
            raise RuntimeError(f"server failed to start: {errors!r}")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start")
        time.sleep(0.01)
    port = 0
    if config.uds is None:
        port = server.servers[0].sockets[0].getsockname()[1]
    return RunningServer(server, thread, port, errors)


def close_quietly(thing: Any) -> None:
    with contextlib.suppress(OSError):
        thing.close()


def torn_down(factory: Callable[..., T], teardown: Callable[[T], None] = close_quietly) -> Iterator[Callable[..., T]]:
    """The body of a fixture that hands out `factory`: `yield from
    torn_down(RawClient)` yields `factory`, and at the end of the test tears
    down what it made, in the order made (by default: closes it, ignoring
    OSError)."""
    made: list[T] = []

    def make(*args: Any, **kwargs: Any) -> T:
        thing = factory(*args, **kwargs)
        made.append(thing)
        return thing

    yield make
    for thing in made:
        teardown(thing)


@pytest.fixture
def serve(loop: str) -> Iterator[Callable[..., RunningServer]]:
    """Start a server for an app: `running = serve(app, **config_kwargs)`,
    on the test's `loop` unless told; stopped at the end of the test."""
    yield from torn_down(functools.partial(start_server, loop=loop), RunningServer.stop)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory path: Unix socket paths are limited to ~108 bytes."""
    with tempfile.TemporaryDirectory(prefix="cppcorn-") as directory:
        yield Path(directory)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The directory `python_process` runs in, holding `asgi_helpers.py` and
    `broken.py` (see `tests.subprocesses`). Test modules override it to
    write there the application modules their processes import."""
    (tmp_path / "asgi_helpers.py").write_text(ASGI_HELPERS_MODULE)
    (tmp_path / "broken.py").write_text(BROKEN_MODULE)
    return tmp_path


@pytest.fixture
def python_process(workdir: Path) -> Iterator[Callable[..., ServerProcess]]:
    """`python_process(*args, env={...}, pass_fds=(...))`: `python ARGS` run
    in `workdir` (as a `ServerProcess`), with `base_env(**env)`; killed with
    its process group at the end of the test."""

    def start(*args: str, env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()) -> ServerProcess:
        return ServerProcess([sys.executable, *args], workdir, base_env(**(env or {})), pass_fds)

    yield from torn_down(start, ServerProcess.stop)


@pytest.fixture
def cppcorn_process(python_process: Callable[..., ServerProcess]) -> Callable[..., ServerProcess]:
    """`cppcorn_process(*args, env={...}, pass_fds=(...))`: `python -m cppcorn
    ARGS` in `workdir`, not waited for; killed at the end of the test."""

    def start(*args: str, **kwargs: Any) -> ServerProcess:
        return python_process("-m", "cppcorn", *args, **kwargs)

    return start


@pytest.fixture
def run_cli(workdir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`run_cli(*args)`: run cppcorn to completion (for commands that exit by themselves)."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cppcorn_command(*args),
            cwd=workdir,
            env=base_env(**(env or {})),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            # No controlling terminal: nothing (OpenSSL asking for a key's
            # passphrase) can wait for input from the tester's terminal.
            start_new_session=True,
        )

    return run


@pytest.fixture
def listeners() -> Iterator[Callable[[], socket.socket]]:
    """`listener = listeners()`: a TCP socket bound to a free loopback port
    and listening, as a process manager would pass it; closed at the end."""

    def listening_socket() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        return sock

    yield from torn_down(listening_socket)


@pytest.fixture
def background() -> Iterator[Callable[..., Future[Any]]]:
    """Run a blocking client call in a thread: `future = background(fn, *args)`."""
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor.submit


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None

    def header_list(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


class RawClient:
    """A blocking socket client that reads HTTP/1.1 responses exactly."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"connection closed before {marker!r}; got {self.buffer!r}")
        index = self.buffer.index(marker) + len(marker)
        data, self.buffer = self.buffer[:index], self.buffer[index:]
        return data

    def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise ConnectionError(f"connection closed after {len(self.buffer)} of {size} bytes")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def read_response(self, head_request: bool = False) -> RawResponse:
        raw_head = self.read_until(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        _, status, reason = [*lines[0].split(" ", 2), ""][:3]
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name, value.strip()))
        response = RawResponse(int(status), reason, headers, b"", raw_head)
        code = int(status)
        if head_request or code < 200 or code in (204, 304):
            return response
        if (response.header("transfer-encoding") or "").lower() == "chunked":
            body = b""
            while True:
                size_line = self.read_until(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self.read_until(b"\r\n")
                    break
                body += self.read_exactly(size)
                self.read_until(b"\r\n")
            response.body = body
        elif response.header("content-length") is not None:
            response.body = self.read_exactly(int(response.header("content-length") or 0))
        else:
            response.body = self.read_to_eof()
        return response

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True once the server has closed the connection (EOF or reset)."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_client() -> Iterator[Callable[..., RawClient]]:
    """`client = raw_client(port)`: closed at the end of the test."""
    yield from torn_down(RawClient)


@pytest.fixture
def raw_ws() -> Iterator[Callable[..., RawWebSocket]]:
    """`client = raw_ws(port)`: a RawWebSocket, closed at the end of the test."""
    yield from torn_down(RawWebSocket)


async def read_body(receive: Callable[[], Any]) -> bytes:
    """Read the whole request body in an ASGI app."""
    body = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def respond(
    send: Callable, body: bytes, status: int = 200, content_type: bytes = b"text/plain", headers: list | None = None
) -> None:
    """Send a whole response: with the given headers, or else a Content-Type
    and the Content-Length."""
    if headers is None:
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Callable, payload: Any) -> None:
    """Send `payload` as a whole application/json response."""
    await respond(send, json.dumps(payload).encode(), content_type=b"application/json")


def simple_app(body: bytes = b"Hello, world!", status: int = 200, headers: list | None = None) -> Callable:
    """An HTTP app answering every request with `respond(body, status, headers)`."""

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        assert scope["type"] == "http"
        await respond(send, body, status, headers=headers)

    return app


def json_safe(value: Any) -> Any:
    """A scope as JSON-able data (bytes as latin-1 text)."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    return value


async def scope_app(scope, receive, send):
    """Answer HTTP with the scope as JSON; accept a WebSocket and send the
    scope as its first message, then wait for the close. Its lifespan
    startup puts `{"answer": 42}` in the state."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["answer"] = 42
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    payload = json.dumps(json_safe(scope))
    if scope["type"] == "http":
        await read_body(receive)
        # No Content-Length: the response is chunked.
        await respond(send, payload.encode(), headers=[(b"content-type", b"application/json")])
        return
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": payload})
    scope["state"]["mutated"] = True  # must not leak into the next connection's scope
    while (await receive())["type"] != "websocket.disconnect":
        pass


def close_socket(sock: socket.socket, how: str) -> None:
    """Close a client's socket: with a FIN (`how` is "close" or "fin"), or
    with an RST ("reset": SO_LINGER with a zero timeout)."""
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def assert_in_order(lines: list[str], expected: list[str]) -> None:
    """Each of `expected` is one of `lines` (log lines, say), in this order."""
    positions = []
    for item in expected:
        assert item in lines, f"{item!r} not logged; got:\n" + "\n".join(lines)
        positions.append(lines.index(item))
    assert positions == sorted(positions), "\n".join(lines)


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT, interval: float = 0.01) -> bool:
    """Poll a condition on server state (for facts no socket read can show)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


class Gate:
    """A one-shot signal: application code on the server's loop waits on it
    until the test thread opens it. `entered` tells the test someone waits."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._lock = threading.Lock()
        self._opened = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def open(self) -> None:
        with self._lock:
            self._opened = True
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(lambda f=future: f.done() or f.set_result(None))

    async def wait(self, timeout: float = 2 * WAIT) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            self.entered.set()
            if self._opened:
                return
            self._waiters.append((loop, future))
        await asyncio.wait_for(future, timeout)


def run_async(coroutine: Any, timeout: float = 10.0) -> Any:
    """Run a client-side coroutine with a deadline."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


@pytest.fixture
def harness(loop: str) -> Iterator[Any]:
    """An in-memory HTTP/1.1 harness (tests/http_harness.py) on the `loop`
    param: `conn = harness.connect(app); conn.send(...); conn.response()`."""
    from tests.http_harness import Harness

    with Harness(loop) as memory:
        yield memory
