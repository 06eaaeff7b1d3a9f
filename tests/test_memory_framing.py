"""Response framing, in memory (tests/http_harness.py): Content-Length and
chunked responses, length mismatches, HEAD, and the statuses without a body.

Each test checks the exact bytes the server writes where the README promises
them: the head is held until the first body message so that a small response
leaves in one write, a body without Content-Length is chunked for HTTP/1.1
(`transfer-encoding: chunked`, last chunk `0\\r\\n\\r\\n`) and close-delimited
for HTTP/1.0 (`connection: close`).
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.http_samples import GET, error_response

HEAD = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"


def start(status=200, headers=()):
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


def body(data=b"", more_body=False):
    return {"type": "http.response.body", "body": data, "more_body": more_body}


def sending(*messages, errors=None):
    """An app that sends `messages`; with `errors` (a list), a RuntimeError
    from send() is noted there and re-raised."""

    async def app(scope, receive, send):
        for message in messages:
            try:
                await send(message)
            except RuntimeError as exc:
                if errors is not None:
                    errors.append(str(exc))
                raise

    return app


def writes(conn) -> list[bytes]:
    return [event[1] for event in conn.events if event[0] == "write"]


# -- Content-Length ----------------------------------------------------------


def test_content_length_response_leaves_in_one_write(harness):
    conn = harness.connect(sending(start(headers=[(b"Content-Length", b"5")]), body(b"Hello")))
    conn.send(GET)
    assert writes(conn) == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nHello"]
    response = conn.response()
    assert (response.framing, response.body) == ("content-length", b"Hello")
    assert response.header("connection") is None
    assert not conn.closed


def test_default_headers_come_first(harness):
    """state.default_headers (date, server, --header) go right after the
    status line, before the application's headers."""
    server = harness.server(
        sending(start(headers=[(b"content-length", b"2")]), body(b"ok")), default_headers=b"server: cppcorn\r\n"
    )
    conn = server.connect()
    conn.send(GET)
    assert conn.received == b"HTTP/1.1 200 OK\r\nserver: cppcorn\r\ncontent-length: 2\r\n\r\nok"


def test_content_length_body_in_pieces(harness):
    parts = [b"ab", b"", b"cde", b"f"]
    messages = [body(part, more_body=True) for part in parts] + [body(b"")]
    conn = harness.connect(sending(start(headers=[(b"content-length", b"6")]), *messages))
    conn.send(GET)
    response = conn.response()
    assert response.body == b"abcdef"
    assert response.header("transfer-encoding") is None
    assert conn.unread == b""
    assert not conn.closed


def test_head_is_held_until_the_first_body_message(harness):
    gate = asyncio.Event()

    async def app(scope, receive, send):
        await send(start(headers=[(b"content-length", b"2")]))
        await gate.wait()
        await send(body(b"ok"))

    conn = harness.connect(app)
    conn.send(GET)
    assert conn.received == b""
    gate.set()
    harness.settle()
    assert writes(conn) == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]


def test_large_content_length_body_is_byte_exact(harness):
    data = bytes(range(256)) * 1024  # 256 KiB: larger than one copied write
    conn = harness.connect(
        sending(start(headers=[(b"content-length", b"%d" % (2 * len(data)))]), body(data, True), body(data))
    )
    conn.send(GET)
    response = conn.response()
    assert response.body == data + data
    assert conn.unread == b""


# -- Content-Length mismatch ---------------------------------------------------


def test_body_longer_than_content_length_is_an_error(harness):
    """More body than announced, in the first body message: send() raises, the
    head was never sent, the connection closes without a byte."""
    errors = []
    server = harness.server(sending(start(headers=[(b"content-length", b"2")]), body(b"abc"), errors=errors))
    conn = server.connect()
    conn.send(GET)
    assert errors == ["Response content longer than Content-Length"]
    assert conn.received == b""
    assert conn.closed
    assert server.messages()[0].startswith("Exception in ASGI application")


