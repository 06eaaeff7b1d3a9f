"""`--log-level trace` logs a connection's life as Uvicorn 0.54 does, besides
the ASGI message dumps: "HTTP connection made/lost", "Upgrading to
WebSocket", "WebSocket connection made/lost", "WebSocket keepalive ping
timeout", prefixed with the client's "host:port - ". Checked on the
server's stderr, as a user reads it."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.conftest import WAIT, assert_in_order
from tests.websocket_client import CLOSE, PING

TRACE_APP = """
async def app(scope, receive, send):
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
"""


@pytest.fixture
def workdir(workdir: Path) -> Path:
    (workdir / "trace_app.py").write_text(TRACE_APP)
    return workdir


def label(client: socket.socket) -> str:
    """How the server's log names this client: "host:port"."""
    host, port = client.getsockname()
    return f"{host}:{port}"


def trace_lines(stderr: str, client_label: str) -> list[str]:
    """The TRACE lines about one client's connection, without the prefix."""
    prefix = f"TRACE:    {client_label} - "
    return [line[len(prefix) :] for line in stderr.splitlines() if line.startswith(prefix)]


def test_http_connection(cppcorn_process, raw_client):
    server = cppcorn_process("trace_app:app", "--port", "0", "--log-level", "trace").wait_started()
    client = raw_client(server.port)
    client_label = label(client.sock)
    client.send(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    assert client.read_response().body == b"ok"
    assert client.is_closed()
    server.wait_for(f"{client_label} - HTTP connection lost", timeout=WAIT)
    lines = trace_lines(server.stderr, client_label)
    assert_in_order(lines, ["HTTP connection made", "HTTP connection lost"])
    assert not [line for line in lines if "WebSocket" in line]


def test_websocket_connection(cppcorn_process, raw_ws):
    server = cppcorn_process("trace_app:app", "--port", "0", "--log-level", "trace").wait_started()
    client = raw_ws(server.port)
    client_label = label(client.sock)
    assert client.connect().status == 101
    client.send_close(1000)
    assert client.recv_frame().opcode == CLOSE
    assert client.server_closed()
    server.wait_for(f"{client_label} - WebSocket connection lost", timeout=WAIT)
    lines = trace_lines(server.stderr, client_label)
    assert [line for line in lines if "ASGI" not in line] == [
        "HTTP connection made",
        "Upgrading to WebSocket",
        "WebSocket connection made",
        "WebSocket connection lost",
    ]


def test_websocket_keepalive_ping_timeout(cppcorn_process, raw_ws):
    server = cppcorn_process(
        "trace_app:app", "--port", "0", "--log-level", "trace", "--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.2"
    ).wait_started()
    client = raw_ws(server.port)
    client_label = label(client.sock)
    client.connect()
    assert client.recv_frame().opcode == PING
    assert client.recv_frame().close_code == 1011
    server.wait_for(f"{client_label} - WebSocket connection lost", timeout=WAIT)
    lines = [line for line in trace_lines(server.stderr, client_label) if "ASGI" not in line]
    assert lines[-2:] == ["WebSocket keepalive ping timeout", "WebSocket connection lost"]


def test_nothing_traced_above_trace(cppcorn_process, raw_client):
    server = cppcorn_process("trace_app:app", "--port", "0", "--log-level", "debug").wait_started()
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    assert client.read_response().body == b"ok"
    assert client.is_closed()
    server.send_signal(signal.SIGINT)  # its log is complete once it has exited
    assert server.wait_exit() == 0
    assert "connection made" not in server.stderr
    assert "TRACE" not in server.stderr
