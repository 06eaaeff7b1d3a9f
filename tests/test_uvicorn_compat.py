"""The same scenarios on Uvicorn 0.54 and on cppcorn: what a user observes must
be the same (the exit status, the log lines, the response heads and bodies,
the ASGI messages the application receives).

Each test runs one command line as `python -m uvicorn ...` and as
`python -m cppcorn ...` (see `tests/compat.py`) and asserts that the two
observations are equal: the left side of a diff is Uvicorn, the right side
cppcorn. Differences that cppcorn keeps on purpose (listed in the README's
"Differences from Uvicorn") are normalised by the scenario that meets them,
after checking that they are there, with a comment naming the difference.
"""

from __future__ import annotations

import functools
import json
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import websockets.sync.client

from tests.compat import (
    RECORDER_MODULE,
    Observation,
    ServerRun,
    observe_both,
    port_in_use,
    render_head,
    request_bytes,
)
from tests.conftest import posix_only
from tests.subprocesses import ServerProcess
from tests.websocket_client import TEXT, RawWebSocket

pytestmark = posix_only

APPS = '''
"""The applications of the compatibility scenarios: each records what it
receives with `record()` where the scenario compares it."""
import os

from asgi_helpers import lifespan
from recorder import record


async def read_body(receive):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def respond(send, status=200, body=b"Hello, world!", headers=None):
    if headers is None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def hello(scope, receive, send):
    """`Hello, world!` once the request body is complete."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await read_body(receive)
    await respond(send)


async def scope(scope, receive, send):
    """Records the HTTP scope (only the keys `?keys=a,b` names, if any),
    then answers as `hello`."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    keys = [key for key in scope["query_string"].decode().partition("keys=")[2].split(",") if key]
    record({key: scope.get(key, "<missing>") for key in keys} if keys else scope)
    await read_body(receive)
    await respond(send)


async def environment(scope, receive, send):
    """Records the variables the scenarios set and the root path."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    names = ("COMPAT_SETTING", "UVICORN_ROOT_PATH")
    record({"root_path": scope["root_path"], **{name: os.environ.get(name) for name in names}})
    await hello(scope, receive, send)


async def lifespan_scope(scope, receive, send):
    """Records the lifespan scope and messages (its startup puts
    `answer: 42` in the state), then the state each request gets."""
    if scope["type"] == "lifespan":
        record(scope)
        while True:
            message = await receive()
            record(message)
            if message["type"] == "lifespan.startup":
                scope["state"]["answer"] = 42
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    record(scope["state"])
    await hello(scope, receive, send)


async def messages(scope, receive, send):
    """Records every message it receives: the request's, then the one
    receive() returns after the response. `/wait-disconnect` sends no
    response and records messages until `http.disconnect`."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    while True:
        message = await receive()
        record(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    if scope["path"] == "/wait-disconnect":
        while message["type"] != "http.disconnect":
            message = await receive()
            record(message)
        return
    await respond(send)
    record(await receive())


async def raises(scope, receive, send):
    """An exception before the response starts."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    raise RuntimeError("the application failed")


async def no_response(scope, receive, send):
    """Returns without sending anything."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await read_body(receive)


async def framing(scope, receive, send):
    """`/204`, `/304` (with an ETag), `/chunked` (two body messages, no
    Content-Length), anything else as `hello` (HEAD too)."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await read_body(receive)
    path = scope["path"]
    if path == "/204":
        await respond(send, 204, b"", [])
    elif path == "/304":
        await respond(send, 304, b"", [(b"etag", b'"v1"')])
    elif path == "/chunked":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"Hello, ", "more_body": True})
        await send({"type": "http.response.body", "body": b"world!"})
    else:
        await respond(send)


async def lifespan_failed(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "the database is down"})
        return
    await hello(scope, receive, send)


async def lifespan_raises(scope, receive, send):
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan here")
    await hello(scope, receive, send)


async def websocket(scope, receive, send):
    """Records every message it receives. `/echo`: accepts, echoes, and
    closes with 4000 "bye now" when told "bye"; `/deny`: closes before
    accepting (403); `/not-found`: a 404 response instead; `/wait`: accepts
    and waits for the disconnect. HTTP requests get `hello`."""
    if scope["type"] != "websocket":
        return await hello(scope, receive, send)
    path = scope["path"]
    record(await receive())
    if path == "/deny":
        await send({"type": "websocket.close"})
        return
    if path == "/not-found":
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"9")]
        await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"Not here."})
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        record(message)
        if message["type"] == "websocket.disconnect":
            return
        if path == "/echo" and message.get("text") == "bye":
            await send({"type": "websocket.close", "code": 4000, "reason": "bye now"})
        elif path == "/echo":
            await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
'''

