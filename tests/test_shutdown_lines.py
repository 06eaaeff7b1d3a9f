"""The lines a server process logs from its start to its end, as Uvicorn
logs them: its words, in its order, for each state the server is in when it
is told to stop; and nothing after "Finished server process [PID]", not even
for requests that had to be cancelled.

Each test runs `python -m cppcorn` as a subprocess and reads its stderr. The
"running on" and "Serving with" lines are left out of the comparisons (the
startup tests of the command line check them).
"""

from __future__ import annotations

import re
import signal
import socket

import pytest

from tests.conftest import posix_only
from tests.subprocesses import ServerProcess

pytestmark = posix_only

APPS = '''
"""Applications whose requests are still running when the server stops."""
import asyncio
import sys

from asgi_helpers import lifespan


async def app(scope, receive, send):
    """`/`: a response at once; `/stream`: a response that never ends;
    `/sleep`: a response after 30 s; a WebSocket that stays open until the
    client or server closes it. The last three say on stderr when they
    have begun."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        print("WEBSOCKET-OPEN", file=sys.stderr, flush=True)
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        print("STREAMING", file=sys.stderr, flush=True)
        while True:
            await send({"type": "http.response.body", "body": b"tick\\n", "more_body": True})
            await asyncio.sleep(0.1)
    if scope["path"] == "/sleep":
        print("SLEEPING", file=sys.stderr, flush=True)
        await asyncio.sleep(30)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
'''

STARTUP = [
    "INFO:     Started server process [{pid}]",
    "INFO:     Waiting for application startup.",
    "INFO:     Application startup complete.",
]
SHUTDOWN = [
    "INFO:     Shutting down",
    "INFO:     Waiting for application shutdown.",
    "INFO:     Application shutdown complete.",
    "INFO:     Finished server process [{pid}]",
]
WAITING = "INFO:     Waiting for connections to close. (CTRL+C to force quit)"
CANCELLED = "ERROR:    Cancel 1 running task(s), timeout graceful shutdown exceeded"
APP_ERROR = "ERROR:    Exception in ASGI application"


@pytest.fixture
def workdir(workdir):
    (workdir / "lifecycle_apps.py").write_text(APPS)
    return workdir


@pytest.fixture
def server(cppcorn_process):
    """`server(*options)`: `cppcorn lifecycle_apps:app` on a free port, started."""

    def start(*options: str) -> ServerProcess:
        return cppcorn_process("lifecycle_apps:app", "--port", "0", *options).wait_started()

    return start


LOG_LINE = re.compile(r"(TRACE|DEBUG|INFO|WARNING|ERROR|CRITICAL): ")


def log_lines(process: ServerProcess) -> list[str]:
    """The server's log lines on stderr, without the applications' markers,
    the tracebacks, and the "running on" and "Serving with" lines."""
    return [
        line
        for line in process.lines["stderr"]
        if LOG_LINE.match(line) and "running on" not in line and "Serving with" not in line
    ]


def expected(lines: list[str], process: ServerProcess) -> list[str]:
    return [line.format(pid=process.pid) for line in lines]


def open_connection(process: ServerProcess, request: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", process.port), timeout=5)
    sock.sendall(request)
    return sock


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_lines_of_an_idle_server(server, sig):
    process = server()
    process.send_signal(sig)
    process.wait_exit()
    assert log_lines(process) == expected(STARTUP + SHUTDOWN, process)


def test_idle_keep_alive_connection_is_not_waited_for(server):
    """A kept-alive connection between requests is closed at once: as in
    Uvicorn, no "Waiting for connections to close" line."""
    process = server()
    with open_connection(process, b"GET / HTTP/1.1\r\nHost: test\r\n\r\n") as sock:
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
        process.wait_for(r'"GET / HTTP/1\.1" 200', stream="stdout")
        process.send_signal(signal.SIGTERM)
        assert process.wait_exit() == -signal.SIGTERM
        assert sock.recv(4096) == b""
    assert log_lines(process) == expected(STARTUP + SHUTDOWN, process)


def test_streaming_response_cancelled_on_timeout(server):
    """`--timeout-graceful-shutdown 1` with a response that never ends: the
    server waits, cancels it, and the application's error is logged while
    the lifespan shutdown runs, as in Uvicorn; the last line is still
    "Finished server process"."""
    process = server("--timeout-graceful-shutdown", "1", "--no-access-log")
    with open_connection(process, b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n"):
        process.wait_for("STREAMING")
        process.send_signal(signal.SIGTERM)
        assert process.wait_exit() == -signal.SIGTERM
    assert log_lines(process) == expected(
        [*STARTUP, SHUTDOWN[0], WAITING, CANCELLED, SHUTDOWN[1], APP_ERROR, *SHUTDOWN[2:]], process
    )


@pytest.mark.parametrize("path", ["/stream", "/sleep"])
def test_cancelled_requests_log_before_the_last_line_without_lifespan(server, path):
    """The same with `--lifespan off` and SIGINT, which lets the process
    live on after the server (the signal is raised again as
    KeyboardInterrupt): the cancelled application's error, and for a
    request not answered yet the access line of its 500, come before
    "Finished server process", not after it, while the event loop closes
    (where Uvicorn logs them)."""
    process = server("--timeout-graceful-shutdown", "1", "--lifespan", "off")
    with open_connection(process, f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode()):
        process.wait_for("STREAMING|SLEEPING")
        process.send_signal(signal.SIGINT)
        assert process.wait_exit() == 0
    assert log_lines(process) == expected(
        [STARTUP[0], SHUTDOWN[0], WAITING, CANCELLED, APP_ERROR, SHUTDOWN[-1]], process
    )
    if path == "/sleep":
        process.wait_for(r'"GET /sleep HTTP/1\.1" 500', stream="stdout")


def test_forced_exit_logs_nothing_after_the_last_line(server):
    """A second SIGINT while a request runs: the server cancels it at once;
    its error and its 500 are logged before "Finished server process", and
    the lifespan task the closing loop cancels is not taken for an
    application without lifespan support."""
    process = server()
    with open_connection(process, b"GET /sleep HTTP/1.1\r\nHost: test\r\n\r\n"):
        process.wait_for("SLEEPING")
        process.send_signal(signal.SIGINT)
        process.wait_for("Waiting for connections to close")
        process.send_signal(signal.SIGINT)
        assert process.wait_exit() == 0
    assert log_lines(process) == expected([*STARTUP, SHUTDOWN[0], WAITING, APP_ERROR, SHUTDOWN[-1]], process)
    process.wait_for(r'"GET /sleep HTTP/1\.1" 500', stream="stdout")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_open_websocket_is_closed_then_the_server_finishes(server, raw_ws, sig):
    """A WebSocket open at the stop: it is closed with 1012, nothing waits
    for it, and the server's last line is "Finished server process"."""
    process = server()
    client = raw_ws(process.port)
    assert client.connect().status == 101
    process.wait_for("WEBSOCKET-OPEN")
    process.send_signal(sig)
    process.wait_exit()
    lines = log_lines(process)
    assert WAITING not in lines
    assert SHUTDOWN[0] in lines
    assert lines[-3:] == expected(SHUTDOWN[1:], process)
