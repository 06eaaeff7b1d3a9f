"""Request bodies and flow control, in memory (tests/http_harness.py): the
`http.request` messages and their `more_body` flags, read backpressure,
`Expect: 100-continue`, `http.disconnect`, and write backpressure."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import read_body, respond
from tests.http_samples import GET

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
DISCONNECT = {"type": "http.disconnect"}


def request(data: bytes = b"", more_body: bool = False) -> dict:
    return {"type": "http.request", "body": data, "more_body": more_body}


def post(path: str = "/", body: bytes = b"", *headers: bytes, version: bytes = b"1.1") -> bytes:
    lines = b"".join(header + b"\r\n" for header in headers)
    return b"POST %s HTTP/%s\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path.encode(),
        version,
        len(body),
        lines,
        body,
    )


def chunked_post(*chunks: bytes) -> bytes:
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"


class EchoApp:
    """Reads the whole body (noting each message), then echoes it."""

    def __init__(self):
        self.messages: list[dict] = []

    async def __call__(self, scope, receive, send):
        data = b""
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] != "http.request":
                return
            data += message["body"]
            if not message["more_body"]:
                break
        await respond(send, data)


# -- request bodies ----------------------------------------------------------------


def test_content_length_body_in_one_read_is_one_message(harness):
    app = EchoApp()
    conn = harness.connect(app)
    conn.send(post("/", b"hello"))
    assert app.messages == [request(b"hello")]
    assert conn.response().body == b"hello"
    assert not conn.closed


@pytest.mark.parametrize("method", [b"GET", b"POST"])
def test_no_body_gives_one_empty_message(harness, method):
    app = EchoApp()
    conn = harness.connect(app)
    conn.send(
        method + b" / HTTP/1.1\r\nHost: x\r\n" + (b"Content-Length: 0\r\n" if method == b"POST" else b"") + b"\r\n"
    )
    assert app.messages == [request()]
    assert conn.response().body == b""


def test_body_arriving_in_pieces_gives_more_body_messages(harness):
    """Each read brings what it has to the waiting app, more_body=True until
    the last piece."""
    app = EchoApp()
    conn = harness.connect(app)
    conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n")
    conn.send(b"abc", b"def", b"ghi")
    assert app.messages == [request(b"abc", True), request(b"def", True), request(b"ghi")]
    assert conn.response().body == b"abcdefghi"


def test_body_completed_in_one_read_is_one_message(harness):
    """An app already waiting when the rest of the body comes in one read
    gets it in one message, with more_body=False."""
    app = EchoApp()
    conn = harness.connect(app)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n"
    conn.send(head)
    conn.send(b"abcdef")
    assert app.messages == [request(b"abcdef")]


def test_chunked_body_byte_by_byte(harness):
    """A chunked body (extensions, trailers) fed one byte per read: the app
    gets the payload intact, and the connection serves the next request."""
    app = EchoApp()
    conn = harness.connect(app)
    data = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    conn.send(*(data[i : i + 1] for i in range(len(data))))
    assert conn.response().body == b"hello world"
    assert b"".join(message["body"] for message in app.messages) == b"hello world"
    assert [message["more_body"] for message in app.messages][-1] is False
    assert all(message["more_body"] for message in app.messages[:-1])
    conn.send(chunked_post(b"again"))
    assert conn.response().body == b"again"


def test_body_read_after_it_all_arrived(harness):
    """Body that arrived before the app asked for it is handed over in one
    message (it was buffered)."""
    gate = asyncio.Event()
    app = EchoApp()

    async def late_reader(scope, receive, send):
        await gate.wait()
        await app(scope, receive, send)

    conn = harness.connect(late_reader)
    conn.send(chunked_post(b"ab", b"cd"))
    gate.set()
    harness.settle()
    assert app.messages == [request(b"abcd")]


def test_receive_after_the_body_waits_for_the_disconnect(harness):
    got = []

    async def app(scope, receive, send):
        got.append(await receive())
        got.append(await receive())

    conn = harness.connect(app)
    conn.send(post("/", b"hi"))
    assert got == [request(b"hi")]
    conn.disconnect()
    assert got == [request(b"hi"), DISCONNECT]


def test_receive_after_the_response_returns_disconnect_at_once(harness):
    got = []

    async def app(scope, receive, send):
        await receive()
        await respond(send, b"done")
        got.append(await receive())

    conn = harness.connect(app)
    conn.send(post("/", b"hi"))
    assert got == [DISCONNECT]
    assert conn.response().body == b"done"
    assert not conn.closed


# -- read backpressure -------------------------------------------------------------


def test_unread_body_pauses_reading_and_reading_resumes_when_the_app_reads(harness):
    """An app that does not read: past the buffer limit (64 KiB) the server
    stops reading, so further body stays with the client; once the app
    reads, reading resumes and every byte arrives."""
    size = 512 * 1024
    piece = 16 * 1024
    gate = asyncio.Event()
    sizes = []

    async def app(scope, receive, send):
        await gate.wait()
        total = 0
        while True:
            message = await receive()
            sizes.append(len(message["body"]))
            total += len(message["body"])
            if not message["more_body"]:
                break
        await respond(send, b"%d" % total)

    conn = harness.connect(app)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
    conn.send(head)
    for _ in range(size // piece):
        conn.send(b"x" * piece)
    assert conn.reading_paused
    taken = sum(len(data) for data in conn.data_received_calls()) - len(head)
    assert taken < 128 * 1024, f"read {taken} bytes of body the app did not ask for"
    assert len(conn.held) == size - taken
    gate.set()
    harness.settle()
    assert conn.response().body == b"%d" % size
    assert not conn.reading_paused
    assert conn.held == b""
    assert sizes[0] < 128 * 1024


def test_unread_body_is_dropped_after_the_response(harness):
    """An app that answers without reading a large body: reading resumes,
    the rest of the body is read and dropped, and the next request on the
    connection is served."""
    size = 300 * 1024
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["path"])
        await respond(send, scope["path"].encode())

    conn = harness.connect(app)
    conn.send(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    assert conn.response().body == b"/big"
    for _ in range(size // 4096):
        conn.send(b"x" * 4096)
    assert not conn.reading_paused
    conn.send(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.response().body == b"/next"
    assert calls == ["/big", "/next"]
    assert not conn.closed


# -- Expect: 100-continue ----------------------------------------------------------


def continue_app(read: bool):
    async def app(scope, receive, send):
        if read:
            await respond(send, b"read:" + await read_body(receive))
        else:
            await respond(send, b"not read")

    return app


EXPECT_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"


def test_100_continue_when_the_app_reads(harness):
    conn = harness.connect(continue_app(read=True))
    conn.send(EXPECT_HEAD)
    assert conn.received == CONTINUE
    assert conn.response().status == 100
    conn.send(b"hello")
    assert conn.response().body == b"read:hello"
    # Exactly one per request that waits, on the same connection.
    conn.send(EXPECT_HEAD)
    assert conn.unread == CONTINUE
    conn.response()
    conn.send(b"again")
    assert conn.response().body == b"read:again"
    assert conn.received.count(CONTINUE) == 2


def test_no_100_continue_when_the_body_came_with_the_head(harness):
    conn = harness.connect(continue_app(read=True))
    conn.send(EXPECT_HEAD + b"hello")
    response = conn.response()
    assert (response.status, response.body) == (200, b"read:hello")


def test_no_100_continue_when_the_app_answers_without_reading(harness):
    """The body the client sends anyway is dropped; the connection serves
    the next request."""
    conn = harness.connect(continue_app(read=False))
    conn.send(EXPECT_HEAD)
    response = conn.response()
    assert (response.status, response.body) == (200, b"not read")
    assert response.header("connection") is None
    conn.send(b"hello" + post("/", b"second"))
    assert conn.response().body == b"not read"
    assert CONTINUE not in conn.received
    assert not conn.closed


def test_no_100_continue_for_http_1_0(harness):
    """RFC 9110 10.1.1: an HTTP/1.0 client's 100-continue is ignored."""
    conn = harness.connect(continue_app(read=True))
    conn.send(EXPECT_HEAD.replace(b"HTTP/1.1", b"HTTP/1.0"))
    assert conn.received == b""
    conn.send(b"hello")
    response = conn.response()
    assert (response.status, response.body) == (200, b"read:hello")
    assert conn.closed


