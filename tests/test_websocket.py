"""WebSockets (RFC 6455, RFC 7692 permessage-deflate) and the ASGI websocket
interface, against a real server on both event loops.

Clients: the `websockets` and `wsproto` libraries for well-behaved traffic,
and `tests.websocket_client.RawWebSocket` (a socket and hand-built frames) for
the exact bytes on the wire and for malformed input. What the application saw
travels to the test thread through a `queue.Queue`; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import queue
import select
import socket
import ssl
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from fastapi import FastAPI, WebSocketDisconnect, status
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect as sync_connect
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from tests.conftest import (
    LOOPS,
    Gate,
    RunningServer,
    close_socket,
    run_async,
    scope_app,
    start_server,
    wait_until,
)
from tests.websocket_client import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    SAMPLE_ACCEPT,
    SAMPLE_KEY,
    TEXT,
    RawWebSocket,
    close_payload,
    deflate,
    encode_frame,
)

WAIT = 5.0
SHARED_MAX_SIZE = 64 * 1024  # ws_max_size of the shared server


# --- helpers ------------------------------------------------------------------------------


def ws_url(server, path: str = "/") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def connect(server, path: str = "/", **kwargs: Any):
    """A `websockets` (sync) client connection."""
    kwargs.setdefault("open_timeout", WAIT)
    kwargs.setdefault("close_timeout", WAIT)
    return sync_connect(ws_url(server, path), **kwargs)


def echo_app(seen: queue.Queue | None = None, *, subprotocol: str | None = None, headers: list | None = None):
    """Accept, echo every message, and report the disconnect message to `seen`."""

    async def app(scope, receive, send):
        assert scope["type"] == "websocket"
        assert await receive() == {"type": "websocket.connect"}
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if subprotocol is not None:
            accept["subprotocol"] = subprotocol
        if headers is not None:
            accept["headers"] = headers
        await send(accept)
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                if seen is not None:
                    seen.put(message)
                return
            assert message["type"] == "websocket.receive"
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})

    return app


@dataclass
class SharedServer:
    """One echo server per event loop for the tests that need no particular
    configuration (starting and stopping a server per test would dominate
    the run time). Each connection reports its disconnect message to the
    queue registered for its path, so tests do not see each other's."""

    server: RunningServer | None = None
    queues: dict[str, queue.Queue] = field(default_factory=dict)
    called: set[str] = field(default_factory=set)
    counter: itertools.count = field(default_factory=itertools.count)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def path(self) -> tuple[str, queue.Queue]:
        """A fresh path, and the queue its connection reports to."""
        path = f"/c{next(self.counter)}"
        self.queues[path] = queue.Queue()
        return path, self.queues[path]

    async def __call__(self, scope, receive, send):
        self.called.add(scope["path"])
        await echo_app(self.queues.get(scope["path"]))(scope, receive, send)


@pytest.fixture(scope="module", params=LOOPS)
def shared(request) -> Iterator[SharedServer]:
    app = SharedServer()
    app.server = start_server(app, loop=request.param, ws_max_size=SHARED_MAX_SIZE)
    yield app
    app.server.stop()


def disconnect_code(seen: queue.Queue) -> int:
    message = seen.get(timeout=WAIT)
    assert message["type"] == "websocket.disconnect", message
    return message["code"]


def parse_extension(value: str | None) -> tuple[str, dict[str, str | None]] | None:
    if value is None:
        return None
    name, *params = [part.strip() for part in value.split(";")]
    parsed: dict[str, str | None] = {}
    for param in params:
        key, _, val = param.partition("=")
        parsed[key.strip()] = val.strip() or None
    return name, parsed


def error_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "uvicorn.error" and r.levelno >= logging.ERROR]


def info_messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "uvicorn.error"]


class WsprotoClient:
    """A `wsproto` client over a blocking socket."""

    def __init__(self, port: int, path: str = "/", **request_kwargs: Any) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.events: deque = deque()
        self.send(Request(host="127.0.0.1", target=path, **request_kwargs))

    def send(self, event: Any) -> None:
        self.sock.sendall(self.ws.send(event))

    def next_event(self) -> Any:
        while not self.events:
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            self.events.extend(self.ws.events())
        return self.events.popleft()

    def receive_message(self) -> str | bytes:
        """The next whole message (fragments joined; pings answered)."""
        parts: list = []
        while True:
            event = self.next_event()
            if isinstance(event, Ping):
                self.send(event.response())
                continue
            assert isinstance(event, (TextMessage, BytesMessage)), event
            parts.append(event.data)
            if event.message_finished:
                return ("" if isinstance(event, TextMessage) else b"").join(parts)

    def close(self) -> None:
        self.sock.close()


# --- 1. handshake and scope ----------------------------------------------------------------


def test_handshake_response_on_the_wire(serve, raw_ws):
    """The 101: Sec-WebSocket-Accept from the key (RFC 6455 1.3), the default
    date/server/--header headers, the app's subprotocol and extra headers."""
    server = serve(
        echo_app(subprotocol="chat", headers=[(b"x-custom", b"yes")]),
        headers=[("X-Extra", "on")],
    )
    client = raw_ws(server.port)
    response = client.connect("/chat", headers=[("Sec-WebSocket-Protocol", "superchat, chat")])
    assert response.raw.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert response.status == 101
    assert response.header("sec-websocket-accept") == SAMPLE_ACCEPT
    assert response.header("upgrade").lower() == "websocket"
    assert response.header("connection").lower() == "upgrade"
    assert response.header("date").endswith(" GMT")
    assert response.header("server") == "cppcorn"
    assert response.header("x-extra") == "on"
    assert response.header("sec-websocket-protocol") == "chat"
    assert response.header("x-custom") == "yes"
    assert response.header("sec-websocket-extensions") is None  # deflate was not offered
    assert response.header("content-length") is None and response.header("transfer-encoding") is None

    client.send_text("héllo")
    frame = client.recv_frame()
    assert (frame.opcode, frame.fin, frame.rsv1, frame.masked) == (TEXT, True, False, False)
    assert frame.payload == "héllo".encode()
    client.send_close(1000)
    frame = client.recv_frame()
    assert (frame.opcode, frame.close_code) == (CLOSE, 1000)
    assert client.server_closed()


def test_handshake_with_websockets_client(serve):
    server = serve(echo_app(subprotocol="chat", headers=[(b"x-custom", b"yes")]))
    with connect(server, subprotocols=["superchat", "chat"]) as ws:  # checks Sec-WebSocket-Accept itself
        assert ws.subprotocol == "chat"
        assert ws.response.status_code == 101
        assert ws.response.headers["x-custom"] == "yes"
        assert ws.response.headers["server"] == "cppcorn"
        ws.send("ping?")
        assert ws.recv(timeout=WAIT) == "ping?"


def test_handshake_header_variants(shared, raw_ws):
    """Browsers send `Connection: keep-alive, Upgrade` (Firefox) and header
    values in any case."""
    client = raw_ws(shared.port)
    client.send_raw(
        b"GET /ff HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n"
        b"sec-websocket-key: " + SAMPLE_KEY.encode() + b"\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n"
    )
    response = client.read_handshake()
    assert response.status == 101
    assert response.header("sec-websocket-accept") == SAMPLE_ACCEPT
    client.send_text("firefox")
    assert client.recv_data_frame().payload == b"firefox"


def test_scope(serve):
    server = serve(scope_app, root_path="/api", lifespan="on")
    path = "/a%20b/c%2Fd?x=1&y=%20"
    with connect(server, path, additional_headers={"X-Test": "One"}, subprotocols=["one", "two"]) as ws:
        scope = json.loads(ws.recv(timeout=WAIT))
        local_port = ws.local_address[1]
    expected = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "root_path": "/api",
        "path": "/api/a b/c/d",
        "raw_path": "/api/a%20b/c%2Fd",
        "query_string": "x=1&y=%20",
        "subprotocols": ["one", "two"],
        "state": {"answer": 42},
        "extensions": {"websocket.http.response": {}},
        "server": ["127.0.0.1", server.port],
        "client": ["127.0.0.1", local_port],
    }
    assert {key: scope.get(key) for key in expected} == expected
    assert ["x-test", "One"] in scope["headers"]
    assert ["sec-websocket-version", "13"] in scope["headers"]
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert "method" not in scope

    # Each connection gets its own copy of the lifespan state.
    with connect(server, "/again") as ws:
        assert json.loads(ws.recv(timeout=WAIT))["state"] == {"answer": 42}


