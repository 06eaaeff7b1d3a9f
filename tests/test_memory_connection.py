"""Connection state, in memory (tests/http_harness.py): keep-alive and close
decisions, pipelining, half-closed clients, deadlines (keep-alive timeout,
request-header timeout), graceful shutdown, the concurrency limit, and the
server state's counts."""

from __future__ import annotations

import asyncio
import logging

import pytest
from cppcorn.http.websocket import WebSocketSettings

from tests.http_samples import GET, error_response
from tests.websocket_client import CLOSE, SAMPLE_ACCEPT, SAMPLE_KEY, TEXT, close_payload, encode_frame

TIMEOUT_408 = error_response(408, b"Request Timeout", b"Request Timeout")
REFUSED_503 = error_response(503, b"Service Unavailable", b"Service Unavailable")


def get(path: str = "/", *headers: bytes, version: bytes = b"1.1") -> bytes:
    lines = b"".join(header + b"\r\n" for header in headers)
    return b"GET %s HTTP/%s\r\nHost: x\r\n%s\r\n" % (path.encode(), version, lines)


class PathApp:
    """Answers each request with its path (Content-Length framing, plus any
    `headers`); requests to a path in `gates` wait for that gate. `calls`
    lists the paths in the order the app was called, `done` those answered."""

    def __init__(self, headers=(), chunked=False):
        self.headers = list(headers)
        self.chunked = chunked
        self.gates: dict[str, asyncio.Event] = {}
        self.calls: list[str] = []
        self.done: list[str] = []

    def gate(self, path: str) -> asyncio.Event:
        return self.gates.setdefault(path, asyncio.Event())

    async def __call__(self, scope, receive, send):
        path = scope["path"]
        self.calls.append(path)
        if path in self.gates:
            await self.gates[path].wait()
        data = path.encode()
        headers = list(self.headers)
        if not self.chunked:
            headers.append((b"content-length", b"%d" % len(data)))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})
        self.done.append(path)


def open_gate(harness, app: PathApp, path: str) -> None:
    app.gate(path).set()
    harness.settle()


# -- keep-alive and close --------------------------------------------------------


def test_http_1_1_keeps_the_connection_alive(harness):
    app = PathApp()
    server = harness.server(app)
    conn = server.connect()
    for n in range(3):
        conn.send(get(f"/{n}"))
        response = conn.response()
        assert response.body == f"/{n}".encode()
        assert response.header("connection") is None
    assert not conn.closed
    assert server.state.total_requests == 3
    assert server.state.connections == {conn.protocol}
    assert not server.state.tasks  # no application runs between requests


def test_connection_close_from_the_client(harness):
    """The response says `connection: close`, the connection closes after it,
    and a request pipelined behind it is never answered."""
    app = PathApp()
    conn = harness.connect(app)
    conn.send(get("/1", b"Connection: close") + get("/2"))
    assert conn.received == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n/1"
    assert conn.closed and conn.lost
    assert app.calls == ["/1"]


def test_connection_close_from_the_app(harness):
    """The app's own `Connection: close` closes the connection after the
    response, without a second connection header."""
    conn = harness.connect(PathApp(headers=[(b"Connection", b"close")]))
    conn.send(GET)
    assert conn.received == b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n/"
    assert conn.closed


def test_connection_close_from_the_app_with_a_chunked_body(harness):
    conn = harness.connect(PathApp(headers=[(b"connection", b"close")], chunked=True))
    conn.send(GET)
    assert conn.received == (
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n1\r\n/\r\n0\r\n\r\n"
    )
    assert conn.closed


@pytest.mark.parametrize("value", [b"keep-alive, close", b"upgrade,  close"])
def test_connection_close_in_a_list_from_the_app(harness, value):
    conn = harness.connect(PathApp(headers=[(b"connection", value)]))
    conn.send(GET)
    assert conn.response().header("connection") == value.decode()
    assert conn.closed


