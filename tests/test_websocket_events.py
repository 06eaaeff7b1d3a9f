"""What a WebSocket application receives, and what the server logs about the
connection, event by event, as Uvicorn 0.54's default implementation
(websockets-sansio) gives them: applications and their tests compare
messages with `==`, and log pipelines read the lines.

Each case drives a real server with a raw client and compares the messages
the application received with literal dicts: the keys and values Uvicorn
0.54 sends (observed running it on the same scenarios), and the INFO lines
logged, in order.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import WAIT, close_socket, wait_until
from tests.websocket_client import CLOSE, PING, TEXT, RawWebSocket, encode_frame

CONNECT = {"type": "websocket.connect"}


def disconnect(code: int, reason: str | None = None) -> dict[str, Any]:
    """Uvicorn's websocket.disconnect: a `reason` key only where it has one."""
    message: dict[str, Any] = {"type": "websocket.disconnect", "code": code}
    if reason is not None:
        message["reason"] = reason
    return message


def recording_app(received: queue.Queue) -> Callable:
    """Puts every message it receives in `received`, up to the disconnect.
    The path says how it answers the handshake: /deny (websocket.close,
    a 403), /not-found (a 404 through websocket.http.response), /close
    (accept, then close with 4000 "bye"), anything else: accept."""

    async def app(scope, receive, send):
        message = await receive()
        received.put(message)
        if scope["path"] == "/deny":
            await send({"type": "websocket.close"})
        elif scope["path"] == "/not-found":
            await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
            await send({"type": "websocket.http.response.body", "body": b"no such socket"})
        else:
            await send({"type": "websocket.accept"})
            if scope["path"] == "/close":
                await send({"type": "websocket.close", "code": 4000, "reason": "bye"})
        while message["type"] != "websocket.disconnect":
            message = await receive()
            received.put(message)

    return app


def received_until_disconnect(received: queue.Queue) -> list[dict[str, Any]]:
    messages = [received.get(timeout=WAIT)]
    while messages[-1]["type"] != "websocket.disconnect":
        messages.append(received.get(timeout=WAIT))
    return messages


def info_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The INFO-and-above lines since the last caplog.clear(), as a user
    reads them."""
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.INFO]


# -- what the application receives -------------------------------------------------


def peer_closes_with_reason(client: RawWebSocket) -> None:
    client.send_frame(TEXT, b"hi")
    client.send_bytes(b"\x01")
    client.send_close(1000, b"done")


def peer_closes_without_reason(client: RawWebSocket) -> None:
    client.send_close(1001)


def peer_sends_empty_close(client: RawWebSocket) -> None:
    client.send_close(None)


def peer_vanishes(client: RawWebSocket) -> None:
    close_socket(client.sock, "close")


def peer_resets(client: RawWebSocket) -> None:
    close_socket(client.sock, "reset")


def peer_sends_invalid_utf8(client: RawWebSocket) -> None:
    client.send_frame(TEXT, b"\xff\xfe")


def peer_sends_unmasked_frame(client: RawWebSocket) -> None:
    client.send_frame(TEXT, b"hi", mask=False)


def peer_sends_oversized_frame(client: RawWebSocket) -> None:
    client.send_bytes(b"x" * 100)


def peer_answers_close_with_its_own(client: RawWebSocket) -> None:
    assert client.recv_frame().close_code == 4000
    client.send_close(1000, b"whatever")


EVENTS = {
    "peer-close-with-reason": (
        "/",
        peer_closes_with_reason,
        [
            {"type": "websocket.receive", "text": "hi"},
            {"type": "websocket.receive", "bytes": b"\x01"},
            disconnect(1000, "done"),
        ],
    ),
    "peer-close-without-reason": ("/", peer_closes_without_reason, [disconnect(1001, "")]),
    "peer-empty-close": ("/", peer_sends_empty_close, [disconnect(1005, "")]),
    # Gone without a close frame: Uvicorn says 1005 once the handshake is
    # done, with no reason key.
    "peer-vanishes": ("/", peer_vanishes, [disconnect(1005)]),
    "peer-resets": ("/", peer_resets, [disconnect(1005)]),
    "invalid-utf8": ("/", peer_sends_invalid_utf8, [disconnect(1007, "")]),
    "protocol-error": ("/", peer_sends_unmasked_frame, [disconnect(1002, "incorrect masking")]),
    "too-big": ("/", peer_sends_oversized_frame, [disconnect(1009, "frame with 100 bytes exceeds limit of 10 bytes")]),
    # The application's own close: its code and reason, whatever the peer answers.
    "app-close": ("/close", peer_answers_close_with_its_own, [disconnect(4000, "bye")]),
}


@pytest.mark.parametrize(("path", "client_does", "expected"), EVENTS.values(), ids=EVENTS.keys())
def test_messages_the_app_receives(serve, raw_ws, path, client_does, expected):
    received: queue.Queue = queue.Queue()
    server = serve(recording_app(received), ws_max_size=10)
    client = raw_ws(server.port)
    assert client.connect(path).status == 101
    client_does(client)
    assert received_until_disconnect(received) == [CONNECT, *expected]


def test_messages_after_keepalive_ping_timeout(serve, raw_ws):
    """No pong in time: a 1011 close goes out, and the application hears of
    it as Uvicorn's does, as a connection lost."""
    received: queue.Queue = queue.Queue()
    server = serve(recording_app(received), ws_ping_interval=0.2, ws_ping_timeout=0.2)
    client = raw_ws(server.port)
    client.connect()
    assert client.recv_frame().opcode == PING
    close = client.recv_frame()
    assert (close.opcode, close.close_code, close.close_reason) == (CLOSE, 1011, "keepalive ping timeout")
    assert received_until_disconnect(received) == [CONNECT, disconnect(1005)]