def test_subprotocols_from_several_headers(serve, raw_ws):
    server = serve(scope_app)
    client = raw_ws(server.port)
    response = client.connect("/", headers=[("Sec-WebSocket-Protocol", "a, b"), ("Sec-WebSocket-Protocol", " c ")])
    assert response.status == 101
    assert response.header("sec-websocket-protocol") is None  # the app chose none
    scope = json.loads(client.recv_data_frame().payload)
    assert scope["subprotocols"] == ["a", "b", "c"]


def test_wss_over_tls(serve, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    key_file, cert_file = tmp_path / "key.pem", tmp_path / "cert.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    server = serve(scope_app, ssl_keyfile=str(key_file), ssl_certfile=str(cert_file))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with sync_connect(f"wss://127.0.0.1:{server.port}/secure", ssl=context, open_timeout=WAIT) as ws:
        scope = json.loads(ws.recv(timeout=WAIT))
    assert scope["scheme"] == "wss"
    assert scope["path"] == "/secure"

    echo = serve(echo_app(), ssl_keyfile=str(key_file), ssl_certfile=str(cert_file))
    big = bytes(range(256)) * 4096  # 1 MiB, written in more than one piece
    with sync_connect(f"wss://127.0.0.1:{echo.port}/", ssl=context, open_timeout=WAIT, max_size=None) as ws:
        ws.send(big)
        assert ws.recv(timeout=WAIT) == big
        ws.send("small")
        assert ws.recv(timeout=WAIT) == "small"


def test_proxy_headers(serve):
    server = serve(scope_app)  # proxy headers on, 127.0.0.1 trusted: the defaults
    with connect(server, additional_headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "1.2.3.4"}) as ws:
        scope = json.loads(ws.recv(timeout=WAIT))
    assert scope["scheme"] == "wss"
    assert scope["client"] == ["1.2.3.4", 0]
    with connect(server, additional_headers={"X-Forwarded-Proto": "http"}) as ws:
        assert json.loads(ws.recv(timeout=WAIT))["scheme"] == "ws"

    untrusting = serve(scope_app, proxy_headers=False)
    with connect(untrusting, additional_headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "1.2.3.4"}) as ws:
        scope = json.loads(ws.recv(timeout=WAIT))
    assert scope["scheme"] == "ws"
    assert scope["client"][0] == "127.0.0.1"


def test_upgrade_after_a_keep_alive_request(serve, raw_ws):
    """An upgrade on a connection that already served an HTTP request."""
    server = serve(scope_app)
    client = raw_ws(server.port)
    client.send_raw(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
    response = client.read_handshake()
    assert response.status == 200
    assert json.loads(client.read_body())["path"] == "/first"
    assert client.connect("/second").status == 101
    assert json.loads(client.recv_data_frame().payload)["path"] == "/second"


def test_frames_sent_with_the_upgrade_request(shared, raw_ws):
    """Frames that arrive in the same read as the upgrade request are kept
    for the connection, not lost in the handover."""
    client = raw_ws(shared.port)
    client.send_raw(client.request("/") + encode_frame(TEXT, b"early") + encode_frame(BINARY, b"bird"))
    assert client.read_handshake().status == 101
    assert client.recv_data_frame().payload == b"early"
    frame = client.recv_data_frame()
    assert (frame.opcode, frame.payload) == (BINARY, b"bird")


# --- 2. messages ---------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_text_and_bytes(shared, compression):
    path, seen = shared.path()
    messages = ["hello", "héllo wörld ✓ 🎉", "", b"", b"\x00\x01\xfe\xff", "x" * 1000, bytes(range(256)) * 40]
    with connect(shared, path, compression=compression) as ws:
        for message in messages:
            ws.send(message)
            reply = ws.recv(timeout=WAIT)
            assert type(reply) is type(message)
            assert reply == message
    assert disconnect_code(seen) == 1000


def test_empty_messages_and_pings_on_the_wire(shared, raw_ws):
    client = raw_ws(shared.port)
    client.connect()
    client.send_frame(TEXT, b"")
    client.send_frame(BINARY, b"")
    first, second = client.recv_data_frame(), client.recv_data_frame()
    assert (first.opcode, first.payload, first.fin) == (TEXT, b"", True)
    assert (second.opcode, second.payload, second.fin) == (BINARY, b"", True)
    # Pings are answered with their payload, up to the 125-byte maximum.
    for payload in (b"", b"x" * 125):
        client.send_frame(PING, payload)
        frame = client.recv_frame()
        assert (frame.opcode, frame.fin, frame.payload) == (PONG, True, payload)


def test_large_messages(serve, raw_ws):
    limit = 2 * 1024 * 1024
    seen: queue.Queue = queue.Queue()
    server = serve(echo_app(seen), ws_max_size=limit)
    mebibyte = os.urandom(1024 * 1024)
    text = ("äbc" * 400000)[: 1024 * 1024]
    with connect(server, max_size=None) as ws:
        ws.send(mebibyte)
        assert ws.recv(timeout=WAIT) == mebibyte
        ws.send(text)
        assert ws.recv(timeout=WAIT) == text
    assert disconnect_code(seen) == 1000
    # Exactly the limit passes (uncompressed, so the frame is the message);
    # one byte more is a 1009 as soon as the frame header declares it.
    exact = os.urandom(limit)
    client = raw_ws(server.port)
    client.connect()
    client.send_bytes(exact)
    frame = client.recv_data_frame()
    assert (frame.opcode, frame.payload == exact) == (BINARY, True)
    client.send_raw(encode_frame(BINARY, b"", length=limit + 1))
    close = client.recv_frame()
    assert (close.opcode, close.close_code) == (CLOSE, 1009)
    assert disconnect_code(seen) == 1009


def test_fragmented_text_split_inside_a_character(shared, raw_ws):
    """A text message in fragments that split a multi-byte character, with a
    ping and an unsolicited pong between fragments: one message for the app,
    the ping answered at once."""
    path, seen = shared.path()
    client = raw_ws(shared.port)
    client.connect(path)
    encoded = "héllo wörld €😀".encode()
    euro = encoded.index("€".encode())
    emoji = encoded.index("😀".encode())
    pieces = [encoded[: euro + 1], encoded[euro + 1 : euro + 2], encoded[euro + 2 : emoji + 3], encoded[emoji + 3 :]]
    assert b"".join(pieces) == encoded
    client.send_frame(TEXT, pieces[0], fin=False)
    client.send_frame(CONT, pieces[1], fin=False)
    client.send_frame(PING, b"mid-message")
    client.send_frame(PONG, b"unsolicited")
    client.send_frame(CONT, pieces[2], fin=False)
    frame = client.recv_frame()
    assert (frame.opcode, frame.payload) == (PONG, b"mid-message")
    client.send_frame(CONT, pieces[3], fin=True)
    frame = client.recv_frame()
    assert (frame.opcode, frame.fin, frame.payload) == (TEXT, True, encoded)

    # Binary in three fragments, the last one empty.
    client.send_frame(BINARY, b"\x00\x01", fin=False)
    client.send_frame(CONT, b"\x02", fin=False)
    client.send_frame(CONT, b"", fin=True)
    frame = client.recv_frame()
    assert (frame.opcode, frame.payload) == (BINARY, b"\x00\x01\x02")
    client.send_close(1000)
    assert client.recv_close().close_code == 1000
    assert disconnect_code(seen) == 1000


def test_wsproto_client(shared):
    """Another client implementation: deflate offered by wsproto, fragmented
    messages, ping/pong, and a close with a code."""
    path, seen = shared.path()
    client = WsprotoClient(shared.port, path, extensions=[PerMessageDeflate()])
    try:
        accepted = client.next_event()
        assert isinstance(accepted, AcceptConnection)
        assert any(isinstance(ext, PerMessageDeflate) for ext in accepted.extensions)
        client.send(TextMessage(data="part one, ", message_finished=False))
        client.send(TextMessage(data="part two ✓", message_finished=True))
        assert client.receive_message() == "part one, part two ✓"
        client.send(BytesMessage(data=b"\x00" * 60000))
        assert client.receive_message() == b"\x00" * 60000
        client.send(Ping(payload=b"wsproto"))
        event = client.next_event()
        assert isinstance(event, Pong) and event.payload == b"wsproto"
        client.send(CloseConnection(code=4321, reason="wsproto bye"))
        event = client.next_event()
        assert isinstance(event, CloseConnection) and event.code == 4321
    finally:
        client.close()
    message = seen.get(timeout=WAIT)
    assert (message["code"], message["reason"]) == (4321, "wsproto bye")


def test_many_concurrent_connections(shared):
    paths = [shared.path() for _ in range(100)]

    async def one(index: int) -> None:
        async with async_connect(ws_url(shared, paths[index][0]), open_timeout=15, close_timeout=WAIT) as ws:
            for number in range(20):
                message = f"{index}:{number}" if number % 2 else f"{index}:{number}".encode()
                await ws.send(message)
                assert await ws.recv() == message

    async def many() -> None:
        await asyncio.gather(*(one(index) for index in range(100)))

    run_async(many(), timeout=30)
    assert [disconnect_code(seen) for _, seen in paths] == [1000] * 100


# --- 3. compression ------------------------------------------------------------------------


def test_deflate_negotiated_by_default(shared):
    with connect(shared) as ws:  # websockets offers "permessage-deflate; client_max_window_bits"
        assert parse_extension(ws.response.headers.get("sec-websocket-extensions")) == (
            "permessage-deflate",
            {"server_max_window_bits": "12", "client_max_window_bits": "12"},
        )
        for _ in range(3):  # context takeover on both sides
            ws.send("compress me " * 1000)
            assert ws.recv(timeout=WAIT) == "compress me " * 1000
        ws.send(b"\x00" * 60000)
        assert ws.recv(timeout=WAIT) == b"\x00" * 60000


def test_deflate_on_the_wire(shared, raw_ws):
    """Server frames carry RSV1 and inflate to the message; the server's
    decompressor keeps its context between messages (client context
    takeover); the client may still send uncompressed messages."""
    client = raw_ws(shared.port)
    response = client.connect(headers=[("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")])
    assert parse_extension(response.header("sec-websocket-extensions")) == (
        "permessage-deflate",
        {"server_max_window_bits": "12", "client_max_window_bits": "12"},
    )
    compressor = zlib.compressobj(6, zlib.DEFLATED, -12)
    decompressor = zlib.decompressobj(-12)
    text = ("a fairly repetitive sentence, " * 200).encode()
    for _ in range(2):
        data = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)
        client.send_frame(TEXT, data[:-4], rsv1=True)
        frame = client.recv_data_frame()
        assert frame.opcode == TEXT and frame.rsv1
        assert len(frame.payload) < len(text) // 4
        assert decompressor.decompress(frame.payload + b"\x00\x00\xff\xff") == text
    client.send_frame(BINARY, b"not compressed")  # RSV1 clear: taken as is
    frame = client.recv_data_frame()
    assert frame.rsv1
    assert decompressor.decompress(frame.payload + b"\x00\x00\xff\xff") == b"not compressed"


