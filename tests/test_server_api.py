"""The library API, in-process: `cppcorn.run`, `Config`, `Server`.

What programs embedding cppcorn (as they embed Uvicorn) rely on: every
Uvicorn `Config` keyword, `await Server(config).serve()` in the caller's own
event loop, pre-bound sockets, the lifespan protocol and its state, request
limits, and the environment variables `Config` reads.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import os
import signal
import socket
import ssl
import stat
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

import cppcorn
from tests.conftest import assert_in_order, posix_only, read_body, respond_json, simple_app

try:
    import uvloop
except ImportError:  # uvloop is not available on every platform
    uvloop = None

STARTUP_TIMEOUT = 10.0


# --- Helpers ----------------------------------------------------------------------


@pytest.fixture
def server_logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    """Capture cppcorn's server log at INFO (records come from server threads)."""
    for name in ("uvicorn", "uvicorn.error"):
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    return caplog


def messages(caplog: pytest.LogCaptureFixture, level: int | None = None) -> list[str]:
    return [
        record.getMessage()
        for record in list(caplog.records)
        if record.name == "uvicorn.error" and (level is None or record.levelno == level)
    ]


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        assert uvloop is not None
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run_in_loop(name: str, main: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Run `main()` in an event loop the test owns (stdlib or uvloop)."""
    loop = loop_factory(name)()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(asyncio.wait_for(main(), timeout))
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def wait_started(server: cppcorn.Server, task: asyncio.Task[None]) -> None:
    """Wait (bounded) until `server.started`; fail early if serve() ended."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("serve() returned without starting")
        assert time.monotonic() < deadline, "server did not start"
        await asyncio.sleep(0.01)


def listening_port(server: cppcorn.Server) -> int:
    return server.servers[0].sockets[0].getsockname()[1]


async def serve_one_request(
    server: cppcorn.Server, sockets: list[socket.socket] | None = None, port: int | None = None
) -> httpx.Response:
    """Run `server.serve()` (on `sockets`, if given) as a task of the running
    loop, GET / from it (on `port`, or else where it listens), then set
    `should_exit` and wait for serve() to return."""
    task = asyncio.create_task(server.serve() if sockets is None else server.serve(sockets=sockets))
    await wait_started(server, task)
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{port or listening_port(server)}/")
    server.should_exit = True
    await asyncio.wait_for(task, 5)
    return response


async def client_app(scope, receive, send):
    """Answer with the scope's client address and scheme."""
    await read_body(receive)
    await respond_json(send, {"client": scope["client"], "scheme": scope["scheme"]})


def lifespan_app(
    on_startup: Callable[[dict], None] | None = None,
    shutdown_message: dict | None = None,
    shutdown_raises: bool = False,
    events: list[str] | None = None,
) -> Callable[..., Awaitable[None]]:
    """A lifespan-aware app that answers HTTP requests with `simple_app`."""
    http = simple_app()

    async def app(scope, receive, send):
        if scope["type"] != "lifespan":
            await http(scope, receive, send)
            return
        message = await receive()
        if events is not None:
            events.append(message["type"])
        if on_startup is not None:
            on_startup(scope["state"])
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        if events is not None:
            events.append(message["type"])
        if shutdown_raises:
            raise RuntimeError("shutdown exploded")
        await send(shutdown_message or {"type": "lifespan.shutdown.complete"})

    return app


# --- Public names and the Config signature ------------------------------------------


def test_public_names():
    """`run`, `Config`, `Server` (and `main`) are importable from `cppcorn`."""
    from cppcorn import Config, Server, main, run
    from cppcorn.config import Config as ConfigClass
    from cppcorn.server import Server as ServerClass

    assert Config is ConfigClass
    assert Server is ServerClass
    assert callable(run) and callable(main)
    assert {"main", "run", "Config", "Server"} <= set(cppcorn.__all__)
    assert isinstance(cppcorn.__version__, str)


def test_other_names_people_import():
    """The module-level names code written for Uvicorn imports."""
    from cppcorn.config import LOGGING_CONFIG, STARTUP_FAILURE
    from cppcorn.importer import import_from_string
    from cppcorn.logging import TRACE_LOG_LEVEL, AccessFormatter, ColourizedFormatter, DefaultFormatter
    from cppcorn.server import ServerState

    assert STARTUP_FAILURE == 3
    assert set(LOGGING_CONFIG["loggers"]) == {"uvicorn", "uvicorn.error", "uvicorn.access"}
    assert TRACE_LOG_LEVEL == 5
    assert issubclass(DefaultFormatter, ColourizedFormatter) and issubclass(AccessFormatter, ColourizedFormatter)
    assert import_from_string("os.path:join") is os.path.join
    state = ServerState()
    assert state.total_requests == 0
    assert len(state.connections) == 0 and len(state.tasks) == 0


# uvicorn.Config's parameters (0.54.0), with their defaults; `app` and
# `log_config` (whose default names Uvicorn's own loggers) are left out.
UVICORN_CONFIG_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 8000,
    "uds": None,
    "fd": None,
    "loop": "auto",
    "http": "auto",
    "http2": False,
    "ws": "auto",
    "ws_max_size": 16777216,
    "ws_max_queue": 32,
    "ws_ping_interval": 20.0,
    "ws_ping_timeout": 20.0,
    "ws_per_message_deflate": True,
    "lifespan": "auto",
    "env_file": None,
    "log_level": None,
    "access_log": True,
    "use_colors": None,
    "interface": "auto",
    "reload": False,
    "reload_dirs": None,
    "reload_delay": 0.25,
    "reload_includes": None,
    "reload_excludes": None,
    "workers": None,
    "proxy_headers": True,
    "server_header": True,
    "date_header": True,
    "forwarded_allow_ips": None,
    "root_path": "",
    "limit_concurrency": None,
    "limit_max_requests": None,
    "limit_max_requests_jitter": 0,
    "backlog": 2048,
    "timeout_keep_alive": 5,
    "timeout_notify": 30,
    "timeout_graceful_shutdown": None,
    "timeout_worker_healthcheck": 5,
    "callback_notify": None,
    "ssl_keyfile": None,
    "ssl_certfile": None,
    "ssl_keyfile_password": None,
    "ssl_version": ssl.PROTOCOL_TLS_SERVER,
    "ssl_cert_reqs": ssl.CERT_NONE,
    "ssl_ca_certs": None,
    "ssl_ciphers": None,
    "ssl_context_factory": None,
    "headers": None,
    "factory": False,
    "h11_max_incomplete_event_size": None,
    "reset_contextvars": False,
}


