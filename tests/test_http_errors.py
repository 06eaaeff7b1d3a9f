"""Bad input and server-side errors.

Every malformed request, oversized head, slow client, exhausted limit and
misbehaving application is answered with the documented status (or the
connection is closed), logged once, and never takes the server down: each
test ends by serving a normal request.
"""

from __future__ import annotations

import http
import logging
import random
import re
import select
import socket
import threading
import time

import httpx
import pytest

from tests.conftest import Gate, RawClient, RawResponse, read_body, simple_app, wait_until
from tests.http_samples import MALFORMED, head_of_size

OK_BODY = b"Hello, world!"
BAD_REQUEST_BODY = b"Invalid HTTP request received."


# -- helpers -------------------------------------------------------------


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    """Capture uvicorn.error and uvicorn.access at INFO (the access log is
    only active when a handler is present at startup, as with Uvicorn)."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "propagate", True)
        monkeypatch.setattr(logger, "disabled", False)
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    return caplog


def error_logs(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in list(caplog.records) if r.name == "uvicorn.error" and r.levelno == level]


def access_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in list(caplog.records) if r.name == "uvicorn.access"]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records (on any logger) that carry a traceback."""
    return [r for r in list(caplog.records) if r.exc_info or "Traceback (most recent call last)" in r.getMessage()]


def app_traceback(caplog: pytest.LogCaptureFixture, exc_type: type[BaseException]) -> logging.LogRecord:
    """The one traceback logged: an ERROR for the application's `exc_type`."""
    (record,) = tracebacks(caplog)
    assert record.getMessage().startswith("Exception in ASGI application")
    assert record.levelno == logging.ERROR
    assert record.exc_info[0] is exc_type
    return record


def loop_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Errors the event loop logged itself (a protocol callback that raised)."""
    return [r.getMessage() for r in list(caplog.records) if r.name == "asyncio" and r.levelno >= logging.ERROR]


async def app(scope, receive, send):
    """The well-behaved application used unless a test needs another."""
    await read_body(receive)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(OK_BODY)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": OK_BODY})


def assert_ok(response: RawResponse) -> None:
    """The well-behaved application's answer."""
    assert response.status == 200
    assert response.body == OK_BODY


def assert_serves(server, raw_client) -> None:
    """The server answers a normal request on a new connection."""
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_ok(client.read_response())


def read_error_response(
    client: RawClient, status: int, reason: str, body: bytes | None = None, head_request: bool = False
) -> RawResponse:
    """Read the server's own plain-text error response (whose body is the
    reason, unless `body` says otherwise; the head alone, with the same
    Content-Length, to a HEAD request): then the connection is closed, with
    nothing more sent."""
    response = client.read_response(head_request)
    body = reason.encode() if body is None else body
    assert (response.status, response.reason) == (status, reason)
    assert response.header("content-type") == "text/plain; charset=utf-8"
    assert response.header("content-length") == str(len(body))
    assert response.header("connection") == "close"
    assert response.header("transfer-encoding") is None
    assert response.body == (b"" if head_request else body)
    assert client.is_closed()
    assert client.buffer == b""
    return response


def read_bad_request(client: RawClient, head_request: bool = False) -> RawResponse:
    """`read_error_response` for the 400 that answers a request that cannot be parsed."""
    return read_error_response(client, 400, "Bad Request", BAD_REQUEST_BODY, head_request)


def assert_refusal_logged(caplog: pytest.LogCaptureFixture, warning: str) -> None:
    """A refused request: one WARNING, matching the regex `warning` whole, no
    access log line and no traceback."""
    (message,) = error_logs(caplog, logging.WARNING)
    assert re.fullmatch(warning, message), message
    assert access_logs(caplog) == []
    assert tracebacks(caplog) == []


INVALID_REQUEST = re.escape("Invalid HTTP request received.")


def refused_with(status: int) -> str:
    """The WARNING for a request refused with `status` (a regex)."""
    return rf"Request refused with {status}: .+\."


def gated_app(gate: Gate):
    """`/slow` waits for the gate; every other path is answered at once."""

    async def gated(scope, receive, send):
        if scope["path"] == "/slow":
            await gate.wait()
        await app(scope, receive, send)

    return gated