FASTAPI_APP = '''
from fastapi import FastAPI

app = FastAPI()


@app.get("/items/{item_id}")
async def item(item_id: int):
    return {"item_id": item_id}
'''


@pytest.fixture
def workdir(workdir: Path) -> Path:
    (workdir / "recorder.py").write_text(RECORDER_MODULE)
    (workdir / "compat_apps.py").write_text(APPS)
    (workdir / "compat_fastapi.py").write_text(FASTAPI_APP)
    return workdir


@pytest.fixture
def both(python_process: Callable[..., ServerProcess], workdir: Path) -> Callable[..., tuple[Observation, Observation]]:
    """`uvicorn, cppcorn = both(*args, drive=..., ...)`: see `observe_both`."""
    return functools.partial(observe_both, python_process, workdir)


def get(*paths: str, headers: tuple[str, ...] = ()) -> Callable[[ServerRun], None]:
    """A drive: one GET for each path, each on a new connection."""

    def drive(run: ServerRun) -> None:
        for path in paths:
            run.get(path, *headers)

    return drive


# -- process lifetime --------------------------------------------------------


def test_startup_and_sigint(both):
    uvicorn, cppcorn = both("compat_apps:hello")
    assert uvicorn == cppcorn


def test_sigterm(both):
    uvicorn, cppcorn = both("compat_apps:hello", stop=signal.SIGTERM)
    assert uvicorn == cppcorn


def test_lifespan_startup_failed(both):
    uvicorn, cppcorn = both("compat_apps:lifespan_failed", "--lifespan", "on", ready="exit")
    assert uvicorn == cppcorn


def test_lifespan_exception_with_lifespan_on(both):
    uvicorn, cppcorn = both("compat_apps:lifespan_raises", "--lifespan", "on", ready="exit")
    assert uvicorn == cppcorn


def test_lifespan_unsupported_with_lifespan_auto(both):
    uvicorn, cppcorn = both("compat_apps:lifespan_raises", drive=get("/"))
    assert uvicorn == cppcorn


def test_lifespan_scope_and_state(both):
    uvicorn, cppcorn = both("compat_apps:lifespan_scope", drive=get("/"))
    assert uvicorn == cppcorn


@pytest.mark.parametrize(
    "app",
    ["missing_module:app", "compat_apps:missing", "compat_apps", "compat_apps:hello.nothing"],
)
def test_app_not_importable(both, app):
    uvicorn, cppcorn = both(app, ready="exit")
    assert uvicorn == cppcorn


def test_app_module_raises_when_imported(both):
    uvicorn, cppcorn = both("broken:app", ready="exit")
    # Deliberate: any exception while importing the application is a
    # startup failure (status 3, after an "Error loading ASGI app." line);
    # Uvicorn lets it out (status 1, the traceback alone).
    assert (cppcorn.exit_code, cppcorn.stderr[0]) == (3, "ERROR:    Error loading ASGI app.")
    cppcorn.exit_code = 1
    del cppcorn.stderr[0]
    assert uvicorn == cppcorn


def test_bind_failure(both):
    with port_in_use() as port:
        uvicorn, cppcorn = both("compat_apps:hello", port=port, ready="exit")
    # cppcorn.loop binds with asyncio's create_server, whose message repeats
    # the errno from Python 3.13 on ("...: [errno 98] address already in
    # use", as Uvicorn prints with --loop asyncio); uvloop, under Uvicorn,
    # words it without.
    cppcorn.stderr = [line.replace("): [errno 98] address", "): address") for line in cppcorn.stderr]
    assert uvicorn == cppcorn