def test_messages_after_server_shutdown(serve, raw_ws):
    received: queue.Queue = queue.Queue()
    server = serve(recording_app(received))
    client = raw_ws(server.port)
    client.connect()
    assert received.get(timeout=WAIT) == CONNECT
    server.server.should_exit = True
    assert client.recv_frame().close_code == 1012
    assert received_until_disconnect(received) == [disconnect(1012)]


@pytest.mark.parametrize("path", ["/deny", "/not-found"])
def test_messages_after_a_refused_handshake(serve, raw_ws, path):
    received: queue.Queue = queue.Queue()
    server = serve(recording_app(received))
    client = raw_ws(server.port)
    assert client.connect(path).status in (403, 404)
    assert received_until_disconnect(received) == [CONNECT, disconnect(1006)]


# -- what the server logs ----------------------------------------------------------


def test_log_lines_of_an_accepted_connection(serve, raw_ws, caplog):
    """Uvicorn's line and websockets' "connection open"; nothing when it
    ends ("connection closed" is not Uvicorn's)."""
    caplog.set_level(logging.INFO)
    received: queue.Queue = queue.Queue()
    server = serve(recording_app(received))
    caplog.clear()  # the startup lines
    client = raw_ws(server.port)
    client.connect("/chat?room=1")
    client.send_close(1000)
    received_until_disconnect(received)
    assert client.server_closed()
    time.sleep(0.1)  # anything logged after the close would be in by now
    host, port = client.sock.getsockname()
    assert info_lines(caplog) == [f'{host}:{port} - "WebSocket /chat?room=1" [accepted]', "connection open"]


@pytest.mark.parametrize(
    ("path", "status_line"),
    [("/deny", "403"), ("/not-found", "404")],
    ids=["close-before-accept", "http-response"],
)
def test_log_lines_of_a_refused_connection(serve, raw_ws, caplog, path, status_line):
    caplog.set_level(logging.INFO)
    received: queue.Queue = queue.Queue()
    server = serve(recording_app(received))
    caplog.clear()
    client = raw_ws(server.port)
    client.connect(path)
    received_until_disconnect(received)
    assert client.server_closed()
    time.sleep(0.1)
    host, port = client.sock.getsockname()
    phrase = {"403": "Forbidden", "404": "Not Found"}[status_line]
    assert info_lines(caplog) == [
        f'{host}:{port} - "WebSocket {path}" {status_line}',
        f"connection rejected ({status_line} {phrase})",
    ]


def test_log_lines_of_an_invalid_handshake(serve, raw_ws, caplog):
    """websockets' line for the refusal, and no warning."""
    caplog.set_level(logging.INFO)
    server = serve(recording_app(queue.Queue()))
    caplog.clear()
    client = raw_ws(server.port)
    assert client.connect(key=None).status == 400
    assert client.server_closed()
    time.sleep(0.1)
    assert info_lines(caplog) == ["connection rejected (400 Bad Request)"]


def test_protocol_error_logs_nothing_at_info(serve, raw_ws, caplog):
    caplog.set_level(logging.INFO)
    received: queue.Queue = queue.Queue()
    server = serve(recording_app(received))
    client = raw_ws(server.port)
    client.connect()
    assert received.get(timeout=WAIT) == CONNECT
    assert wait_until(lambda: "connection open" in info_lines(caplog))
    caplog.clear()
    client.send_raw(encode_frame(TEXT, b"hi", rsv2=True))
    assert received_until_disconnect(received) == [disconnect(1002, "reserved bits must be 0")]
    assert client.server_closed()
    time.sleep(0.1)
    assert info_lines(caplog) == []
