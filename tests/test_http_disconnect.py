"""What the server logs when a client leaves before its response is complete:
as Uvicorn 0.54 (httptools), nothing about the response nobody receives.

Once the application has been told `http.disconnect`, what it sends is
dropped without an access line, and returning without starting or without
completing the response is no error. Uvicorn treats a client's half-close
(shutdown(SHUT_WR)) as a disconnect too; cppcorn can still answer a
half-closed client whose application does not ask, but an application told
of the disconnect is answering nobody, whichever it was.

Observed on Uvicorn 0.54 in each case below: no ERROR line, no access line
for a response started after the disconnect (for a stream started before
it, the one access line of its start), and nothing sent to the client.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import socket

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.conftest import WAIT, RawClient, wait_until

CLIENT_LEAVES = ["close", "half-close"]


def leave(client: RawClient, how: str) -> bytes:
    """Leave as `how` says; what the server sent after that (b"" for
    nothing), read up to its close, for a half-closed client."""
    if how == "close":
        client.close()
        return b""
    client.sock.shutdown(socket.SHUT_WR)
    return client.read_to_eof()


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def access_lines(caplog: pytest.LogCaptureFixture, path: str) -> list[str]:
    """Access log lines for `path`, found by their text (whatever the logger)."""
    return [record.getMessage() for record in caplog.records if f'"GET {path} HTTP/1.1"' in record.getMessage()]


def after_disconnect_app(done: queue.Queue):
    """Reads the request, waits for http.disconnect, then does what the path
    says: /respond sends a whole response, /start only its start, /return
    returns without any."""

    async def app(scope, receive, send):
        assert await receive() == {"type": "http.request", "body": b"", "more_body": False}
        assert await receive() == {"type": "http.disconnect"}
        if scope["path"] in ("/respond", "/start"):
            await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/respond":
            await send({"type": "http.response.body", "body": b"too late"})
        done.put(scope["path"])

    return app


@pytest.mark.parametrize("how", CLIENT_LEAVES)
@pytest.mark.parametrize("path", ["/respond", "/start", "/return"])
def test_nothing_logged_for_a_response_after_the_disconnect(serve, raw_client, caplog, how, path):
    caplog.set_level(logging.INFO)
    done: queue.Queue = queue.Queue()
    server = serve(after_disconnect_app(done))
    client = raw_client(server.port)
    client.send(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    assert leave(client, how) == b""
    assert done.get(timeout=WAIT) == path
    assert wait_until(lambda: not server.state.connections and not server.state.tasks)
    assert error_lines(caplog) == []
    assert access_lines(caplog, path) == []


def streaming_app(finished: queue.Queue):
    """/events: a Starlette StreamingResponse of server-sent events until the
    client leaves; /poll: a stream that polls Starlette's
    request.is_disconnected() between chunks and returns, its response
    unfinished, once it says so."""

    async def events(request: Request) -> StreamingResponse:
        async def generate():
            try:
                count = 0
                while True:
                    yield f"data: {count}\n\n"
                    count += 1
                    await asyncio.sleep(0.02)
            finally:
                finished.put("events")

        return StreamingResponse(generate(), media_type="text/event-stream")

    starlette = Starlette(routes=[Route("/events", events)])

    async def app(scope, receive, send):
        if scope["path"] != "/poll":
            return await starlette(scope, receive, send)
        request = Request(scope, receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while not await request.is_disconnected():
            await send({"type": "http.response.body", "body": b".", "more_body": True})
            await asyncio.sleep(0.02)
        finished.put("poll")

    return app


@pytest.mark.parametrize("how", CLIENT_LEAVES)
@pytest.mark.parametrize("path", ["/events", "/poll"])
def test_client_leaving_a_stream_is_no_error(serve, raw_client, caplog, how, path):
    caplog.set_level(logging.INFO)
    finished: queue.Queue = queue.Queue()
    server = serve(streaming_app(finished))
    client = raw_client(server.port)
    client.send(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    assert client.read_response(head_request=True).status == 200
    client.read_until(b"\r\n")  # the first chunk is under way
    leave(client, how)
    assert finished.get(timeout=WAIT) == path[1:]
    assert wait_until(lambda: not server.state.connections and not server.state.tasks)
    assert error_lines(caplog) == []
    assert len(access_lines(caplog, path)) == 1  # the start's, as Uvicorn's