def test_deflate_disabled(serve, raw_ws):
    server = serve(echo_app(), ws_per_message_deflate=False)
    with connect(server) as ws:
        assert "sec-websocket-extensions" not in ws.response.headers
        ws.send("plain " * 100)
        assert ws.recv(timeout=WAIT) == "plain " * 100
    client = raw_ws(server.port)
    response = client.connect(headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    assert response.header("sec-websocket-extensions") is None
    client.send_frame(TEXT, deflate(b"compressed anyway"), rsv1=True)
    assert client.recv_close().close_code == 1002


def test_deflate_no_context_takeover(shared, raw_ws):
    factory = ClientPerMessageDeflateFactory(server_no_context_takeover=True, client_no_context_takeover=True)
    with connect(shared, extensions=[factory], compression=None) as ws:
        name, params = parse_extension(ws.response.headers["sec-websocket-extensions"])
        assert name == "permessage-deflate"
        assert "server_no_context_takeover" in params and "client_no_context_takeover" in params
        for _ in range(3):
            ws.send("again and again " * 300)
            assert ws.recv(timeout=WAIT) == "again and again " * 300

    # On the wire: with server_no_context_takeover each message is compressed
    # on its own, so the same message twice gives the same bytes, each
    # inflatable by a fresh decompressor.
    client = raw_ws(shared.port)
    response = client.connect(headers=[("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover")])
    assert "server_no_context_takeover" in parse_extension(response.header("sec-websocket-extensions"))[1]
    text = ("same message " * 100).encode()
    payloads = []
    for _ in range(2):
        client.send_frame(TEXT, text)
        frame = client.recv_data_frame()
        assert frame.rsv1
        assert zlib.decompressobj(-15).decompress(frame.payload + b"\x00\x00\xff\xff") == text
        payloads.append(frame.payload)
    assert payloads[0] == payloads[1]


# RFC 7692 7.2.3.3's example: "Hello" in a final (BFINAL) block, then the
# 0x00 that starts an empty stored block, which the receiver's 00 00 ff ff
# completes.
HELLO_IN_A_FINAL_BLOCK = b"\xf3\x48\xcd\xc9\xc9\x07\x00\x00"


@pytest.mark.parametrize("offer", ["permessage-deflate", "permessage-deflate; client_no_context_takeover"])
def test_deflate_after_a_message_that_ends_its_stream(shared, raw_ws, offer):
    """RFC 7692 7.2.3.3: a message may end with a DEFLATE block with BFINAL
    set, which ends the stream. The messages after it are compressed in a
    new stream, whose context the next ones may take over; none of them may
    reach the application empty."""
    client = raw_ws(shared.port)
    client.connect(headers=[("Sec-WebSocket-Extensions", offer)])
    decompressor = zlib.decompressobj(-12)

    def echoed(payload: bytes) -> bytes:
        client.send_frame(TEXT, payload, rsv1=True)
        frame = client.recv_data_frame()
        assert frame.opcode == TEXT and frame.rsv1, frame
        return decompressor.decompress(frame.payload + b"\x00\x00\xff\xff")

    assert echoed(HELLO_IN_A_FINAL_BLOCK) == b"Hello"
    finished = zlib.compressobj(6, zlib.DEFLATED, -15)
    assert echoed(finished.compress(b"finished stream") + finished.flush(zlib.Z_FINISH)) == b"finished stream"
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    text = b"a new stream, with a context " * 20
    for _ in range(2):  # the second refers back into the first unless context takeover is off
        if "no_context" in offer:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        assert echoed(compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]) == text


def test_deflate_after_an_empty_compressed_message(shared, raw_ws):
    """A compressed message whose payload is empty (all a sync flush of
    nothing leaves once its 00 00 ff ff is removed) is an empty message;
    the messages after it decompress in the same context."""
    client = raw_ws(shared.port)
    client.connect(headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    decompressor = zlib.decompressobj(-12)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    for text in (b"before", b"", b"after", b"after"):
        client.send_frame(TEXT, (compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4], rsv1=True)
        frame = client.recv_data_frame()
        assert frame.opcode == TEXT, frame
        assert decompressor.decompress(frame.payload + b"\x00\x00\xff\xff") == text


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        ("permessage-deflate", {"server_max_window_bits": "12"}),
        ("permessage-deflate; server_max_window_bits=10", {"server_max_window_bits": "10"}),
        (
            "permessage-deflate; client_max_window_bits=10",
            {"server_max_window_bits": "12", "client_max_window_bits": "10"},
        ),
        ("permessage-deflate; unknown_param=1", None),
        ("permessage-deflate; server_no_context_takeover=1", None),
        ("permessage-deflate; server_max_window_bits=16", None),
        ("permessage-deflate; server_max_window_bits=9; server_max_window_bits=9", None),
        ("x-webkit-deflate-frame, permessage-deflate; bogus, permessage-deflate", {"server_max_window_bits": "12"}),
    ],
    ids=["bare", "server-bits", "client-bits", "unknown-param", "valued-flag", "bits-range", "duplicate", "fallback"],
)
def test_deflate_negotiation(shared, raw_ws, offer, expected):
    """RFC 7692: an offer with unknown or invalid parameters is declined, the
    next acceptable one is taken; window bits answer within what was offered."""
    client = raw_ws(shared.port)
    response = client.connect(headers=[("Sec-WebSocket-Extensions", offer)])
    assert response.status == 101
    extension = parse_extension(response.header("sec-websocket-extensions"))
    assert extension == (None if expected is None else ("permessage-deflate", expected))