def test_log_level_warning_is_quiet(both):
    uvicorn, cppcorn = both("compat_apps:hello", "--log-level", "warning", ready="port", drive=get("/"))
    assert uvicorn == cppcorn


def test_limit_max_requests(both):
    uvicorn, cppcorn = both("compat_apps:hello", "--limit-max-requests", "2", drive=get("/", "/"), stop=None)
    assert uvicorn == cppcorn


def test_shutdown_waits_for_a_request_in_flight(both):
    def drive(run: ServerRun) -> None:
        client = run.connect()
        client.send(request_bytes("POST", "/", "Content-Length: 4", body=b"ab"))
        run.wait_recorded(1)
        run.process.send_signal(signal.SIGINT)
        run.wait_line("Waiting for connections to close", timeout=2)
        client.send(b"cd")
        run.read_response(client)

    # The process ends once the request is done (a second SIGINT would force it).
    uvicorn, cppcorn = both("compat_apps:messages", drive=drive, stop=None)
    assert uvicorn == cppcorn


# -- HTTP responses ----------------------------------------------------------


def test_response_200(both):
    uvicorn, cppcorn = both("compat_apps:hello", drive=get("/", "/path?query=1"))
    assert uvicorn == cppcorn


def test_fastapi_404_and_200(both):
    uvicorn, cppcorn = both("compat_fastapi:app", drive=get("/missing", "/items/7"))
    assert uvicorn == cppcorn


def test_exception_before_response_start(both):
    uvicorn, cppcorn = both("compat_apps:raises", drive=get("/"))
    assert uvicorn == cppcorn


def test_app_returns_without_response(both):
    uvicorn, cppcorn = both("compat_apps:no_response", drive=get("/"))
    assert uvicorn == cppcorn


def test_invalid_request(both):
    invalid = b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"
    uvicorn, cppcorn = both("compat_apps:hello", drive=lambda run: run.exchange(invalid))
    assert uvicorn == cppcorn


def test_unsupported_upgrade(both):
    uvicorn, cppcorn = both("compat_apps:hello", drive=get("/", headers=("Connection: Upgrade", "Upgrade: h2c")))
    assert uvicorn == cppcorn


def test_limit_concurrency_503(both):
    def drive(run: ServerRun) -> None:
        # Two idle connections and the requesting one: over the limit for
        # both servers (below that, their ways of counting differ: see the
        # README).
        run.connect()
        run.connect()
        run.get("/")

    uvicorn, cppcorn = both("compat_apps:hello", "--limit-concurrency", "2", drive=drive)
    assert uvicorn == cppcorn


def test_root_path(both):
    uvicorn, cppcorn = both(
        "compat_apps:scope", "--root-path", "/api", drive=get("/api/items?keys=path,raw_path,root_path")
    )
    assert uvicorn == cppcorn


def test_default_headers(both):
    uvicorn, cppcorn = both(
        "compat_apps:hello", "--header", "X-Plain:yes", "--header", "X-Spaced: yes", drive=get("/")
    )
    # Deliberate: `--header "X: y"` sends `x: y`, Uvicorn `x:  y`.
    assert "x-spaced:  yes" in uvicorn.client
    assert "x-spaced: yes" in cppcorn.client
    uvicorn.client = [line.replace("x-spaced:  yes", "x-spaced: yes") for line in uvicorn.client]
    assert uvicorn == cppcorn


def test_no_server_and_no_date_header(both):
    uvicorn, cppcorn = both("compat_apps:hello", "--no-server-header", "--no-date-header", drive=get("/"))
    assert uvicorn == cppcorn


def test_head_204_304_framing(both):
    def drive(run: ServerRun) -> None:
        run.get("/", method="HEAD")
        run.get("/204")
        run.get("/304")

    uvicorn, cppcorn = both("compat_apps:framing", drive=drive)
    assert uvicorn == cppcorn


def test_chunked_response(both):
    def drive(run: ServerRun) -> None:
        client = run.connect()
        client.send(request_bytes("GET", "/chunked"))
        run.see(*render_head(client.read_until(b"\r\n\r\n")))
        # The body as it is on the wire, chunk sizes included.
        body = client.read_until(b"0\r\n\r\n")
        run.see(f"body: {body!r}")

    uvicorn, cppcorn = both("compat_apps:framing", drive=drive)
    assert uvicorn == cppcorn


