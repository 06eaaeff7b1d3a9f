"""The hand-over of a connection from HTTP/1.1 to the WebSocket protocol when
the upgrade request was pipelined behind an HTTP request: the WebSocket side
takes the connection as HTTP left it (reading paused while the request before
it was answered, writes backed up), and nothing waits forever on the HTTP
side."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.websocket_client import TEXT, encode_frame

BIG = 8 * 1024 * 1024


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message["text"]})
    if scope["path"] == "/slow":
        await asyncio.sleep(0.2)
        body = b"slow"
    else:
        body = b"x" * BIG
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("arrival", ["with-the-request", "while-answering"])
def test_upgrade_pipelined_behind_a_slow_request(serve, raw_ws, arrival):
    """Reading was paused while the slow response was under way (the upgrade
    request came with the slow one, or in a read of its own meanwhile); the
    WebSocket connection reads again once the handshake is accepted."""
    server = serve(app)
    client = raw_ws(server.port)
    slow = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
    if arrival == "with-the-request":
        client.send_raw(slow + client.request("/ws"))
    else:
        client.send_raw(slow)
        time.sleep(0.05)  # the application is sleeping in its 0.2 s
        client.send_raw(client.request("/ws"))
    response = client.read_handshake()
    assert (response.status, client.read_body()) == (200, b"slow")
    assert client.read_handshake().status == 101
    client.send_raw(encode_frame(TEXT, b"echo me"))
    frame = client.recv_data_frame()
    assert (frame.opcode, frame.payload) == (TEXT, b"echo me")


def test_upgrade_pipelined_behind_a_response_waiting_for_the_drain(serve, raw_ws):
    """The large response's last send() waits for the write buffer to drain
    when the connection is handed over: it is released, its task ends, and
    the server stops without a graceful-shutdown timeout."""
    server = serve(app)
    client = raw_ws(server.port, timeout=10.0)
    client.send_raw(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n" + client.request("/ws"))
    response = client.read_handshake()
    assert response.status == 200
    assert len(client.read_body()) == BIG
    assert client.read_handshake().status == 101
    client.send_raw(encode_frame(TEXT, b"after"))
    assert client.recv_data_frame().payload == b"after"
    client.close()  # the client is gone before the server stops
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5.0
    assert not server.state.tasks