@pytest.mark.parametrize("param", ["server_max_window_bits", "client_max_window_bits"])
def test_deflate_offer_of_8_bit_window(shared, raw_ws, param):
    """RFC 7692 7.1.2: the answer's window bits must not exceed the offered
    value. zlib cannot compress with an 8-bit window, so the server must either
    answer with at most 8 or decline the offer, not answer 9."""
    client = raw_ws(shared.port)
    response = client.connect(headers=[("Sec-WebSocket-Extensions", f"permessage-deflate; {param}=8")])
    assert response.status == 101
    extension = parse_extension(response.header("sec-websocket-extensions"))
    if extension is not None:
        assert int(extension[1][param]) <= 8, extension


def test_compressed_message_inflating_over_max_size(shared, raw_ws):
    """The limit applies to the inflated message: a small compressed frame
    that inflates past ws_max_size is a 1009, without inflating it all."""
    limit = SHARED_MAX_SIZE
    path, seen = shared.path()
    client = raw_ws(shared.port)
    client.connect(path, headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    exact = deflate(b"a" * limit)
    client.send_frame(BINARY, exact, rsv1=True)  # exactly the limit: fine
    frame = client.recv_data_frame()
    assert zlib.decompressobj(-15).decompress(frame.payload + b"\x00\x00\xff\xff") == b"a" * limit
    bomb = deflate(b"a" * (64 * 1024 * 1024))
    assert len(bomb) < limit
    client.send_frame(BINARY, bomb, rsv1=True)
    close = client.recv_close()
    assert close.close_code == 1009
    assert client.server_closed()
    assert disconnect_code(seen) == 1009

    # The same in fragments (RSV1 on the first only).
    path, seen = shared.path()
    client = raw_ws(shared.port)
    client.connect(path, headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    bomb = deflate(b"b" * (limit + 1))
    client.send_frame(TEXT, bomb[:10], rsv1=True, fin=False)
    client.send_frame(CONT, bomb[10:], fin=True)
    assert client.recv_close().close_code == 1009
    assert disconnect_code(seen) == 1009


@pytest.mark.parametrize(
    ("frames", "codes"),
    [
        ([encode_frame(TEXT, b"\x00garbage\xff\xff", rsv1=True)], (1002, 1007)),
        ([encode_frame(TEXT, b"x", rsv1=True, fin=False), encode_frame(CONT, b"y", rsv1=True)], (1002,)),
        ([encode_frame(PING, b"", rsv1=True)], (1002,)),
        ([encode_frame(TEXT, deflate(b"\xff\xfe invalid"), rsv1=True)], (1007,)),
    ],
    ids=["invalid-deflate-data", "rsv1-on-continuation", "rsv1-on-ping", "inflates-to-invalid-utf8"],
)
def test_bad_compressed_input(shared, raw_ws, frames, codes):
    path, seen = shared.path()
    client = raw_ws(shared.port)
    client.connect(path, headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    client.send_raw(b"".join(frames))
    close = client.recv_frame()
    assert close.opcode == CLOSE and close.close_code in codes, close
    assert client.server_closed()
    assert disconnect_code(seen) in codes


# --- 4. closing ----------------------------------------------------------------------------


def test_app_closes_with_code_and_reason(serve):
    seen: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        await send({"type": "websocket.close", "code": 4001, "reason": "bye now"})
        seen.put(await receive())

    server = serve(app)
    with connect(server) as ws:
        ws.send("close please")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=WAIT)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "bye now")
    assert disconnect_code(seen) == 4001


def test_app_close_waits_for_the_echo(serve, raw_ws):
    """After the app's close frame the server waits for the client's close,
    then ends the TCP connection; the app's disconnect carries the code."""
    seen: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})  # default code 1000
        seen.put(await receive())

    server = serve(app)
    client = raw_ws(server.port)
    client.connect()
    close = client.recv_frame()
    assert (close.opcode, close.payload) == (CLOSE, close_payload(1000))
    client.sock.settimeout(0.3)
    assert not client.server_closed()  # still waiting for our close frame
    client.sock.settimeout(WAIT)
    client.send_close(1000)
    assert client.server_closed()
    assert disconnect_code(seen) == 1000


def test_client_closes_with_code_and_reason(shared, raw_ws):
    path, seen = shared.path()
    with connect(shared, path) as ws:
        ws.send("x")
        ws.recv(timeout=WAIT)
        ws.close(code=4002, reason="client bye")
    message = seen.get(timeout=WAIT)
    assert (message["code"], message["reason"]) == (4002, "client bye")

    # On the wire: the server echoes the code, then closes TCP.
    client = raw_ws(shared.port)
    client.connect(path)
    client.send_close(4003, "dérangé".encode())
    frame = client.recv_frame()
    assert (frame.opcode, frame.close_code, frame.masked) == (CLOSE, 4003, False)
    assert client.server_closed()
    message = seen.get(timeout=WAIT)
    assert (message["code"], message["reason"]) == (4003, "dérangé")

    # An empty close frame: the app sees 1005 (no status received).
    client = raw_ws(shared.port)
    client.connect(path)
    client.send_close(None)
    assert client.recv_frame().opcode == CLOSE
    assert client.server_closed()
    assert disconnect_code(seen) == 1005


def test_messages_before_the_close_are_delivered_first(serve, raw_ws):
    """Messages queued before the client's close frame reach the app before
    the disconnect; receive() after the disconnect keeps returning it."""
    gate = Gate()
    results: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await gate.wait()
        messages = []
        while True:
            message = await receive()
            messages.append((message["type"], message.get("text"), message.get("bytes"), message.get("code")))
            if message["type"] == "websocket.disconnect":
                break
        again = await asyncio.wait_for(receive(), WAIT)
        messages.append((again["type"], again.get("code"), again.get("reason")))
        results.put(messages)

    server = serve(app)
    client = raw_ws(server.port)
    client.connect()
    client.send_raw(
        encode_frame(TEXT, b"a")
        + encode_frame(BINARY, b"b")
        + encode_frame(TEXT, b"c")
        + encode_frame(CLOSE, close_payload(1001, b"going"))
    )
    assert client.recv_close().close_code == 1001  # echoed at once, the app still busy
    assert client.server_closed()
    gate.open()
    assert results.get(timeout=WAIT) == [
        ("websocket.receive", "a", None, None),
        ("websocket.receive", None, b"b", None),
        ("websocket.receive", "c", None, None),
        ("websocket.disconnect", None, None, 1001),
        ("websocket.disconnect", 1001, "going"),
    ]


def test_long_close_reason_stays_valid_utf8(serve, raw_ws):
    """A close reason longer than a control frame allows (123 bytes) is cut;
    the cut must not split a character (RFC 6455 5.5.1: the reason is UTF-8)."""

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4000, "reason": "é" * 100})
        await receive()

    server = serve(app)
    client = raw_ws(server.port)
    client.connect()
    close = client.recv_close()
    assert close.close_code == 4000
    assert len(close.payload) <= 125
    reason = close.payload[2:].decode("utf-8")  # raises on a split character
    assert ("é" * 100).startswith(reason)


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_client_vanishes(serve, raw_ws, how):
    """The socket closes without a close frame: disconnect promptly, with
    Uvicorn's code for a connection lost after the handshake (1005)."""
    seen: queue.Queue = queue.Queue()
    server = serve(echo_app(seen))
    client = raw_ws(server.port)
    client.connect()
    client.send_text("hello")
    assert client.recv_data_frame().payload == b"hello"
    close_socket(client.sock, how)
    started = time.monotonic()
    message = seen.get(timeout=2)
    assert message == {"type": "websocket.disconnect", "code": 1005}
    assert time.monotonic() - started < 2
    assert wait_until(lambda: not server.state.connections)


