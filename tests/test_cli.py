"""The command line, run as a real process: `python -m cppcorn APP [OPTIONS]`.

Every test starts cppcorn as a subprocess in a temporary directory holding
small application modules, talks to it over real sockets, and reads what it
writes on stderr (server log) and stdout (access log). Every wait is bounded,
and every process is killed at the end of its test.
"""

from __future__ import annotations

import json
import platform
import re
import signal
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest

import cppcorn
from tests.conftest import assert_in_order, posix_only
from tests.subprocesses import RUNNING_ON, ServerProcess, free_port
from tests.uvicorn_log_configs import uvicorn_log_config, uvicorn_log_ini

APPS = '''
"""Applications the command-line tests serve."""
import asyncio
import os
import sys

from asgi_helpers import lifespan, respond_json

IMPORT_ENV = os.environ.get("CPPCORN_TEST_VALUE")


async def echo(scope, receive, send):
    """Describe the request; `?sleep=N` answers after N seconds."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    while (await receive()).get("more_body"):
        pass
    query = scope["query_string"].decode()
    if query.startswith("sleep="):
        print("REQUEST-STARTED", file=sys.stderr, flush=True)
        await asyncio.sleep(float(query[len("sleep="):]))
    await respond_json(send, {
        "path": scope["path"],
        "root_path": scope["root_path"],
        "scheme": scope["scheme"],
        "client": scope["client"],
        "server": scope["server"],
        "asgi_version": scope["asgi"]["version"],
        "import_env": IMPORT_ENV,
        "env": os.environ.get("CPPCORN_TEST_VALUE"),
    })


async def lifespan_raises(scope, receive, send):
    if scope["type"] == "lifespan":
        raise RuntimeError("lifespan exploded")
    await echo(scope, receive, send)


async def lifespan_fails(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database is down"})
        return
    await echo(scope, receive, send)


not_callable = 42


def create_app():
    return echo


def make_loop():
    """A custom `--loop module:factory`."""
    print("CUSTOM-LOOP-FACTORY", file=sys.stderr, flush=True)
    return asyncio.new_event_loop()


class Asgi2App:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] == "lifespan":
            return await lifespan(receive, send)
        await respond_json(send, {"asgi2": True, "asgi_version": self.scope["asgi"]["version"]})
'''

SUB_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
    await send({"type": "http.response.body", "body": b"subapp"})
