"""An in-memory harness for the HTTP/1.1 protocol: no sockets, no threads.

The protocol is driven only through its public asyncio interface, as an event
loop's transport would drive it: `connection_made()`, `data_received()`,
`eof_received()`, `connection_lost()`, `pause_writing()`/`resume_writing()`,
plus `shutdown()`/`abort()` and `ServerState.expire_connections()` as the
server calls them. Nothing here reads a private attribute or an internal class
of `cppcorn.http`, so the tests built on it survive a restructuring of the
protocol module.

    harness = Harness("asyncio")              # or the `harness` fixture
    conn = harness.connect(app)                # a MemoryServer and one connection
    conn.send(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    response = conn.response()                 # parsed from the written bytes
    assert response.status == 200 and not conn.closed

How the loop runs: a real event loop object (asyncio, uvloop or
cppcorn.loop), never serving a socket. Every call into the protocol is made
from a plain loop callback (`loop.call_soon`), as a transport's reader is, so
that the application sees a running loop and the protocol may start it at
once inside the callback. After each action the driver runs the loop until it
is idle: until nothing observable (transport calls, server state, tasks) has
changed for `QUIET_ITERATIONS` iterations. That is bounded by iterations and
by wall time, so a test never hangs; timers only fire when a test waits for
something (`settle(until=...)`) or lets time pass (`run_for()`).

The fake transport (`MemoryTransport`) behaves as asyncio's socket transport
does where the protocol can tell:
- bytes the client sends sit in an inbox until reading is not paused; then
  one `data_received()` delivers everything there (up to `read_size`), as one
  recv() would; the client's end of input (`send_eof()`) comes after them;
- `eof_received()` returning a false value makes it close itself;
- `close()` marks it closing and calls `connection_lost(None)` on a later
  iteration (once its simulated write buffer is empty), `abort()` at once;
  writes after `close()` are dropped (and counted in `writes_after_close`);
- with `write_buffer=(high, low)` it keeps the written bytes as "unread by the
  client", calls `pause_writing()` from inside `write()` past `high`, and
  `resume_writing()` once the client has read (`conn.read()`) down to `low`.
It offers no C-level seam (`__cppcorn_sender__`), so the protocol takes its
Python path (`write()`, `is_closing()`) on every loop; the seam between
cppcorn.loop's transports and the protocol is for the socket tests to cover.

A MemoryServer keeps its own error and access logs (`server.log`,
`server.access_log`, outside the logging tree) and its clock (`state.now`,
moved on by `server.advance(seconds)`, which runs the server's tick).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cppcorn.http.connection import ServerState
from cppcorn.http.protocol import HttpProtocol, HttpSettings

# The loop is idle once this many iterations in a row changed nothing that can
# be seen from outside (an application looping on `await asyncio.sleep(0)`
# without writing looks idle).
QUIET_ITERATIONS = 20
# Upper bounds for one settle(): iterations, and seconds of wall time.
MAX_ITERATIONS = 100_000
SETTLE_TIMEOUT = 2.0
# What asyncio's socket transports read at most per data_received().
READ_SIZE = 256 * 1024

DEFAULT_PEERNAME = ("127.0.0.1", 50000)
DEFAULT_SOCKNAME = ("127.0.0.1", 8000)


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    """A new event loop of the kind the suite names (tests/conftest.py LOOPS)."""
    if name == "asyncio":
        return asyncio.new_event_loop()
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name == "cppcorn":
        import cppcorn.loop

        return cppcorn.loop.new_event_loop()
    raise ValueError(f"unknown loop {name!r}")


class HarnessError(AssertionError):
    """The harness could not do what the test asked (a hang, a callback that
    raised, a response that is not there)."""


# -- responses ---------------------------------------------------------------


@dataclass
class Response:
    """One response as the client reads it from the bytes the server wrote."""

    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    raw_head: bytes  # status line to the blank line, as written
    body: bytes = b""  # decoded: chunk payloads joined
    raw_body: bytes = b""  # as written: chunk framing included
    framing: str = "none"  # "chunked", "content-length", "close" or "none"
    chunks: list[bytes] = field(default_factory=list)  # chunk payloads ("chunked")
    trailers: list[tuple[str, str]] = field(default_factory=list)
    complete: bool = True  # the framing ended (False: cut short)

    def header(self, name: str) -> str | None:
        """The last value of a header (case-insensitive), or None."""
        values = self.header_list(name)
        return values[-1] if values else None

    def header_list(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    @property
    def raw(self) -> bytes:
        return self.raw_head + self.raw_body


class _Incomplete(Exception):
    """Not enough bytes for a whole response."""


def _parse_fields(lines: Iterable[str]) -> list[tuple[str, str]]:
    fields = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise HarnessError(f"malformed header line {line!r}")
        fields.append((name, value.strip(" \t")))
    return fields


def parse_response(data: bytes, start: int = 0, *, head: bool = False, eof: bool = False) -> tuple[Response, int]:
    """Parse the response at `data[start:]`: (response, offset after it).

    `head`: it answers a HEAD request (no body whatever the headers say).
    `eof`: the connection is closed after `data` (a close-delimited body ends
    there; any other framing cut short gives `complete=False`). Raises
    _Incomplete when more bytes could still come.
    """
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise _Incomplete(data[start:])
    raw_head = data[start : end + 4]
    lines = raw_head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit():
        raise HarnessError(f"malformed status line {lines[0]!r} in {data[start:]!r}")
    response = Response(int(code), reason, version, _parse_fields(lines[1:]), raw_head)
    position = end + 4
    status = response.status
    if head or status < 200 or status in (204, 304):
        return response, position
    transfer_encoding = response.header("transfer-encoding")
    if transfer_encoding is not None and transfer_encoding.split(",")[-1].strip().lower() == "chunked":
        response.framing = "chunked"
        return _parse_chunked(response, data, position, eof)
    if response.header("content-length") is not None:
        response.framing = "content-length"
        length = int(response.header("content-length") or "0")
        available = data[position : position + length]
        if len(available) < length and not eof:
            raise _Incomplete(data[start:])
        response.body = response.raw_body = available
        response.complete = len(available) == length
        return response, position + len(available)
    response.framing = "close"
    if not eof:
        raise _Incomplete(data[start:])
    response.body = response.raw_body = data[position:]
    return response, len(data)


def _parse_chunked(response: Response, data: bytes, position: int, eof: bool) -> tuple[Response, int]:
    start = position

    def cut_short() -> tuple[Response, int]:
        if not eof:
            raise _Incomplete(data)
        response.raw_body = data[start:]
        response.body = b"".join(response.chunks)
        response.complete = False
        return response, len(data)

    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return cut_short()
        size_text = data[position:line_end].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HarnessError(f"bad chunk size line {data[position:line_end]!r}") from None
        position = line_end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n", position)
            trailer_lines = []
            while trailer_end > position:  # trailer fields until the blank line
                trailer_lines.append(data[position:trailer_end].decode("latin-1"))
                position = trailer_end + 2
                trailer_end = data.find(b"\r\n", position)
            if trailer_end < 0:
                return cut_short()
            position = trailer_end + 2
            response.trailers = _parse_fields(trailer_lines)
            break
        if len(data) < position + size + 2:
            return cut_short()
        if data[position + size : position + size + 2] != b"\r\n":
            raise HarnessError(f"chunk of {size} bytes not followed by CRLF: {data[position:]!r}")
        response.chunks.append(data[position : position + size])
        position += size + 2
    response.raw_body = data[start:position]
    response.body = b"".join(response.chunks)
    return response, position


# -- the transport -------------------------------------------------------------


class MemoryTransport(asyncio.Transport):
    """A transport that records what the protocol does to it (see the module
    docstring for how it behaves)."""

    def __init__(
        self,
        connection: MemoryConnection,
        *,
        peername: Any = DEFAULT_PEERNAME,
        sockname: Any = DEFAULT_SOCKNAME,
        sslcontext: Any = None,
        write_buffer: tuple[int, int] | None = None,
        read_size: int = READ_SIZE,
    ) -> None:
        super().__init__()
        self._connection = connection
        self._loop = connection.harness.loop
        self.protocol: asyncio.BaseProtocol | None = None
        self.extra = {"peername": peername, "sockname": sockname, "sslcontext": sslcontext, "socket": None}
        self.read_size = read_size
        # Every call the protocol made and every call made into it, in order:
        # ("connection_made", transport), ("write", bytes), ("writelines", [bytes]), ("pause_reading",),
        # ("resume_reading",), ("close",), ("abort",), ("set_protocol", p),
        # ("data_received", bytes), ("eof_received", result),
        # ("connection_lost", exc), ("pause_writing",), ("resume_writing",).
        self.events: list[tuple[Any, ...]] = []
        self.output = bytearray()  # every byte written, in order
        self.writes_after_close = 0
        self.reading_paused = False
        self.closing = False  # close() or abort() was called (or the connection was lost)
        self.closed_by: str | None = None  # "close", "abort", "eof" (eof_received said so) or "client"
        self.lost = False  # connection_lost() was delivered
        self.inbox = bytearray()  # sent by the client, not yet delivered
        self.inbox_eof = False  # the client half-closed after the inbox
        self.eof_delivered = False
        self._delivery_scheduled = False
        self._lost_scheduled = False
        # Simulated write buffer (bytes the client has not read).
        self.write_limits = write_buffer
        self.unread = 0
        self.protocol_writing_paused = False

    # asyncio.BaseTransport

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.events.append(("close",))
        self._close("close")

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.events.append(("set_protocol", protocol))
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol | None:
        return self.protocol

    # asyncio.ReadTransport

    def is_reading(self) -> bool:
        return not self.reading_paused and not self.closing

    def pause_reading(self) -> None:
        self.events.append(("pause_reading",))
        if self.closing or self.reading_paused:
            return
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.events.append(("resume_reading",))
        if self.closing or not self.reading_paused:
            return
        self.reading_paused = False
        # As asyncio: the reader is registered again, and what the client
        # sent meanwhile is read on a later iteration, never from inside
        # this call.
        self._schedule_delivery()

    # asyncio.WriteTransport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        data = bytes(data)
        self.events.append(("write", data))
        self._accept(data)

    def writelines(self, list_of_data: Iterable[bytes]) -> None:
        parts = [bytes(part) for part in list_of_data]
        self.events.append(("writelines", parts))
        self._accept(b"".join(parts))

    def can_write_eof(self) -> bool:
        return False

    def abort(self) -> None:
        self.events.append(("abort",))
        self.unread = 0
        self._close("abort")

    def get_write_buffer_size(self) -> int:
        return self.unread

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self.write_limits[1], self.write_limits[0]) if self.write_limits else (0, 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        high = 64 * 1024 if high is None else high
        self.write_limits = (high, high // 4 if low is None else low)

    # internals

    def _accept(self, data: bytes) -> None:
        if self.closing:
            # As asyncio's socket transport once close() has nothing left to
            # flush: the bytes are dropped.
            self.writes_after_close += 1
            return
        if not data:
            return
        self.output += data
        if self.write_limits is None:
            return
        self.unread += len(data)
        if not self.protocol_writing_paused and self.unread > self.write_limits[0]:
            # As asyncio: from inside write(), at once.
            self.protocol_writing_paused = True
            self._connection._invoke("pause_writing")

    def _close(self, by: str) -> None:
        if self.closing:
            return
        self.closing = True
        self.closed_by = by
        if by == "abort" or self.unread == 0:
            self._schedule_lost(None)

    def _schedule_lost(self, exc: BaseException | None) -> None:
        if self._lost_scheduled:
            return
        self._lost_scheduled = True
        self._loop.call_soon(self._deliver_lost, exc)

    def _deliver_lost(self, exc: BaseException | None) -> None:
        if not self.closing:  # the client's doing (disconnect())
            self.closing = True
            self.closed_by = "client"
        self.lost = True
        self._connection._invoke("connection_lost", exc)

    def _schedule_delivery(self) -> None:
        if not self._delivery_scheduled:
            self._delivery_scheduled = True
            self._loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        """What one readiness event of the socket would hand the protocol."""
        self._delivery_scheduled = False
        if self.closing or self.reading_paused:
            return
        if self.inbox:
            data = bytes(self.inbox[: self.read_size])
            del self.inbox[: self.read_size]
            self._connection._invoke("data_received", data)
            if self.inbox or self.inbox_eof:
                self._schedule_delivery()  # the next read, on the next iteration
            return
        if self.inbox_eof and not self.eof_delivered:
            self.eof_delivered = True
            keep_open = self._connection._invoke("eof_received")
            if not keep_open and not self.closing:
                # As asyncio's _SelectorSocketTransport: the transport closes itself.
                self._close("eof")

    def _client_read(self, size: int | None) -> None:
        """The client read `size` bytes (None: all) of the write buffer."""
        self.unread = 0 if size is None else max(0, self.unread - size)
        if self.protocol_writing_paused and self.write_limits is not None and self.unread <= self.write_limits[1]:
            self.protocol_writing_paused = False
            self._connection._invoke("resume_writing")
        if self.closing and self.unread == 0:
            self._schedule_lost(None)


# -- connections, servers, the harness ----------------------------------------


class MemoryConnection:
    """One client connection to a MemoryServer, and the client's view of it."""

    def __init__(self, server: MemoryServer, **transport_options: Any) -> None:
        self.server = server
        self.harness = server.harness
        self.protocol = HttpProtocol(server.settings, server.state, loop=self.harness.loop)
        self.transport = MemoryTransport(self, **transport_options)
        self.transport.protocol = self.protocol
        self._read_offset = 0  # how far responses have been parsed
        self.eof_result: Any = None  # what eof_received() returned
        self.harness.connections.append(self)
        self.harness.loop.call_soon(self._invoke, "connection_made", self.transport)
        self.harness.settle()

    # What the client does. Each action runs the loop until idle unless
    # settle=False (then several actions share the same loop iterations).

    def send(self, *chunks: bytes, settle: bool = True) -> None:
        """The client sends `chunks`, each read by the server separately
        (one data_received() each, when reading is not paused). With
        settle=False they wait together and are read at once, as by one
        recv()."""
        for chunk in chunks:
            self._put(chunk)
            if settle:
                self.harness.settle()
        if not chunks and settle:
            self.harness.settle()

    def send_eof(self, *, settle: bool = True) -> None:
        """The client half-closes (shutdown(SHUT_WR)): eof_received() once
        everything sent before it has been read."""
        self.transport.inbox_eof = True
        if not self.transport.reading_paused:
            self.transport._schedule_delivery()
        if settle:
            self.harness.settle()

    def disconnect(self, exc: BaseException | None = None, *, settle: bool = True) -> None:
        """The client is gone (a reset, or the socket failed): connection_lost(exc)."""
        exc = exc if exc is not None else ConnectionResetError("connection reset by peer")
        # On a later iteration, as a transport notices it: what the client
        # sent before (and the server reads at once) is read first.
        self.transport._schedule_lost(exc)
        if settle:
            self.harness.settle()

    def read(self, size: int | None = None, *, settle: bool = True) -> None:
        """The client reads `size` bytes (None: all) of what the transport
        buffered (with write_buffer=(high, low)); may resume_writing()."""
        self.harness.loop.call_soon(self.transport._client_read, size)
        if settle:
            self.harness.settle()

    def pause_writing(self, *, settle: bool = True) -> None:
        """The transport's buffer went over its high-water mark."""
        self.call("pause_writing", settle=settle)

    def resume_writing(self, *, settle: bool = True) -> None:
        """The transport's buffer drained below its low-water mark."""
        self.call("resume_writing", settle=settle)

    def call(self, method: str, *args: Any, settle: bool = True) -> None:
        """Call a method of the protocol from a loop callback."""
        self.harness.loop.call_soon(self._invoke, method, *args)
        if settle:
            self.harness.settle()

    def settle(self, until: Callable[[], Any] | None = None, timeout: float | None = None) -> None:
        self.harness.settle(until, timeout)

    # What the client sees.

    @property
    def received(self) -> bytes:
        """Every byte the server wrote, in order."""
        return bytes(self.transport.output)

    @property
    def unread(self) -> bytes:
        """The bytes after the responses read so far."""
        return bytes(self.transport.output[self._read_offset :])

    @property
    def closed(self) -> bool:
        """The server closed (or aborted) the connection, or it was lost."""
        return self.transport.closing

    @property
    def lost(self) -> bool:
        """connection_lost() has been called."""
        return self.transport.lost

    @property
    def reading_paused(self) -> bool:
        return self.transport.reading_paused

    @property
    def held(self) -> bytes:
        """Bytes the client sent that the server has not read (reading paused)."""
        return bytes(self.transport.inbox)

    @property
    def events(self) -> list[tuple[Any, ...]]:
        return self.transport.events

    def event_names(self) -> list[str]:
        return [event[0] for event in self.transport.events]

    def data_received_calls(self) -> list[bytes]:
        return [event[1] for event in self.transport.events if event[0] == "data_received"]

    def response(self, *, head: bool = False, allow_incomplete: bool = False) -> Response:
        """The next response (interim 1xx ones too). `head`: it answers a HEAD
        request. Raises HarnessError if it is not all there, unless
        `allow_incomplete` and the connection is closed (then `complete`
        tells whether its framing ended)."""
        self.harness.settle()
        data = bytes(self.transport.output)
        if self._read_offset >= len(data):
            state = "closed" if self.closed else "open"
            raise HarnessError(f"no response: nothing more was written (connection {state})")
        try:
            response, end = parse_response(data, self._read_offset, head=head, eof=self.closed)
        except _Incomplete:
            raise HarnessError(f"incomplete response (connection open): {data[self._read_offset :][:2000]!r}") from None
        if not response.complete and not allow_incomplete:
            raise HarnessError(f"response cut short by the close: {response.raw[:2000]!r}")
        self._read_offset = end
        return response

    def responses(self, *, head: bool = False) -> list[Response]:
        """Every complete response not read yet."""
        found = []
        while self._read_offset < len(self.transport.output):
            try:
                found.append(self.response(head=head))
            except HarnessError:
                break
        return found

    # internals

    def _put(self, data: bytes) -> None:
        self.transport.inbox += data
        if not self.transport.reading_paused:
            self.transport._schedule_delivery()

    def _invoke(self, method: str, *args: Any) -> Any:
        """Call the current protocol's `method` (from a loop callback), record
        the call and its result; an exception is kept for settle() to raise."""
        protocol = self.transport.protocol
        if method in ("connection_made", "data_received", "connection_lost", "pause_writing", "resume_writing"):
            self.transport.events.append((method, *args))
        try:
            result = getattr(protocol, method)(*args)
        except BaseException as exc:
            self.harness.callback_errors.append((method, exc))
            return None
        if method == "eof_received":
            self.eof_result = result
            self.transport.events.append(("eof_received", result))
        return result