def test_config_has_every_uvicorn_parameter_with_its_default():
    """`Config` takes every keyword `uvicorn.Config` takes, defaulting the same."""
    parameters = inspect.signature(cppcorn.Config).parameters
    assert next(iter(parameters)) == "app"
    assert "log_config" in parameters
    missing = [name for name in UVICORN_CONFIG_DEFAULTS if name not in parameters]
    assert missing == []
    different = {
        name: parameters[name].default
        for name, default in UVICORN_CONFIG_DEFAULTS.items()
        if parameters[name].default != default
    }
    assert different == {}


def test_config_accepts_every_uvicorn_keyword_and_loads():
    """A `Config(...)` call spelling out every Uvicorn keyword works, and loads."""
    config = cppcorn.Config(simple_app(), log_config=None, **UVICORN_CONFIG_DEFAULTS)
    config.load()
    assert config.loaded
    assert config.host == "127.0.0.1" and config.port == 8000
    assert config.asgi_version == "3.0"
    assert callable(config.loaded_app)


# --- serve() in the caller's event loop ------------------------------------------------


def test_serve_inside_the_callers_event_loop(loop, server_logs):
    """`await Server(config).serve()` as a task of the caller's own loop:
    requests are served on that loop; `should_exit = True` stops it; signal
    handlers are installed while it runs (main thread) and restored after."""
    seen: dict[str, Any] = {}
    http = simple_app(b"embedded")

    async def app(scope, receive, send):
        seen["loop"] = asyncio.get_running_loop()
        seen["handler"] = signal.getsignal(signal.SIGINT)
        await http(scope, receive, send)

    async def main():
        before = signal.getsignal(signal.SIGINT)
        server = cppcorn.Server(cppcorn.Config(app, port=0, log_config=None, lifespan="off"))
        response = await serve_one_request(server)
        return server, response, before, signal.getsignal(signal.SIGINT), asyncio.get_running_loop()

    server, response, before, after, owner_loop = run_in_loop(loop, main)
    assert response.status_code == 200
    assert response.text == "embedded"
    assert seen["loop"] is owner_loop
    if loop == "uvloop":
        assert isinstance(owner_loop, uvloop.Loop)
    assert seen["handler"] == server.handle_exit
    assert after == before
    assert_in_order(messages(server_logs), ["Shutting down", f"Finished server process [{os.getpid()}]"])


