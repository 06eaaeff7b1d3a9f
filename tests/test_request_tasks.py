"""How applications run in asyncio tasks.

One task runs a keep-alive connection's requests, one after another
(RequestRunner, cppcorn/http/runner.pyx). Each request must still get what a
task of its own would give it: a fresh context, no cancellation left over from
the request before, and no waiting for an application that goes on running
after its response. The task must end with its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import WAIT, respond, wait_until

request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_tasks_var", default="unset")


def get(client, path: str) -> bytes:
    client.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    response = client.read_response()
    assert response.status == 200, response
    return response.body


def test_each_request_gets_a_fresh_context(serve, raw_client):
    """What a request's application sets in a context variable, before its
    first await and after, is gone for the next request on the connection,
    and is seen by the tasks the application starts."""

    async def app(scope, receive, send):
        before = request_var.get()
        request_var.set(scope["path"])
        await asyncio.sleep(0)
        child = await asyncio.get_running_loop().create_task(read_var())
        await respond(send, f"{before}|{request_var.get()}|{child}".encode())

    async def read_var():
        return request_var.get()

    client = raw_client(serve(app).port)
    assert get(client, "/a") == b"unset|/a|/a"
    assert get(client, "/b") == b"unset|/b|/b"


def test_an_absorbed_cancellation_does_not_reach_the_next_request(serve, raw_client):
    """An application that cancels its task and absorbs the CancelledError
    leaves nothing behind: on the same connection the next request's task
    counts no cancellation (3.11+) and its awaits complete."""

    async def app(scope, receive, send):
        task = asyncio.current_task()
        cancelling = task.cancelling() if hasattr(task, "cancelling") else 0
        if scope["path"] == "/absorb":
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(1)
        else:
            await asyncio.sleep(0.01)
        await respond(send, b"%d" % cancelling)

    client = raw_client(serve(app).port)
    for path in ("/absorb", "/next", "/absorb", "/next"):
        assert get(client, path) == b"0", path


def test_a_cancel_after_the_response_does_not_reach_the_next_request(serve, raw_client):
    """cancel() on its own task by an application that then returns without
    awaiting (the cancellation is still pending when it ends) does not cancel
    the next request on the connection."""

    async def app(scope, receive, send):
        await respond(send, scope["path"].encode())
        if scope["path"] == "/cancel":
            asyncio.current_task().cancel()

    client = raw_client(serve(app).port)
    assert get(client, "/cancel") == b"/cancel"
    assert get(client, "/next") == b"/next"
    assert get(client, "/cancel") == b"/cancel"
    assert get(client, "/next") == b"/next"


def test_an_application_running_after_its_response_does_not_hold_up_the_next_request(serve, raw_client):
    """The first request's application waits, after its response, for the
    second request on the same connection to arrive: the second must not wait
    for the first application to end."""
    events: dict[str, asyncio.Event] = {}
    outcome: list[str] = []

    async def app(scope, receive, send):
        arrived = events.setdefault("second", asyncio.Event())
        if scope["path"] == "/first":
            await respond(send, b"first")
            try:
                await asyncio.wait_for(arrived.wait(), WAIT)
                outcome.append("second arrived")
            except asyncio.TimeoutError:
                outcome.append("timed out")
        else:
            arrived.set()
            await respond(send, b"second")

    client = raw_client(serve(app).port)
    assert get(client, "/first") == b"first"
    assert get(client, "/second") == b"second"
    assert wait_until(lambda: outcome)
    assert outcome == ["second arrived"]


def test_applications_started_between_requests_run_as_their_task(serve, raw_client):
    """From the second request on, an application starts while the
    connection's task waits between requests (run_eagerly): it must see that
    task as the current one from its first line, and keep it across bare
    yields (asyncio.sleep(0)) and real waits, request after request."""
    seen: list[tuple[asyncio.Task | None, ...]] = []

    async def app(scope, receive, send):
        first = asyncio.current_task()
        await asyncio.sleep(0)
        after_yield = asyncio.current_task()
        await asyncio.sleep(0.001)
        seen.append((first, after_yield, asyncio.current_task()))
        await respond(send, scope["path"].encode())

    client = raw_client(serve(app).port)
    for n in range(4):
        assert get(client, f"/{n}") == f"/{n}".encode()
    tasks = {task for request in seen for task in request}
    assert len(seen) == 4 and len(tasks) == 1 and None not in tasks


def test_deadlines_cancel_applications_started_between_requests(serve, raw_client):
    """anyio's move_on_after (Starlette's and FastAPI's timeouts) and
    asyncio.timeout cancel the current task: the wait they bound must end in
    time for an application started while the task waited between requests,
    and no cancellation is left for the request after it."""
    anyio = pytest.importorskip("anyio")

    async def app(scope, receive, send):
        started = time.monotonic()
        if scope["path"] == "/anyio":
            with anyio.move_on_after(0.01):
                await asyncio.sleep(WAIT)
        elif scope["path"] == "/asyncio":
            try:
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(WAIT)
            except TimeoutError:
                pass
        else:
            await asyncio.sleep(0.001)
        await respond(send, b"%s %d" % (scope["path"].encode(), time.monotonic() - started < WAIT / 2))

    client = raw_client(serve(app).port)
    paths = ["/anyio", "/anyio", "/plain"]
    if hasattr(asyncio, "timeout"):  # 3.11+
        paths = ["/anyio", "/asyncio", "/plain", "/asyncio", "/anyio", "/plain"]
    for path in paths:
        assert get(client, path) == b"%s 1" % path.encode(), path


def task_recording_app(tasks: list) -> Callable:
    """An app that answers "ok" and notes the task each request runs in."""

    async def app(scope, receive, send):
        tasks.append(asyncio.current_task())
        await respond(send, b"ok")

    return app


def error_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_the_task_ends_with_its_connection(serve, raw_client, caplog):
    """The task waiting for a connection's next request ends when the client
    closes the connection, and the server's count of running tasks is empty."""
    caplog.set_level(logging.WARNING)
    tasks: list[asyncio.Task] = []
    app = task_recording_app(tasks)

    server = serve(app)
    client = raw_client(server.port)
    get(client, "/one")
    get(client, "/two")
    assert tasks and not any(task.done() for task in tasks)  # waiting for a third request
    client.sock.close()
    assert wait_until(lambda: all(task.done() for task in tasks))
    assert not any(task.cancelled() for task in tasks)
    assert not server.state.tasks
    assert not error_records(caplog)