# -- http.disconnect -----------------------------------------------------------------


def test_disconnect_while_waiting_for_the_body(harness):
    app = EchoApp()
    server = harness.server(app)
    conn = server.connect()
    conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
    conn.disconnect()
    assert app.messages == [request(b"half", True), DISCONNECT]
    assert not server.state.tasks
    assert not server.state.connections
    assert conn.received == b""


def test_half_close_mid_body_disconnects_the_app(harness):
    """The body can never be completed: the app's receive() gets
    http.disconnect and the connection is closed."""
    app = EchoApp()
    conn = harness.connect(app)
    conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    conn.send_eof()
    assert app.messages == [request(b"abc", True), DISCONNECT]
    assert conn.closed and conn.lost


def test_send_after_disconnect_is_ignored(harness):
    """After http.disconnect, the response the app sends anyway is dropped
    without an error."""
    outcome = []

    async def app(scope, receive, send):
        await receive()
        message = await receive()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"late", "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except Exception as exc:  # reported to the test
            outcome.append(exc)
        outcome.append(message)

    server = harness.server(app)
    conn = server.connect()
    conn.send(post("/", b"x"))
    conn.disconnect()
    assert outcome == [DISCONNECT]
    assert conn.received == b""
    assert conn.transport.writes_after_close == 0
    assert server.messages() == []