def test_send_after_disconnect_raises_oserror(serve, raw_ws):
    outcomes: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        assert message["type"] == "websocket.disconnect"
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except Exception as exc:  # the test checks which
            outcomes.put((message["code"], exc))
        else:
            outcomes.put((message["code"], None))

    server = serve(app)
    with connect(server) as ws:
        ws.close(1000)
    code, exc = outcomes.get(timeout=WAIT)
    assert code == 1000
    assert isinstance(exc, OSError), exc

    client = raw_ws(server.port)
    client.connect()
    client.close()  # gone without a close frame
    code, exc = outcomes.get(timeout=WAIT)
    assert code == 1005
    assert isinstance(exc, OSError), exc


def test_client_disconnected_from_send_is_not_an_app_error(serve, caplog):
    """An app that lets the OSError of a late send() propagate is not logged
    as an error: Uvicorn catches its ClientDisconnected silently."""
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    codes: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        codes.put((await receive())["code"])
        await send({"type": "websocket.send", "text": "too late"})  # raises, uncaught

    server = serve(app)
    with connect(server) as ws:
        ws.close(1001)
    assert codes.get(timeout=WAIT) == 1001
    assert wait_until(lambda: not server.state.tasks and not server.state.connections)
    assert error_records(caplog) == []


def test_app_returns_after_accept(serve):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "only this"})

    server = serve(app)
    with connect(server) as ws:
        assert ws.recv(timeout=WAIT) == "only this"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=WAIT)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1000
    assert wait_until(lambda: not server.state.connections and not server.state.tasks)


def test_app_raises_after_accept(serve, caplog):
    caplog.set_level(logging.INFO, logger="uvicorn.error")

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise ValueError("boom after accept")

    server = serve(app)
    with connect(server) as ws:
        ws.send("trigger")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=WAIT)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    assert wait_until(lambda: error_records(caplog))
    with connect(server) as ws:  # still serving
        ws.send("again")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=WAIT)
    assert wait_until(lambda: len(error_records(caplog)) == 2)
    records = error_records(caplog)
    assert [r.getMessage().strip() for r in records] == ["Exception in ASGI application"] * 2
    assert all(isinstance(r.exc_info[1], ValueError) for r in records)


# --- 5. before accept ----------------------------------------------------------------------


def test_close_before_accept_is_403(serve, raw_ws, caplog):
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    seen: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        seen.put(await receive())

    server = serve(app)
    with pytest.raises(InvalidStatus) as info:
        connect(server, "/denied")
    assert info.value.response.status_code == 403
    assert disconnect_code(seen) == 1006

    client = raw_ws(server.port)
    response = client.connect("/denied")
    assert response.raw.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert response.header("content-length") == "0"
    assert response.header("connection") == "close"
    assert response.header("server") == "cppcorn"
    assert response.header("sec-websocket-accept") is None
    assert client.server_closed()
    assert client.buffer == b""
    assert disconnect_code(seen) == 1006
    assert not error_records(caplog)


def test_http_response_extension(serve, raw_ws, caplog):
    """websocket.http.response.start/body: the app's own HTTP answer."""
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    seen: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"entry", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b" for you"})
        seen.put(await receive())

    server = serve(app)
    client = raw_ws(server.port)
    response = client.connect("/private")
    assert response.status == 401
    assert response.header("www-authenticate") == "Bearer"
    assert response.header("content-type") == "text/plain"
    assert response.header("upgrade") is None
    assert client.read_body() == b"no entry for you"
    assert client.server_closed()
    assert disconnect_code(seen) == 1006

    with pytest.raises(InvalidStatus) as info:
        connect(server, "/private")
    assert info.value.response.status_code == 401
    assert info.value.response.body == b"no entry for you"
    assert not error_records(caplog)


@pytest.mark.parametrize("status", [101, 103, 199])
def test_http_response_extension_with_an_informational_status_is_500(serve, raw_ws, caplog, status):
    """A 1xx is no answer to a handshake (the client would wait for the
    final response): refused as an invalid message, never sent."""
    caplog.set_level(logging.INFO, logger="uvicorn.error")

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.http.response.start", "status": status, "headers": []})

    server = serve(app)
    client = raw_ws(server.port)
    response = client.connect()
    assert response.status == 500
    assert client.read_body() == b"Internal Server Error"
    assert client.server_closed()
    assert wait_until(lambda: error_records(caplog))


@pytest.mark.parametrize("status", [204, 304])
def test_http_response_extension_without_a_body_status_sends_none(serve, raw_ws, status):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.http.response.start", "status": status, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"dropped"})

    server = serve(app)
    client = raw_ws(server.port)
    assert client.connect().status == status
    assert client.server_closed()
    assert client.buffer == b""


def test_app_raises_before_accept_is_500(serve, raw_ws, caplog):
    caplog.set_level(logging.INFO, logger="uvicorn.error")

    async def app(scope, receive, send):
        await receive()
        raise RuntimeError("boom before accept")

    server = serve(app)
    client = raw_ws(server.port)
    response = client.connect()
    assert response.status == 500
    assert client.read_body() == b"Internal Server Error"
    assert client.server_closed()
    assert wait_until(lambda: error_records(caplog))
    records = error_records(caplog)
    assert [r.getMessage().strip() for r in records] == ["Exception in ASGI application"]
    assert isinstance(records[0].exc_info[1], RuntimeError)


def test_app_returns_without_accepting_is_500(serve, raw_ws, caplog):
    caplog.set_level(logging.INFO, logger="uvicorn.error")

    async def app(scope, receive, send):
        await receive()

    server = serve(app)
    client = raw_ws(server.port)
    response = client.connect()
    assert response.status == 500
    assert client.read_body() == b"Internal Server Error"
    assert wait_until(lambda: error_records(caplog))
    # Uvicorn 0.54's wording, which log filters in the wild match on.
    assert [r.getMessage() for r in error_records(caplog)] == ["ASGI callable returned without completing handshake."]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "problem"),
    [
        ({"version": "8"}, 400, "invalid Sec-WebSocket-Version header: 8"),
        ({"version": None}, 400, "missing Sec-WebSocket-Version header"),
        ({"key": None}, 400, "missing Sec-WebSocket-Key header"),
        ({"key": ""}, 400, "empty Sec-WebSocket-Key header"),
        ({"key": "not base64!"}, 400, "invalid Sec-WebSocket-Key header: not base64!; Only base64 data is allowed"),
        # base64 of 5 bytes, not 16
        ({"key": "c2hvcnQ="}, 400, "invalid Sec-WebSocket-Key header: c2hvcnQ="),
        (
            {"headers": [("Sec-WebSocket-Key", SAMPLE_KEY)]},
            400,
            "invalid Sec-WebSocket-Key header: multiple values",
        ),
        ({"method": "POST"}, 405, "unsupported HTTP method: POST"),
    ],
    ids=["version-8", "no-version", "no-key", "empty-key", "bad-key", "short-key", "two-keys", "post"],
)
def test_invalid_upgrade_request(shared, raw_ws, request_kwargs, status, problem):
    """Refused as Uvicorn's default implementation (websockets) refuses it:
    the status, and a body that names the problem."""
    path, _ = shared.path()
    client = raw_ws(shared.port)
    response = client.connect(path, **request_kwargs)
    assert response.status == status
    assert response.header("content-type") == "text/plain; charset=utf-8"
    assert response.header("connection") == "close"
    if "version" in request_kwargs:
        # RFC 6455 4.4: the version this server speaks.
        assert response.header("sec-websocket-version") == "13"
    if status == 405:
        assert response.header("allow") == "GET"
    assert response.header("sec-websocket-accept") is None
    assert client.read_body() == f"Failed to open a WebSocket connection: {problem}.\n".encode()
    assert client.server_closed()
    assert path not in shared.called  # the app never ran