def test_body_longer_than_content_length_in_a_later_message(harness):
    """What was within the length went out; the message that goes past it
    raises, and the connection closes with the response cut short."""
    errors = []
    conn = harness.connect(
        sending(start(headers=[(b"content-length", b"4")]), body(b"abc", True), body(b"de"), errors=errors)
    )
    conn.send(GET)
    assert errors == ["Response content longer than Content-Length"]
    assert conn.closed
    response = conn.response(allow_incomplete=True)
    assert (response.body, response.complete) == (b"abc", False)


@pytest.mark.parametrize("pieces", [[b"ab"], [b"a", b"b"]], ids=["one-message", "two-messages"])
def test_body_shorter_than_content_length_is_an_error_and_closes(harness, pieces):
    """The final body message leaves the body short: what there is goes
    out, send() raises, the connection is closed."""
    errors = []
    messages = [body(piece, True) for piece in pieces[:-1]] + [body(pieces[-1])]
    server = harness.server(sending(start(headers=[(b"content-length", b"5")]), *messages, errors=errors))
    conn = server.connect()
    conn.send(GET)
    assert errors == ["Response content shorter than Content-Length"]
    assert conn.closed
    response = conn.response(allow_incomplete=True)
    assert response.raw_head == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
    assert (response.body, response.complete) == (b"ab", False)


def test_shorter_body_caught_by_the_app_still_closes(harness):
    """An app that swallows the error and returns: the response is not
    complete, so the connection must not be reused."""

    async def app(scope, receive, send):
        await send(start(headers=[(b"content-length", b"5")]))
        with contextlib.suppress(RuntimeError):
            await send(body(b"ab"))

    server = harness.server(app)
    conn = server.connect()
    conn.send(GET)
    assert conn.closed
    assert conn.response(allow_incomplete=True).body == b"ab"


# -- chunked -------------------------------------------------------------------


def test_response_without_content_length_is_chunked(harness):
    """Empty more_body messages neither write a chunk nor end the stream."""
    parts = [b"Hello", b"", b", ", b"", b"world!"]
    conn = harness.connect(sending(start(), *[body(part, True) for part in parts], body(b"")))
    conn.send(GET)
    assert conn.received == (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nHello\r\n2\r\n, \r\n6\r\nworld!\r\n0\r\n\r\n"
    )
    response = conn.response()
    assert response.chunks == [b"Hello", b", ", b"world!"]
    assert not conn.closed


def test_chunked_final_message_with_body(harness):
    conn = harness.connect(sending(start(), body(b"Hello")))
    conn.send(GET)
    assert conn.received == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nHello\r\n0\r\n\r\n"


def test_chunked_empty_body_is_the_last_chunk_alone(harness):
    conn = harness.connect(sending(start(), body(b"")))
    conn.send(GET)
    assert conn.received == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"


def test_chunked_stream_is_not_ended_by_an_empty_message(harness):
    gate = asyncio.Event()

    async def app(scope, receive, send):
        await send(start())
        await send(body(b"first", True))
        await send(body(b"", True))
        await gate.wait()
        await send(body(b"second"))

    conn = harness.connect(app)
    conn.send(GET)
    assert conn.received.endswith(b"\r\n\r\n5\r\nfirst\r\n")
    gate.set()
    harness.settle()
    assert conn.received.endswith(b"\r\n\r\n5\r\nfirst\r\n6\r\nsecond\r\n0\r\n\r\n")


def test_large_chunks_are_framed(harness):
    big = b"x" * 100_000
    conn = harness.connect(sending(start(), body(big, True), body(b"y" * 20_000)))
    conn.send(GET)
    response = conn.response()
    assert response.chunks == [big, b"y" * 20_000]
    assert response.raw_body.endswith(b"\r\n0\r\n\r\n")
    assert conn.unread == b""


