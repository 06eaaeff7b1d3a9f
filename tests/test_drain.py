"""Restarts and shutdowns that lose nothing, against real servers: keep-alive
clients under load while the server drains (SIGTERM, SIGHUP rolling
restarts), and the lingering close that keeps a last response from being
destroyed by a reset.

The load comes from `KeepAliveLoad`: threads on raw sockets, each sending a
request, reading its response, and sending the next on the same connection,
reconnecting after `Connection: close`. It counts every request sent and
every complete response; a request sent and never answered (a reset, an EOF,
a timeout) is a loss. A refused connect, once the server has stopped
listening, is not: no request was sent.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import posix_only
from tests.subprocesses import ServerProcess

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"

APP = """
import asyncio


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(0.3)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""


@pytest.fixture
def workdir(workdir: Path) -> Path:
    (workdir / "drain_app.py").write_text(APP)
    return workdir


def read_response(sock: socket.socket, buffer: bytearray) -> bool:
    """Read one Content-Length response from `sock` (what is past it stays in
    `buffer`); returns whether it asked to close the connection."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("EOF before the response head")
        buffer += chunk
    head_end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:head_end]).lower()
    length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
    while len(buffer) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("EOF in the response body")
        buffer += chunk
    del buffer[: head_end + length]
    return b"connection: close" in head


class KeepAliveLoad:
    """`connections` threads of keep-alive requests to 127.0.0.1:`port`."""

    def __init__(self, port: int, connections: int = 16) -> None:
        self.port = port
        self.sent = 0
        self.answered = 0
        self.losses: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(connections)]

    def __enter__(self) -> KeepAliveLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def wait_answered(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.answered < count:
            assert time.monotonic() < deadline, f"only {self.answered} responses"
            time.sleep(0.01)

    def _run(self) -> None:
        sock: socket.socket | None = None
        buffer = bytearray()
        while not self._stop.is_set():
            if sock is None:
                try:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                except ConnectionRefusedError:
                    time.sleep(0.01)  # nothing listens (yet): no request was sent
                    continue
                buffer.clear()
            try:
                sock.sendall(REQUEST)
            except OSError as exc:
                # The server closed a connection it had kept alive: a request
                # written into a reset connection is lost only if it was sent,
                # which the kernel refusing it says it was not.
                sock.close()
                sock = None
                if not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                    self._lose(f"send: {exc!r}")
                continue
            with self._lock:
                self.sent += 1
            try:
                close = read_response(sock, buffer)
            except (OSError, EOFError) as exc:
                self._lose(f"{type(exc).__name__}: {exc}")
                sock.close()
                sock = None
                continue
            with self._lock:
                self.answered += 1
            if close:
                sock.close()
                sock = None
        if sock is not None:
            sock.close()

    def _lose(self, what: str) -> None:
        with self._lock:
            self.losses.append(what)


def start(cppcorn_process: Callable[..., ServerProcess], *args: str) -> ServerProcess:
    return cppcorn_process("drain_app:app", "--port", "0", "--no-access-log", *args).wait_started()


@posix_only
def test_sigterm_under_keep_alive_load_loses_nothing(cppcorn_process):
    server = start(cppcorn_process)
    with KeepAliveLoad(server.port) as load:
        load.wait_answered(2000)
        server.send_signal(signal.SIGTERM)
        assert server.wait_exit() == -signal.SIGTERM
    assert load.losses == [], f"{len(load.losses)} of {load.sent} requests lost"
    assert load.sent == load.answered


@posix_only
def test_rolling_restarts_under_keep_alive_load_lose_nothing(cppcorn_process):
    server = start(cppcorn_process, "--workers", "2")
    server.wait_count("Application startup complete.", 2, timeout=20)
    with KeepAliveLoad(server.port) as load:
        for restart in range(1, 4):
            load.wait_answered(restart * 1000, timeout=20)
            server.send_signal(signal.SIGHUP)
            server.wait_count("Application startup complete.", 2 + 2 * restart, timeout=20)
        answered = load.answered
        load.wait_answered(answered + 500)
    server.send_signal(signal.SIGTERM)
    server.wait_exit(20)
    assert load.losses == [], f"{len(load.losses)} of {load.sent} requests lost"


@posix_only
def test_workers_replaced_at_max_requests_under_keep_alive_load_lose_nothing(cppcorn_process):
    server = start(cppcorn_process, "--workers", "2", "--limit-max-requests", "1000")
    server.wait_count("Application startup complete.", 2, timeout=20)
    with KeepAliveLoad(server.port) as load:
        # Each worker answers about half: at least three replacements.
        load.wait_answered(6000, timeout=30)
        server.wait_count("Maximum request limit of 1000 exceeded. Terminating process.", 3, timeout=20)
    server.send_signal(signal.SIGTERM)
    server.wait_exit(20)
    assert load.losses == [], f"{len(load.losses)} of {load.sent} requests lost"


def test_last_response_survives_bytes_the_client_sent_after_it(cppcorn_process):
    """A `Connection: close` response, with more requests sent behind it
    (some held by the server, some still in its socket): closing with unread
    bytes would reset the connection and destroy the response in the
    client's receive buffer; the lingering close delivers it, then EOF."""
    server = start(cppcorn_process)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        time.sleep(0.05)
        sock.sendall(REQUEST)
        time.sleep(0.05)
        sock.sendall(REQUEST * 100)
        time.sleep(0.6)  # the response is sent, the connection closed, meanwhile
        buffer = bytearray()
        assert read_response(sock, buffer) is True
        assert bytes(buffer) == b""
        assert sock.recv(100) == b""