def test_upgrade_request_with_head_is_refused_without_a_body(shared, raw_ws):
    """The 405 to a HEAD request asking for a WebSocket is its head alone,
    as every response to HEAD (RFC 9110 9.3.2)."""
    path, _ = shared.path()
    client = raw_ws(shared.port)
    response = client.connect(path, method="HEAD")
    assert response.status == 405
    assert response.header("content-length") == str(len(b"Failed to open a WebSocket connection: "
                                                          b"unsupported HTTP method: HEAD.\n"))
    assert client.server_closed()
    assert client.buffer == b""
    assert path not in shared.called


# --- 6. bad input --------------------------------------------------------------------------

MAX_SIZE = SHARED_MAX_SIZE

BAD_INPUT = {
    "unmasked-frame": ([encode_frame(TEXT, b"hello", mask=False)], 1002),
    "rsv2": ([encode_frame(TEXT, b"hello", rsv2=True)], 1002),
    "rsv3": ([encode_frame(BINARY, b"hello", rsv3=True)], 1002),
    "rsv1-without-deflate": ([encode_frame(TEXT, b"hello", rsv1=True)], 1002),
    "data-opcode-3": ([encode_frame(0x3, b"hello")], 1002),
    "control-opcode-b": ([encode_frame(0xB, b"")], 1002),
    "ping-126-bytes": ([encode_frame(PING, b"p" * 126)], 1002),
    "fragmented-ping": ([encode_frame(PING, b"p", fin=False)], 1002),
    "fragmented-close": ([encode_frame(CLOSE, close_payload(1000), fin=False)], 1002),
    "continuation-without-start": ([encode_frame(CONT, b"orphan")], 1002),
    "text-during-fragmented-message": (
        [encode_frame(TEXT, b"first", fin=False), encode_frame(TEXT, b"second")],
        1002,
    ),
    "binary-during-fragmented-message": (
        [encode_frame(BINARY, b"first", fin=False), encode_frame(BINARY, b"second")],
        1002,
    ),
    "invalid-utf8": ([encode_frame(TEXT, b"abc\xff")], 1007),
    "utf8-surrogate": ([encode_frame(TEXT, b"\xed\xa0\x80")], 1007),
    "utf8-overlong": ([encode_frame(TEXT, b"\xc0\xaf")], 1007),
    "invalid-utf8-across-fragments": (
        [encode_frame(TEXT, b"ok \xe2\x82", fin=False), encode_frame(CONT, b"(")],
        1007,
    ),
    "truncated-utf8-at-message-end": (
        [encode_frame(TEXT, b"ok \xe2\x82", fin=False), encode_frame(CONT, b"")],
        1007,
    ),
    # RFC 6455 8.1: fail as soon as the text cannot be valid, not at the end.
    "invalid-utf8-in-first-fragment": ([encode_frame(TEXT, b"\xff", fin=False)], 1007),
    "close-code-1005": ([encode_frame(CLOSE, close_payload(1005))], 1002),
    "close-code-1006": ([encode_frame(CLOSE, close_payload(1006))], 1002),
    "close-code-1004": ([encode_frame(CLOSE, close_payload(1004))], 1002),
    "close-code-999": ([encode_frame(CLOSE, close_payload(999))], 1002),
    "close-code-2999": ([encode_frame(CLOSE, close_payload(2999))], 1002),
    "close-code-5000": ([encode_frame(CLOSE, close_payload(5000))], 1002),
    "close-1-byte": ([encode_frame(CLOSE, b"\x03")], 1002),
    "close-reason-invalid-utf8": ([encode_frame(CLOSE, close_payload(1000, b"bad \xff"))], 1007),
    # The declared length alone decides: the payload is never sent.
    "frame-over-max-size": ([encode_frame(BINARY, b"", length=MAX_SIZE + 1)], 1009),
    "huge-declared-length": ([encode_frame(BINARY, b"", length=1 << 40)], 1009),
    "fragments-over-max-size": (
        [encode_frame(TEXT, b"a" * (MAX_SIZE // 2 + 1), fin=False), encode_frame(CONT, b"", length=MAX_SIZE // 2)],
        1009,
    ),
}


@pytest.mark.parametrize(("frames", "code"), list(BAD_INPUT.values()), ids=list(BAD_INPUT))
def test_bad_input_fails_the_connection(shared, raw_ws, frames, code):
    """The server sends a close frame with the right code and closes TCP; the
    app gets websocket.disconnect with that code; other clients go on."""
    path, seen = shared.path()
    bystander_path, bystander_seen = shared.path()
    with connect(shared, bystander_path, compression=None) as bystander:
        client = raw_ws(shared.port)
        assert client.connect(path).status == 101
        client.send_text("fine so far")
        assert client.recv_data_frame().payload == b"fine so far"
        client.send_raw(b"".join(frames))
        close = client.recv_frame()  # nothing else may come first
        assert (close.opcode, close.close_code, close.masked) == (CLOSE, code, False), close
        assert client.server_closed()
        assert disconnect_code(seen) == code

        bystander.send("still here")
        assert bystander.recv(timeout=WAIT) == "still here"
    assert disconnect_code(bystander_seen) == 1000
    with connect(shared) as after:
        after.send(b"and a new one")
        assert after.recv(timeout=WAIT) == b"and a new one"


@pytest.mark.parametrize(
    ("violation", "code"),
    [
        (encode_frame(0x5, b"reserved opcode"), 1002),
        (encode_frame(TEXT, b"bad \xff"), 1007),
        (encode_frame(TEXT, b"unmasked", mask=False), 1002),
    ],
    ids=["reserved-opcode", "invalid-utf8", "unmasked"],
)
def test_message_before_a_violation_in_the_same_read_is_answered(shared, raw_ws, violation, code):
    """A valid message and a protocol violation in one read (Autobahn 4.1.3
    and its kin, strictly): the application gets the message, its reply goes
    out, and then the connection fails with the violation's code."""
    path, seen = shared.path()
    client = raw_ws(shared.port)
    client.connect(path)
    client.send_raw(encode_frame(TEXT, b"Hello, world!") + violation + encode_frame(PING, b"after"))
    reply = client.recv_frame()
    assert (reply.opcode, reply.payload) == (TEXT, b"Hello, world!"), reply
    close = client.recv_frame()  # the ping after the violation is not answered
    assert (close.opcode, close.close_code) == (CLOSE, code), close
    assert client.server_closed()
    assert disconnect_code(seen) == code


def test_violation_fails_the_connection_when_the_app_does_not_answer(serve, raw_ws):
    """An application that does not ask for its next message after one that
    came before a protocol violation does not keep the connection open."""
    seen: queue.Queue = queue.Queue()
    gate = Gate()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        seen.put(await receive())
        await gate.wait()  # busy with the message, not asking for the next
        seen.put(await receive())

    server = serve(app)
    client = raw_ws(server.port)
    client.connect()
    client.send_raw(encode_frame(TEXT, b"first") + encode_frame(0x3, b""))
    assert seen.get(timeout=WAIT)["text"] == "first"
    assert client.recv_frame().close_code == 1002
    assert client.server_closed()
    gate.open()
    assert seen.get(timeout=WAIT) == {"type": "websocket.disconnect", "code": 1002, "reason": "invalid opcode"}


@pytest.mark.parametrize("fragmented", [False, True], ids=["single-frame", "continuation-frame"])
def test_invalid_utf8_fails_before_the_frame_is_whole(shared, raw_ws, fragmented):
    """RFC 6455 8.1 (Autobahn 6.4.3/6.4.4, fail fast): invalid UTF-8 in the
    part of a text frame that has arrived fails the connection with 1007 at
    once, without waiting for the rest of the frame."""
    path, seen = shared.path()
    client = raw_ws(shared.port)
    client.connect(path)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    valid = "κόσμε".encode() * 2
    payload = valid + b"\xed\xa0\x80" + b"x" * 200  # a surrogate: invalid at its second byte
    if fragmented:
        client.send_frame(TEXT, b"first fragment ", fin=False)
        frame = encode_frame(CONT, payload)
    else:
        frame = encode_frame(TEXT, payload)
    invalid_at = len(frame) - len(payload) + len(valid) + 1
    client.send_raw(frame[: invalid_at - 2])  # valid so far, its last character cut in two
    time.sleep(0.1)
    client.send_raw(frame[invalid_at - 2 : invalid_at + 1])
    close = client.recv_frame()  # the rest of the frame is never sent
    assert (close.opcode, close.close_code) == (CLOSE, 1007), close
    assert client.server_closed()
    assert disconnect_code(seen) == 1007


def test_valid_text_frame_arriving_in_pieces(shared, raw_ws):
    """The incremental check of a frame in pieces: characters split across
    reads, at every offset of the masking key, are fine."""
    client = raw_ws(shared.port)
    client.connect()
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    text = "a€𝄞é" * 200
    frame = encode_frame(TEXT, text.encode())
    for start in range(0, len(frame), 997):
        client.send_raw(frame[start : start + 997])
        time.sleep(0.005)
    reply = client.recv_data_frame()
    assert reply.payload.decode() == text


def test_negative_64_bit_length(shared, raw_ws):
    """A 64-bit length with its top bit set (forbidden by RFC 6455 5.2)."""
    path, seen = shared.path()
    client = raw_ws(shared.port)
    client.connect(path)
    client.send_raw(bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 63) + b"mask")
    assert client.recv_close().close_code in (1002, 1009)
    assert disconnect_code(seen) in (1002, 1009)


def test_control_frames_do_not_count_against_a_message_in_progress(shared, raw_ws):
    """A ping between fragments of a message near ws_max_size is not part of
    the message: it must not push the message over the limit."""
    client = raw_ws(shared.port)
    client.connect()
    client.send_frame(BINARY, b"a" * (MAX_SIZE - 10), fin=False)
    client.send_frame(PING, b"p" * 100)
    frame = client.recv_frame()
    assert (frame.opcode, frame.payload) == (PONG, b"p" * 100)
    client.send_frame(CONT, b"b" * 10)
    frame = client.recv_data_frame()
    assert frame.payload == b"a" * (MAX_SIZE - 10) + b"b" * 10


# --- 7. keepalive --------------------------------------------------------------------------


def answer_pings(client: RawWebSocket, duration: float) -> int:
    """Answer the server's pings for `duration` seconds; how many came."""
    pings = 0
    deadline = time.monotonic() + duration
    while (remaining := deadline - time.monotonic()) > 0:
        client.sock.settimeout(remaining)
        try:
            frame = client.recv_frame()
        except TimeoutError:
            break
        assert frame.opcode == PING, frame
        assert len(frame.payload) == 4
        pings += 1
        client.send_frame(PONG, frame.payload)
    client.sock.settimeout(WAIT)
    return pings


def test_keepalive_pings_answered(serve, raw_ws):
    server = serve(echo_app(), ws_ping_interval=0.5, ws_ping_timeout=0.5)
    with connect(server, ping_interval=None) as ws:  # websockets answers pings by itself
        client = raw_ws(server.port)
        client.connect()
        pings = answer_pings(client, 2.0)
        assert pings >= 2
        client.send_text("still open")
        assert client.recv_data_frame().payload == b"still open"
        ws.send("me too")
        assert ws.recv(timeout=WAIT) == "me too"


@pytest.mark.parametrize("answer", ["none", "wrong-payload"])
def test_keepalive_timeout(serve, raw_ws, answer):
    seen: queue.Queue = queue.Queue()
    server = serve(echo_app(seen), ws_ping_interval=0.5, ws_ping_timeout=0.5)
    client = raw_ws(server.port)
    started = time.monotonic()
    client.connect()
    ping = client.recv_frame()
    assert ping.opcode == PING
    if answer == "wrong-payload":
        client.send_frame(PONG, b"nope")  # a stale pong does not count
    close = client.recv_frame()
    elapsed = time.monotonic() - started
    assert close.opcode == CLOSE and close.close_code == 1011
    assert 0.9 <= elapsed < 2.5
    assert client.server_closed()
    # As Uvicorn: the application hears of it as a connection lost.
    assert disconnect_code(seen) == 1005


def test_keepalive_without_timeout(serve, raw_ws):
    """ws_ping_timeout=None: pings go out every interval but an unanswered
    one never closes the connection (Uvicorn: no pong deadline)."""
    server = serve(echo_app(), ws_ping_interval=0.3, ws_ping_timeout=None)
    client = raw_ws(server.port)
    client.connect()
    pings = 0
    deadline = time.monotonic() + 1.5
    while (remaining := deadline - time.monotonic()) > 0:
        client.sock.settimeout(remaining)
        try:
            frame = client.recv_frame()
        except TimeoutError:
            break
        assert frame.opcode == PING, (frame.opcode, frame.payload)
        pings += 1
    client.sock.settimeout(WAIT)
    assert pings >= 3
    client.send_text("alive")
    assert client.recv_data_frame().payload == b"alive"


# --- 8. backpressure -----------------------------------------------------------------------


def numbered_frames(count: int) -> memoryview:
    """`count` masked 64 KiB binary frames, each starting with its index."""
    filler = b"\x00" * 65532
    return memoryview(b"".join(encode_frame(BINARY, index.to_bytes(4, "big") + filler) for index in range(count)))


def send_until_stalled(sock: socket.socket, data: memoryview, stall: float = 0.5) -> int:
    """Send as much of `data` as the peer takes until the socket has not been
    writable for `stall` seconds; returns how much was sent."""
    sent = 0
    while sent < len(data):
        _, writable, _ = select.select([], [sock], [], stall)
        if not writable:
            break
        sent += sock.send(data[sent : sent + 262144])
    return sent


def numbered_receiver(gate: Gate, results: queue.Queue, *, accept_first: bool):
    """An app that waits for the gate (before or after accepting), then reads
    numbered messages up to the text "end" and reports their indexes."""

    async def app(scope, receive, send):
        await receive()
        if accept_first:
            await send({"type": "websocket.accept"})
        await gate.wait()
        if not accept_first:
            await send({"type": "websocket.accept"})
        indexes = []
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect" or message.get("text") == "end":
                break
            assert len(message["bytes"]) == 65536
            indexes.append(int.from_bytes(message["bytes"][:4], "big"))
        results.put(indexes)

    return app


def test_incoming_backpressure(serve, raw_ws):
    """ws_max_queue=4 and an app not receiving: the server stops reading, so
    the client's sends stall; once the app reads, every message arrives."""
    gate, results = Gate(), queue.Queue()
    server = serve(numbered_receiver(gate, results, accept_first=True), ws_max_queue=4)
    client = raw_ws(server.port)
    client.connect()
    count = 256  # 16 MiB: several times what the socket buffers hold (the stall comes after ~5 MiB)
    data = numbered_frames(count)
    sent = send_until_stalled(client.sock, data)
    assert sent < len(data), "the server read everything while the app was not receiving"
    gate.open()
    client.sock.settimeout(20)
    client.sock.sendall(data[sent:])
    client.send_text("end")
    assert results.get(timeout=20) == list(range(count))


def test_frames_before_accept_are_bounded(serve, raw_ws):
    """A client that streams frames before the app has accepted: the server
    does not read (and buffer) without bound, and delivers every frame once
    the app accepts."""
    gate, results = Gate(), queue.Queue()
    server = serve(numbered_receiver(gate, results, accept_first=False))
    client = raw_ws(server.port)
    count = 256
    data = memoryview(client.request("/") + bytes(numbered_frames(count)))
    sent = send_until_stalled(client.sock, data)
    assert sent < len(data), "the server buffered everything before the handshake"
    gate.open()
    client.sock.settimeout(20)
    client.sock.sendall(data[sent:])
    client.send_text("end")
    assert client.read_handshake().status == 101
    assert results.get(timeout=20) == list(range(count))


def test_outgoing_backpressure(serve, raw_ws):
    """send() waits while the client does not read: the app gets only so far
    ahead; everything arrives, in order, once the client reads."""
    progress = [0]
    count = 256  # 16 MiB (the app stalls after ~4 MiB)
    seen: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        filler = b"\x00" * 65532
        for index in range(count):
            await send({"type": "websocket.send", "bytes": index.to_bytes(4, "big") + filler})
            progress[0] = index + 1
        await send({"type": "websocket.send", "text": "done"})
        seen.put(await receive())

    server = serve(app)
    client = raw_ws(server.port)
    client.connect()  # no deflate: the frames are as big as the messages
    # Wait until the app stops making progress (there is no event for "stuck").
    last, deadline = -1, time.monotonic() + 10
    while progress[0] != last and time.monotonic() < deadline:
        last = progress[0]
        time.sleep(0.3)
    assert 0 < progress[0] < count, progress[0]
    client.sock.settimeout(20)
    for index in range(count):
        frame = client.recv_frame()
        assert frame.opcode == BINARY and frame.payload[:4] == index.to_bytes(4, "big")
    assert client.recv_frame().payload == b"done"
    assert progress[0] == count
    client.send_close(1000)
    assert disconnect_code(seen) == 1000


# --- 9. graceful shutdown ------------------------------------------------------------------


def test_shutdown_closes_with_1012(serve):
    seen: queue.Queue = queue.Queue()
    server = serve(echo_app(seen))
    with connect(server) as ws:
        ws.send("hi")
        assert ws.recv(timeout=WAIT) == "hi"
        started = time.monotonic()
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=WAIT)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1012
        assert disconnect_code(seen) == 1012
    stopper.join(10)
    assert not stopper.is_alive()
    assert time.monotonic() - started < 3
    assert not server.thread.is_alive()


def test_shutdown_with_a_client_that_never_answers_the_close(serve, raw_ws):
    """A client that reads the 1012 but never sends its close frame must not
    hold the server up (Uvicorn closes the transport right after the 1012)."""
    seen: queue.Queue = queue.Queue()
    server = serve(echo_app(seen))
    client = raw_ws(server.port)
    client.connect()
    started = time.monotonic()
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    assert client.recv_close().close_code == 1012
    assert disconnect_code(seen) == 1012
    stopper.join(3)
    elapsed = time.monotonic() - started
    client.close()  # let a server that still waits for us go
    stopper.join(15)
    assert elapsed < 3, f"the server was still running {elapsed:.1f} s after the 1012"


def test_shutdown_during_handshake_is_500(serve, raw_ws):
    gate = Gate()
    outcomes: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await receive()
        await gate.wait()
        try:
            await send({"type": "websocket.accept"})
        except OSError as exc:
            outcomes.put(exc)
        else:
            outcomes.put(None)

    server = serve(app)
    client = raw_ws(server.port)
    client.send_raw(client.request("/"))
    assert gate.entered.wait(WAIT)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    response = client.read_handshake()
    assert response.status == 500
    gate.open()
    assert isinstance(outcomes.get(timeout=WAIT), OSError)
    stopper.join(15)
    assert not stopper.is_alive()


# --- 10. frameworks and --ws none ----------------------------------------------------------


def test_starlette_websocket_route(serve):
    async def chat(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="chat")
        name = await websocket.receive_text()
        await websocket.send_text(f"hello {name}")
        data = await websocket.receive_json()
        await websocket.send_json({"sum": sum(data["numbers"])})
        payload = await websocket.receive_bytes()
        await websocket.send_bytes(payload[::-1])
        await websocket.close(code=4000, reason="done")

    async def deny(websocket: WebSocket) -> None:
        await websocket.close(code=1008)

    async def teapot(websocket: WebSocket) -> None:
        await websocket.send_denial_response(PlainTextResponse("short and stout", status_code=418))

    app = Starlette(
        routes=[WebSocketRoute("/chat", chat), WebSocketRoute("/deny", deny), WebSocketRoute("/teapot", teapot)]
    )
    server = serve(app)
    with connect(server, "/chat", subprotocols=["chat"]) as ws:
        assert ws.subprotocol == "chat"
        ws.send("world")
        assert ws.recv(timeout=WAIT) == "hello world"
        ws.send(json.dumps({"numbers": [1, 2, 3]}))
        assert json.loads(ws.recv(timeout=WAIT)) == {"sum": 6}
        ws.send(b"abc")
        assert ws.recv(timeout=WAIT) == b"cba"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=WAIT)
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "done")
    with pytest.raises(InvalidStatus) as denied:
        connect(server, "/deny")
    assert denied.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as teapot_info:
        connect(server, "/teapot")
    assert teapot_info.value.response.status_code == 418
    assert teapot_info.value.response.body == b"short and stout"