def test_no_signal_handlers_outside_the_main_thread(serve):
    """A server running in another thread leaves the main thread's signal
    handlers alone."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = serve(simple_app())
    assert threading.current_thread() is threading.main_thread()
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert httpx.get(server.url, timeout=5).status_code == 200
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_config_loop_selects_the_event_loop(serve, loop):
    """`Config(loop=...)` decides the loop `Server.run()` makes."""
    seen: dict[str, Any] = {}
    http = simple_app()

    async def app(scope, receive, send):
        seen["loop"] = asyncio.get_running_loop()
        await http(scope, receive, send)

    server = serve(app, loop=loop)
    assert httpx.get(server.url, timeout=5).status_code == 200
    if loop == "uvloop":
        assert isinstance(seen["loop"], uvloop.Loop)
    elif loop == "cppcorn":
        from cppcorn.loop import Loop

        assert isinstance(seen["loop"], Loop)
    else:
        assert type(seen["loop"]).__module__.startswith("asyncio")


# --- Pre-bound sockets ------------------------------------------------------------------


def serve_on_sockets(loop: str, config: cppcorn.Config, sockets: list[socket.socket], port: int) -> httpx.Response:
    """Serve on pre-bound sockets in the test's own loop, make one request, stop."""

    async def main():
        return await serve_one_request(cppcorn.Server(config), sockets, port)

    return run_in_loop(loop, main)


def test_serve_with_a_prebound_socket(loop, server_logs):
    """`serve(sockets=[sock])` serves on the given socket, skips the "running
    on" line (as Uvicorn does for process managers) and closes it at exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        config = cppcorn.Config(simple_app(b"prebound"), log_config=None, lifespan="off")
        response = serve_on_sockets(loop, config, [sock], port)
    finally:
        sock.close()
    assert response.status_code == 200
    assert response.text == "prebound"
    assert not any("running on" in message for message in messages(server_logs))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_config_bind_socket(server_logs):
    """`Config.bind_socket()` binds (SO_REUSEADDR, inheritable), logs the real
    address, and the socket can then be served."""
    config = cppcorn.Config(simple_app(b"bound"), port=0, log_config=None, lifespan="off")
    sock = config.bind_socket()
    try:
        host, port = sock.getsockname()
        assert (sock.family, host) == (socket.AF_INET, "127.0.0.1")
        assert port != 0
        assert sock.get_inheritable()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        assert f"Uvicorn running on http://127.0.0.1:{port} (Press CTRL+C to quit)" in messages(server_logs)
        response = serve_on_sockets("asyncio", config, [sock], port)
    finally:
        sock.close()
    assert response.text == "bound"


@posix_only
def test_config_bind_socket_uds(short_tmp, server_logs):
    """`Config(uds=...).bind_socket()`: a Unix socket file, mode 0o666."""
    path = short_tmp / "bound.sock"
    config = cppcorn.Config(simple_app(), uds=str(path), log_config=None)
    sock = config.bind_socket()
    try:
        assert sock.family == socket.AF_UNIX
        assert path.is_socket()
        assert stat.S_IMODE(path.stat().st_mode) == 0o666
        assert f"Uvicorn running on unix socket {path} (Press CTRL+C to quit)" in messages(server_logs)
    finally:
        sock.close()


def test_config_bind_socket_port_in_use_exits_3(server_logs):
    """A port already in use: the error is logged and SystemExit(3) raised."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        config = cppcorn.Config(simple_app(), port=busy.getsockname()[1], log_config=None)
        with pytest.raises(SystemExit) as exit_info:
            config.bind_socket()
    assert exit_info.value.code == 3
    assert len(messages(server_logs, logging.ERROR)) == 1


# --- Lifespan ---------------------------------------------------------------------------


def test_lifespan_state_is_a_shallow_copy_per_request(serve):
    """State set at startup reaches every request as a shallow copy: keys a
    request adds are not seen by the next one; shared objects are shared."""

    def on_startup(state):
        state["greeting"] = "hello"
        state["shared"] = []

    lifespan = lifespan_app(on_startup)

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await lifespan(scope, receive, send)
            return
        await read_body(receive)
        state = scope["state"]
        payload = {"keys": sorted(state), "greeting": state.get("greeting"), "shared": list(state["shared"])}
        state["added_by_request"] = True
        state["greeting"] = "changed"
        state["shared"].append(len(payload["shared"]))
        await respond_json(send, payload)

    server = serve(app, lifespan="on")
    with httpx.Client(timeout=5) as client:
        first = client.get(server.url).json()
        second = client.get(server.url).json()
    assert first == {"keys": ["greeting", "shared"], "greeting": "hello", "shared": []}
    assert second == {"keys": ["greeting", "shared"], "greeting": "hello", "shared": [0]}
    assert server.server.lifespan.state == {"greeting": "hello", "shared": [0, 1]}