@pytest.mark.parametrize(
    "headers",
    [
        [(b"transfer-encoding", b"chunked"), (b"content-length", b"8")],
        [(b"content-length", b"8"), (b"transfer-encoding", b"chunked")],
    ],
    ids=["chunked-first", "length-first"],
)
def test_app_chunked_and_content_length_sends_chunked_only(harness, headers):
    conn = harness.connect(sending(start(headers=headers), body(b"abc", True), body(b"defgh")))
    conn.send(GET)
    assert conn.received == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"3"), (b"content-length", b"3"), (b"transfer-encoding", b"chunked")],
        [(b"content-length", b"3"), (b"transfer-encoding", b"chunked"), (b"content-length", b"3")],
        [(b"transfer-encoding", b"chunked"), (b"content-length", b"3"), (b"content-length", b"3")],
    ],
    ids=["lengths-first", "chunked-between", "chunked-first"],
)
def test_repeated_content_length_beside_chunked_is_dropped_whole(harness, headers):
    conn = harness.connect(sending(start(headers=[(b"x-a", b"1"), *headers, (b"x-b", b"2")]), body(b"abc")))
    conn.send(GET + GET)
    expected = b"HTTP/1.1 200 OK\r\nx-a: 1\r\nx-b: 2\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert conn.received == expected * 2
    assert not conn.closed


def test_identical_content_lengths_go_out_once(harness):
    """RFC 9110 8.6 lets a recipient take identical values as one; the
    server sends one (as h11 does)."""
    lengths = [(b"content-length", b"3"), (b"Content-Length", b" 3")]
    conn = harness.connect(sending(start(headers=lengths), body(b"abc")))
    conn.send(GET)
    assert conn.received == b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc"
    assert not conn.closed


SERVER_ERROR = error_response(500, b"Internal Server Error", b"Internal Server Error")


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ([(b"content-length", b"3"), (b"content-length", b"4")], "Conflicting Content-Length"),
        ([(b"content-length", b"3, 3")], "Invalid Content-Length"),
        ([(b"content-length", b"-1")], "Invalid Content-Length"),
        ([(b"content-length", b"9223372036854775808")], "Invalid Content-Length"),
        ([(b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"gzip")], "More than one Transfer-Encoding"),
        ([(b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"chunked")], "More than one Transfer-Encoding"),
        ([(b"transfer-encoding", b"gzip")], "Unsupported Transfer-Encoding"),
        ([(b"transfer-encoding", b"gzip, chunked")], "Unsupported Transfer-Encoding"),
        ([(b"transfer-encoding", b"chunked, gzip")], "Unsupported Transfer-Encoding"),
    ],
    ids=[
        "two-lengths",
        "length-list",
        "negative-length",
        "length-over-int64",
        "chunked-then-gzip",
        "chunked-twice",
        "gzip",
        "gzip-chunked",
        "chunked-gzip",
    ],
)
def test_ambiguous_framing_from_the_app_is_refused(harness, headers, error):
    """Headers that would frame the response two ways never go out: send()
    raises, and the app's error is answered with 500 and the close."""
    errors = []
    conn = harness.connect(sending(start(headers=headers), body(b"abc"), errors=errors))
    conn.send(GET + GET)
    assert len(errors) == 1
    assert errors[0].startswith(error)
    assert conn.received == SERVER_ERROR
    assert conn.closed


# -- HEAD ----------------------------------------------------------------------


def test_head_keeps_content_length_and_sends_no_body(harness):
    conn = harness.connect(sending(start(headers=[(b"content-length", b"5")]), body(b"Hello")))
    conn.send(HEAD)
    assert conn.received == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
    assert conn.response(head=True).header("content-length") == "5"
    assert not conn.closed


def test_head_of_a_streaming_app_sends_headers_only(harness):
    """No body bytes, no chunk framing; the next response parses cleanly."""
    parts = [body(b"Hello", True), body(b"world", True), body(b"")]
    conn = harness.connect(sending(start(headers=[(b"content-type", b"text/plain")]), *parts))
    conn.send(HEAD)
    assert conn.received == b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n"
    conn.response(head=True)
    conn.send(GET)
    response = conn.response()
    assert (response.framing, response.body) == ("chunked", b"Helloworld")
    assert conn.unread == b""