def test_fastapi_websocket_endpoint(serve):
    seen: queue.Queue = queue.Queue()
    app = FastAPI()

    @app.websocket("/items/{item_id}")
    async def items(websocket: WebSocket, item_id: int, token: str = "") -> None:
        if token != "secret":
            await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
            return
        await websocket.accept()
        try:
            while True:
                data = await websocket.receive_json()
                if data.get("stop"):
                    await websocket.close(code=4002, reason="stopped")
                    return
                await websocket.send_json({"item_id": item_id, "echo": data})
        except WebSocketDisconnect as exc:
            seen.put(exc.code)

    server = serve(app)
    with connect(server, "/items/7?token=secret") as ws:
        ws.send(json.dumps({"a": 1}))
        assert json.loads(ws.recv(timeout=WAIT)) == {"item_id": 7, "echo": {"a": 1}}
        ws.close(code=4005)
    assert seen.get(timeout=WAIT) == 4005
    with connect(server, "/items/8?token=secret") as ws:
        ws.send(json.dumps({"stop": True}))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=WAIT)
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4002, "stopped")
    with pytest.raises(InvalidStatus) as denied:
        connect(server, "/items/7?token=wrong")
    assert denied.value.response.status_code == 403


def test_ws_none_serves_upgrade_as_http(serve, raw_ws):
    server = serve(scope_app, ws="none")
    client = raw_ws(server.port)
    response = client.connect("/ws")
    assert response.status == 200
    scope = json.loads(client.read_body())
    assert (scope["type"], scope["path"]) == ("http", "/ws")
    with pytest.raises(InvalidStatus) as info:
        connect(server, "/ws")
    assert info.value.response.status_code == 200