def test_connection_close_first_in_a_list_from_the_app(harness):
    conn = harness.connect(PathApp(headers=[(b"connection", b"close, keep-alive")]))
    conn.send(GET)
    assert conn.response().body == b"/"
    assert conn.closed


def test_http_1_0_keep_alive_when_asked(harness):
    """HTTP/1.0 with `Connection: keep-alive` is kept alive, and the response
    says so (README: Uvicorn always closes)."""
    conn = harness.connect(PathApp())
    for path in ("/a", "/b"):
        conn.send(get(path, b"Connection: keep-alive", version=b"1.0"))
        assert conn.received.endswith(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n" + path.encode()
        )
        assert not conn.closed


def test_http_1_0_request_with_transfer_encoding_closes_after_it(harness):
    app = PathApp()
    conn = harness.connect(app)
    conn.send(
        b"POST /te HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n" + get("/next", b"Connection: keep-alive", version=b"1.0")
    )
    assert app.calls == ["/te"]  # answered, and nothing after it
    assert conn.response().header("connection") == "close"
    assert conn.closed


@pytest.mark.parametrize(
    "fields",
    [
        (b"Connection: keep-alive, close",),
        (b"Connection: close, keep-alive",),
        (b"Connection: keep-alive", b"Connection: close"),
    ],
    ids=["keep-alive-then-close", "close-then-keep-alive", "two-fields"],
)
def test_http_1_0_close_wins_over_keep_alive(harness, fields):
    app = PathApp()
    conn = harness.connect(app)
    conn.send(get("/first", *fields, version=b"1.0") + get("/second", b"Connection: keep-alive", version=b"1.0"))
    assert conn.response().header("connection") == "close"
    assert app.calls == ["/first"]
    assert conn.closed


