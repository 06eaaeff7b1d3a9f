"""Errors, in memory (tests/http_harness.py): applications that fail or
misbehave, and requests the server refuses (400, 431, 501, 505). Each ends
with the documented response (exact bytes) and the connection closed."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.http_samples import GET, MALFORMED, error_response, head_of_size

BAD_REQUEST = error_response(400, b"Bad Request", b"Invalid HTTP request received.")
SERVER_ERROR = error_response(500, b"Internal Server Error", b"Internal Server Error")
TOO_LARGE = error_response(431, b"Request Header Fields Too Large", b"Request Header Fields Too Large")


class AppFailure(Exception):
    pass


class CountingApp:
    """Reads the body, answers "ok"; `calls` lists the paths it was called for."""

    def __init__(self):
        self.calls: list[str] = []

    async def __call__(self, scope, receive, send):
        self.calls.append(scope["path"])
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


def tracebacks(server) -> list[logging.LogRecord]:
    return [record for record in server.log if record.exc_info]


# -- application errors ---------------------------------------------------------------


def test_exception_before_the_response_gets_500_and_close(harness):
    async def app(scope, receive, send):
        raise AppFailure("boom")

    server = harness.server(app)
    conn = server.connect()
    conn.send(GET)
    assert conn.received == SERVER_ERROR
    assert conn.closed
    (record,) = tracebacks(server)
    assert record.getMessage().startswith("Exception in ASGI application")
    assert record.levelno == logging.ERROR
    assert record.exc_info[0] is AppFailure
    assert server.access_lines() == ['127.0.0.1:50000 - "GET / HTTP/1.1" 500']
    assert server.state.total_requests == 1  # the 500 is a response like any other
    assert not server.state.tasks


def test_exception_after_the_start_closes(harness):
    """The client gets what was sent, never the last chunk, then the close."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise AppFailure("boom")

    server = harness.server(app)
    conn = server.connect()
    conn.send(GET)
    assert conn.received == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n7\r\npartial\r\n"
    assert conn.closed
    response = conn.response(allow_incomplete=True)
    assert (response.body, response.complete) == (b"partial", False)
    assert [record.exc_info[0] for record in tracebacks(server)] == [AppFailure]


