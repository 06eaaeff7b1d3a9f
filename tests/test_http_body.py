"""Request bodies, flow control in both directions, `Expect: 100-continue`,
`http.disconnect`, and the framing of streamed responses, on the wire."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import queue
import socket
import threading
import time

import httpx
import pytest

from tests.conftest import WAIT, Gate, close_socket, read_body, respond, wait_until


async def read_recording(receive, received: queue.Queue) -> bytes:
    """Read the whole request body, putting every message on `received`."""
    body = b""
    while True:
        message = await receive()
        received.put(message)
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


def recording_echo_app(messages: list):
    """Echo the request body; record every message `receive()` returned."""

    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await respond(send, body)

    return app


# -- request bodies ----------------------------------------------------------


def test_content_length_body_is_read_whole(serve, raw_client):
    """A Content-Length body reaches the app intact, and the connection stays usable."""
    messages: list = []
    server = serve(recording_echo_app(messages))
    client = raw_client(server.port)
    body = b"name=value&" * 1000
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    response = client.read_response()
    assert response.status == 200
    assert response.body == body
    assert all(message["type"] == "http.request" for message in messages)
    assert messages[-1]["more_body"] is False
    assert b"".join(message["body"] for message in messages) == body

    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    assert client.read_response().body == b"abc"


def test_chunked_body_with_extensions_and_trailers(serve, raw_client):
    """Chunk extensions are ignored and trailers dropped; the body is delivered intact,
    and the next request on the connection is parsed correctly."""
    messages: list = []
    server = serve(recording_echo_app(messages))
    client = raw_client(server.port)
    client.send(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nHello\r\n"
        b"7;a=b;c=\"d e\"\r\n, world\r\n"
        b"1\r\n!\r\n"
        b"0\r\nX-Trailer: y\r\nX-Other: z\r\n\r\n"
    )
    response = client.read_response()
    assert response.status == 200
    assert response.body == b"Hello, world!"
    assert messages[-1] == {"type": "http.request", "body": messages[-1]["body"], "more_body": False}

    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert client.read_response().body == b"abc"


def test_body_in_many_sends_arrives_as_several_messages(serve, raw_client):
    """A body trickling in is delivered piece by piece with more_body=True, then more_body=False."""
    received: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await respond(send, await read_recording(receive, received))

    server = serve(app)
    client = raw_client(server.port)
    pieces = [b"alpha-", b"beta-", b"gamma-", b"delta-", b"omega"]
    total = b"".join(pieces)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(total))
    messages = []
    for piece in pieces[:-1]:
        client.send(piece)
        message = received.get(timeout=WAIT)  # the app has this piece before the next is sent
        messages.append(message)
        assert message == {"type": "http.request", "body": piece, "more_body": True}
    client.send(pieces[-1])
    while messages[-1].get("more_body", False):
        messages.append(received.get(timeout=WAIT))
    assert all(message["type"] == "http.request" for message in messages)
    assert [message["more_body"] for message in messages] == [True] * (len(messages) - 1) + [False]
    assert len(messages) >= len(pieces)
    assert b"".join(message["body"] for message in messages) == total
    assert client.read_response().body == total


def test_body_completed_in_one_read_is_one_message(serve, raw_client):
    """An app already waiting in receive() when the whole body arrives in one read gets
    it as a single message with more_body=False (as Uvicorn), not the body with
    more_body=True followed by an empty final message."""
    waiting = threading.Event()
    received: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        waiting.set()
        await respond(send, await read_recording(receive, received))

    server = serve(app)
    client = raw_client(server.port)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
    assert waiting.wait(WAIT)  # the app is in receive() before any body byte is sent
    client.send(b"0123456789")
    assert client.read_response().body == b"0123456789"
    messages = [received.get(timeout=WAIT)]
    while not received.empty():
        messages.append(received.get())
    assert messages == [{"type": "http.request", "body": b"0123456789", "more_body": False}]


def test_empty_body_post_gives_one_message(serve, raw_client):
    """A POST with no body: one `http.request` with body b'' and more_body False."""
    messages: list = []
    server = serve(recording_echo_app(messages))
    client = raw_client(server.port)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert client.read_response().body == b""
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.read_response().body == b""
    assert messages == [{"type": "http.request", "body": b"", "more_body": False}] * 2


def digest_app(results: list):
    async def app(scope, receive, send):
        digest = hashlib.sha256()
        size = 0
        while True:
            message = await receive()
            assert message["type"] == "http.request"
            digest.update(message["body"])
            size += len(message["body"])
            if not message.get("more_body", False):
                break
        results.append(size)
        await respond(send, json.dumps({"size": size, "sha256": digest.hexdigest()}).encode())

    return app


def test_large_upload(serve):
    """8 MiB uploaded with Content-Length and again chunked: the app reads every byte."""
    server = serve(digest_app([]))
    data = os.urandom(8 * 1024 * 1024)
    expected = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    with httpx.Client(timeout=20) as client:
        response = client.post(server.url + "/upload", content=data)
        assert response.status_code == 200
        assert response.json() == expected

        def chunks():
            for start in range(0, len(data), 100_000):
                yield data[start : start + 100_000]

        response = client.post(server.url + "/upload", content=chunks())
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert response.json() == expected


# -- flow control ------------------------------------------------------------


def test_read_backpressure(serve, raw_client):
    """An app that does not read makes the server stop reading: the client's
    send blocks, and the server buffers only a bounded amount."""
    size = 4 * 1024 * 1024
    gate = Gate()
    started = threading.Event()
    first_sizes: list[int] = []

    async def app(scope, receive, send):
        started.set()
        await gate.wait()
        total = 0
        while True:
            message = await receive()
            if not first_sizes:
                first_sizes.append(len(message["body"]))
            total += len(message["body"])
            if not message.get("more_body", False):
                break
        await respond(send, str(total).encode())

    server = serve(app)
    client = raw_client(server.port, timeout=10)
    # A small client send buffer: what the kernel can absorb stays far below 4 MiB.
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    assert started.wait(WAIT)

    errors: list[BaseException] = []

    def upload() -> None:
        try:
            client.sock.sendall(b"x" * size)
        except BaseException as exc:
            errors.append(exc)

    uploader = threading.Thread(target=upload, daemon=True)
    uploader.start()
    uploader.join(0.5)
    assert uploader.is_alive(), "the whole 4 MiB body was accepted while the app read nothing"

    gate.open()
    uploader.join(WAIT)
    assert not uploader.is_alive()
    assert errors == []
    response = client.read_response()
    assert response.status == 200
    assert response.body == str(size).encode()
    assert 0 < first_sizes[0] < 512 * 1024, f"server buffered {first_sizes[0]} bytes of unread body"


def kernel_send_buffer_max() -> int:
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as file:
            return int(file.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


def test_write_backpressure(serve):
    """`send()` waits while the client does not read; the response completes once it does."""
    chunk = bytes(range(256)) * 256  # 64 KiB
    count = 1024  # 64 MiB in all
    sent = [0]
    done = threading.Event()

    async def app(scope, receive, send):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(chunk) * count).encode())],
            }
        )
        for _ in range(count):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent[0] += 1
        await send({"type": "http.response.body", "body": b""})
        done.set()

    server = serve(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(10)
    try:
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

        # Wait until the app is stuck in send(): the count stops moving.
        def settled() -> bool:
            before = sent[0]
            time.sleep(0.2)
            return sent[0] == before and before > 0

        assert wait_until(settled, timeout=WAIT, interval=0)
        stuck_at = sent[0]
        time.sleep(0.5)  # the client keeps not reading: the app stays blocked in send()
        assert sent[0] == stuck_at, "send() kept completing while the client read nothing"
        # What was sent sits in the kernel (the server's send buffer, which Linux
        # grows up to tcp_wmem's maximum, and our receive buffer) plus the
        # transport's 64 KiB high-water mark: nothing like the 64 MiB response.
        bound = kernel_send_buffer_max() + 4 * 65536 + 512 * 1024
        assert stuck_at * len(chunk) < bound, f"{stuck_at} chunks of 64 KiB completed while the client read nothing"
        assert not done.is_set()

        # Now read everything.
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(65536)
            assert data
            head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        digest = hashlib.sha256(rest)
        received = len(rest)
        buffer = bytearray(1 << 20)
        while received < len(chunk) * count:
            n = sock.recv_into(buffer)
            assert n, f"connection closed after {received} bytes"
            digest.update(memoryview(buffer)[:n])
            received += n
    finally:
        sock.close()
    assert received == len(chunk) * count
    assert digest.hexdigest() == hashlib.sha256(chunk * count).hexdigest()
    assert done.wait(WAIT)
    assert sent[0] == count


# -- Expect: 100-continue ----------------------------------------------------


def expect_app(entered_receive: threading.Event | None = None):
    """POST /read: echo the body. POST /noread: answer without reading. GET: path."""

    async def app(scope, receive, send):
        if scope["path"] == "/noread":
            await respond(send, b"not read")
            return
        if entered_receive is not None:
            entered_receive.set()
        body = await read_body(receive)
        await respond(send, b"%s:%s" % (scope["path"].encode(), body))

    return app


def test_expect_100_continue_when_app_reads(serve, raw_client):
    """Headers only: the server answers 100 Continue when the app asks for the body."""
    server = serve(expect_app())
    client = raw_client(server.port)
    client.send(b"POST /read HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    assert client.read_until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    client.send(b"hello")
    response = client.read_response()
    assert response.status == 200
    assert response.body == b"/read:hello"
    # Keep-alive goes on, with exactly one 100 per request that waits.
    client.send(b"POST /read HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert client.read_until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    client.send(b"abc")
    response = client.read_response()
    assert response.status == 200
    assert response.body == b"/read:abc"


def test_expect_100_continue_body_already_sent(serve, raw_client):
    """A client that sent the body along with the headers gets no 100 Continue."""
    server = serve(expect_app())
    client = raw_client(server.port)
    client.send(b"POST /read HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
    response = client.read_response()
    assert response.status == 200
    assert response.body == b"/read:hello"


def test_expect_100_continue_when_app_does_not_read(serve, raw_client):
    """The app answers without reading: no 100 goes out; the body the client sends
    anyway is discarded and the next request on the connection is served."""
    server = serve(expect_app())
    client = raw_client(server.port)
    client.send(b"POST /noread HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    response = client.read_response()
    assert response.status == 200, response.raw_head
    assert response.body == b"not read"
    assert response.header("connection") is None
    client.send(b"hello")  # the body, late
    client.send(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond")
    response = client.read_response()
    assert response.status == 200
    assert response.body == b"/read:second"

    # The same with the late body and the next request in one packet.
    client.send(b"POST /noread HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    assert client.read_response().body == b"not read"
    client.send(b"world" + b"GET /read HTTP/1.1\r\nHost: x\r\n\r\n")
    response = client.read_response()
    assert response.status == 200
    assert response.body == b"/read:"
    assert not client.is_closed(timeout=0.2)


def test_expect_100_continue_ignored_for_http_1_0(serve, raw_client):
    """RFC 9110 10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0
    request (an HTTP/1.0 client does not know interim responses)."""
    entered = threading.Event()
    server = serve(expect_app(entered))
    client = raw_client(server.port)
    client.send(b"POST /read HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    assert entered.wait(WAIT)  # the app is now in receive(), the body not yet sent
    client.send(b"hello")
    response = client.read_response()
    assert response.status == 200, f"got {response.raw_head!r} before the final response"
    assert response.body == b"/read:hello"
    assert client.is_closed()


# -- http.disconnect ---------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "reset"])
def test_disconnect_while_waiting_in_receive(serve, raw_client, how):
    """An app that read the whole body and waits in receive() gets http.disconnect
    promptly once the client closes."""
    waiting = threading.Event()
    got: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await read_body(receive)
        waiting.set()
        got.put(await receive())

    server = serve(app, timeout_graceful_shutdown=1)
    client = raw_client(server.port)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert waiting.wait(WAIT)
    closed_at = time.monotonic()
    close_socket(client.sock, how)
    message = got.get(timeout=2.0)
    assert message == {"type": "http.disconnect"}
    assert time.monotonic() - closed_at < 2.0


@pytest.mark.parametrize("how", ["close", "reset"])
def test_disconnect_while_waiting_for_body(serve, raw_client, how):
    """A client that goes away in the middle of the body: the app's receive() gives http.disconnect."""
    got: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        while True:
            message = await receive()
            got.put(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    server = serve(app, timeout_graceful_shutdown=1)
    client = raw_client(server.port)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
    assert got.get(timeout=WAIT) == {"type": "http.request", "body": b"half", "more_body": True}
    close_socket(client.sock, how)
    assert got.get(timeout=2.0) == {"type": "http.disconnect"}


def test_receive_after_response_returns_disconnect_at_once(serve, raw_client):
    """Once the response is complete, receive() returns http.disconnect without waiting,
    while the client is still connected."""
    got: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await read_body(receive)
        await respond(send, b"done")
        try:
            got.put(await asyncio.wait_for(receive(), 0.5))
        except asyncio.TimeoutError:
            got.put("timed out")

    server = serve(app)
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.read_response().body == b"done"
    assert got.get(timeout=WAIT) == {"type": "http.disconnect"}
    assert not client.is_closed(timeout=0.1)


def test_cancelled_receive_does_not_cancel_another_waiting_receive(serve, raw_client):
    """Two tasks wait in receive() (a disconnect listener and a poll, as Starlette's
    StreamingResponse + `request.is_disconnected()`); cancelling the poll must leave
    the listener waiting, and it then gets http.disconnect."""
    outcome: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await read_body(receive)

        async def listen():
            return await receive()

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0)  # the listener is now waiting in receive()
        poll = asyncio.create_task(listen())
        await asyncio.sleep(0)
        poll.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poll
        listener_state = "cancelled" if listener.cancelled() else ("done" if listener.done() else "waiting")
        await respond(send, b"ok")
        try:
            message = await asyncio.wait_for(listener, 2.0)
        except asyncio.CancelledError:
            message = "listener cancelled"
        except asyncio.TimeoutError:
            message = "listener still waiting"
        outcome.put((listener_state, message))

    server = serve(app, timeout_graceful_shutdown=1)
    client = raw_client(server.port)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
    assert client.read_response().body == b"ok"
    assert outcome.get(timeout=WAIT) == ("waiting", {"type": "http.disconnect"})