def test_connect_body_is_its_body_and_the_connection_closes_after_it(harness):
    """ASGI has no tunnel: bytes after a CONNECT head are framed as its body
    (here they look like a request), and nothing after it is parsed."""
    bodies = []

    async def app(scope, receive, send):
        bodies.append((scope["method"], (await receive())["body"]))
        await send({"type": "http.response.start", "status": 405, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    conn = harness.connect(app)
    conn.send(b"CONNECT /x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(smuggled) + smuggled + GET)
    response = conn.response()
    assert (response.status, response.header("connection")) == (405, "close")
    assert bodies == [("CONNECT", smuggled)]
    assert conn.closed


# -- pipelining ----------------------------------------------------------------


def test_pipelined_requests_in_one_read_are_answered_in_order(harness):
    app = PathApp(chunked=True)
    conn = harness.connect(app)
    conn.send(b"".join(get(f"/{n}") for n in range(8)))
    assert len(conn.data_received_calls()) == 1
    assert [response.body for response in conn.responses()] == [f"/{n}".encode() for n in range(8)]
    assert conn.unread == b""
    assert app.calls == [f"/{n}" for n in range(8)]
    assert not conn.reading_paused
    assert not conn.closed


def test_next_request_waits_for_the_response_and_reading_pauses(harness):
    """The second request is not parsed (its app not called) until the first
    response is complete; meanwhile reading is paused, so what the client
    sends next stays with the transport; afterwards everything is answered
    in order and reading resumes."""
    app = PathApp()
    app.gate("/1")
    conn = harness.connect(app)
    conn.send(get("/1") + get("/2"))
    assert app.calls == ["/1"]
    assert conn.reading_paused
    assert conn.event_names()[-2:] == ["data_received", "pause_reading"]
    conn.send(get("/3"))
    assert conn.held == get("/3")  # not read while the pipeline is held
    assert len(conn.data_received_calls()) == 1
    assert conn.received == b""

    open_gate(harness, app, "/1")
    assert [response.body for response in conn.responses()] == [b"/1", b"/2", b"/3"]
    assert app.calls == ["/1", "/2", "/3"]
    assert not conn.reading_paused
    assert conn.held == b""
    assert conn.event_names().count("resume_reading") >= 1


def test_pipelined_request_split_across_reads(harness):
    """Three whole requests and the start of a fourth in one read, its end in
    a later one: all four are answered."""
    app = PathApp()
    conn = harness.connect(app)
    conn.send(get("/0") + get("/1") + get("/2") + b"GET /3 HTTP/1.1\r\nHo")
    assert [response.body for response in conn.responses()] == [b"/0", b"/1", b"/2"]
    assert not conn.reading_paused
    conn.send(b"st: x\r\n\r\n")
    assert conn.response().body == b"/3"
    assert not conn.closed


def test_a_request_arriving_while_the_app_runs_after_its_response(harness):
    """An application that goes on after its response does not hold up the
    next request of its connection."""
    finish = asyncio.Event()
    outcome = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": scope["path"].encode()})
        if scope["path"] == "/1":
            await finish.wait()
            outcome.append("first finished")

    server = harness.server(app)
    conn = server.connect()
    conn.send(get("/1"))
    assert conn.response().body == b"/1"
    assert len(server.state.tasks) == 1  # still running, after its response
    conn.send(get("/2"))
    assert conn.response().body == b"/2"
    finish.set()
    harness.settle()
    assert outcome == ["first finished"]
    assert not server.state.tasks


# -- half-closed clients ---------------------------------------------------------


def test_half_close_while_the_response_is_made(harness):
    """A complete request, then the client's half-close while the app works:
    eof_received() keeps the transport open, the response says
    `connection: close`, and the server closes after it."""
    app = PathApp()
    app.gate("/")
    conn = harness.connect(app)
    conn.send(GET)
    conn.send_eof()
    assert conn.eof_result is True
    assert not conn.closed
    open_gate(harness, app, "/")
    assert conn.received == b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\n/"
    assert conn.transport.closed_by == "close"
    assert conn.lost


def test_half_close_after_the_response(harness):
    """Nothing is left to answer: the connection closes (eof_received() says
    so), with no more bytes."""
    conn = harness.connect(PathApp())
    conn.send(GET)
    conn.response()
    conn.send_eof()
    assert not conn.eof_result
    assert conn.closed and conn.lost
    assert conn.unread == b""


def test_pipelined_requests_then_half_close_are_all_answered(harness):
    app = PathApp()
    conn = harness.connect(app)
    conn.send(get("/1") + get("/2"), settle=False)
    conn.send_eof()
    assert [response.body for response in conn.responses()] == [b"/1", b"/2"]
    assert conn.closed and conn.lost
    assert conn.unread == b""


def test_half_close_with_a_partial_request_pipelined(harness):
    """A complete request, the start of a next one and the half-close: the
    first is answered, then the connection closes (the second can never
    complete), without waiting for a deadline."""
    app = PathApp()
    app.gate("/1")
    conn = harness.connect(app)
    conn.send(get("/1") + b"GET /2 HTTP/1.1\r\nHo")
    conn.send_eof()
    open_gate(harness, app, "/1")
    assert conn.response().body == b"/1"
    assert conn.closed and conn.lost
    assert conn.unread == b""
    assert app.calls == ["/1"]


def test_half_close_of_an_idle_connection(harness):
    conn = harness.connect(PathApp())
    conn.send_eof()
    assert not conn.eof_result
    assert conn.closed and conn.lost
    assert conn.received == b""


# -- deadlines -------------------------------------------------------------------


def test_keep_alive_timeout_closes_an_idle_connection_quietly(harness):
    server = harness.server(PathApp(), timeout_keep_alive=5.0)
    conn = server.connect()
    conn.send(GET)
    conn.response()
    server.advance(4.9)
    assert not conn.closed
    server.advance(0.2)
    assert conn.closed and conn.lost
    assert conn.unread == b""  # no 408 for an idle connection
    assert not server.state.connections


def test_keep_alive_timeout_is_rearmed_by_each_response(harness):
    server = harness.server(PathApp(), timeout_keep_alive=5.0)
    conn = server.connect()
    for _ in range(3):
        conn.send(GET)
        assert conn.response().status == 200
        server.advance(4.0)
        assert not conn.closed
    server.advance(1.5)
    assert conn.closed


def test_slow_request_head_gets_408(harness):
    server = harness.server(PathApp(), timeout_request_headers=30.0)
    conn = server.connect()
    server.advance(10)
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
    server.advance(29.9)
    assert not conn.closed
    server.advance(0.2)
    assert conn.received == TIMEOUT_408
    assert conn.closed
    assert not server.access_lines()


def test_dribbled_head_does_not_extend_the_header_deadline(harness):
    """The deadline runs from the head's first byte; more bytes do not push
    it back (slowloris)."""
    server = harness.server(PathApp(), timeout_request_headers=1.0)
    conn = server.connect()
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 20 + b"\r\n\r\n"
    server.advance(0.5)  # the deadline armed by connection_made restarts at the first byte
    conn.send(head[:1])
    for sent in range(1, len(head)):
        server.advance(0.25)
        if conn.closed:
            break
        conn.send(head[sent : sent + 1])
    assert sent == 4  # one second after the first byte
    assert conn.received == TIMEOUT_408


def test_silent_connection_is_closed_quietly(harness):
    server = harness.server(PathApp(), timeout_request_headers=30.0)
    conn = server.connect()
    server.advance(29)
    assert not conn.closed
    server.advance(2)
    assert conn.closed
    assert conn.received == b""


def test_next_pipelined_request_gets_its_own_header_deadline(harness):
    """After a response, the start of the next request (already at hand) is
    held to the header deadline too."""
    server = harness.server(PathApp(), timeout_request_headers=10.0, timeout_keep_alive=5.0)
    conn = server.connect()
    conn.send(GET + b"GET /2 HTTP/1.1\r\n")
    assert conn.response().body == b"/"
    server.advance(6)  # past the keep-alive timeout: not idle, no quiet close
    assert not conn.closed
    server.advance(5)
    assert conn.unread == TIMEOUT_408
    assert conn.closed


def test_silent_client_after_a_response_to_an_unfinished_body_is_closed(harness):
    server = harness.server(PathApp(), timeout_keep_alive=5.0, timeout_request_headers=30.0)
    conn = server.connect()
    conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
    assert conn.response().body == b"/"
    server.advance(1000)
    assert conn.closed


def test_client_still_sending_the_body_after_the_response_is_not_cut_off(harness):
    """The deadline after such a response counts from the client's last body
    bytes: a slow body that keeps coming completes, and the connection goes on."""
    server = harness.server(PathApp(), timeout_keep_alive=5.0, timeout_request_headers=30.0)
    conn = server.connect()
    conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab")
    assert conn.response().body == b"/"
    for piece in (b"cd", b"ef"):
        server.advance(4)
        conn.send(piece)
    assert not conn.closed
    conn.send(get("/next"))
    assert conn.response().body == b"/next"
    assert not conn.closed


def test_no_deadline_while_the_app_runs(harness):
    app = PathApp()
    app.gate("/")
    server = harness.server(app, timeout_request_headers=1.0, timeout_keep_alive=1.0)
    conn = server.connect()
    conn.send(GET)
    server.advance(100)
    assert not conn.closed
    open_gate(harness, app, "/")
    assert conn.response().body == b"/"
    assert not conn.closed


# -- the client goes away ---------------------------------------------------------


def test_disconnect_before_the_app_started(harness):
    """The request and the reset are read in the same iteration: the app
    still runs, sees http.disconnect, and what it sends is dropped."""
    got = []

    async def app(scope, receive, send):
        got.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"dropped"})

    server = harness.server(app)
    conn = server.connect()
    conn.send(GET, settle=False)
    conn.disconnect()
    assert got == [{"type": "http.disconnect"}]
    assert conn.received == b""
    assert not server.state.tasks and not server.state.connections
    assert server.messages() == []


def test_disconnect_drops_pipelined_requests(harness):
    app = PathApp()
    app.gate("/1")
    server = harness.server(app)
    conn = server.connect()
    conn.send(get("/1") + get("/2"))
    conn.disconnect()
    open_gate(harness, app, "/1")
    assert app.calls == ["/1"]
    assert conn.received == b""
    assert not server.state.tasks


def test_the_connection_task_ends_with_the_connection(harness):
    """Between requests the connection's task waits for the next one; it
    ends, without error, when the client goes away."""
    tasks = []

    async def app(scope, receive, send):
        tasks.append(asyncio.current_task())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    conn = harness.connect(app)
    conn.send(GET)
    conn.send(GET)
    assert len(tasks) == 2 and tasks[0] is tasks[1]  # README: one task per connection
    assert not tasks[0].done()
    conn.disconnect()
    assert tasks[0].done() and not tasks[0].cancelled()


# -- graceful shutdown -----------------------------------------------------------


def test_shutdown_gives_idle_connections_the_drain_window(harness):
    """A connection between requests is not closed at once (a request may be
    on its way); silent through the drain window, it is closed quietly."""
    server = harness.server(PathApp())
    idle = server.connect()
    served = server.connect()
    served.send(GET)
    served.response()
    server.shutdown()
    assert not idle.closed and not served.closed
    server.advance(0.9)
    assert not idle.closed and not served.closed
    server.advance(0.2)
    assert idle.closed and served.closed
    assert idle.received == b"" and served.unread == b""
    assert not server.state.connections
    assert not server.state.tasks


def test_request_within_the_drain_window_is_served_as_the_last(harness):
    server = harness.server(PathApp())
    conn = server.connect()
    conn.send(GET)
    conn.response()
    server.shutdown()
    server.advance(0.5)
    conn.send(get("/late"))
    assert conn.unread == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n/late"
    assert conn.closed


def test_drain_window_ends_no_later_than_the_keep_alive_deadline(harness):
    server = harness.server(PathApp(), timeout_keep_alive=0.5)
    conn = server.connect()
    conn.send(GET)
    conn.response()
    server.shutdown()
    server.advance(0.6)
    assert conn.closed


def test_request_head_arriving_at_shutdown_is_served_as_the_last(harness):
    server = harness.server(PathApp())
    conn = server.connect()
    conn.send(b"GET /half HTTP/1.1\r\nHost: x\r\n")
    server.shutdown()
    conn.send(b"\r\n")
    assert conn.received == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n/half"
    assert conn.closed


def test_shutdown_lets_a_busy_connection_finish_its_response(harness):
    app = PathApp()
    app.gate("/")
    server = harness.server(app)
    conn = server.connect()
    conn.send(GET + get("/next"))
    server.shutdown()
    assert not conn.closed
    open_gate(harness, app, "/")
    assert conn.received == b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\n/"
    assert conn.closed
    assert app.calls == ["/"]


def test_abort_drops_a_busy_connection(harness):
    """The graceful shutdown timed out: the transport is aborted, and the
    application waiting in receive() learns of the disconnect."""
    got = []

    async def app(scope, receive, send):
        await receive()
        got.append(await receive())

    server = harness.server(app)
    conn = server.connect()
    conn.send(GET)
    server.abort()
    assert conn.transport.closed_by == "abort"
    assert conn.lost
    assert got == [{"type": "http.disconnect"}]
    assert not server.state.tasks
    assert not server.state.connections


# -- limits and counts -----------------------------------------------------------


def test_concurrency_limit_refuses_with_503(harness):
    app = PathApp()
    app.gate("/slow")
    server = harness.server(app, limit_concurrency=1)
    first = server.connect()
    first.send(get("/slow"))
    second = server.connect()
    second.send(GET)
    assert second.received == REFUSED_503
    assert second.closed
    assert server.messages() == ["Exceeded concurrency limit."]
    assert app.calls == ["/slow"]
    assert server.state.total_requests == 1  # the 503 counts

    open_gate(harness, app, "/slow")
    assert first.response().body == b"/slow"
    # The refused connection is gone: the first one is served again ...
    assert len(server.state.connections) == 1
    first.send(GET)
    assert first.response().status == 200
    # ... and, once it is closed, so is a new one. (N connections may be
    # open, and the one requesting counts: README, "Differences".)
    first.disconnect()
    third = server.connect()
    third.send(GET)
    assert third.response().status == 200
    assert server.messages() == ["Exceeded concurrency limit."]


def test_server_state_tracks_connections_and_tasks(harness):
    app = PathApp()
    app.gate("/")
    server = harness.server(app)
    conn = server.connect()
    assert server.state.connections == {conn.protocol}
    conn.send(GET)
    assert len(server.state.tasks) == 1
    open_gate(harness, app, "/")
    assert not server.state.tasks
    assert server.state.total_requests == 1
    conn.disconnect()
    assert not server.state.connections


def test_scope_client_server_and_scheme_come_from_the_transport(harness):
    scopes = []

    async def app(scope, receive, send):
        scopes.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    server = harness.server(app)
    tcp = server.connect(peername=("10.0.0.7", 4321), sockname=("10.0.0.1", 443), sslcontext=object())
    tcp.send(GET)
    unix = server.connect(peername="", sockname="/run/app.sock")
    unix.send(GET)
    assert [(s["client"], s["server"], s["scheme"]) for s in scopes] == [
        (("10.0.0.7", 4321), ("10.0.0.1", 443), "https"),
        (None, ("/run/app.sock", None), "http"),
    ]


# -- upgrades ----------------------------------------------------------------------

WEBSOCKET_REQUEST = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % SAMPLE_KEY.encode()
)
MASKING_KEY = b"\x01\x02\x03\x04"