def test_wsgi_interface_has_no_websockets(serve, raw_ws):
    def wsgi_app(environ, start_response):
        body = f"{environ['PATH_INFO']} {environ.get('HTTP_UPGRADE')}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    server = serve(wsgi_app, interface="wsgi")
    client = raw_ws(server.port)
    response = client.connect("/ws")
    assert response.status == 200
    assert client.read_body() == b"/ws websocket"


# --- 11. logging ---------------------------------------------------------------------------


def test_handshake_log_lines(serve, raw_ws, caplog):
    caplog.set_level(logging.INFO, logger="uvicorn.error")

    async def app(scope, receive, send):
        await receive()
        if scope["path"].startswith("/denied"):
            await send({"type": "websocket.close"})
            return
        if scope["path"] == "/custom":
            await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
            await send({"type": "websocket.http.response.body", "body": b"no"})
            return
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    server = serve(app)
    with connect(server, "/a%20room?x=1") as ws:
        accepted_port = ws.local_address[1]
    expected_accepted = f'127.0.0.1:{accepted_port} - "WebSocket /a%20room?x=1" [accepted]'
    assert wait_until(lambda: expected_accepted in info_messages(caplog))

    client = raw_ws(server.port)
    assert client.connect("/denied").status == 403
    denied_port = client.sock.getsockname()[1]
    expected_denied = f'127.0.0.1:{denied_port} - "WebSocket /denied" 403'
    assert wait_until(lambda: expected_denied in info_messages(caplog))

    with pytest.raises(InvalidStatus):
        connect(server, "/custom")
    assert wait_until(lambda: any(m.endswith('"WebSocket /custom" 401') for m in info_messages(caplog)))
    records = [r for r in caplog.records if r.name == "uvicorn.error" and "WebSocket /" in r.getMessage()]
    assert all(r.levelno == logging.INFO for r in records)