def test_receive_and_send_return_coroutines(serve, raw_client):
    """receive() and send() can be wrapped in tasks (`asyncio.create_task`, anyio's
    `start_soon`, a2wsgi's `run_coroutine_threadsafe` all require coroutines, which is
    what Uvicorn's `async def receive/send` give)."""

    async def app(scope, receive, send):
        message = await asyncio.create_task(receive())
        await asyncio.create_task(
            send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
        )
        await asyncio.create_task(send({"type": "http.response.body", "body": message["body"]}))

    server = serve(app)
    client = raw_client(server.port)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    response = client.read_response()
    assert response.status == 200
    assert response.body == b"hello"


def test_send_acts_when_awaited_not_when_called(serve, raw_client):
    """send() does nothing until its result is awaited (so that a thread can
    pass it to run_coroutine_threadsafe), and that result is awaited once."""
    outcome: list[str] = []

    async def app(scope, receive, send):
        start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        never_awaited = send(start)
        call = send(start)  # would be a second response start had the first acted
        await call
        try:
            await call
        except RuntimeError as exc:
            outcome.append(str(exc))
        never_awaited.close()
        await send({"type": "http.response.body", "body": b"ok"})

    client = raw_client(serve(app).port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.read_response().body == b"ok"
    assert outcome == ["cannot reuse already awaited coroutine"]


def test_send_stepped_by_hand(serve, raw_client):
    """Stepped with the builtin next() and the iterator's own __next__(), as
    generator-based code does, send() acts at the first step and then stops
    with StopIteration each way; `yield from` over it completes too."""
    outcome: list[str] = []

    def respond_with_yield_from(send):
        yield from send({"type": "http.response.body", "body": b"ok", "more_body": True}).__await__()

    async def app(scope, receive, send):
        start = send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        try:
            next(start.__await__())
        except StopIteration as stop:
            outcome.append(f"next: {stop.value}")
        try:
            send({"type": "http.response.body", "body": b"!", "more_body": True}).__await__().__next__()
        except StopIteration as stop:
            outcome.append(f"__next__: {stop.value}")
        for _ in respond_with_yield_from(send):
            outcome.append("yielded")  # nothing to wait for: it must not yield
        await send({"type": "http.response.body", "body": b"?"})

    client = raw_client(serve(app).port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.read_response().body == b"!ok?"
    assert outcome == ["next: None", "__next__: None"]


def test_send_from_another_thread(serve, raw_client):
    """A thread hands send() to the loop with run_coroutine_threadsafe (as
    WSGI-style adapters do)."""

    def respond_from_thread(loop, send):
        start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]}
        asyncio.run_coroutine_threadsafe(send(start), loop).result(WAIT)
        asyncio.run_coroutine_threadsafe(send({"type": "http.response.body", "body": b"thread"}), loop).result(WAIT)

    async def app(scope, receive, send):
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, respond_from_thread, loop, send)

    client = raw_client(serve(app).port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.read_response().body == b"thread"


def test_cancelling_a_send_that_waits_for_the_client(serve):
    """A cancellation reaches the application inside a send() that waits for
    the client to read; the connection is closed after it."""
    chunk = b"x" * 65536
    outcome: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % (1 << 30))]})
        asyncio.get_running_loop().call_later(0.3, asyncio.current_task().cancel)
        sent = 0
        try:
            while True:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += 1
        except asyncio.CancelledError:
            outcome.put(("cancelled", sent > 0))

    server = serve(app)
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert outcome.get(timeout=WAIT) == ("cancelled", True)
        # Having not completed its response, the application's connection closes.
        sock.settimeout(WAIT)
        while sock.recv(1 << 20):
            pass