def serving_root(handler):
    """An app answering `/` as `app` does (see `assert_serves`), and every
    other path with `handler`."""

    async def routed(scope, receive, send):
        if scope["path"] == "/":
            return await app(scope, receive, send)
        return await handler(scope, receive, send)

    return routed


# -- 1. malformed requests -> 400 -----------------------------------------


def check_cases(cases, check) -> None:
    """Run `check(name, case)` for every case and report every failing one
    (each case runs against the same server, on its own connection)."""
    failures = []
    for name, case in cases.items():
        try:
            check(name, case)
        except AssertionError as exc:
            failures.append(f"--- {name}: {case!r}\n{exc}")
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)


def test_malformed_requests_get_400(serve, raw_client, logs):
    """Each request that cannot be parsed gets the plain 400, the connection is
    closed, one WARNING is logged (no traceback), nothing is access-logged and
    the application is never called; the server then serves normally."""
    calls = []

    async def counting_app(scope, receive, send):
        calls.append(scope["path"])
        await app(scope, receive, send)

    server = serve(counting_app)

    def check(name, request_bytes):
        logs.clear()
        calls.clear()
        client = raw_client(server.port)
        client.send(request_bytes)
        assert read_bad_request(client).header("server") == "cppcorn"
        assert calls == []
        assert_refusal_logged(logs, INVALID_REQUEST)

        assert_serves(server, raw_client)
        assert len(access_logs(logs)) == 1  # the access log was on all along
        assert loop_errors(logs) == []

    check_cases(MALFORMED, check)


# -- 2. request head too large -> 431 -------------------------------------

HEAD_LIMIT = 1024


def test_huge_header_in_one_send_gets_431(serve, raw_client, logs):
    """One header far over limit_request_header_size, sent at once: 431."""
    server = serve(app, limit_request_header_size=HEAD_LIMIT)
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"a" * 4 * HEAD_LIMIT + b"\r\n\r\n")
    read_error_response(client, 431, "Request Header Fields Too Large")
    assert_refusal_logged(logs, refused_with(431))
    assert_serves(server, raw_client)


def test_many_headers_over_several_sends_get_431(serve, raw_client, logs):
    """A head that grows past the limit across several reads (and never ends)
    is refused as soon as it is over: 431."""
    server = serve(app, limit_request_header_size=HEAD_LIMIT)
    client = raw_client(server.port)
    header_lines = [b"X-Header-%03d: %s\r\n" % (i, b"v" * 20) for i in range(60)]  # 2160 bytes
    parts = [b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(header_lines[:15])]
    parts += [b"".join(header_lines[i : i + 15]) for i in range(15, 60, 15)]
    answered_after = None
    for index, part in enumerate(parts):
        client.send(part)
        readable, _, _ = select.select([client.sock], [], [], 0.2)
        if readable:
            answered_after = index
            break
    assert answered_after is not None, "no answer to a head twice the limit"
    assert answered_after >= 1  # the first 400-odd bytes were within the limit
    read_error_response(client, 431, "Request Header Fields Too Large")
    assert_refusal_logged(logs, refused_with(431))
    assert_serves(server, raw_client)


def test_head_just_under_limit_is_accepted(serve, raw_client):
    """A head of exactly limit_request_header_size bytes is served, with one
    long header or many short ones, in one send or in several."""
    server = serve(app, limit_request_header_size=HEAD_LIMIT)
    client = raw_client(server.port)
    for header_count in (1, 30):
        head = head_of_size(HEAD_LIMIT, header_count)
        client.send(head)
        assert client.read_response().status == 200

        client.send(head[:500])
        client.send(head[500:1000])
        client.send(head[1000:])
        assert client.read_response().status == 200


def test_head_just_over_limit_is_refused(serve, raw_client):
    """Request line + header lines of limit + 1 bytes: 431."""
    server = serve(app, limit_request_header_size=HEAD_LIMIT)
    client = raw_client(server.port)
    client.send(head_of_size(HEAD_LIMIT + 1 + 2))  # + the final blank line
    read_error_response(client, 431, "Request Header Fields Too Large")
    assert_serves(server, raw_client)


# -- 3. transfer codings, 4. HTTP version ---------------------------------


