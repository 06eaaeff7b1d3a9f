"""Ordinary HTTP/1.1 traffic: the scope, keep-alive, pipelining, framing."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx

from tests.conftest import scope_app, simple_app


def test_scope(serve):
    server = serve(scope_app, root_path="")
    response = httpx.get(server.url + "/a%20b/c%2Fd?x=1&y=%20", headers={"X-Test": "One"}, timeout=5)
    assert response.status_code == 200
    scope = response.json()
    expected = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "root_path": "",
        "path": "/a b/c/d",
        "raw_path": "/a%20b/c%2Fd",
        "query_string": "x=1&y=%20",
        "server": ["127.0.0.1", server.port],
        "state": {},
    }
    assert {key: scope.get(key) for key in expected} == expected
    assert scope["client"][0] == "127.0.0.1"
    assert ["x-test", "One"] in scope["headers"]
    assert "extensions" not in scope


def test_headers_keep_order_and_duplicates(serve, raw_client):
    server = serve(scope_app)
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-b: 2\r\nX-A: 3\r\nCONTENT-TYPE:  text/plain \r\n\r\n")
    response = client.read_response()
    headers = json.loads(response.body)["headers"]
    assert headers == [["host", "x"], ["x-a", "1"], ["x-b", "2"], ["x-a", "3"], ["content-type", "text/plain"]]


def test_default_headers(serve):
    server = serve(simple_app(), headers=[("X-Extra", "yes")])
    response = httpx.get(server.url, timeout=5)
    assert response.headers["server"] == "cppcorn"
    assert response.headers["x-extra"] == "yes"
    assert response.headers["date"].endswith(" GMT")
    assert list(response.headers.keys())[:3] == ["date", "server", "x-extra"]


def test_default_headers_can_be_switched_off(serve):
    server = serve(simple_app(), server_header=False, date_header=False)
    response = httpx.get(server.url, timeout=5)
    assert "server" not in response.headers
    assert "date" not in response.headers


def test_keep_alive_reuses_connection(serve, raw_client):
    server = serve(simple_app())
    client = raw_client(server.port)
    for _ in range(3):
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = client.read_response()
        assert response.status == 200
        assert response.body == b"Hello, world!"
        assert response.header("connection") is None
    assert not client.is_closed(timeout=0.2)


def test_pipelined_requests_answered_in_order(serve, raw_client):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    server = serve(app)
    client = raw_client(server.port)
    client.send(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(16)))
    for i in range(16):
        response = client.read_response()
        assert response.body == b"/%d" % i
        assert response.header("transfer-encoding") == "chunked"


def test_pipelined_request_split_across_writes_is_answered(serve, raw_client):
    """Three whole requests and the start of a fourth in one write, the rest
    of the fourth later: reading, paused while the held bytes wait for their
    turn, resumes once they are parsed, and the fourth is answered."""
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    server = serve(app)
    client = raw_client(server.port)
    client.send(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(3)) + b"GET /3 HTTP/1.1\r\nHo")
    for i in range(3):
        assert client.read_response().body == b"/%d" % i
    client.send(b"st: x\r\n\r\n")
    assert client.read_response().body == b"/3"
    assert not client.is_closed(timeout=0.2)


def test_pipelined_requests_arriving_during_a_slow_response(serve, raw_client):
    """More pipelined requests arrive, in several writes, while the first
    response is still being made: all are answered, in order."""
    async def app(scope, receive, send):
        if scope["path"] == "/0":
            await asyncio.sleep(0.2)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    server = serve(app)
    client = raw_client(server.port)
    client.send(b"GET /0 HTTP/1.1\r\nHost: x\r\n\r\n")
    for i in range(1, 6):
        time.sleep(0.02)
        client.send(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
    for i in range(6):
        assert client.read_response().body == b"/%d" % i


def test_connection_close_from_client(serve, raw_client):
    server = serve(simple_app())
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    response = client.read_response()
    assert response.header("connection") == "close"
    assert client.is_closed()
    assert client.buffer == b""  # the second request got no answer


def test_http_1_0(serve, raw_client):
    server = serve(simple_app())
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.0\r\n\r\n")
    response = client.read_response()
    assert response.status == 200
    assert response.header("connection") == "close"
    assert client.is_closed()

    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    response = client.read_response()
    assert response.header("connection") == "keep-alive"
    client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert client.read_response().body == b"Hello, world!"


def test_http_1_0_gets_no_transfer_encoding_even_when_the_app_sends_it(serve, raw_client):
    """HTTP/1.0 cannot read chunked (RFC 9112 6.1): the app's
    `transfer-encoding: chunked` is not sent, the body is close-delimited."""
    server = serve(simple_app(b"abc", headers=[(b"transfer-encoding", b"chunked")]))
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    response = client.read_response()
    assert response.header("transfer-encoding") is None
    assert response.header("connection") == "close"
    assert response.body == b"abc"  # up to the close


def test_upgrade_request_is_served_as_plain_http(serve, raw_client, caplog):
    """With WebSockets off (`--ws none`) an Upgrade request is an ordinary
    request (as Uvicorn does without a WebSocket library), with a warning;
    the connection goes on speaking HTTP/1.1."""
    caplog.set_level(logging.WARNING, logger="uvicorn.error")
    server = serve(scope_app, ws="none")
    client = raw_client(server.port)
    client.send(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    first = client.read_response()
    assert first.status == 200
    assert json.loads(first.body)["path"] == "/ws"
    second = client.read_response()
    assert json.loads(second.body)["path"] == "/after"
    messages = [record.getMessage() for record in caplog.records]
    assert "Unsupported upgrade request." in messages
    assert any("WebSockets are off" in message for message in messages)