def test_send_after_client_went_away_does_not_raise(serve, raw_client, caplog):
    """After http.disconnect, send() is silently ignored; the server keeps serving.
    (The client resets the connection, so that the disconnect is seen at once.)"""
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    waiting = threading.Event()
    outcome: queue.Queue = queue.Queue()

    async def app(scope, receive, send):
        if scope["path"] == "/ping":
            await respond(send, b"pong")
            return
        await read_body(receive)
        waiting.set()
        message = await receive()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for _ in range(20):
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except BaseException as exc:  # reported to the test
            outcome.put(("raised", message, exc))
        else:
            outcome.put(("ok", message, None))

    server = serve(app, timeout_graceful_shutdown=1)
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert waiting.wait(WAIT)
    close_socket(client.sock, "reset")
    status, message, exc = outcome.get(timeout=WAIT)
    assert message == {"type": "http.disconnect"}
    assert (status, exc) == ("ok", None)
    assert httpx.get(server.url + "/ping", timeout=5).text == "pong"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_send_while_client_disconnects_mid_stream(serve, raw_client, caplog):
    """A streaming app whose client vanishes mid-response: send() never raises."""
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    outcome: queue.Queue = queue.Queue()
    streaming = threading.Event()

    async def app(scope, receive, send):
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for i in range(2000):
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
                if i == 1:
                    streaming.set()
                await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": b""})
        except BaseException as exc:
            outcome.put(exc)
        else:
            outcome.put(None)

    server = serve(app)
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert streaming.wait(WAIT)
    close_socket(client.sock, "reset")
    assert outcome.get(timeout=10) is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- streaming responses -----------------------------------------------------