def test_upgrade_with_websockets_off_is_served_as_http(harness):
    app = PathApp()
    server = harness.server(app)
    conn = server.connect()
    conn.send(WEBSOCKET_REQUEST + get("/after"))
    assert [response.body for response in conn.responses()] == [b"/ws", b"/after"]
    assert "Unsupported upgrade request." in server.messages(logging.WARNING)
    assert conn.transport.protocol is conn.protocol


def test_websocket_upgrade_hands_the_transport_over(harness):
    """The 101 goes out, set_protocol() gives the transport to the WebSocket
    protocol, which gets the bytes that came after the request and all that
    come later; the HTTP protocol leaves the server's connections."""
    events = []

    async def app(scope, receive, send):
        events.append((await receive())["type"])
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": "echo:" + message["text"]})
        events.append(await receive())

    websocket = WebSocketSettings(
        app=app, logger=logging.Logger("websocket"), ping_interval=None, per_message_deflate=False
    )
    server = harness.server(app, websocket=websocket)
    conn = server.connect()
    conn.send(WEBSOCKET_REQUEST + encode_frame(TEXT, b"hi", key=MASKING_KEY))
    handshake = conn.response()
    assert handshake.status == 101
    assert handshake.header("sec-websocket-accept") == SAMPLE_ACCEPT
    assert conn.unread == b"\x81\x07echo:hi"
    assert ("set_protocol", conn.transport.protocol) in conn.events
    assert conn.transport.protocol is not conn.protocol
    assert server.state.connections == {conn.transport.protocol}
    conn.send(encode_frame(CLOSE, close_payload(1000), key=MASKING_KEY))
    assert events == ["websocket.connect", {"type": "websocket.disconnect", "code": 1000, "reason": ""}]
    assert conn.closed
    assert not server.state.connections and not server.state.tasks