def test_lifespan_on_logs_startup_and_shutdown(serve, server_logs):
    """`lifespan="on"`: startup before serving, shutdown when stopping, with
    Uvicorn's log lines."""
    events: list[str] = []
    server = serve(lifespan_app(events=events), lifespan="on")
    assert events == ["lifespan.startup"]
    assert httpx.get(server.url, timeout=5).status_code == 200
    server.stop()
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    assert_in_order(
        messages(server_logs),
        [
            "Waiting for application startup.",
            "Application startup complete.",
            "Shutting down",
            "Waiting for application shutdown.",
            "Application shutdown complete.",
        ],
    )


def test_lifespan_auto_with_an_app_without_lifespan(serve, server_logs):
    """`lifespan="auto"` and an app that raises on the lifespan scope: an INFO
    line, no error, and the server serves; no shutdown event is sent."""
    server = serve(simple_app(), lifespan="auto")  # simple_app asserts scope["type"] == "http"
    assert httpx.get(server.url, timeout=5).status_code == 200
    server.stop()
    assert "ASGI 'lifespan' protocol appears unsupported." in messages(server_logs, logging.INFO)
    assert messages(server_logs, logging.ERROR) == []
    assert "Waiting for application shutdown." not in messages(server_logs)


def test_lifespan_off_sends_no_lifespan_scope(serve, server_logs):
    """`lifespan="off"`: the app only ever sees HTTP scopes."""
    scope_types: list[str] = []
    http = simple_app()

    async def app(scope, receive, send):
        scope_types.append(scope["type"])
        await http(scope, receive, send)

    server = serve(app, lifespan="off")
    assert httpx.get(server.url, timeout=5).status_code == 200
    server.stop()
    assert scope_types == ["http"]
    assert not any("application startup" in message for message in messages(server_logs))


def test_lifespan_shutdown_failed_message(serve, server_logs):
    """`lifespan.shutdown.failed`: its message and Uvicorn's line, at ERROR."""
    app = lifespan_app(shutdown_message={"type": "lifespan.shutdown.failed", "message": "cleanup broke"})
    server = serve(app, lifespan="on")
    server.stop()
    assert messages(server_logs, logging.ERROR) == ["cleanup broke", "Application shutdown failed. Exiting."]


def test_lifespan_on_exception_during_shutdown(serve, server_logs):
    """`lifespan="on"` and an app raising at shutdown: the exception with its
    traceback, then `Application shutdown failed. Exiting.`"""
    server = serve(lifespan_app(shutdown_raises=True), lifespan="on")
    server.stop()
    errors = [record for record in server_logs.records if record.levelno == logging.ERROR]
    assert [record.getMessage().strip() for record in errors] == [
        "Exception in 'lifespan' protocol",
        "Application shutdown failed. Exiting.",
    ]
    assert errors[0].exc_info is not None and isinstance(errors[0].exc_info[1], RuntimeError)


def test_lifespan_on_startup_failure_raises_system_exit_3(server_logs):
    """`lifespan="on"` and an app raising at startup: `Server.run()` raises
    SystemExit(3) and the server never starts."""

    async def app(scope, receive, send):
        raise RuntimeError("startup exploded")

    server = cppcorn.Server(cppcorn.Config(app, port=0, log_config=None, lifespan="on", loop="asyncio"))
    with pytest.raises(SystemExit) as exit_info:
        server.run()
    assert exit_info.value.code == 3
    assert not server.started
    assert "Application startup failed. Exiting." in messages(server_logs, logging.ERROR)


# --- Request limits and counting -----------------------------------------------------


def test_limit_max_requests_through_run(server_logs):
    """`cppcorn.run(app, limit_max_requests=2)` returns after two requests."""
    errors: list[BaseException] = []

    def target():
        try:
            cppcorn.run(simple_app(), port=0, log_config=None, lifespan="off", limit_max_requests=2)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    port = None
    while port is None:
        for message in messages(server_logs):
            if message.startswith("Uvicorn running on http://127.0.0.1:"):
                port = int(message.split(":")[2].split()[0])
        assert not errors, errors
        assert time.monotonic() < deadline, "run() did not start"
        if port is None:
            time.sleep(0.01)
    with httpx.Client(timeout=5) as client:
        assert client.get(f"http://127.0.0.1:{port}/").status_code == 200
        assert client.get(f"http://127.0.0.1:{port}/").status_code == 200
        thread.join(5)
    assert not thread.is_alive(), "run() did not return after the request limit"
    assert errors == []
    assert "Maximum request limit of 2 exceeded. Terminating process." in messages(server_logs)