def streaming_app(parts: list[bytes], status: int = 200, headers: list | None = None):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": headers or []})
        for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


def test_chunked_framing_on_the_wire(serve, raw_client):
    """A response without Content-Length goes out chunked; empty more_body=True
    messages neither emit a chunk nor end the stream."""
    server = serve(streaming_app([b"Hello", b"", b", ", b"", b"world!"]))
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = client.read_until(b"\r\n\r\n")
    assert b"\r\ntransfer-encoding: chunked\r\n" in head
    assert b"content-length" not in head.lower()
    assert client.read_exactly(len(b"5\r\nHello\r\n2\r\n, \r\n6\r\nworld!\r\n0\r\n\r\n")) == (
        b"5\r\nHello\r\n2\r\n, \r\n6\r\nworld!\r\n0\r\n\r\n"
    )
    assert not client.is_closed(timeout=0.1)
    assert client.buffer == b""


def test_empty_more_body_message_does_not_end_stream(serve, raw_client):
    """An empty body with more_body=True while the client already has data: nothing is terminated."""
    gate = Gate()
    sent_first = threading.Event()

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        sent_first.set()
        await gate.wait()
        await send({"type": "http.response.body", "body": b"second", "more_body": False})

    server = serve(app)
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    client.read_until(b"\r\n\r\n")
    assert client.read_exactly(len(b"5\r\nfirst\r\n")) == b"5\r\nfirst\r\n"
    assert sent_first.wait(WAIT)
    assert not client.is_closed(timeout=0.2)
    assert client.buffer == b""  # no terminating 0-chunk after the empty message
    client.sock.settimeout(WAIT)
    gate.open()
    assert client.read_exactly(len(b"6\r\nsecond\r\n0\r\n\r\n")) == b"6\r\nsecond\r\n0\r\n\r\n"