def test_expect_100_continue(both):
    def drive(run: ServerRun) -> None:
        client = run.connect()
        client.send(request_bytes("POST", "/", "Content-Length: 5", "Expect: 100-continue"))
        run.see(*render_head(client.read_until(b"\r\n\r\n")))
        client.send(b"hello")
        run.read_response(client)

    uvicorn, cppcorn = both("compat_apps:messages", drive=drive)
    assert uvicorn == cppcorn


def test_http10_request(both):
    def drive(run: ServerRun) -> None:
        client = run.exchange(request_bytes("GET", "/", version="HTTP/1.0"))
        run.see(f"closed: {client.is_closed()}")

    uvicorn, cppcorn = both("compat_apps:hello", drive=drive)
    assert uvicorn == cppcorn


def test_http10_keep_alive_request(both):
    def drive(run: ServerRun) -> None:
        client = run.exchange(request_bytes("GET", "/", "Connection: keep-alive", version="HTTP/1.0"))
        run.see(f"closed: {client.is_closed(timeout=0.5)}")

    uvicorn, cppcorn = both("compat_apps:hello", drive=drive)
    # Deliberate: an HTTP/1.0 client that asks for keep-alive gets it from
    # cppcorn; Uvicorn closes the connection.
    assert "connection: keep-alive" in cppcorn.client
    assert "closed: False" in cppcorn.client
    cppcorn.client = [
        {"connection: keep-alive": "connection: close", "closed: False": "closed: True"}.get(line, line)
        for line in cppcorn.client
    ]
    assert uvicorn == cppcorn