@pytest.mark.parametrize(
    "transfer_encoding",
    [b"Transfer-Encoding: gzip, chunked\r\n", b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"],
    ids=["one-field", "two-fields"],
)
def test_unsupported_transfer_coding_gets_501(serve, raw_client, logs, transfer_encoding):
    """A coding other than chunked before the final chunked: 501."""
    server = serve(app)
    client = raw_client(server.port)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\n" + transfer_encoding + b"\r\n0\r\n\r\n")
    read_error_response(client, 501, "Not Implemented")
    assert_refusal_logged(logs, refused_with(501))
    assert_serves(server, raw_client)


def test_http_2_request_line_gets_505(serve, raw_client, logs):
    """An `HTTP/2.0` request line: 505."""
    server = serve(app)
    client = raw_client(server.port)
    client.send(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
    read_error_response(client, 505, "HTTP Version Not Supported")
    assert_refusal_logged(logs, refused_with(505))
    assert_serves(server, raw_client)


# -- 5. pipelining ---------------------------------------------------------


def test_pipelined_garbage_after_valid_request(serve, raw_client, logs):
    """The valid request is answered first, then the garbage gets its 400."""
    server = serve(app)
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\ngarbage\r\n\r\n")
    assert_ok(client.read_response())
    read_bad_request(client)
    assert error_logs(logs, logging.WARNING) == ["Invalid HTTP request received."]
    assert len(access_logs(logs)) == 1
    assert_serves(server, raw_client)


def test_garbage_while_request_in_flight(serve, raw_client, logs):
    """Garbage that arrives while the previous response is still being made
    waits for it: 200 first, then 400."""
    gate = Gate()
    server = serve(gated_app(gate))
    client = raw_client(server.port)
    client.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    assert gate.entered.wait(5)
    client.send(b"\x16\x03\x01garbage\r\n\r\n")
    gate.open()
    assert client.read_response().status == 200
    read_bad_request(client)
    assert error_logs(logs, logging.WARNING) == ["Invalid HTTP request received."]
    assert_serves(server, raw_client)


# -- half-closed clients --------------------------------------------------


def test_half_close_mid_body_disconnects_the_app(serve, raw_client):
    """A client that half-closes before sending the whole body it announced
    can never complete the request: the app's receive() gets http.disconnect
    and the connection is closed (it must not hang)."""
    received = []
    done = threading.Event()

    async def reading_app(scope, receive, send):
        while True:
            message = await receive()
            received.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        done.set()

    server = serve(serving_root(reading_app))
    client = raw_client(server.port, timeout=3.0)
    client.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    client.sock.shutdown(socket.SHUT_WR)
    assert client.is_closed(timeout=3.0), "connection still open 3 s after the client's half-close"
    assert done.wait(3.0), f"the application is still waiting for the body: {received}"
    assert received == ["http.request", "http.disconnect"]
    assert wait_until(lambda: not server.state.tasks, 2.0)
    assert_serves(server, raw_client)


def test_half_close_after_complete_request_gets_response(serve, raw_client):
    """A complete request followed by a half-close still gets its response,
    then the connection is closed."""
    server = serve(app)
    client = raw_client(server.port)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    client.sock.shutdown(socket.SHUT_WR)
    assert_ok(client.read_response())
    assert client.is_closed()


def test_pipelined_requests_then_half_close_are_all_answered(serve, raw_client):
    """Two complete pipelined requests followed by a half-close: both are
    answered in order, then the connection is closed. (Whether the last
    response says `connection: close` depends on whether the end of input
    arrived before it was written.)"""
    server = serve(app)
    client = raw_client(server.port)
    client.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
    client.sock.shutdown(socket.SHUT_WR)
    raw = client.read_to_eof()
    assert raw.count(b"HTTP/1.1 200 OK\r\n") == 2, raw
    assert raw.endswith(b"\r\n\r\n" + OK_BODY), raw
    assert client.is_closed()


def test_bad_chunk_while_app_reads_body(serve, raw_client, logs):
    """A broken chunk after the application started reading: 400 and the
    close; the application's receive() gets http.disconnect and its late
    response is dropped."""
    received = []
    first_chunk = threading.Event()
    done = threading.Event()

    async def reading_app(scope, receive, send):
        while True:
            message = await receive()
            received.append(message)
            first_chunk.set()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        await send({"type": "http.response.body", "body": b"late"})
        done.set()

    server = serve(serving_root(reading_app))
    client = raw_client(server.port)
    client.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert first_chunk.wait(5)
    client.send(b"zz\r\n")
    read_bad_request(client)  # and nothing of the late response
    assert done.wait(5)
    assert received == [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert_refusal_logged(logs, INVALID_REQUEST)
    assert_serves(server, raw_client)


# -- 6. timeouts -----------------------------------------------------------


def test_half_sent_head_gets_408(serve, raw_client, logs):
    """timeout_request_headers=1: half a head gets 408, then the close."""
    server = serve(app, timeout_request_headers=1)
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    read_error_response(client, 408, "Request Timeout")  # and the close right after it
    elapsed = time.monotonic() - started
    assert 0.7 <= elapsed <= 2.0, elapsed
    assert access_logs(logs) == []
    assert_serves(server, raw_client)


def test_silent_connection_closed_without_response(serve, raw_client):
    """timeout_request_headers=1: a connection that sends nothing is closed
    without a single byte."""
    server = serve(app, timeout_request_headers=1)
    client = raw_client(server.port)
    started = time.monotonic()
    assert client.read_to_eof() == b""
    elapsed = time.monotonic() - started
    assert 0.7 <= elapsed <= 2.0, elapsed
    assert_serves(server, raw_client)


def test_slowloris_is_cut_at_the_deadline(serve, raw_client):
    """A client dribbling one byte every 0.2 s does not extend the header
    deadline: 408 about 1 s after its first byte."""
    server = serve(app, timeout_request_headers=1)
    client = raw_client(server.port)
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100 + b"\r\n\r\n"
    started = time.monotonic()
    sent = 0
    while sent < len(head):
        client.send(head[sent : sent + 1])
        sent += 1
        readable, _, _ = select.select([client.sock], [], [], 0.2)  # the dribble rate
        if readable or time.monotonic() - started > 4:
            break
    elapsed = time.monotonic() - started
    response = client.read_response()
    assert response.status == 408
    assert client.is_closed()
    assert sent < len(head)
    assert 0.7 <= elapsed <= 2.0, elapsed
    assert_serves(server, raw_client)


def test_idle_keep_alive_connection_closed(serve, raw_client):
    """timeout_keep_alive=1: an idle connection is closed quietly after a
    response."""
    server = serve(app, timeout_keep_alive=1)
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.read_response().status == 200
    started = time.monotonic()
    assert client.is_closed(timeout=3.0)
    elapsed = time.monotonic() - started
    assert client.buffer == b""  # no 408 for an idle connection
    assert 0.7 <= elapsed <= 2.0, elapsed
    assert_serves(server, raw_client)


def test_keep_alive_request_in_time_is_served(serve, raw_client):
    """timeout_keep_alive=1: a next request within the timeout is served, and
    each response re-arms the idle timer."""
    server = serve(app, timeout_keep_alive=1)
    client = raw_client(server.port)
    for _ in range(2):
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert_ok(client.read_response())
        assert not client.is_closed(timeout=0.5)  # still open, well before the deadline


# -- 7. limits -------------------------------------------------------------


def test_concurrency_limit(serve, raw_client, logs):
    """limit_concurrency=1: while one request runs, a second connection's
    request gets 503; once it is done, requests are served again."""
    gate = Gate()
    server = serve(gated_app(gate), limit_concurrency=1)
    first = raw_client(server.port)
    first.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    assert gate.entered.wait(5)

    second = raw_client(server.port)
    second.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    read_error_response(second, 503, "Service Unavailable")
    assert error_logs(logs, logging.WARNING) == ["Exceeded concurrency limit."]

    gate.open()
    assert_ok(first.read_response())

    # The refused connection is gone: the first one is served again ...
    assert wait_until(lambda: len(server.state.connections) == 1)
    first.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert first.read_response().status == 200
    # ... and, once it is closed, so is a new one.
    first.close()
    assert wait_until(lambda: len(server.state.connections) == 0)
    assert_serves(server, raw_client)
    assert error_logs(logs, logging.WARNING) == ["Exceeded concurrency limit."]


def test_max_requests_stops_the_server(serve, logs):
    """limit_max_requests=3: after three responses the server shuts down."""
    server = serve(app, limit_max_requests=3)
    with httpx.Client(timeout=5) as client:
        for _ in range(3):
            assert client.get(server.url).status_code == 200
    server.thread.join(5)
    assert not server.thread.is_alive(), "server still running after its request limit"
    assert server.errors == []
    assert "Maximum request limit of 3 exceeded. Terminating process." in error_logs(logs, logging.INFO)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=2)


# -- 8. application errors -------------------------------------------------


class AppFailure(Exception):
    pass


def test_exception_before_start_gets_500(serve, raw_client, logs):
    """An exception before http.response.start: 500, closed, traceback once."""

    async def failing(scope, receive, send):
        raise AppFailure("boom")

    server = serve(serving_root(failing))
    client = raw_client(server.port)
    client.send(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
    read_error_response(client, 500, "Internal Server Error")
    app_traceback(logs, AppFailure)
    assert [m for m in access_logs(logs) if m.endswith('"GET /fail HTTP/1.1" 500')]
    assert_serves(server, raw_client)
    assert len(tracebacks(logs)) == 1


def test_exception_after_start_closes_connection(serve, raw_client, logs):
    """An exception mid-response: the client gets the head and the chunk sent
    so far, then the close, never the terminating `0` chunk; the traceback is
    logged once."""

    async def failing(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise AppFailure("boom")

    server = serve(serving_root(failing))
    client = raw_client(server.port)
    client.send(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
    raw = client.read_to_eof()
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked\r\n" in raw
    assert raw.endswith(b"\r\n\r\n7\r\npartial\r\n")
    record = app_traceback(logs, AppFailure)
    assert error_logs(logs, logging.ERROR) == [record.getMessage()]
    assert [m for m in access_logs(logs) if m.endswith('"GET /fail HTTP/1.1" 200')]
    assert_serves(server, raw_client)


def test_return_without_response_gets_500(serve, raw_client, logs):
    """An app that returns without responding: 500 and an error line."""

    async def silent(scope, receive, send):
        return None

    server = serve(serving_root(silent))
    client = raw_client(server.port)
    client.send(b"GET /silent HTTP/1.1\r\nHost: x\r\n\r\n")
    read_error_response(client, 500, "Internal Server Error")
    assert error_logs(logs, logging.ERROR) == ["ASGI callable returned without starting response."]
    assert tracebacks(logs) == []
    assert_serves(server, raw_client)


def test_return_without_completing_response_closes(serve, raw_client, logs):
    """An app that returns after the start without the final body: an error
    line, and the connection is closed mid-response."""

    async def unfinished(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})

    server = serve(serving_root(unfinished))
    client = raw_client(server.port)
    client.send(b"GET /unfinished HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(ConnectionError):
        client.read_response()  # 5 of the 10 announced bytes, then the close
    assert error_logs(logs, logging.ERROR) == ["ASGI callable returned without completing response."]
    assert tracebacks(logs) == []
    assert_serves(server, raw_client)


def test_non_none_return_value_is_logged(serve, raw_client, logs):
    """An app that returns a value: the response it sent is delivered, the
    error logged, and the (keep-alive) connection closed."""

    async def returning(scope, receive, send):
        await app(scope, receive, send)
        if scope["path"] != "/":
            return "unexpected"

    server = serve(returning)
    client = raw_client(server.port)
    client.send(b"GET /value HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_ok(client.read_response())
    assert client.is_closed()
    assert error_logs(logs, logging.ERROR) == ["ASGI callable should return None, but returned 'unexpected'."]
    assert tracebacks(logs) == []
    assert_serves(server, raw_client)


# -- 9. invalid ASGI messages ----------------------------------------------


def start(status=200, headers=None):
    return {"type": "http.response.start", "status": status, "headers": headers if headers is not None else []}


def body(data=b"", more_body=False):
    return {"type": "http.response.body", "body": data, "more_body": more_body}


CL2 = [(b"content-length", b"2")]

# name: (messages, error pattern, what the client sees)
#   "500": the server answers 500 (nothing was sent yet)
#   "closed": the connection is closed without a byte
#   "complete-then-closed": the response went out whole, then the close
#   "truncated": head and part of the body, then the close
INVALID_MESSAGES = {
    "wrong-first-message": (
        [body(b"hi")],
        r"^Expected ASGI message 'http\.response\.start', but got 'http\.response\.body'\.$",
        "500",
    ),
    "wrong-second-message": (
        [start(headers=CL2), start(headers=CL2)],
        r"^Expected ASGI message 'http\.response\.body', but got 'http\.response\.start'\.$",
        "closed",
    ),
    "message-after-completion": (
        [start(headers=CL2), body(b"ok"), body(b"more")],
        r"^Unexpected ASGI message 'http\.response\.body' sent, after response already completed\.$",
        "complete-then-closed",
    ),
    "status-str": ([start(status="200"), body(b"ok")], r"status", "500"),
    "status-99": ([start(status=99), body(b"ok")], r"\b99\b", "500"),
    "header-value-crlf": ([start(headers=[(b"x-a", b"1\r\nx-b: 2")]), body()], r"header value", "500"),
    "header-name-space": ([start(headers=[(b"bad name", b"1")]), body()], r"header name", "500"),
    "header-name-empty": ([start(headers=[(b"", b"1")]), body()], r"header name", "500"),
    "header-name-colon": ([start(headers=[(b"x-a:", b"1")]), body()], r"header name", "500"),
    "header-value-nul": ([start(headers=[(b"x-a", b"1\x002")]), body()], r"header value", "500"),
    "header-value-del": ([start(headers=[(b"x-a", b"1\x7f")]), body()], r"header value", "500"),
    "header-name-str": ([start(headers=[("x-a", b"1")]), body()], r"bytes", "500"),
    # Framing the app gets wrong never goes on the wire (issue 17, defect 7).
    "status-103": ([start(status=103), body(b"ok")], r"\b103\b.*informational", "500"),
    "status-199": ([start(status=199), body(b"ok")], r"\b199\b.*informational", "500"),
    "content-lengths-conflicting": (
        [start(headers=[*CL2, (b"content-length", b"3")]), body(b"ok")],
        r"Conflicting Content-Length",
        "500",
    ),
    "content-length-over-int64": (
        [start(headers=[(b"content-length", b"9999999999999999999")]), body(b"ok")],
        r"Invalid Content-Length",
        "500",
    ),
    "transfer-encoding-chunked-then-gzip": (
        [start(headers=[(b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"gzip")]), body(b"ok")],
        r"More than one Transfer-Encoding",
        "500",
    ),
    "transfer-encoding-gzip": (
        [start(headers=[(b"transfer-encoding", b"gzip")]), body(b"ok")],
        r"Unsupported Transfer-Encoding b'gzip'",
        "500",
    ),
    "body-str": ([start(headers=CL2), body("ok")], r"bytes", "closed"),
    "body-longer-than-content-length": (
        [start(headers=CL2), body(b"abc")],
        r"^Response content longer than Content-Length$",
        "closed",
    ),
    "body-shorter-than-content-length": (
        [start(headers=[(b"content-length", b"5")]), body(b"ab")],
        r"^Response content shorter than Content-Length$",
        "truncated",
    ),
}


def test_invalid_asgi_messages(serve, raw_client, logs):
    """For each invalid message send() raises RuntimeError in the app (which
    reports and re-raises it); the server answers 500 or closes cleanly, logs
    the traceback once, and serves the next connection."""
    errors: list[str] = []

    async def misbehaving(scope, receive, send):
        messages = INVALID_MESSAGES[scope["path"][1:]][0]
        await read_body(receive)
        try:
            for message in messages:
                await send(message)
        except RuntimeError as exc:
            errors.append(str(exc))
            raise

    server = serve(serving_root(misbehaving))

    def check(name, case):
        _, pattern, outcome = case
        logs.clear()
        errors.clear()
        client = raw_client(server.port)
        client.send(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % name.encode())
        if outcome == "500":
            read_error_response(client, 500, "Internal Server Error")
        elif outcome == "closed":
            assert client.read_to_eof() == b""
        elif outcome == "complete-then-closed":
            response = client.read_response()
            assert (response.status, response.body) == (200, b"ok")
            assert client.is_closed()
        else:
            raw = client.read_to_eof()
            assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"content-length: 5\r\n" in raw
            assert raw.endswith(b"\r\n\r\nab")

        assert len(errors) == 1, errors
        assert re.search(pattern, errors[0]), errors[0]
        record = app_traceback(logs, RuntimeError)
        assert str(record.exc_info[1]) == errors[0]
        assert_serves(server, raw_client)
        assert loop_errors(logs) == []

    check_cases(INVALID_MESSAGES, check)


def test_repeated_content_length_beside_chunked_goes_out_chunked_only(serve, raw_client):
    """`content-length: 3` twice and `transfer-encoding: chunked`: one framing
    on the wire (chunked, RFC 9112 6.3), and the connection goes on."""
    headers = [(b"content-length", b"3"), (b"content-length", b"3"), (b"transfer-encoding", b"chunked")]
    server = serve(serving_root(simple_app(b"abc", headers=headers)))
    client = raw_client(server.port)
    for _ in range(2):
        client.send(b"GET /framed HTTP/1.1\r\nHost: x\r\n\r\n")
        response = client.read_response()
        assert response.header_list("transfer-encoding") == ["chunked"]
        assert response.header("content-length") is None
        assert response.body == b"abc"
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_ok(client.read_response())


# -- 10. HEAD requests and the server's own errors --------------------------
# The head alone, as for any response to HEAD (RFC 9110 9.3.2), with the
# Content-Length the body would have; then the close.

HEAD_REFUSALS = {
    "malformed-header": (b"HEAD / HTTP/1.1\r\nHost x\r\n\r\n", 400, INVALID_REQUEST),
    "broken-chunk": (
        b"HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
        INVALID_REQUEST,
    ),
    "head-too-large": (
        b"HEAD / HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"a" * 4 * HEAD_LIMIT + b"\r\n\r\n",
        431,
        refused_with(431),
    ),
    "unsupported-coding": (
        b"HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
        refused_with(501),
    ),
    "http-2": (b"HEAD / HTTP/2.0\r\nHost: x\r\n\r\n", 505, refused_with(505)),
    "no-host": (b"HEAD / HTTP/1.1\r\n\r\n", 400, INVALID_REQUEST),
    "two-hosts": (b"HEAD / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, INVALID_REQUEST),
}


def test_head_request_refused_by_the_server_gets_no_body(serve, raw_client, logs):
    server = serve(app, limit_request_header_size=HEAD_LIMIT)

    def check(name, case):
        data, status, warning = case
        logs.clear()
        client = raw_client(server.port)
        client.send(data)
        body = BAD_REQUEST_BODY if status == 400 else None  # else the reason phrase
        read_error_response(client, status, http.HTTPStatus(status).phrase, body, head_request=True)
        assert_refusal_logged(logs, warning)
        assert_serves(server, raw_client)

    check_cases(HEAD_REFUSALS, check)


def test_malformed_request_after_a_head_request_gets_its_body(serve, raw_client):
    """The 400 to a request after a HEAD one is not taken for the HEAD's."""
    server = serve(app)
    client = raw_client(server.port)
    client.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\ngarbage\r\n\r\n")
    assert client.read_response(head_request=True).status == 200
    read_bad_request(client)


def test_half_sent_head_request_gets_408_without_body(serve, raw_client):
    server = serve(app, timeout_request_headers=0.5)
    client = raw_client(server.port)
    client.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n")
    read_error_response(client, 408, "Request Timeout", head_request=True)


def test_head_request_whose_app_fails_gets_500_without_body(serve, raw_client, logs):
    """An exception, a return without a response, a 1xx refused: the 500
    is the head alone."""

    async def failing(scope, receive, send):
        if scope["path"] == "/raise":
            raise AppFailure("boom")
        if scope["path"] == "/103":
            await send(start(status=103))

    server = serve(serving_root(failing))
    for path in ("/raise", "/return", "/103"):
        client = raw_client(server.port)
        client.send(b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        read_error_response(client, 500, "Internal Server Error", head_request=True)
    assert len(tracebacks(logs)) == 2
    assert error_logs(logs, logging.ERROR)[1] == "ASGI callable returned without starting response."


def test_head_request_over_the_concurrency_limit_gets_503_without_body(serve, raw_client):
    gate = Gate()
    server = serve(gated_app(gate), limit_concurrency=1)
    first = raw_client(server.port)
    first.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    assert gate.entered.wait(5)
    second = raw_client(server.port)
    second.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    read_error_response(second, 503, "Service Unavailable", head_request=True)
    gate.open()
    assert_ok(first.read_response())


# -- fuzz ------------------------------------------------------------------

FUZZ_REQUEST_LINES = [
    b"GET / HTTP/1.1\r\n",
    b"POST /upload?x=1 HTTP/1.1\r\n",
    b"HEAD / HTTP/1.0\r\n",
    b"PUT /a%20b HTTP/1.1\r\n",
    b"OPTIONS * HTTP/1.1\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\n",
    b"GET http://example.com/p?q HTTP/1.1\r\n",
    b"DELETE /x HTTP/2.0\r\n",
]
FUZZ_HEADER_LINES = [
    b"Host: example.com\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: 100\r\n",
    b"Content-Length: 18446744073709551616\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Expect: 100-continue\r\n",
    b"Upgrade: websocket\r\n",
    b"X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n",
    b"X-Forwarded-Proto: https\r\n",
    b"X-Long: " + b"x" * 300 + b"\r\n",
    b" folded continuation\r\n",
]
FUZZ_BODY_PIECES = [
    b"hello",
    b"5\r\nhello\r\n",
    b"3;ext=1\r\nabc\r\n",
    b"0\r\n\r\n",
    b"0\r\nTrailer: x\r\n\r\n",
    b"ffffffffffffffffff\r\n",
    b"\r\n",
]
FUZZ_FRAGMENTS = FUZZ_REQUEST_LINES + FUZZ_HEADER_LINES + FUZZ_BODY_PIECES + [b":", b" ", b"\n", b"\r", b"\x00"]


def fuzz_input(rng: random.Random) -> bytes:
    """Up to 2 KiB: a plausible request (sometimes two), then a few random
    mutations: bytes inserted, deleted or replaced by fragments, truncation."""
    parts = [rng.choice(FUZZ_REQUEST_LINES)]
    parts += [rng.choice(FUZZ_HEADER_LINES) for _ in range(rng.randint(0, 6))]
    parts.append(b"\r\n")
    parts += [rng.choice(FUZZ_BODY_PIECES) for _ in range(rng.randint(0, 4))]
    if rng.random() < 0.3:
        parts += [rng.choice(FUZZ_REQUEST_LINES), b"Host: x\r\n\r\n"]
    data = bytearray(b"".join(parts))
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        position = rng.randrange(len(data) + 1)
        kind = rng.random()
        if kind < 0.35:
            data[position:position] = rng.randbytes(rng.randint(1, 16))
        elif kind < 0.55:
            del data[position : position + rng.randint(1, 8)]
        elif kind < 0.85:
            data[position:position] = rng.choice(FUZZ_FRAGMENTS)
        else:
            del data[position:]
    if rng.random() < 0.1:
        data += rng.randbytes(rng.randint(1, 1024))
    return bytes(data[:2048])


def test_fuzz_random_requests(serve, raw_client, logs):
    """200 random inputs, each on its own half-closed connection: every
    connection ends (answered or closed) and the server keeps serving."""

    async def tolerant(scope, receive, send):
        while True:  # read the body, whatever happens to the connection
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await app(scope, _no_body, send)

    async def _no_body():
        return {"type": "http.request", "body": b"", "more_body": False}

    server = serve(tolerant, timeout_request_headers=10)
    rng = random.Random(1234)
    started = time.monotonic()
    for index in range(200):
        data = fuzz_input(rng)
        client = raw_client(server.port, timeout=2.0)
        try:
            client.send(data)
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # refused mid-send: the close below is what counts
        try:
            client.read_to_eof()
        except (ConnectionResetError, BrokenPipeError):
            pass
        except TimeoutError:
            pytest.fail(f"input #{index} left the connection open 2 s after the half-close: {data!r}")
        client.close()
        assert time.monotonic() - started < 60
    assert wait_until(lambda: not server.state.tasks and not server.state.connections, 3.0), (
        f"{len(server.state.tasks)} tasks / {len(server.state.connections)} connections left"
    )
    assert loop_errors(logs) == []
    assert tracebacks(logs) == []
    assert server.thread.is_alive()
    assert_serves(server, raw_client)