def test_head_of_streaming_app_sends_no_body(serve, raw_client):
    """HEAD: the headers, no body bytes at all (the next response parses cleanly)."""
    server = serve(streaming_app([b"Hello", b"world"], headers=[(b"content-type", b"text/plain")]))
    client = raw_client(server.port)
    client.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    response = client.read_response(head_request=True)
    assert response.status == 200
    assert response.header("content-type") == "text/plain"
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    response = client.read_response()
    assert response.status == 200
    assert response.body == b"Helloworld"
    assert client.buffer == b""


def test_head_keeps_app_content_length(serve, raw_client):
    """HEAD with the app's Content-Length: the header is kept, the body dropped."""
    server = serve(streaming_app([b"Hello"], headers=[(b"content-length", b"5")]))
    client = raw_client(server.port)
    client.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    response = client.read_response(head_request=True)
    assert response.header("content-length") == "5"
    response = client.read_response()
    assert response.body == b"Hello"


def test_204_and_304_have_no_body(serve, raw_client):
    """204 and 304: no body and no transfer-encoding; body bytes the app sends are dropped."""

    async def app(scope, receive, send):
        status = int(scope["path"].strip("/"))
        headers = [(b"etag", b'"x"')]
        if scope["query_string"] == b"cl":
            headers.append((b"content-length", b"100"))  # the size of the representation
        await send({"type": "http.response.start", "status": status, "headers": headers})
        body = b"" if scope["query_string"] == b"cl" else b"should not be sent"
        await send({"type": "http.response.body", "body": body})

    server = serve(app)
    client = raw_client(server.port)
    for target in (b"/204", b"/304", b"/304?cl"):
        client.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
        response = client.read_response()
        assert response.status == int(target[1:4])
        assert response.header("transfer-encoding") is None
        assert response.header("connection") is None
        if target == b"/304?cl":
            assert response.header("content-length") == "100"
        else:
            assert response.header("content-length") is None
    client.send(b"GET /200 HTTP/1.1\r\nHost: x\r\n\r\n")
    response = client.read_response()
    assert response.status == 200
    assert response.body == b"should not be sent"  # the 200 does get its body
    assert client.buffer == b""