def test_head_then_get_pipelined(harness):
    conn = harness.connect(sending(start(headers=[(b"content-length", b"5")]), body(b"Hello")))
    conn.send(HEAD + GET)
    assert conn.response(head=True).body == b""
    assert conn.response().body == b"Hello"
    assert conn.unread == b""


# -- statuses without a body ---------------------------------------------------


@pytest.mark.parametrize("status", [204, 304])
def test_status_without_body(harness, status):
    """204 and 304: no body bytes, no framing headers added; body bytes the
    app sends are dropped; the connection stays usable."""
    conn = harness.connect(sending(start(status, [(b"etag", b'"x"')]), body(b"dropped", True), body(b"too")))
    conn.send(GET)
    head = conn.received
    assert head.startswith(b"HTTP/1.1 %d " % status)
    assert head.endswith(b'\r\netag: "x"\r\n\r\n')
    assert b"transfer-encoding" not in head
    assert b"content-length" not in head
    assert b"connection" not in head
    assert not conn.closed


@pytest.mark.parametrize("status", [204, 304])
def test_chunked_from_the_app_sends_no_chunks_without_a_body(harness, status):
    """Its Transfer-Encoding stays on a 304 (the framing a 200 would have)
    but never on a 204 (RFC 9112 6.1)."""
    conn = harness.connect(sending(start(status, [(b"transfer-encoding", b"chunked")]), body(b"dropped")))
    conn.send(GET + GET)
    framing = b"transfer-encoding: chunked\r\n" if status == 304 else b""
    head = b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, b"No Content" if status == 204 else b"Not Modified", framing)
    assert conn.received == head * 2
    assert not conn.closed


def test_head_of_an_app_chunked_response_keeps_its_framing_without_chunks(harness):
    conn = harness.connect(sending(start(headers=[(b"transfer-encoding", b"chunked")]), body(b"dropped")))
    conn.send(HEAD)
    assert conn.received == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    assert not conn.closed


@pytest.mark.parametrize("status", [100, 101, 103, 199])
def test_informational_status_is_refused(harness, status):
    """A 1xx is never a final response: sent as one, the client would take
    the next response for this one's. send() raises; 500 and the close."""
    errors = []
    conn = harness.connect(sending(start(status), body(b"abc"), errors=errors))
    conn.send(GET + GET)
    assert errors == [f"ASGI 'http.response.start' status {status} is informational, not a final response."]
    assert conn.received == SERVER_ERROR
    assert conn.closed


def test_304_keeps_the_content_length_of_the_representation(harness):
    conn = harness.connect(sending(start(304, [(b"content-length", b"100")]), body(b"")))
    conn.send(GET)
    assert conn.received == b"HTTP/1.1 304 Not Modified\r\ncontent-length: 100\r\n\r\n"
    assert not conn.closed


# -- HTTP/1.0 --------------------------------------------------------------------


def test_http_1_0_body_without_length_is_close_delimited(harness):
    conn = harness.connect(sending(start(), body(b"Hello", True), body(b", world")))
    conn.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert conn.received == b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nHello, world"
    assert conn.closed
    response = conn.response()
    assert (response.framing, response.body) == ("close", b"Hello, world")


def test_http_1_0_with_content_length(harness):
    conn = harness.connect(sending(start(headers=[(b"content-length", b"2")]), body(b"ok")))
    conn.send(b"GET / HTTP/1.0\r\n\r\n")
    assert conn.received == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    assert conn.closed


def test_http_1_0_gets_no_chunked_framing_even_when_the_app_asks(harness):
    conn = harness.connect(sending(start(headers=[(b"transfer-encoding", b"chunked")]), body(b"ok")))
    conn.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    response = conn.response()
    assert response.header("transfer-encoding") is None
    assert (response.framing, response.body) == ("close", b"ok")
    assert conn.closed