'''


@pytest.fixture
def workdir(workdir: Path) -> Path:
    """The directory the processes run in, holding `apps.py`."""
    (workdir / "apps.py").write_text(APPS)
    return workdir


@pytest.fixture
def serve_cli(cppcorn_process: Callable[..., ServerProcess]) -> Callable[..., ServerProcess]:
    """`serve_cli(*args)`: start cppcorn on a free port and wait until it listens."""

    def start(*args: str, **kwargs: Any) -> ServerProcess:
        if "--port" not in args and "--uds" not in args and "--fd" not in args:
            args = (*args, "--port", "0")
        return cppcorn_process(*args, **kwargs).wait_started()

    return start


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("ERROR:")]


# --- Version and help -------------------------------------------------------


def test_version(run_cli):
    """`--version` prints the version line Uvicorn prints, and names llhttp."""
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"Running cppcorn {cppcorn.__version__} with {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}"
    )
    assert "llhttp" in result.stdout


UVICORN_CLI_OPTIONS = [
    "--host", "--port", "--uds", "--fd", "--reload", "--reload-dir", "--reload-include", "--reload-exclude",
    "--reload-delay", "--workers", "--loop", "--http", "--http2", "--ws", "--ws-max-size", "--ws-max-queue",
    "--ws-ping-interval", "--ws-ping-timeout", "--ws-per-message-deflate", "--lifespan", "--interface",
    "--env-file", "--log-config", "--log-level", "--access-log", "--no-access-log", "--use-colors",
    "--no-use-colors", "--proxy-headers", "--no-proxy-headers", "--server-header", "--no-server-header",
    "--date-header", "--no-date-header", "--forwarded-allow-ips", "--root-path", "--limit-concurrency",
    "--backlog", "--limit-max-requests", "--limit-max-requests-jitter", "--timeout-keep-alive",
    "--timeout-graceful-shutdown", "--timeout-worker-healthcheck", "--ssl-keyfile", "--ssl-certfile",
    "--ssl-keyfile-password", "--ssl-version", "--ssl-cert-reqs", "--ssl-ca-certs", "--ssl-ciphers", "--header",
    "--version", "--app-dir", "--h11-max-incomplete-event-size", "--reset-contextvars", "--factory", "--help",
]


def test_help_lists_every_uvicorn_option(run_cli):
    """`cppcorn --help` lists all of Uvicorn 0.54's options."""
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", result.stdout))
    missing = [option for option in UVICORN_CLI_OPTIONS if option not in listed]
    assert missing == []


# --- Startup failures: exit status 3 and one clear message --------------------


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("nope:app", 'Error loading ASGI app. Could not import module "nope".'),
        ("apps:missing", 'Error loading ASGI app. Attribute "missing" not found in module "apps".'),
        ("apps", 'Error loading ASGI app. Import string "apps" must be in format "<module>:<attribute>".'),
    ],
    ids=["module-not-found", "attribute-not-found", "bad-format"],
)
def test_unimportable_app_exits_3(run_cli, app, message):
    """An app that cannot be imported: exit status 3, one error line, no traceback."""
    result = run_cli(app)
    assert result.returncode == 3
    assert error_lines(result.stderr) == [f"ERROR:    {message}"]
    assert "Traceback" not in result.stderr


def test_factory_flag_on_non_callable_exits_3(run_cli):
    """`--factory` naming something that cannot be called: exit status 3."""
    result = run_cli("apps:not_callable", "--factory")
    assert result.returncode == 3
    errors = error_lines(result.stderr)
    assert len(errors) == 1
    assert errors[0].startswith("ERROR:    Error loading ASGI app factory:")
    assert "Traceback" not in result.stderr


def test_lifespan_on_startup_exception_exits_3(run_cli):
    """`--lifespan on` with an app raising in lifespan: the exception is
    logged, then `Application startup failed. Exiting.`, exit status 3."""
    result = run_cli("apps:lifespan_raises", "--lifespan", "on", "--port", "0")
    assert result.returncode == 3
    assert "ERROR:    Exception in 'lifespan' protocol" in result.stderr
    assert "RuntimeError: lifespan exploded" in result.stderr
    assert "ERROR:    Application startup failed. Exiting." in result.stderr
    assert "running on" not in result.stderr


def test_lifespan_startup_failed_message_exits_3(run_cli):
    """An app sending `lifespan.startup.failed`: its message is logged, exit status 3."""
    result = run_cli("apps:lifespan_fails", "--port", "0")
    assert result.returncode == 3
    assert error_lines(result.stderr) == [
        "ERROR:    database is down",
        "ERROR:    Application startup failed. Exiting.",
    ]
    assert "Traceback" not in result.stderr
    assert "running on" not in result.stderr


def test_port_in_use_exits_3(run_cli, listeners):
    """Binding a port already in use: the OS error is logged, exit status 3."""
    port = listeners().getsockname()[1]
    result = run_cli("apps:echo", "--port", str(port))
    assert result.returncode == 3
    errors = error_lines(result.stderr)
    assert len(errors) == 1
    assert re.search(r"(?i)address already in use", errors[0])
    assert "Traceback" not in result.stderr
    assert "running on" not in result.stderr


# --- Serving ------------------------------------------------------------------


def test_serves_an_app(serve_cli):
    """The default startup lines are logged, and the app answers."""
    server = serve_cli("apps:echo")
    assert server.port != 0
    response = httpx.get(server.url + "/hello", timeout=5)
    assert response.status_code == 200
    assert response.json()["path"] == "/hello"
    assert response.headers["server"] == "cppcorn"
    assert server.lines["stderr"][:4] == [
        f"INFO:     Started server process [{server.pid}]",
        "INFO:     Waiting for application startup.",
        "INFO:     Application startup complete.",
        f"INFO:     Uvicorn running on http://127.0.0.1:{server.port} (Press CTRL+C to quit)",
    ]


def test_ipv6_host(cppcorn_process):
    """An IPv6 `--host` is shown in brackets in the startup line."""
    server = cppcorn_process("apps:echo", "--host", "::1", "--port", "0")
    port = int(server.wait_for(r"Uvicorn running on http://\[::1\]:(\d+) \(Press CTRL\+C to quit\)")[1])
    response = httpx.get(f"http://[::1]:{port}/v6", timeout=5)
    assert response.json()["path"] == "/v6"


def test_custom_loop_factory(serve_cli):
    """`--loop module:factory` makes the event loop with that factory."""
    server = serve_cli("apps:echo", "--loop", "apps:make_loop")
    assert "CUSTOM-LOOP-FACTORY" in server.lines["stderr"]
    assert httpx.get(server.url, timeout=5).status_code == 200


# --- Signals and graceful shutdown ----------------------------------------------


SHUTDOWN_LINES = [
    "INFO:     Shutting down",
    "INFO:     Waiting for application shutdown.",
    "INFO:     Application shutdown complete.",
]
# The same when connections were open: the server waits for them first.
SHUTDOWN_WAITING_LINES = [
    SHUTDOWN_LINES[0],
    "INFO:     Waiting for connections to close. (CTRL+C to force quit)",
    *SHUTDOWN_LINES[1:],
]


def assert_shut_down(server: ServerProcess) -> None:
    """The shutdown sequence was logged, then the end of the process."""
    assert_in_order(server.lines["stderr"], [*SHUTDOWN_LINES, f"INFO:     Finished server process [{server.pid}]"])


@posix_only
@pytest.mark.parametrize("loop", ["auto", "asyncio", "uvloop"])
def test_sigint_shuts_down_gracefully_with_status_0(serve_cli, loop):
    """SIGINT: the shutdown sequence is logged and the process exits 0."""
    server = serve_cli("apps:echo", "--loop", loop)
    assert httpx.get(server.url, timeout=5).status_code == 200
    server.send_signal(signal.SIGINT)
    assert server.wait_exit() == 0
    assert_shut_down(server)
    assert "Traceback" not in server.stderr


@posix_only
def test_sigterm_shuts_down_gracefully_then_dies_by_sigterm(serve_cli):
    """SIGTERM: the same sequence, then the process ends by SIGTERM, as Uvicorn."""
    server = serve_cli("apps:echo")
    server.send_signal(signal.SIGTERM)
    assert server.wait_exit() == -signal.SIGTERM
    assert_shut_down(server)


@posix_only
def test_in_flight_request_completes_after_sigterm(serve_cli, background):
    """A request running when SIGTERM arrives still gets its response (with
    `connection: close`), and only then does the process end."""
    server = serve_cli("apps:echo")
    pending = background(httpx.get, server.url + "/slow?sleep=1", timeout=10)
    server.wait_for("REQUEST-STARTED")
    server.send_signal(signal.SIGTERM)
    response = pending.result(timeout=10)
    assert response.status_code == 200
    assert response.json()["path"] == "/slow"
    assert response.headers["connection"] == "close"
    assert server.wait_exit() == -signal.SIGTERM
    assert_in_order(server.lines["stderr"], SHUTDOWN_WAITING_LINES)


@posix_only
def test_shutdown_waits_for_request_of_closed_connection(serve_cli):
    """A request whose client closed its side after sending it keeps running
    (a half-closed client still reads the answer), and graceful shutdown
    waits for it. Uvicorn drops such a connection at once and logs
    "Waiting for background tasks to complete." instead."""
    server = serve_cli("apps:echo")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /?sleep=1 HTTP/1.1\r\nHost: test\r\n\r\n")
        server.wait_for("REQUEST-STARTED")
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert server.wait_exit() == -signal.SIGTERM
    assert time.monotonic() - started >= 0.5
    assert_in_order(server.lines["stderr"], SHUTDOWN_WAITING_LINES)


@posix_only
def test_second_sigterm_does_not_force_exit(serve_cli, background):
    """Unlike a second SIGINT, a second SIGTERM still waits for the request."""
    server = serve_cli("apps:echo")
    pending = background(httpx.get, server.url + "/?sleep=1", timeout=10)
    server.wait_for("REQUEST-STARTED")
    server.send_signal(signal.SIGTERM)
    server.wait_for(r"Waiting for connections to close")
    server.send_signal(signal.SIGTERM)
    assert pending.result(timeout=10).status_code == 200
    assert server.wait_exit() == -signal.SIGTERM
    assert "INFO:     Application shutdown complete." in server.lines["stderr"]


def assert_not_completed(pending: Future[Any]) -> None:
    """The cancelled request got no normal answer: the connection was dropped,
    or (as Uvicorn does for a cancelled app before its response) a 500."""
    try:
        response = pending.result(timeout=10)
    except httpx.HTTPError:
        return
    assert response.status_code == 500


@posix_only
def test_second_sigint_forces_exit(serve_cli, background):
    """A second SIGINT while a long request runs: the process exits promptly,
    without waiting for the request or running lifespan shutdown."""
    server = serve_cli("apps:echo")
    pending = background(httpx.get, server.url + "/?sleep=30", timeout=40)
    server.wait_for("REQUEST-STARTED")
    server.send_signal(signal.SIGINT)
    server.wait_for(r"Waiting for connections to close")
    started = time.monotonic()
    server.send_signal(signal.SIGINT)
    server.wait_exit(timeout=10)
    assert time.monotonic() - started < 3
    assert "Waiting for application shutdown." not in server.stderr
    assert_not_completed(pending)


@posix_only
def test_timeout_graceful_shutdown_cancels_running_tasks(serve_cli, background):
    """`--timeout-graceful-shutdown 1`: a request that would take 30 s is
    cancelled after about a second, and the process exits."""
    server = serve_cli("apps:echo", "--timeout-graceful-shutdown", "1")
    pending = background(httpx.get, server.url + "/?sleep=30", timeout=40)
    server.wait_for("REQUEST-STARTED")
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert server.wait_exit(timeout=10) == -signal.SIGTERM
    assert 0.9 <= time.monotonic() - started < 5
    assert "ERROR:    Cancel 1 running task(s), timeout graceful shutdown exceeded" in server.lines["stderr"]
    assert_not_completed(pending)


# --- Environment variables --------------------------------------------------------


def test_port_from_environment(cppcorn_process):
    """CPPCORN_PORT sets the port."""
    port = free_port()
    server = cppcorn_process("apps:echo", env={"CPPCORN_PORT": str(port)}).wait_started()
    assert server.port == port
    assert httpx.get(server.url, timeout=5).status_code == 200


def test_app_from_environment(cppcorn_process):
    """CPPCORN_APP names the application when no APP argument is given."""
    server = cppcorn_process("--port", "0", env={"CPPCORN_APP": "apps:echo"}).wait_started()
    response = httpx.get(server.url + "/from-env", timeout=5)
    assert response.json()["path"] == "/from-env"


def test_host_from_environment(serve_cli):
    """CPPCORN_HOST sets the bound address."""
    server = serve_cli("apps:echo", env={"CPPCORN_HOST": "127.0.0.2"})
    match = server.wait_for(RUNNING_ON)
    assert match["host"] == "127.0.0.2"
    response = httpx.get(f"http://127.0.0.2:{server.port}/", timeout=5)
    assert response.status_code == 200


def test_command_line_wins_over_environment(serve_cli, listeners):
    """Options on the command line override CPPCORN_* variables."""
    busy_port = listeners().getsockname()[1]
    server = serve_cli(
        "apps:echo", "--host", "127.0.0.1", "--port", "0",
        env={"CPPCORN_HOST": "127.0.0.2", "CPPCORN_PORT": str(busy_port)},
    )
    match = server.wait_for(RUNNING_ON)
    assert match["host"] == "127.0.0.1"
    assert server.port != busy_port
    assert httpx.get(server.url, timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("env", "args", "client"),
    [
        ({}, [], "1.2.3.4"),
        ({"FORWARDED_ALLOW_IPS": "10.9.9.9"}, [], "127.0.0.1"),
        ({"FORWARDED_ALLOW_IPS": "10.9.9.9"}, ["--forwarded-allow-ips", "127.0.0.1"], "1.2.3.4"),
    ],
    ids=["default-trusts-localhost", "env-untrusts-localhost", "option-wins-over-env"],
)
def test_forwarded_allow_ips_from_environment(serve_cli, env, args, client):
    """FORWARDED_ALLOW_IPS decides whose X-Forwarded-For is believed."""
    server = serve_cli("apps:echo", *args, env=env)
    response = httpx.get(server.url, headers={"X-Forwarded-For": "1.2.3.4"}, timeout=5)
    assert response.json()["client"][0] == client


# --- Sockets ------------------------------------------------------------------------


@posix_only
def test_uds_serves_and_removes_socket_at_exit(cppcorn_process, short_tmp):
    """`--uds PATH`: served over a Unix socket, whose file is removed at exit."""
    path = short_tmp / "app.sock"
    server = cppcorn_process("apps:echo", "--uds", str(path))
    server.wait_for(re.escape(f"Uvicorn running on unix socket {path} (Press CTRL+C to quit)"))
    assert path.is_socket()
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), timeout=5) as client:
        response = client.get("http://cppcorn/over-uds")
    assert response.status_code == 200
    payload = response.json()
    assert payload["path"] == "/over-uds"
    assert payload["server"] == [str(path), None]
    assert payload["client"] is None
    server.send_signal(signal.SIGINT)
    assert server.wait_exit() == 0
    assert not path.exists()


@posix_only
def test_fd_serves_on_inherited_socket(cppcorn_process):
    """`--fd N`: serve on an already bound socket inherited from the parent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = cppcorn_process("apps:echo", "--fd", str(sock.fileno()), pass_fds=(sock.fileno(),))
        server.wait_for(re.escape(f"Uvicorn running on socket ('127.0.0.1', {port}) (Press CTRL+C to quit)"))
        response = httpx.get(f"http://127.0.0.1:{port}/via-fd", timeout=5)
        assert response.status_code == 200
        assert response.json()["path"] == "/via-fd"
    finally:
        sock.close()


# --- Options --------------------------------------------------------------------------


def test_root_path(serve_cli):
    """`--root-path /api`: the scope's root_path, prefixed to path as Uvicorn does."""
    server = serve_cli("apps:echo", "--root-path", "/api")
    payload = httpx.get(server.url + "/items", timeout=5).json()
    assert payload["root_path"] == "/api"
    assert payload["path"] == "/api/items"


def test_header_option(serve_cli, raw_client):
    """`--header "X-A: b"` adds `x-a: b` to every response."""
    server = serve_cli("apps:echo", "--header", "X-A: b")
    client = raw_client(server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    assert b"\r\nx-a: b\r\n" in client.read_response().raw_head
    assert httpx.get(server.url, timeout=5).headers["x-a"] == "b"


def test_server_and_date_headers_by_default(serve_cli):
    server = serve_cli("apps:echo")
    response = httpx.get(server.url, timeout=5)
    assert response.headers["server"] == "cppcorn"
    assert response.headers["date"].endswith(" GMT")


def test_no_server_header(serve_cli):
    """`--no-server-header`: no `server` header."""
    server = serve_cli("apps:echo", "--no-server-header")
    response = httpx.get(server.url, timeout=5)
    assert response.status_code == 200
    assert "server" not in response.headers
    assert "date" in response.headers


def test_no_date_header(serve_cli):
    """`--no-date-header`: no `date` header."""
    server = serve_cli("apps:echo", "--no-date-header")
    response = httpx.get(server.url, timeout=5)
    assert response.status_code == 200
    assert "date" not in response.headers
    assert response.headers["server"] == "cppcorn"


def test_access_log_on_stdout(serve_cli):
    """By default each request is logged on stdout, in Uvicorn's format."""
    server = serve_cli("apps:echo")
    with httpx.Client(timeout=5) as client:
        response = client.get(server.url + "/path?x=1")
        client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    assert response.status_code == 200
    match = server.wait_for(r"INFO: .*GET /path", stream="stdout", timeout=5)
    assert match.string == f'INFO:     127.0.0.1:{client_port} - "GET /path?x=1 HTTP/1.1" 200 OK'
    assert "GET /path" not in server.stderr


def test_no_access_log(serve_cli):
    """`--no-access-log`: requests are served, nothing is written on stdout."""
    server = serve_cli("apps:echo", "--no-access-log")
    assert httpx.get(server.url + "/path?x=1", timeout=5).status_code == 200
    server.send_signal(signal.SIGINT)
    assert server.wait_exit() == 0
    assert server.stdout == ""
    assert "GET /path" not in server.stderr


@posix_only
def test_log_level_warning_hides_info(cppcorn_process, listeners):
    """`--log-level warning`: neither INFO server lines nor access lines."""
    listening_socket = listeners()
    port = listening_socket.getsockname()[1]
    fd = listening_socket.fileno()
    # The socket already listens, so the request waits in its backlog until
    # the server starts (no "running on" line to wait for at this level).
    server = cppcorn_process("apps:echo", "--fd", str(fd), "--log-level", "warning", pass_fds=(fd,))
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    server.send_signal(signal.SIGINT)
    assert server.wait_exit() == 0
    assert "INFO" not in server.stderr
    assert server.stdout == ""


def test_factory_flag(serve_cli):
    """`--factory`: APP is called to build the application; no warning."""
    server = serve_cli("apps:create_app", "--factory")
    assert httpx.get(server.url + "/built", timeout=5).json()["path"] == "/built"
    assert "factory detected" not in server.stderr


def test_factory_auto_detection_warns(serve_cli):
    """A factory given without `--factory` is used, with Uvicorn's warning."""
    server = serve_cli("apps:create_app")
    assert httpx.get(server.url + "/built", timeout=5).json()["path"] == "/built"
    assert (
        "WARNING:  ASGI app factory detected. Using it, but please consider setting the --factory flag explicitly."
        in server.lines["stderr"]
    )


def test_interface_asgi2(serve_cli):
    """`--interface asgi2` serves an ASGI 2 (two-step) application."""
    server = serve_cli("apps:Asgi2App", "--interface", "asgi2")
    payload = httpx.get(server.url, timeout=5).json()
    assert payload == {"asgi2": True, "asgi_version": "2.0"}


def test_app_dir(serve_cli, workdir):
    """`--app-dir sub` imports APP from that directory."""
    (workdir / "sub").mkdir()
    (workdir / "sub" / "subapp.py").write_text(SUB_APP)
    server = serve_cli("subapp:app", "--app-dir", "sub")
    assert httpx.get(server.url, timeout=5).text == "subapp"


def test_env_file(serve_cli, workdir):
    """`--env-file`: variables are loaded before the app is imported, and
    before the configuration reads FORWARDED_ALLOW_IPS."""
    env_file = workdir / "test.env"
    env_file.write_text("CPPCORN_TEST_VALUE=from-dotenv\nFORWARDED_ALLOW_IPS=10.9.9.9\n")
    server = serve_cli("apps:echo", "--env-file", str(env_file))
    payload = httpx.get(server.url, headers={"X-Forwarded-For": "1.2.3.4"}, timeout=5).json()
    assert payload["import_env"] == "from-dotenv"
    assert payload["env"] == "from-dotenv"
    assert payload["client"][0] == "127.0.0.1"


# --- --log-config with a Uvicorn-style file -----------------------------------------

# Server lines, access lines.
UVICORN_STYLE_FORMATS = (
    "CUSTOM %(levelname)s %(message)s",
    'CUSTOM-ACCESS %(client_addr)s "%(request_line)s" %(status_code)s',
)


def write_log_config(directory: Path, kind: str) -> Path:
    if kind == "json":
        path = directory / "logging.json"
        path.write_text(json.dumps(uvicorn_log_config(*UVICORN_STYLE_FORMATS)))
    elif kind == "yaml":
        import yaml

        path = directory / "logging.yaml"
        path.write_text(yaml.safe_dump(uvicorn_log_config(*UVICORN_STYLE_FORMATS)))
    else:
        path = directory / "logging.ini"
        path.write_text(uvicorn_log_ini(*UVICORN_STYLE_FORMATS))
    return path


@pytest.mark.parametrize("kind", ["json", "yaml", "ini"])
def test_uvicorn_style_log_config(serve_cli, workdir, kind):
    """A log config written for Uvicorn's loggers and formatters formats
    cppcorn's server lines and access lines."""
    log_config = write_log_config(workdir, kind)
    server = serve_cli("apps:echo", "--log-config", str(log_config))
    assert f"CUSTOM INFO Uvicorn running on http://127.0.0.1:{server.port} (Press CTRL+C to quit)" in (
        server.lines["stderr"]
    )
    assert f"CUSTOM INFO Started server process [{server.pid}]" in server.lines["stderr"]
    assert not any(line.startswith("INFO:") for line in server.lines["stderr"])
    assert httpx.get(server.url + "/logged?x=1", timeout=5).status_code == 200
    match = server.wait_for(r"GET /logged", stream="stdout", timeout=5)
    assert re.fullmatch(r'CUSTOM-ACCESS 127\.0\.0\.1:\d+ "GET /logged\?x=1 HTTP/1\.1" 200 OK', match.string)


# --- TLS --------------------------------------------------------------------------------


@pytest.mark.parametrize("password", [None, "secret"], ids=["plain-key", "encrypted-key"])
def test_tls(serve_cli, workdir, password):
    """`--ssl-keyfile/--ssl-certfile` (and `--ssl-keyfile-password`): HTTPS
    with a certificate from a test CA."""
    import trustme
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, key_file, cert_file = workdir / "ca.pem", workdir / "key.pem", workdir / "cert.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    args = ["--ssl-keyfile", str(key_file), "--ssl-certfile", str(cert_file)]
    if password is None:
        cert.private_key_pem.write_to_path(str(key_file))
    else:
        key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(password.encode()),
            )
        )
        args += ["--ssl-keyfile-password", password]

    server = serve_cli("apps:echo", *args)
    assert server.scheme == "https"
    assert f"INFO:     Uvicorn running on https://127.0.0.1:{server.port} (Press CTRL+C to quit)" in (
        server.lines["stderr"]
    )
    verify = ssl.create_default_context(cafile=str(ca_file))
    response = httpx.get(f"https://127.0.0.1:{server.port}/secure", verify=verify, timeout=5)
    assert response.status_code == 200
    assert response.json()["scheme"] == "https"
    assert response.json()["path"] == "/secure"


# --- Limits -------------------------------------------------------------------------------


def test_limit_max_requests_exits_after_n_requests(serve_cli):
    """`--limit-max-requests 2`: after two requests the process exits by itself."""
    server = serve_cli("apps:echo", "--limit-max-requests", "2")
    with httpx.Client(timeout=5) as client:
        assert client.get(server.url + "/1").status_code == 200
        assert client.get(server.url + "/2").status_code == 200
        # The idle keep-alive connection still open does not hold the exit.
        assert server.wait_exit(timeout=5) == 0
    assert "INFO:     Maximum request limit of 2 exceeded. Terminating process." in server.lines["stderr"]
    assert_shut_down(server)