def test_total_requests_counts_responses(serve):
    """`server_state.total_requests` counts each request answered: as soon as
    a client holds its complete response, the request is counted (Uvicorn
    counts a request when it arrives)."""
    server = serve(simple_app(b"counted"))
    assert server.state.total_requests == 0
    counts = []
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        for _ in range(50):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            response = b""
            while not response.endswith(b"\r\n\r\ncounted"):
                chunk = sock.recv(65536)
                assert chunk, "connection closed"
                response += chunk
            counts.append(server.state.total_requests)
    with httpx.Client(timeout=5, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for _ in range(10):  # a new connection each time
            assert client.get(server.url).status_code == 200
            counts.append(server.state.total_requests)
    assert counts == list(range(1, 61))


def test_limit_max_requests_jitter():
    """The limit is N plus a random jitter in [0, J], fixed per server."""
    config = cppcorn.Config(simple_app(), log_config=None, limit_max_requests=5, limit_max_requests_jitter=3)
    limits = {cppcorn.Server(config).limit_max_requests for _ in range(50)}
    assert limits <= {5, 6, 7, 8}
    assert len(limits) > 1
    server = cppcorn.Server(cppcorn.Config(simple_app(), log_config=None, limit_max_requests=5))
    assert server.limit_max_requests == 5


def test_callback_notify(serve):
    """`callback_notify` is awaited every `timeout_notify` seconds (gunicorn's heartbeat)."""
    notified = threading.Event()

    async def notify():
        notified.set()

    serve(simple_app(), callback_notify=notify, timeout_notify=0)
    assert notified.wait(5)


# --- What Config reads from the environment -------------------------------------------


def test_config_reads_web_concurrency(monkeypatch):
    """`WEB_CONCURRENCY` is the default number of workers; an explicit
    `workers=` wins."""
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert cppcorn.Config(simple_app(), log_config=None).workers == 3
    assert cppcorn.Config(simple_app(), log_config=None, workers=1).workers == 1


def test_config_reads_forwarded_allow_ips(monkeypatch):
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1")
    assert cppcorn.Config(simple_app(), log_config=None).forwarded_allow_ips == "10.0.0.1"
    assert cppcorn.Config(simple_app(), log_config=None, forwarded_allow_ips="*").forwarded_allow_ips == "*"
    monkeypatch.delenv("FORWARDED_ALLOW_IPS")
    assert cppcorn.Config(simple_app(), log_config=None).forwarded_allow_ips == "127.0.0.1,::1"


@pytest.mark.parametrize(("env", "client"), [(None, "1.2.3.4"), ("10.0.0.1", "127.0.0.1")])
def test_forwarded_allow_ips_environment_decides_trust(serve, monkeypatch, env, client):
    """With FORWARDED_ALLOW_IPS not naming 127.0.0.1, its X-Forwarded-* are ignored."""
    if env is None:
        monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    else:
        monkeypatch.setenv("FORWARDED_ALLOW_IPS", env)
    server = serve(client_app)
    response = httpx.get(server.url, headers={"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"}, timeout=5)
    payload = response.json()
    assert payload["client"][0] == client
    assert payload["scheme"] == ("https" if client == "1.2.3.4" else "http")


def test_config_ignores_command_line_environment_variables(monkeypatch):
    """Like `uvicorn.Config`, `Config` does not read the CLI's CPPCORN_* variables."""
    monkeypatch.setenv("CPPCORN_PORT", "9999")
    monkeypatch.setenv("CPPCORN_HOST", "0.0.0.0")
    config = cppcorn.Config(simple_app(), log_config=None)
    assert (config.host, config.port) == ("127.0.0.1", 8000)


# --- reset_contextvars ----------------------------------------------------------------

REQUEST_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("cppcorn_test_request_var")


@pytest.mark.parametrize(("reset", "expected"), [(False, "outer"), (True, "unset")])
def test_reset_contextvars(loop, reset, expected):
    """A context variable set where the server was started reaches requests,
    unless `reset_contextvars=True` runs each request in a fresh context."""

    async def app(scope, receive, send):
        await read_body(receive)
        await respond_json(send, {"value": REQUEST_VAR.get("unset")})

    async def main():
        REQUEST_VAR.set("outer")
        config = cppcorn.Config(app, port=0, log_config=None, lifespan="off", reset_contextvars=reset)
        return await serve_one_request(cppcorn.Server(config))

    response = run_in_loop(loop, main)
    assert response.json() == {"value": expected}