def _memory_logger(name: str, records: list[logging.LogRecord]) -> logging.Logger:
    """A logger outside the logging tree that keeps its records in `records`."""

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            record.getMessage()  # formats args now, as a handler would
            records.append(record)

    logger = logging.Logger(name, logging.DEBUG)
    logger.addHandler(Keep())
    logger.propagate = False
    return logger


class MemoryServer:
    """What one server shares between its connections: the settings, the
    ServerState, the clock, and the logs."""

    def __init__(self, harness: Harness, app: Any, *, default_headers: bytes = b"", **settings: Any) -> None:
        self.harness = harness
        self.log: list[logging.LogRecord] = []
        self.access_log: list[logging.LogRecord] = []
        settings.setdefault("app_state", {})
        settings.setdefault("logger", _memory_logger("uvicorn.error", self.log))
        settings.setdefault("access_logger", _memory_logger("uvicorn.access", self.access_log))
        self.settings = HttpSettings(app=app, **settings)
        self.state = ServerState()
        self.state.now = 1000.0
        self.state.default_headers = default_headers

    def connect(self, **transport_options: Any) -> MemoryConnection:
        """A new client connection (options: peername, sockname, sslcontext,
        write_buffer=(high, low), read_size)."""
        return MemoryConnection(self, **transport_options)

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass on the server's clock and run its tick
        (`expire_connections`), then run the loop until idle."""
        self.state.now += seconds
        self.harness.loop.call_soon(self.state.expire_connections, self.state.now)
        self.harness.settle()

    def shutdown(self) -> None:
        """Graceful shutdown, as Server.shutdown() starts it."""
        for connection in list(self.state.connections):
            self.harness.loop.call_soon(connection.shutdown)
        self.harness.settle()

    def abort(self) -> None:
        """The graceful shutdown timed out: drop every connection."""
        for connection in list(self.state.connections):
            self.harness.loop.call_soon(connection.abort)
        self.harness.settle()

    def messages(self, level: int | None = None) -> list[str]:
        """The error logger's messages (of one level, or all)."""
        return [r.getMessage() for r in self.log if level is None or r.levelno == level]

    def access_lines(self) -> list[str]:
        return [r.getMessage() for r in self.access_log]


