"""Request framing over real sockets: which bytes make up a request, and
when the connection ends after one. A byte is never read two ways: what a
strict parser (or a proxy in front) takes for a request's body or for the
connection's end is never served here as another request (RFC 9112 6.1,
6.3, 9.6; Host: 3.2, in tests/http_samples.py's MALFORMED table)."""

from __future__ import annotations

import pytest

from tests.conftest import read_body


def recording_app(calls: list[tuple[str, str, bytes]]):
    """Records (method, path, body) of each request and answers with the path."""

    async def app(scope, receive, send):
        body = await read_body(receive)
        calls.append((scope["method"], scope["path"], body))
        path = scope["path"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(path))]})
        await send({"type": "http.response.body", "body": path})

    return app


def assert_last_response(client, path: str) -> None:
    """The response to `path`, the connection's last: nothing after it."""
    response = client.read_response()
    assert (response.status, response.body) == (200, path.encode())
    assert response.header("connection") == "close"
    assert client.is_closed()
    assert client.buffer == b""


@pytest.mark.parametrize(
    "connection",
    [
        b"Connection: keep-alive, close",
        b"Connection: close, keep-alive",
        b"Connection: keep-alive\r\nConnection: close",
    ],
    ids=["keep-alive-then-close", "close-then-keep-alive", "two-fields"],
)
def test_http_1_0_close_wins_over_keep_alive(serve, raw_client, connection):
    """Issue 17, defect 3: close wins, in any order, in any field."""
    calls = []
    server = serve(recording_app(calls))
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.0\r\n" + connection + b"\r\n\r\nGET /second HTTP/1.0\r\n\r\n")
    assert_last_response(client, "/")
    assert calls == [("GET", "/", b"")]


def test_http_1_0_request_with_transfer_encoding_is_answered_then_closed(serve, raw_client):
    """Issue 17, defect 4: Transfer-Encoding in HTTP/1.0 is faulty framing;
    the request is answered (its chunked body read) and the connection
    closed after it, though it asked for keep-alive."""
    calls = []
    server = serve(recording_app(calls))
    client = raw_client(server.port)
    client.send(
        b"POST /te HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        b"GET /next HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    )
    assert_last_response(client, "/te")
    assert calls == [("POST", "/te", b"hello")]


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"


@pytest.mark.parametrize(
    ("framing", "body", "received"),
    [
        # The bytes: the last LF is not part of the body, nor of anything.
        (b"Content-Length: 34", SMUGGLED, SMUGGLED[:34]),
        (b"Transfer-Encoding: chunked", b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED), SMUGGLED),
    ],
    ids=["content-length", "chunked"],
)
def test_connect_body_is_its_body_never_a_second_request(serve, raw_client, framing, body, received):
    """Issue 17, defect 5: ASGI has no tunnel. A CONNECT's body is framed as
    any request's and reaches the application; the connection closes after
    the response, so no byte after a CONNECT is parsed as a request."""
    calls = []
    server = serve(recording_app(calls))
    client = raw_client(server.port)
    after = b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n"
    client.send(b"CONNECT /x HTTP/1.1\r\nHost: a\r\n%s\r\n\r\n%s%s" % (framing, body, after))
    assert_last_response(client, "/x")
    assert calls == [("CONNECT", "/x", received)]


def test_http_1_0_request_without_host_is_served(serve, raw_client):
    calls = []
    server = serve(recording_app(calls))
    client = raw_client(server.port)
    client.send(b"GET /old HTTP/1.0\r\n\r\n")
    assert_last_response(client, "/old")


def test_silent_client_after_a_response_to_an_unfinished_body_is_closed(serve, raw_client):
    """The application answers without reading a body the client stops
    sending: the keep-alive deadline closes the connection."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    server = serve(app, timeout_keep_alive=0.5)
    client = raw_client(server.port)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
    response = client.read_response()
    assert (response.status, response.body, response.header("connection")) == (200, b"ok", None)
    assert client.is_closed(timeout=5.0)