def test_huge_request_head(both):
    huge = "X-Huge: " + "a" * 70_000
    uvicorn, cppcorn = both("compat_apps:hello", drive=get("/", headers=(huge,)))
    # Deliberate: request heads are bounded (`--limit-request-header-size`,
    # 64 KiB by default): cppcorn answers 431, Uvicorn serves the request.
    assert cppcorn.client[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    assert uvicorn.client[0] == "HTTP/1.1 200 OK"
    # and logs why.
    assert "WARNING:  Request refused with 431: Request header section too large." in cppcorn.stderr
    cppcorn.stderr.remove("WARNING:  Request refused with 431: Request header section too large.")
    uvicorn.client = cppcorn.client = []
    uvicorn.stdout = cppcorn.stdout = []
    assert uvicorn == cppcorn


# -- what the application receives -------------------------------------------


def test_http_scope(both):
    headers = ("User-Agent: compat", "X-Twice: 1", "X-Twice: 2", "Content-Length: 2")
    uvicorn, cppcorn = both(
        "compat_apps:scope",
        drive=lambda run: run.exchange(request_bytes("POST", "/a%20b/c?x=1&y=%20", *headers, body=b"hi")),
    )
    assert uvicorn == cppcorn


def test_proxy_headers_scope(both):
    headers = ("X-Forwarded-For: 203.0.113.7, 127.0.0.1", "X-Forwarded-Proto: https")
    uvicorn, cppcorn = both("compat_apps:scope", drive=get("/?keys=client,scheme,server", headers=headers))
    assert uvicorn == cppcorn


def test_body_in_two_chunks(both):
    def drive(run: ServerRun) -> None:
        client = run.connect()
        client.send(request_bytes("POST", "/", "Content-Length: 10", body=b"hello"))
        run.wait_recorded(1)
        client.send(b"world")
        run.read_response(client)
        run.wait_recorded(3)

    uvicorn, cppcorn = both("compat_apps:messages", drive=drive)
    assert uvicorn == cppcorn


def test_client_disconnects_before_response(both):
    def drive(run: ServerRun) -> None:
        client = run.connect()
        client.send(request_bytes("GET", "/wait-disconnect"))
        run.wait_recorded(1)
        client.close()
        run.wait_recorded(2)

    uvicorn, cppcorn = both("compat_apps:messages", drive=drive)
    assert uvicorn == cppcorn


# -- WebSockets --------------------------------------------------------------


def websocket_handshake(run: ServerRun, path: str) -> RawWebSocket:
    """Open a WebSocket on a raw socket; note the response head (and the
    body of a refusal)."""
    client = run.websocket()
    response = client.connect(path)
    run.see(*render_head(response.raw))
    if response.status != 101:
        run.see(f"body: {client.read_body()!r}")
    return client


def test_websocket_echo_and_close(both):
    def drive(run: ServerRun) -> None:
        client = websocket_handshake(run, "/echo")
        client.send_text("hello")
        client.send_bytes(b"\x00\x01")
        client.send_text("bye")
        for _ in range(3):
            frame = client.recv_frame()
            run.see(f"frame: opcode {frame.opcode} payload {frame.payload!r}")
        client.send_close(4000, b"bye now")
        run.see(f"closed: {client.server_closed()}")
        run.wait_recorded(5)

    uvicorn, cppcorn = both("compat_apps:websocket", drive=drive)
    assert uvicorn == cppcorn


def test_websocket_client_closes(both):
    def drive(run: ServerRun) -> None:
        client = websocket_handshake(run, "/wait")
        client.send_close(1001, b"going away")
        run.see(f"close frame: {client.recv_close().payload!r}")
        run.wait_recorded(2)

    uvicorn, cppcorn = both("compat_apps:websocket", drive=drive)
    assert uvicorn == cppcorn


def test_websocket_closed_abruptly(both):
    def drive(run: ServerRun) -> None:
        client = websocket_handshake(run, "/wait")
        client.send_frame(TEXT, b"last words")
        run.wait_recorded(2)
        client.close()
        run.wait_recorded(3)

    uvicorn, cppcorn = both("compat_apps:websocket", drive=drive)
    assert uvicorn == cppcorn


def test_websocket_with_the_websockets_client(both):
    def drive(run: ServerRun) -> None:
        with websockets.sync.client.connect(f"ws://127.0.0.1:{run.port}/echo", open_timeout=5) as client:
            response = client.response
            assert response is not None
            head = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
            # Sec-WebSocket-Accept answers the client's random key.
            head += [
                f"{name}: {value}"
                for name, value in response.headers.raw_items()
                if name.lower() != "sec-websocket-accept"
            ]
            run.see(*render_head("\r\n".join(head).encode("latin-1")))
            client.send("hello")
            run.see(f"received: {client.recv(timeout=5)!r}")
        run.wait_recorded(3)

    uvicorn, cppcorn = both("compat_apps:websocket", drive=drive)
    assert uvicorn == cppcorn


def test_websocket_denied_by_close(both):
    uvicorn, cppcorn = both("compat_apps:websocket", drive=lambda run: websocket_handshake(run, "/deny"))
    assert uvicorn == cppcorn


def test_websocket_denied_by_http_response(both):
    uvicorn, cppcorn = both("compat_apps:websocket", drive=lambda run: websocket_handshake(run, "/not-found"))
    # Deliberate: Uvicorn (websockets-sansio) logs this error although the
    # app completed its denial response; cppcorn does not.
    bogus = "ERROR:    ASGI callable returned without completing handshake."
    uvicorn.stderr.remove(bogus)
    assert uvicorn == cppcorn


@pytest.mark.parametrize(
    "handshake",
    [{"key": None}, {"key": "not base64"}, {"version": None}, {"version": "8"}],
    ids=["no-key", "bad-key", "no-version", "bad-version"],
)
def test_websocket_upgrade_refused(both, handshake):
    def drive(run: ServerRun) -> None:
        client = run.websocket()
        client.send_raw(client.request("/echo", **handshake))
        run.see(*render_head(client.read_handshake().raw), f"body: {client.read_body()!r}")

    uvicorn, cppcorn = both("compat_apps:websocket", drive=drive)
    if "version" in handshake:
        # Deliberate: a refused version is answered with the version the
        # server speaks, as RFC 6455 4.2.2 requires (Uvicorn omits it).
        cppcorn.client.remove("sec-websocket-version: 13")
    assert uvicorn == cppcorn


# -- logging -----------------------------------------------------------------


def test_trace_http_request(both):
    def drive(run: ServerRun) -> None:
        client = run.get("/")
        assert client is not None
        client.close()
        run.wait_line("HTTP connection lost", timeout=2)

    uvicorn, cppcorn = both("compat_apps:hello", "--log-level", "trace", drive=drive)
    without_deliberate_debug_lines(uvicorn, cppcorn)
    assert uvicorn == cppcorn


def test_trace_websocket(both):
    def drive(run: ServerRun) -> None:
        client = websocket_handshake(run, "/echo")
        client.send_text("hello")
        client.recv_frame()
        client.send_close(1000)
        client.recv_close()
        run.wait_recorded(3)
        run.wait_line("WebSocket connection lost", timeout=2)

    uvicorn, cppcorn = both("compat_apps:websocket", "--log-level", "trace", drive=drive)
    without_deliberate_debug_lines(uvicorn, cppcorn)
    assert uvicorn == cppcorn


# The DEBUG lines of Uvicorn's WebSocket library: states ("= connection is
# OPEN"), handshake heads and frames ("< TEXT 'hello' [5 bytes]", "> EOF").
WEBSOCKETS_DEBUG_LINE = re.compile(r"^DEBUG:\s+[=<>] ")
SERVING_WITH = re.compile(r"^DEBUG:\s+Serving with the \w+ event loop")


def without_deliberate_debug_lines(uvicorn: Observation, cppcorn: Observation) -> None:
    """Deliberate: cppcorn's compiled WebSocket protocol does not log the
    frames and states that Uvicorn's WebSocket library logs at DEBUG, and
    cppcorn says at DEBUG which event loop serves."""
    assert sum(bool(SERVING_WITH.match(line)) for line in cppcorn.stderr) == 1
    cppcorn.stderr = [line for line in cppcorn.stderr if not SERVING_WITH.match(line)]
    uvicorn.stderr = [line for line in uvicorn.stderr if not WEBSOCKETS_DEBUG_LINE.match(line)]


@pytest.mark.parametrize("option", ["--access-log", "--no-access-log"])
def test_access_log_option(both, option):
    uvicorn, cppcorn = both("compat_apps:hello", option, drive=get("/"))
    assert uvicorn == cppcorn


UVICORN_LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"named": {"format": "%(levelname)s [%(name)s] %(message)s"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "named", "stream": "ext://sys.stderr"},
        "stdout": {"class": "logging.StreamHandler", "formatter": "named", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "uvicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}


def test_log_config_naming_uvicorn_loggers(both):
    uvicorn, cppcorn = both(
        "compat_apps:hello",
        "--log-config",
        "logging.json",
        files={"logging.json": json.dumps(UVICORN_LOG_CONFIG)},
        drive=get("/"),
    )
    assert uvicorn == cppcorn


# -- configuration from the environment ---------------------------------------


def test_uvicorn_port_in_the_environment(both):
    uvicorn, cppcorn = both("compat_apps:hello", listen=False, env={"UVICORN_PORT": "{port}"}, drive=get("/"))
    assert uvicorn == cppcorn


def test_env_file(both):
    uvicorn, cppcorn = both(
        "compat_apps:environment",
        "--env-file",
        "settings.env",
        files={"settings.env": "UVICORN_ROOT_PATH=/env\nCOMPAT_SETTING=x\n"},
        drive=get("/"),
    )
    # Deliberate: Uvicorn reads its options before it loads the file, so the
    # UVICORN_* variables there reach only the application's environment;
    # cppcorn loads the file first and they set options too.
    assert cppcorn.app == ["{'COMPAT_SETTING': 'x', 'UVICORN_ROOT_PATH': '/env', 'root_path': '/env'}"]
    cppcorn.app = [cppcorn.app[0].replace("'root_path': '/env'", "'root_path': ''")]
    assert cppcorn.stdout == ['INFO:     127.0.0.1:CLIENT_PORT - "GET /env/ HTTP/1.1" 200 OK']
    cppcorn.stdout = [cppcorn.stdout[0].replace("/env/", "/")]
    assert uvicorn == cppcorn