def test_one_mib_content_length_response_is_byte_exact(serve):
    data = os.urandom(1024 * 1024)

    async def app(scope, receive, send):
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(data))]}
        )
        if scope["path"] == "/one":
            await send({"type": "http.response.body", "body": data})
        else:
            for start in range(0, len(data), 10_000):
                chunk = data[start : start + 10_000]
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    server = serve(app)
    with httpx.Client(timeout=10) as client:
        for path in ("/one", "/pieces"):
            response = client.get(server.url + path)
            assert response.headers["content-length"] == str(len(data))
            assert "transfer-encoding" not in response.headers
            assert response.content == data


@pytest.mark.parametrize(
    "headers",
    [
        [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"8")],
        [(b"X-Before", b"1"), (b"Content-Length", b"8"), (b"Transfer-Encoding", b"chunked"), (b"X-After", b"2")],
    ],
    ids=["chunked-first", "length-first"],
)
def test_app_chunked_with_content_length_drops_content_length(serve, raw_client, headers):
    """App sends Transfer-Encoding: chunked and Content-Length (in either
    order): only chunked framing goes out (the server's own line), the
    other headers unharmed, in order."""
    server = serve(streaming_app([b"abc", b"defgh"], headers=headers))
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = client.read_until(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert not any(line.startswith(b"content-length") for line in lines)
    assert lines.count(b"transfer-encoding: chunked") == 1
    app_lines = [line for line in lines if line.startswith(b"x-")]
    expected = [name.lower() + b": " + value for name, value in headers if name.startswith(b"X-")]
    assert app_lines == expected
    assert client.read_exactly(len(b"3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n")) == b"3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"


def test_http_1_0_streaming_is_close_delimited(serve, raw_client):
    """An HTTP/1.0 client gets the streamed body delimited by the end of the connection."""
    server = serve(streaming_app([b"Hello", b", ", b"world"]))
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    raw = client.read_to_eof()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0].startswith(b"http/1.1 200")
    assert b"connection: close" in lines
    assert not any(line.startswith(b"transfer-encoding") for line in lines)
    assert not any(line.startswith(b"content-length") for line in lines)
    assert body == b"Hello, world"
