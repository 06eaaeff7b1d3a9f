"""Real frameworks (FastAPI, Starlette), ASGI2 and WSGI applications, over the real server."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import os
import queue
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import BackgroundTasks, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.responses import StreamingResponse as StarletteStreamingResponse
from starlette.routing import Route

from tests.conftest import WAIT, Gate, close_socket, wait_until

# -- FastAPI -----------------------------------------------------------------


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


def make_fastapi_app(background: dict | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, q: str | None = None, limit: int = 10):
        return {"item_id": item_id, "q": q, "limit": limit}

    @app.post("/items")
    async def create_item(item: Item):
        return {"name": item.name, "price_with_tax": round(item.price * 1.2, 2), "tags": item.tags}

    @app.get("/missing")
    async def missing():
        raise HTTPException(status_code=404, detail="No such thing")

    @app.get("/boom")
    async def boom():
        raise ValueError("boom in the handler")

    @app.get("/stream")
    async def stream():
        async def numbers() -> AsyncIterator[bytes]:
            for i in range(5):
                yield b"line %d\n" % i
                await asyncio.sleep(0)

        return StreamingResponse(numbers(), media_type="text/plain")

    def get_token(x_token: str = Header()) -> str:
        if x_token != "secret":
            raise HTTPException(status_code=403, detail="Bad token")
        return x_token

    cleanups: list[str] = []

    async def get_session() -> AsyncIterator[dict]:
        session = {"id": len(cleanups) + 1}
        try:
            yield session
        finally:
            cleanups.append("closed")

    token_dependency, session_dependency = Depends(get_token), Depends(get_session)

    @app.get("/secure")
    async def secure(token: str = token_dependency, session: dict = session_dependency):
        return {"token": token, "session": session["id"], "cleanups_so_far": len(cleanups)}

    @app.get("/client")
    async def client(request: Request):
        return {"host": request.client.host, "scheme": request.url.scheme}

    if background is not None:

        async def after_response(value: str) -> None:
            await background["gate"].wait()
            background["done"].put(value)

        @app.post("/background")
        async def with_background(tasks: BackgroundTasks):
            tasks.add_task(after_response, "task ran")
            return {"queued": True}

    return app


def test_fastapi_json_path_and_query(serve):
    server = serve(make_fastapi_app())
    with httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.get("/items/42", params={"q": "needle", "limit": "3"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"item_id": 42, "q": "needle", "limit": 3}
        assert client.get("/items/7").json() == {"item_id": 7, "q": None, "limit": 10}


def test_fastapi_post_json_body(serve):
    server = serve(make_fastapi_app())
    with httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.post("/items", json={"name": "pen", "price": 2.5, "tags": ["a", "b"]})
        assert response.status_code == 200
        assert response.json() == {"name": "pen", "price_with_tax": 3.0, "tags": ["a", "b"]}

        response = client.post("/items", json={"name": "pen"})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "price"]


def test_fastapi_http_exceptions(serve):
    server = serve(make_fastapi_app())
    with httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.get("/missing")
        assert response.status_code == 404
        assert response.json() == {"detail": "No such thing"}
        response = client.get("/items/not-a-number")
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["path", "item_id"]
        assert client.get("/no/such/route").status_code == 404
        assert client.get("/items/1").status_code == 200  # the connection is still good


def test_fastapi_unhandled_exception_is_500(serve, caplog):
    """Starlette answers 500 and re-raises: the server logs it once; the next request is served."""
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    server = serve(make_fastapi_app())
    response = httpx.get(server.url + "/boom", timeout=5)
    assert response.status_code == 500
    assert response.text == "Internal Server Error"

    def errors() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "uvicorn.error" and r.levelno == logging.ERROR]

    # Starlette re-raises after sending the 500, so the log line may follow the response.
    assert wait_until(lambda: errors() != [])
    assert httpx.get(server.url + "/items/1", timeout=5).status_code == 200
    errors = errors()
    assert [r.getMessage().strip() for r in errors] == ["Exception in ASGI application"]
    assert errors[0].exc_info is not None and isinstance(errors[0].exc_info[1], ValueError)


def test_fastapi_streaming_response(serve):
    server = serve(make_fastapi_app())
    with httpx.Client(base_url=server.url, timeout=5) as client, client.stream("GET", "/stream") as response:
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        lines = list(response.iter_lines())
    assert lines == [f"line {i}" for i in range(5)]


def test_fastapi_background_task_runs_after_response(serve):
    """The response reaches the client while the background task is still waiting; then it runs."""
    background = {"gate": Gate(), "done": queue.Queue()}
    server = serve(make_fastapi_app(background))
    response = httpx.post(server.url + "/background", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"queued": True}
    assert background["done"].empty()
    background["gate"].open()
    assert background["done"].get(timeout=WAIT) == "task ran"


def test_fastapi_dependency_injection(serve):
    server = serve(make_fastapi_app())
    with httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.get("/secure", headers={"X-Token": "secret"})
        assert response.status_code == 200
        assert response.json() == {"token": "secret", "session": 1, "cleanups_so_far": 0}
        # The yield dependency's cleanup ran after the first request.
        assert client.get("/secure", headers={"X-Token": "secret"}).json()["session"] == 2
        assert client.get("/secure", headers={"X-Token": "wrong"}).status_code == 403
        assert client.get("/secure").status_code == 422


def test_fastapi_client_from_proxy_headers(serve):
    """From 127.0.0.1 (trusted by default) X-Forwarded-For/Proto set the client and scheme."""
    server = serve(make_fastapi_app())
    headers = {"X-Forwarded-For": "203.0.113.7, 10.0.0.1", "X-Forwarded-Proto": "https"}
    response = httpx.get(server.url + "/client", headers=headers, timeout=5)
    # Walked from the right: 10.0.0.1 is not a trusted proxy, so it is the client.
    assert response.json() == {"host": "10.0.0.1", "scheme": "https"}
    response = httpx.get(server.url + "/client", headers={"X-Forwarded-For": "203.0.113.7"}, timeout=5)
    assert response.json() == {"host": "203.0.113.7", "scheme": "http"}
    assert httpx.get(server.url + "/client", timeout=5).json() == {"host": "127.0.0.1", "scheme": "http"}


def test_fastapi_client_without_proxy_headers(serve):
    server = serve(make_fastapi_app(), proxy_headers=False)
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    response = httpx.get(server.url + "/client", headers=headers, timeout=5)
    assert response.json() == {"host": "127.0.0.1", "scheme": "http"}


def test_fastapi_lifespan_state(serve):
    """lifespan="on": startup runs before serving, its state reaches `request.state`,
    and shutdown runs when the server stops."""
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict]:
        events.append("startup")
        yield {"greeting": "hello from lifespan", "counter": [0]}
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def index(request: Request):
        request.state.counter[0] += 1
        return {"greeting": request.state.greeting, "count": request.state.counter[0]}

    server = serve(app, lifespan="on")
    assert events == ["startup"]
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.get("/").json() == {"greeting": "hello from lifespan", "count": 1}
        assert client.get("/").json() == {"greeting": "hello from lifespan", "count": 2}
    server.stop()
    assert events == ["startup", "shutdown"]


# -- Starlette ---------------------------------------------------------------


async def hello(request: StarletteRequest) -> PlainTextResponse:
    return PlainTextResponse(f"Hello, {request.path_params['name']}!")


async def upload(request: StarletteRequest) -> JSONResponse:
    digest = hashlib.sha256()
    size = pieces = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
        pieces += 1
    return JSONResponse({"size": size, "sha256": digest.hexdigest(), "pieces": pieces})


def test_starlette_routes(serve):
    app = Starlette(routes=[Route("/hello/{name}", hello)])
    server = serve(app)
    with httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.get("/hello/world")
        assert response.status_code == 200
        assert response.text == "Hello, world!"
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert client.get("/nope").status_code == 404
        assert client.post("/hello/world").status_code == 405


def test_starlette_stream_reads_chunked_upload(serve):
    app = Starlette(routes=[Route("/upload", upload, methods=["POST"])])
    server = serve(app)
    data = os.urandom(3 * 1024 * 1024 + 17)

    def chunks():
        for start in range(0, len(data), 32 * 1024):
            yield data[start : start + 32 * 1024]

    response = httpx.post(server.url + "/upload", content=chunks(), timeout=10)
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 200
    result = response.json()
    assert result["size"] == len(data)
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert result["pieces"] >= 2  # streamed, not one buffered blob


@pytest.mark.parametrize("how", ["close", "reset"])
def test_starlette_is_disconnected(serve, raw_client, how):
    """`request.is_disconnected()` is False while the client waits, True once it has gone."""
    results: queue.Queue = queue.Queue()
    checked = threading.Event()

    async def endpoint(request: StarletteRequest) -> PlainTextResponse:
        await request.body()
        results.put(await request.is_disconnected())
        checked.set()
        for _ in range(300):  # up to 3 s
            if await request.is_disconnected():
                results.put(True)
                break
            await asyncio.sleep(0.01)
        else:
            results.put(False)
        return PlainTextResponse("late")

    server = serve(Starlette(routes=[Route("/", endpoint, methods=["POST"])]), timeout_graceful_shutdown=1)
    client = raw_client(server.port)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody")
    assert checked.wait(WAIT)
    assert results.get(timeout=WAIT) is False
    close_socket(client.sock, how)
    assert results.get(timeout=7) is True


def test_starlette_streaming_checks_is_disconnected(serve):
    """The common SSE pattern: a StreamingResponse generator that polls
    `request.is_disconnected()` between chunks streams normally."""

    async def events(request: StarletteRequest) -> StarletteStreamingResponse:
        async def generate() -> AsyncIterator[bytes]:
            for i in range(5):
                if await request.is_disconnected():
                    return
                yield b"data: %d\n\n" % i
                await asyncio.sleep(0.01)

        return StarletteStreamingResponse(generate(), media_type="text/event-stream")

    server = serve(Starlette(routes=[Route("/events", events)]))
    response = httpx.get(server.url + "/events", timeout=5)
    assert response.status_code == 200
    assert response.text == "".join(f"data: {i}\n\n" for i in range(5))


def test_starlette_file_response(serve, tmp_path):
    data = os.urandom(700 * 1024 + 3)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)

    async def download(request: StarletteRequest) -> FileResponse:
        return FileResponse(path, filename="blob.bin")

    server = serve(Starlette(routes=[Route("/file", download, methods=["GET", "HEAD"])]))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.get("/file")
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(data))
        assert response.headers["content-disposition"] == 'attachment; filename="blob.bin"'
        assert response.content == data
        response = client.head("/file")
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(data))
        assert response.content == b""
        response = client.get("/file", headers={"Range": "bytes=10-19"})
        assert response.status_code == 206
        assert response.content == data[10:20]


def test_starlette_middleware(serve):
    class TimingHeader(BaseHTTPMiddleware):
        async def dispatch(self, request, call_next):
            response = await call_next(request)
            response.headers["x-base-middleware"] = "yes"
            return response

    class PureAsgiHeader:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            async def send_wrapper(message):
                if message["type"] == "http.response.start":
                    message.setdefault("headers", [])
                    message["headers"] = [*message["headers"], (b"x-pure-middleware", b"yes")]
                await send(message)

            await self.app(scope, receive, send_wrapper)

    app = Starlette(
        routes=[Route("/hello/{name}", hello), Route("/upload", upload, methods=["POST"])],
        middleware=[Middleware(PureAsgiHeader), Middleware(TimingHeader)],
    )
    server = serve(app)
    with httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.get("/hello/mw")
        assert response.text == "Hello, mw!"
        assert response.headers["x-base-middleware"] == "yes"
        assert response.headers["x-pure-middleware"] == "yes"
        # The body still reaches the endpoint through BaseHTTPMiddleware.
        response = client.post("/upload", content=b"x" * 100_000)
        assert response.json()["size"] == 100_000
        assert response.headers["x-base-middleware"] == "yes"


def test_starlette_root_path(serve):
    """root_path="/api": routes match without the prefix, URLs carry it."""

    async def where(request: StarletteRequest) -> JSONResponse:
        return JSONResponse(
            {
                "url_path": request.url.path,
                "root_path": request.scope["root_path"],
                "path": request.scope["path"],
                "url_for": str(request.url_for("where")),
            }
        )

    server = serve(Starlette(routes=[Route("/items", where, name="where")]), root_path="/api")
    response = httpx.get(server.url + "/items", timeout=5)
    assert response.status_code == 200
    assert response.json() == {
        "url_path": "/api/items",
        "root_path": "/api",
        "path": "/api/items",
        "url_for": f"{server.url}/api/items",
    }


# -- ASGI2 -------------------------------------------------------------------


class Asgi2App:
    """An ASGI2 ("double callable") application."""

    def __init__(self, scope):
        assert scope["type"] == "http"
        self.scope = scope

    async def __call__(self, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        payload = b"asgi2 %s %s body=%s" % (self.scope["asgi"]["version"].encode(), self.scope["path"].encode(), body)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(payload))],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@pytest.mark.parametrize("interface", ["auto", "asgi2"])
def test_asgi2_app(serve, interface):
    server = serve(Asgi2App, interface=interface)
    with httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.post("/two", content=b"payload")
        assert response.status_code == 200
        assert response.text == "asgi2 2.0 /two body=payload"
        assert client.get("/again").text == "asgi2 2.0 /again body="


# -- WSGI --------------------------------------------------------------------


def wsgi_app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    payload = b"|".join(
        [
            environ["REQUEST_METHOD"].encode(),
            environ["PATH_INFO"].encode(),
            environ["QUERY_STRING"].encode(),
            environ.get("HTTP_X_CUSTOM", "").encode(),
            body,
        ]
    )
    start_response("201 Created", [("Content-Type", "text/x-wsgi"), ("X-Wsgi", "yes")])
    return [payload[:5], payload[5:]]


def test_wsgi_app(serve):
    server = serve(wsgi_app, interface="wsgi")
    with httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.post("/path/x", params={"a": "1"}, headers={"X-Custom": "c"}, content=b"the input")
        assert response.status_code == 201
        assert response.reason_phrase == "Created"
        assert response.headers["content-type"] == "text/x-wsgi"
        assert response.headers["x-wsgi"] == "yes"
        assert response.content == b"POST|/path/x|a=1|c|the input"
        big = os.urandom(300_000)
        response = client.put("/big", content=big)
        assert response.content == b"PUT|/big|||" + big


# -- contextvars and tasks ---------------------------------------------------

request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var", default="unset")


def test_contextvars_do_not_leak_between_requests(serve, raw_client):
    """A context variable set while handling one request is not seen by the next
    (on the same connection or another); the app runs in a real asyncio task."""
    seen: list = []

    async def app(scope, receive, send):
        seen.append((request_var.get(), asyncio.current_task() is not None))
        request_var.set(scope["path"])
        body = request_var.get().encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    server = serve(app)
    client = raw_client(server.port)
    for path in (b"/one", b"/two"):
        client.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
        assert client.read_response().body == path
    client.send(b"GET /three HTTP/1.1\r\nHost: x\r\n\r\nGET /four HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.read_response().body == b"/three"
    assert client.read_response().body == b"/four"
    assert httpx.get(server.url + "/five", timeout=5).text == "/five"
    assert seen == [("unset", True)] * 5


def test_anyio_task_group_in_app(serve):
    """anyio needs a real current task: a task group and cancel scope work inside the app."""
    import anyio

    async def app(scope, receive, send):
        results = []

        async def worker(n):
            await anyio.sleep(0)
            results.append(n)

        async with anyio.create_task_group() as group:
            for n in range(3):
                group.start_soon(worker, n)
        with anyio.move_on_after(0.01):
            await anyio.sleep(10)
        body = b"%d" % sum(results)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    server = serve(app)
    assert httpx.get(server.url, timeout=5).text == "3"