def test_exception_after_a_held_head_closes_without_a_byte(harness):
    """The head waits for the first body message: an app that fails in
    between leaves nothing to send (and no 500 can be sent either)."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise AppFailure("boom")

    conn = harness.connect(app)
    conn.send(GET)
    assert conn.received == b""
    assert conn.closed


def test_exception_after_the_response_closes_the_connection(harness):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        raise AppFailure("boom")

    conn = harness.connect(app)
    conn.send(GET)
    assert conn.response().body == b"ok"
    assert conn.closed
    assert conn.unread == b""


def test_return_without_a_response_gets_500(harness):
    async def app(scope, receive, send):
        pass

    server = harness.server(app)
    conn = server.connect()
    conn.send(GET)
    assert conn.received == SERVER_ERROR
    assert conn.closed
    assert server.messages(logging.ERROR) == ["ASGI callable returned without starting response."]
    assert tracebacks(server) == []


def test_return_without_completing_the_response_closes(harness):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})

    server = harness.server(app)
    conn = server.connect()
    conn.send(GET)
    assert conn.closed
    response = conn.response(allow_incomplete=True)
    assert (response.body, response.complete) == (b"12345", False)
    assert server.messages(logging.ERROR) == ["ASGI callable returned without completing response."]


def test_return_value_is_logged_and_closes(harness):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return "unexpected"

    server = harness.server(app)
    conn = server.connect()
    conn.send(GET)
    assert conn.response().body == b"ok"
    assert conn.closed
    assert server.messages(logging.ERROR) == ["ASGI callable should return None, but returned 'unexpected'."]


def test_wrong_first_message_gets_500(harness):
    errors = []

    async def app(scope, receive, send):
        try:
            await send({"type": "http.response.body", "body": b"hi"})
        except RuntimeError as exc:
            errors.append(str(exc))
            raise

    conn = harness.connect(app)
    conn.send(GET)
    assert errors == ["Expected ASGI message 'http.response.start', but got 'http.response.body'."]
    assert conn.received == SERVER_ERROR
    assert conn.closed


def test_app_returning_no_awaitable_gets_500(harness):
    def app(scope, receive, send):
        return None

    server = harness.server(app)
    conn = server.connect()
    conn.send(GET)
    assert conn.received == SERVER_ERROR
    assert [record.exc_info[0] for record in tracebacks(server)] == [TypeError]


def test_app_failure_on_a_later_request_of_the_connection(harness):
    """The 500 of a second request (started while the connection's task
    waited between requests) is the same as the first's would be."""

    async def app(scope, receive, send):
        if scope["path"] == "/fail":
            raise AppFailure("boom")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    conn = harness.connect(app)
    conn.send(GET)
    assert conn.response().body == b"ok"
    conn.send(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.unread == SERVER_ERROR
    assert conn.closed


# -- requests refused -----------------------------------------------------------------


@pytest.mark.parametrize("data", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_request_gets_400_and_close(harness, data):
    app = CountingApp()
    server = harness.server(app)
    conn = server.connect()
    conn.send(data)
    assert conn.received == BAD_REQUEST
    assert conn.closed and conn.lost
    assert app.calls == []
    assert server.messages(logging.WARNING) == ["Invalid HTTP request received."]
    assert server.access_lines() == []
    assert not server.state.connections


@pytest.mark.parametrize("split", [False, True], ids=["one-read", "byte-by-byte"])
def test_malformed_request_split_across_reads(harness, split):
    data = b"GET / HTTP/1.1\r\nHost x\r\n\r\n"
    conn = harness.connect(CountingApp())
    conn.send(*([data[i : i + 1] for i in range(len(data))] if split else [data]))
    assert conn.received == BAD_REQUEST
    assert conn.closed


@pytest.mark.parametrize(
    "data",
    [b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"],
    ids=["no-host", "two-hosts"],
)
def test_http_1_1_request_needs_exactly_one_host(harness, data):
    app = CountingApp()
    conn = harness.connect(app)
    conn.send(data)
    assert app.calls == []
    assert conn.received == BAD_REQUEST
    assert conn.closed


def test_http_1_0_request_without_host_is_served(harness):
    conn = harness.connect(CountingApp())
    conn.send(b"GET / HTTP/1.0\r\n\r\n")
    assert conn.response().body == b"ok"


def test_oversized_head_in_one_read_gets_431(harness):
    server = harness.server(CountingApp(), max_head_size=1024)
    conn = server.connect()
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"a" * 4096 + b"\r\n\r\n")
    assert conn.received == TOO_LARGE
    assert conn.closed
    assert len(server.messages(logging.WARNING)) == 1


def test_head_growing_past_the_limit_gets_431_as_soon_as_it_is_over(harness):
    conn = harness.connect(CountingApp(), max_head_size=1024)
    lines = [b"X-Header-%03d: %s\r\n" % (i, b"v" * 20) for i in range(60)]  # 36 bytes each
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
    sent = 0
    while not conn.closed and sent < len(lines):
        conn.send(lines[sent])
        sent += 1
    assert conn.received == TOO_LARGE
    assert 1024 // 36 - 2 <= sent <= 1024 // 36 + 2


def test_head_of_exactly_the_limit_is_served(harness):
    app = CountingApp()
    conn = harness.connect(app, max_head_size=1024)
    conn.send(head_of_size(1024))
    assert conn.response().status == 200
    conn.send(head_of_size(1025))
    assert conn.unread == TOO_LARGE


@pytest.mark.parametrize(
    "transfer_encoding",
    [b"Transfer-Encoding: gzip, chunked\r\n", b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"],
    ids=["one-field", "two-fields"],
)
def test_unsupported_transfer_coding_gets_501(harness, transfer_encoding):
    app = CountingApp()
    conn = harness.connect(app)
    conn.send(b"POST / HTTP/1.1\r\nHost: x\r\n" + transfer_encoding + b"\r\n0\r\n\r\n")
    assert conn.received == error_response(501, b"Not Implemented", b"Not Implemented")
    assert conn.closed
    assert app.calls == []


def test_http_2_request_line_gets_505(harness):
    app = CountingApp()
    conn = harness.connect(app)
    conn.send(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
    assert conn.received == error_response(505, b"HTTP Version Not Supported", b"HTTP Version Not Supported")
    assert conn.closed
    assert app.calls == []


def test_garbage_pipelined_after_a_valid_request(harness):
    """The valid request is answered first, then the garbage gets its 400."""
    server = harness.server(CountingApp())
    conn = server.connect()
    conn.send(GET + b"garbage\r\n\r\n")
    assert conn.response().body == b"ok"
    assert conn.unread == BAD_REQUEST
    assert conn.closed
    assert len(server.access_lines()) == 1


def test_garbage_while_a_request_is_in_flight_waits_for_its_response(harness):
    gate = asyncio.Event()

    async def app(scope, receive, send):
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    conn = harness.connect(app)
    conn.send(GET)
    conn.send(b"\x16\x03\x01garbage\r\n\r\n")
    assert conn.received == b""
    assert not conn.closed
    gate.set()
    harness.settle()
    assert conn.response().body == b"ok"
    assert conn.unread == BAD_REQUEST
    assert conn.closed


def test_broken_chunk_while_the_app_reads(harness):
    """400 and the close; the app's receive() gets http.disconnect and its
    late response is dropped."""
    received = []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "http.disconnect" or not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        await send({"type": "http.response.body", "body": b"late"})

    server = harness.server(app)
    conn = server.connect()
    conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    conn.send(b"zz\r\n")
    assert conn.received == BAD_REQUEST
    assert conn.closed
    assert received == [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert server.access_lines() == []
    assert not server.state.tasks
    assert conn.transport.writes_after_close == 0  # the late response was not even tried


def test_broken_chunk_after_the_response_started_closes(harness):
    """A response under way cannot be replaced by a 400: the connection
    closes, and the app sees the disconnect."""
    received = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"early", "more_body": True})
        while True:
            message = await receive()
            received.append(message["type"])
            if message["type"] == "http.disconnect" or not message["more_body"]:
                break

    conn = harness.connect(app)
    conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    conn.send(b"3\r\nabc\r\nzz\r\n")
    assert conn.received == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nearly\r\n"
    assert conn.closed
    assert received[-1] == "http.disconnect"