def test_idle_connections_do_not_delay_shutdown(serve, raw_client, caplog):
    """Connections waiting for their next request close at shutdown at once,
    and their tasks end without errors."""
    caplog.set_level(logging.WARNING)
    tasks: list[asyncio.Task] = []
    app = task_recording_app(tasks)

    server = serve(app)
    clients = [raw_client(server.port) for _ in range(5)]
    for client in clients:
        get(client, "/")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2.0
    assert all(task.done() for task in tasks)
    assert not error_records(caplog)
    for client in clients:
        assert client.read_to_eof() == b""


class Respond:
    """An awaitable that is not a coroutine (as some frameworks return)."""

    def __init__(self, send):
        self.send = send

    def __await__(self):
        start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"9")]}
        yield from self.send(start).__await__()
        yield from self.send({"type": "http.response.body", "body": b"awaitable"}).__await__()


def test_an_application_returning_any_awaitable(serve, raw_client):
    def app(scope, receive, send):
        return Respond(send)

    client = raw_client(serve(app, interface="asgi3").port)
    assert get(client, "/") == b"awaitable"
    assert get(client, "/") == b"awaitable"


def test_an_application_returning_no_awaitable_fails_with_500(serve, raw_client, caplog):
    caplog.set_level(logging.WARNING)

    def app(scope, receive, send):
        return None

    client = raw_client(serve(app, interface="asgi3").port)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.read_response().status == 500
    errors = error_records(caplog)
    assert [record.getMessage() for record in errors] == ["Exception in ASGI application\n"]
    assert isinstance(errors[0].exc_info[1], TypeError)


def test_starlette_middleware_and_background_tasks_on_one_connection(serve):
    """Starlette's BaseHTTPMiddleware (anyio task groups and cancel scopes)
    and background tasks, for many requests over one keep-alive connection."""
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    done: list[int] = []

    async def endpoint(request):
        n = int(request.query_params["n"])
        return PlainTextResponse(str(n), background=BackgroundTask(done.append, n))

    class AddHeader(BaseHTTPMiddleware):
        async def dispatch(self, request, call_next):
            response = await call_next(request)
            response.headers["x-middleware"] = "yes"
            return response

    app = Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(AddHeader)])
    server = serve(app)
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for n in range(20):
            response = client.get("/", params={"n": n})
            assert response.status_code == 200
            assert response.text == str(n)
            assert response.headers["x-middleware"] == "yes"
    assert wait_until(lambda: len(done) == 20)
    assert sorted(done) == list(range(20))