class Harness:
    """One event loop and everything run on it in a test."""

    def __init__(self, loop_name: str = "asyncio") -> None:
        self.loop = new_loop(loop_name)
        self.loop.set_exception_handler(self._loop_error)
        self.connections: list[MemoryConnection] = []
        self.callback_errors: list[tuple[str, BaseException]] = []
        self.loop_errors: list[dict[str, Any]] = []
        self.timeout = SETTLE_TIMEOUT  # the bound of each settle(), in seconds
        self._closed = False

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def server(self, app: Any, **settings: Any) -> MemoryServer:
        """A server for `app`; `settings` are HttpSettings keywords
        (timeout_keep_alive=..., limit_concurrency=..., ...) and
        default_headers (bytes, `state.default_headers`: b"" by default)."""
        return MemoryServer(self, app, **settings)

    def connect(self, app: Any, **settings: Any) -> MemoryConnection:
        """A connection to a new server for `app`."""
        return self.server(app, **settings).connect()

    def settle(self, until: Callable[[], Any] | None = None, timeout: float | None = None) -> None:
        """Run the loop until it is idle, or (with `until`) until `until()` is
        true, letting timers fire; HarnessError after `timeout` seconds
        (default: `self.timeout`)."""
        if self._closed:
            raise HarnessError("the harness is closed")
        self.loop.run_until_complete(self._settle(until, self.timeout if timeout is None else timeout))
        self.check()

    def run_for(self, seconds: float) -> None:
        """Run the loop for `seconds` of real time (for applications that
        sleep), then until idle."""
        deadline = time.monotonic() + seconds
        self.settle(lambda: time.monotonic() >= deadline, timeout=seconds + self.timeout)
        self.settle()

    def check(self) -> None:
        """Raise what went wrong in the loop: a protocol callback that raised,
        or an error the loop reported (an exception in a callback or task)."""
        if self.callback_errors:
            method, exc = self.callback_errors.pop(0)
            raise HarnessError(f"protocol.{method}() raised {exc!r}") from exc
        if self.loop_errors:
            context = self.loop_errors.pop(0)
            raise HarnessError(f"the loop reported: {context.get('message')}: {context!r}") from context.get(
                "exception"
            )

    def close(self) -> None:
        """Drop the connections still open (so that their tasks end), cancel
        what still runs, close the loop; then raise what went wrong (check())."""
        if self._closed:
            return
        try:
            for connection in self.connections:
                if not connection.transport._lost_scheduled:
                    connection.disconnect(settle=False)
            with contextlib.suppress(HarnessError):  # still busy: cancelled below
                self.loop.run_until_complete(self._settle(None, SETTLE_TIMEOUT))
            leftovers = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
            for task in leftovers:
                task.cancel()
            if leftovers:
                self.loop.run_until_complete(asyncio.wait(leftovers, timeout=SETTLE_TIMEOUT))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self._closed = True
            self.loop.close()
        self.check()

    # internals

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.loop_errors.append(context)

    def _progress(self) -> tuple[int, ...]:
        """What changes when something happens: transport calls, server
        state, tasks."""
        signature = [len(asyncio.all_tasks(self.loop)), len(self.callback_errors), len(self.loop_errors)]
        servers = set()
        for connection in self.connections:
            signature.append(len(connection.transport.events))
            servers.add(connection.server)
        for server in servers:
            state = server.state
            signature += [state.total_requests, len(state.connections), len(state.tasks), len(server.log)]
        return tuple(signature)

    async def _settle(self, until: Callable[[], Any] | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = self._progress()
        quiet = 0
        for _ in range(MAX_ITERATIONS):
            if until is not None:
                if until():
                    return
            elif quiet >= QUIET_ITERATIONS:
                return
            # Out of time: when waiting for a condition, or when the last
            # iteration still changed something (not after a mere stall of
            # this process: then the next quiet iterations finish the wait).
            if time.monotonic() > deadline and (until is not None or quiet == 0):
                break
            if until is not None and quiet >= QUIET_ITERATIONS:
                await asyncio.sleep(0.001)  # nothing ready: let timers come due
            else:
                await asyncio.sleep(0)
            now = self._progress()
            if now == last:
                quiet += 1
            else:
                last, quiet = now, 0
        what = "the condition did not become true" if until is not None else "the loop never became idle"
        raise HarnessError(f"{what} within {timeout} s")