def test_two_waiting_receives_and_one_cancelled(harness):
    """Cancelling one of two receive() calls that wait leaves the other
    waiting; it gets http.disconnect."""
    outcome = []

    async def app(scope, receive, send):
        await receive()
        listener = asyncio.ensure_future(receive())
        poll = asyncio.ensure_future(receive())
        await asyncio.sleep(0)
        poll.cancel()
        await asyncio.sleep(0)
        outcome.append(listener.done())
        await respond(send, b"ok")
        outcome.append(await listener)

    conn = harness.connect(app)
    conn.send(post("/", b"hi"))
    assert conn.response().body == b"ok"
    assert outcome == [False, DISCONNECT]


# -- write backpressure ----------------------------------------------------------------


def streaming_app(count: int, chunk: bytes, progress: list):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(count):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            progress.append(len(progress))
        await send({"type": "http.response.body", "body": b""})
        progress.append("done")

    return app


def test_pause_writing_makes_send_wait_until_resume_writing(harness):
    progress: list = []
    conn = harness.connect(streaming_app(5, b"data", progress))
    conn.pause_writing()
    conn.send(GET)
    # The first send() of a body writes, then waits for the drain.
    assert progress == []
    assert conn.received.endswith(b"4\r\ndata\r\n")
    harness.run_for(0.01)
    assert progress == []
    conn.resume_writing()
    assert progress == [0, 1, 2, 3, 4, "done"]
    assert conn.response().body == b"data" * 5


def test_write_buffer_limits_pause_and_resume_the_app(harness):
    """With a transport buffer of 64 KiB high / 16 KiB low water, an app
    streaming 64 x 16 KiB stops once the client stops reading, and goes on
    each time the client reads."""
    progress: list = []
    chunk = b"z" * 16 * 1024
    server = harness.server(streaming_app(64, chunk, progress))
    conn = server.connect(write_buffer=(64 * 1024, 16 * 1024))
    conn.send(GET)
    stuck_at = len(progress)
    assert 0 < stuck_at < 8
    assert conn.transport.protocol_writing_paused
    assert conn.event_names().count("pause_writing") == 1
    for _ in range(100):
        if "done" in progress:
            break
        conn.read()
        assert len(progress) > stuck_at
        stuck_at = len(progress)
    assert progress[-1] == "done"
    assert conn.response().body == chunk * 64


def test_disconnect_while_send_waits_for_the_drain(harness):
    """A send() waiting for the client to read returns once the client is
    gone, and the app ends normally."""
    progress: list = []
    server = harness.server(streaming_app(1000, b"y" * 65536, progress))
    conn = server.connect(write_buffer=(65536, 16384))
    conn.send(GET)
    assert "done" not in progress
    conn.disconnect()
    assert progress[-1] == "done"
    assert not server.state.tasks
    assert server.messages() == []


def test_cancelling_a_send_that_waits_for_the_drain_closes(harness):
    outcome = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000000")]})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x" * 1000, "more_body": True})
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    server = harness.server(app)
    conn = server.connect()
    conn.pause_writing()
    conn.send(GET)
    (task,) = server.state.tasks
    task.cancel()
    harness.settle()
    assert outcome == ["cancelled"]
    assert conn.closed
    assert not server.state.tasks
