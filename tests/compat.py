"""Run one scenario on Uvicorn and on cppcorn, and compare what a user observes.

`observe_both(...)` starts the same command line as `python -m uvicorn ARGS`
and `python -m cppcorn ARGS` (each on a free loopback port of its own, both at
once), lets a `drive(run)` function act on each server as a client would, ends
each process (SIGINT unless told otherwise) and returns one `Observation` per
server: the exit status, the log lines on stderr and on stdout, what the
client saw (response heads and bodies, WebSocket frames) and the scope and
messages the application recorded. A test asserts that the two are equal;
a failure shows a diff of the two as text (`explain_difference`, through the
`pytest_assertrepr_compare` hook of tests/conftest.py; `-vv` for all of it),
`-` for Uvicorn, `+` for cppcorn.

Only what must differ is normalised: process ids, ports (the server's becomes
PORT, a client's CLIENT_PORT), object addresses, the `server` and `date`
headers (left out: which server answers, and when, is not what is compared;
Uvicorn's WebSocket library adds neither to some of its responses), the case
of header names (insignificant),
and the frames of a traceback (its first and last lines are kept).

The applications record what they receive with `record(value)` (see
`RECORDER_MODULE`): one Python literal a line, in the file named by the
`COMPAT_RECORD` environment variable, which the test reads back.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import pprint
import re
import signal
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import RawClient, wait_until
from tests.subprocesses import STARTUP_TIMEOUT, ServerProcess, free_port
from tests.websocket_client import RawWebSocket

SERVERS = ("uvicorn", "cppcorn")
RECORD_ENV = "COMPAT_RECORD"

# `record(value)` for the applications: any value as a Python literal on a
# line of its own, with the types an application would see (bytes, tuples),
# dicts sorted by key, and objects that are no literal named by their type.
RECORDER_MODULE = f'''
import os


def literal(value):
    if isinstance(value, dict):
        return {{key: literal(value[key]) for key in sorted(value)}}
    if type(value) in (list, tuple):
        return type(value)(literal(item) for item in value)
    if value is None or type(value) in (str, bytes, int, float, bool):
        return value
    return f"<{{type(value).__qualname__}}>"


def record(value):
    with open(os.environ["{RECORD_ENV}"], "a") as file:
        file.write(repr(literal(value)) + "\\n")
'''

LOG_RECORD = re.compile(r"^(TRACE|DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")
ADDRESS = re.compile(r"(127\.0\.0\.1:|'127\.0\.0\.1', )(\d+)")
PROCESS_ID = re.compile(r"process \[\d+\]")
OBJECT_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
# The response heads that the WebSocket library logs at DEBUG ("> date: ...").
LOGGED_HEADER = re.compile(r"^(DEBUG:\s+> (date|server): ).*$")
OMITTED_HEADERS = ("server", "date")


@dataclass
class Observation:
    """What a user of one server observed in a scenario."""

    exit_code: int | None
    stderr: list[str]
    stdout: list[str]
    client: list[str]
    app: list[str]

    def lines(self) -> list[str]:
        """The observation as text, a section for each field."""
        sections = {"stderr": self.stderr, "stdout": self.stdout, "client": self.client, "app": self.app}
        return [f"exit code: {self.exit_code}"] + [
            line for name, lines in sections.items() for line in [f"{name}:", *(f"  {line}" for line in lines)]
        ]


def explain_difference(uvicorn: Observation, cppcorn: Observation) -> list[str]:
    """A failed `uvicorn == cppcorn`, as a diff of their texts."""
    diff = difflib.unified_diff(uvicorn.lines(), cppcorn.lines(), "uvicorn", "cppcorn", lineterm="", n=2)
    return ["the observations differ (- uvicorn, + cppcorn):", *diff]


def normalise_text(text: str, port: int) -> str:
    """`text` without what differs from run to run: process ids, ports,
    object addresses."""
    text = PROCESS_ID.sub("process [PID]", text)
    text = OBJECT_ADDRESS.sub("0x...", text)
    text = LOGGED_HEADER.sub(lambda match: f"{match[1]}<{match[2]}>", text)
    return ADDRESS.sub(lambda match: match[1] + ("PORT" if int(match[2]) == port else "CLIENT_PORT"), text)


def log_lines(lines: list[str], port: int) -> list[str]:
    """The log lines, normalised; of each run of lines that are no log
    record (a traceback), only the first and the last."""
    kept: list[str] = []
    block: list[str] = []
    for line in [*lines, "END"]:
        if LOG_RECORD.match(line) or line == "END":
            kept += block[:1] + block[1:][-1:]
            block = []
            if line != "END":
                kept.append(line)
        else:
            block.append(line)
    return [normalise_text(line, port) for line in kept]


def normalise_value(value: Any, port: int) -> Any:
    """A recorded value with ports and addresses normalised."""
    if isinstance(value, dict):
        return {key: normalise_value(item, port) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(normalise_value(item, port) for item in value)
    if isinstance(value, str):
        return normalise_text(value, port)
    if isinstance(value, bytes):
        return normalise_text(value.decode("latin-1"), port).encode("latin-1")
    if isinstance(value, int) and not isinstance(value, bool) and value == port:
        return "PORT"
    return value


def client_address(value: Any) -> Any:
    """Client ports in recorded scopes (`"client": ("127.0.0.1", 54321)`)."""
    if isinstance(value, dict):
        value = {key: client_address(item) for key, item in value.items()}
        client = value.get("client")
        if isinstance(client, (list, tuple)) and client[:1] == type(client)(["127.0.0.1"]):
            value["client"] = type(client)(["127.0.0.1", "CLIENT_PORT"])
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(client_address(item) for item in value)
    return value


def render_head(raw_head: bytes) -> list[str]:
    """A response head as lines: the status line, then the header fields
    sorted, without `server` and `date`. Field names are
    lower-cased: they are case-insensitive, and Uvicorn's WebSocket library
    capitalises those of its handshake responses."""
    status, *fields = raw_head.decode("latin-1").rstrip("\r\n").split("\r\n")
    rendered = []
    for field in fields:
        name, _, value = field.partition(":")
        name = name.lower()
        if name not in OMITTED_HEADERS:
            rendered.append(f"{name}:{value}")
    return [status, *sorted(rendered)]


class ServerRun:
    """One server process in a scenario, and the client that drives it:
    requests and WebSocket exchanges whose results are appended to
    `client` (what the user saw)."""

    def __init__(self, name: str, process: ServerProcess, port: int, record: Path) -> None:
        self.name = name
        self.process = process
        self.port = port
        self.record = record
        self.client: list[str] = []
        self._sockets: list[RawClient | RawWebSocket] = []

    # -- the client --------------------------------------------------------

    def see(self, *lines: str) -> None:
        """Note what the client observed."""
        self.client += lines

    def connect(self) -> RawClient:
        client = RawClient(self.port)
        self._sockets.append(client)
        return client

    def websocket(self) -> RawWebSocket:
        client = RawWebSocket(self.port)
        self._sockets.append(client)
        return client

    def read_response(self, client: RawClient, head_request: bool = False) -> None:
        """Read one response on `client` and note it; a connection the
        server closed instead is noted too."""
        try:
            response = client.read_response(head_request)
        except (ConnectionError, TimeoutError) as exc:
            self.see(f"no response: {type(exc).__name__}")
            return
        self.see(*render_head(response.raw_head), f"body: {response.body!r}")

    def exchange(self, request: bytes, head_request: bool = False) -> RawClient | None:
        """Send `request` on a new connection and note the response (or
        that nothing listens)."""
        try:
            client = self.connect()
        except OSError as exc:
            self.see(f"cannot connect: {type(exc).__name__}")
            return None
        client.send(request)
        self.read_response(client, head_request)
        return client

    def get(self, path: str = "/", *headers: str, method: str = "GET") -> RawClient | None:
        """A request with a Host header and `headers` ("Name: value") on a
        new connection; the response is noted."""
        return self.exchange(request_bytes(method, path, *headers), head_request=method == "HEAD")

    def close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()

    # -- the server --------------------------------------------------------

    def recorded(self) -> list[Any]:
        """The values the application recorded so far."""
        if not self.record.exists():
            return []
        return [ast.literal_eval(line) for line in self.record.read_text().splitlines()]

    def wait_recorded(self, count: int) -> None:
        """Wait until the application has recorded `count` values."""
        assert wait_until(lambda: len(self.recorded()) >= count, timeout=STARTUP_TIMEOUT), (
            f"{self.name}: {self.recorded()}\n{self.process.stderr}"
        )

    def wait_line(self, pattern: str, timeout: float = STARTUP_TIMEOUT, stream: str = "stderr") -> bool:
        """Wait for a log line matching `pattern`; False if none came."""
        try:
            self.process.wait_for(pattern, stream, timeout)
        except AssertionError:
            return False
        return True

    def wait_listening(self) -> None:
        """Wait until the port accepts connections (for servers that log no
        `running on` line)."""

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        assert wait_until(listening, timeout=STARTUP_TIMEOUT), f"{self.name} does not listen:\n{self.process.stderr}"

    def observation(self, exit_code: int | None) -> Observation:
        recorded = [client_address(normalise_value(value, self.port)) for value in self.recorded()]
        return Observation(
            exit_code=exit_code,
            stderr=log_lines(self.process.lines["stderr"], self.port),
            stdout=log_lines(self.process.lines["stdout"], self.port),
            client=[normalise_text(line, self.port) for line in self.client],
            app=[line for value in recorded for line in pprint.pformat(value, width=100).splitlines()],
        )


Drive = Callable[[ServerRun], None]


def fill(template: str, server: str, port: int) -> str:
    """`template` with `{server}` and `{port}` replaced."""
    return template.replace("{port}", str(port)).replace("{server}", server)


def observe(
    start: Callable[..., ServerProcess],
    workdir: Path,
    server: str,
    port: int,
    args: tuple[str, ...],
    drive: Drive | None,
    env: dict[str, str],
    ready: str,
    stop: int | None,
) -> Observation:
    """Run the scenario on `server` (see `observe_both`)."""
    record = workdir / f"{server}.record"
    process = start(
        "-m",
        server,
        *(fill(arg, server, port) for arg in args),
        env={RECORD_ENV: str(record), **{name: fill(value, server, port) for name, value in env.items()}},
    )
    run = ServerRun(server, process, port, record)
    try:
        if ready == "line":
            process.wait_started()
        elif ready == "port":
            run.wait_listening()
        if drive is not None:
            drive(run)
        # The client is done before the server is told to stop (and again
        # below if the drive failed).
        run.close_sockets()
        if stop is not None and ready != "exit" and process.proc.poll() is None:
            process.send_signal(stop)
        exit_code = process.wait_exit()
    finally:
        run.close_sockets()
    return run.observation(exit_code)


def observe_both(
    start: Callable[..., ServerProcess],
    workdir: Path,
    *args: str,
    drive: Drive | None = None,
    env: dict[str, str] | None = None,
    files: dict[str, str] | None = None,
    port: int | None = None,
    listen: bool = True,
    ready: str = "line",
    stop: int | None = signal.SIGINT,
) -> tuple[Observation, Observation]:
    """The observations of Uvicorn and of cppcorn, in this order, for
    `python -m SERVER ARGS --port PORT` run in `workdir`.

    `{port}` and `{server}` in `args`, `env` values and `files` (names and
    contents, written before the start) stand for the server's port and
    name. `port`: the same port for both (a port in use: only for servers
    that must fail); `listen=False` leaves out `--port`. `ready`: wait for
    the `running on` line ("line"), for the port to accept connections
    ("port"), or for nothing ("exit": the process must end by itself, so
    `stop` is not sent). Then `drive(run)` acts as the client; then the
    process gets `stop` (if it still runs; None: it must end by itself).
    """
    options = ("--port", "{port}") if listen else ()
    ports = {server: port or free_port() for server in SERVERS}
    for server in SERVERS:
        for name, content in (files or {}).items():
            (workdir / fill(name, server, ports[server])).write_text(fill(content, server, ports[server]))
    with ThreadPoolExecutor(max_workers=len(SERVERS)) as executor:
        futures = [
            executor.submit(
                observe, start, workdir, server, ports[server], (*args, *options), drive, env or {}, ready, stop,
            )
            for server in SERVERS
        ]
        uvicorn, cppcorn = (future.result() for future in futures)
    return uvicorn, cppcorn


@contextlib.contextmanager
def port_in_use() -> Iterator[int]:
    """A loopback port something listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def request_bytes(method: str, path: str, *headers: str, body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    """A request as it goes on the wire."""
    head = "\r\n".join([f"{method} {path} {version}", "Host: 127.0.0.1", *headers])
    return f"{head}\r\n\r\n".encode("latin-1") + body
