"""The command line parses what Uvicorn 0.54's parses, the same way: option
names, types, defaults and flags; values from the environment (`UVICORN_*`,
`CPPCORN_*`) and from the `--env-file` file; and every `--loop`, `--http` and
`--ws` value Uvicorn accepts, served by cppcorn's own implementation.

Parsing is checked in this process through click (`main.make_context`);
what a value does is checked on a real server, run as a subprocess.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest

# Through the package: importing the `cppcorn.main` submodule first would
# leave the attribute `cppcorn.main` naming the module, not the command.
from cppcorn import main
from cppcorn.config import Config
from tests.conftest import simple_app
from tests.subprocesses import PROCESS_APPS, RUNNING_ON, free_port

# Uvicorn 0.54's parameters, as its click command declares them: name, option
# strings (a flag pair's "--no-" form last), type, the value it takes when not
# given (APP is required; --version is not passed on), repeatable.
UVICORN_PARAMETERS: list[tuple[str, tuple[str, ...], str, Any, bool]] = [
    ("app", ("app",), "text", None, False),
    ("host", ("--host",), "text", "127.0.0.1", False),
    ("port", ("--port",), "integer", 8000, False),
    ("uds", ("--uds",), "text", None, False),
    ("fd", ("--fd",), "integer", None, False),
    ("reload", ("--reload",), "flag", False, False),
    ("reload_dirs", ("--reload-dir",), "path", (), True),
    ("reload_includes", ("--reload-include",), "text", (), True),
    ("reload_excludes", ("--reload-exclude",), "text", (), True),
    ("reload_delay", ("--reload-delay",), "float", 0.25, False),
    ("workers", ("--workers",), "integer", None, False),
    ("loop", ("--loop",), "text", "auto", False),
    ("http", ("--http",), "text", "auto", False),
    ("http2", ("--http2",), "flag", False, False),
    ("ws", ("--ws",), "text", "auto", False),
    ("ws_max_size", ("--ws-max-size",), "integer", 16777216, False),
    ("ws_max_queue", ("--ws-max-queue",), "integer", 32, False),
    ("ws_ping_interval", ("--ws-ping-interval",), "float", 20.0, False),
    ("ws_ping_timeout", ("--ws-ping-timeout",), "float", 20.0, False),
    ("ws_per_message_deflate", ("--ws-per-message-deflate",), "boolean", True, False),
    ("lifespan", ("--lifespan",), "choice auto|on|off", "auto", False),
    ("interface", ("--interface",), "choice auto|asgi3|asgi2|wsgi", "auto", False),
    ("env_file", ("--env-file",), "path", None, False),
    ("log_config", ("--log-config",), "path", None, False),
    ("log_level", ("--log-level",), "choice critical|error|warning|info|debug|trace", None, False),
    ("access_log", ("--access-log", "--no-access-log"), "flag", True, False),
    ("use_colors", ("--use-colors", "--no-use-colors"), "flag", None, False),
    ("proxy_headers", ("--proxy-headers", "--no-proxy-headers"), "flag", True, False),
    ("server_header", ("--server-header", "--no-server-header"), "flag", True, False),
    ("date_header", ("--date-header", "--no-date-header"), "flag", True, False),
    ("forwarded_allow_ips", ("--forwarded-allow-ips",), "text", None, False),
    ("root_path", ("--root-path",), "text", "", False),
    ("limit_concurrency", ("--limit-concurrency",), "integer", None, False),
    ("backlog", ("--backlog",), "integer", 2048, False),
    ("limit_max_requests", ("--limit-max-requests",), "integer", None, False),
    ("limit_max_requests_jitter", ("--limit-max-requests-jitter",), "integer", 0, False),
    ("timeout_keep_alive", ("--timeout-keep-alive",), "integer", 5, False),
    ("timeout_graceful_shutdown", ("--timeout-graceful-shutdown",), "integer", None, False),
    ("timeout_worker_healthcheck", ("--timeout-worker-healthcheck",), "integer", 5, False),
    ("ssl_keyfile", ("--ssl-keyfile",), "text", None, False),
    ("ssl_certfile", ("--ssl-certfile",), "text", None, False),
    ("ssl_keyfile_password", ("--ssl-keyfile-password",), "text", None, False),
    ("ssl_version", ("--ssl-version",), "integer", 17, False),
    ("ssl_cert_reqs", ("--ssl-cert-reqs",), "integer", 0, False),
    ("ssl_ca_certs", ("--ssl-ca-certs",), "text", None, False),
    ("ssl_ciphers", ("--ssl-ciphers",), "text", None, False),
    ("headers", ("--header",), "text", (), True),
    ("version", ("--version",), "flag", None, False),
    ("app_dir", ("--app-dir",), "text", "", False),
    ("h11_max_incomplete_event_size", ("--h11-max-incomplete-event-size",), "integer", None, False),
    ("reset_contextvars", ("--reset-contextvars",), "flag", False, False),
    ("factory", ("--factory",), "flag", False, False),
]

# cppcorn's own options, on top of Uvicorn's.
CPPCORN_PARAMETERS = {"reuse_port", "limit_request_header_size", "timeout_request_headers", "timeout_drain"}

# Where cppcorn accepts more than Uvicorn, and every value Uvicorn accepts
# still parses to an equal value: fractional timeouts; `--log-level INFO`.
WIDENED_TYPES = {
    "timeout_keep_alive": "float",
    "timeout_graceful_shutdown": "float",
    "log_level": "choice critical|error|warning|info|debug|trace (any case)",
}


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The environment, without any CPPCORN_*/UVICORN_* variable of ours."""
    for name in list(os.environ):
        if name.startswith(("CPPCORN_", "UVICORN_")):
            monkeypatch.delenv(name)
    yield monkeypatch


def parse(*args: str) -> dict[str, Any]:
    """The parameters `cppcorn ARGS` resolves (from the arguments, the
    environment and the defaults), without running anything."""
    return main.make_context("cppcorn", list(args)).params


def describe_type(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    if isinstance(param.type, click.Choice):
        case = "" if param.type.case_sensitive else " (any case)"
        return f"choice {'|'.join(map(str, param.type.choices))}{case}"
    return param.type.name


def test_parameters_are_uvicorns(environ):
    """Every Uvicorn 0.54 parameter exists with the same option strings, type,
    default and repeatability; the only others are cppcorn's own."""
    params = {param.name: param for param in main.params}
    assert set(params) == {name for name, *_ in UVICORN_PARAMETERS} | CPPCORN_PARAMETERS
    defaults = {**parse("apps:app"), "app": None, "version": None}
    for name, opts, type_name, default, multiple in UVICORN_PARAMETERS:
        param = params[name]
        declared = (*param.opts, *param.secondary_opts)
        repeatable = getattr(param, "multiple", False)
        assert (declared, describe_type(param), defaults[name], repeatable) == (
            opts, WIDENED_TYPES.get(name, type_name), default, multiple
        ), name


# --- Values from the command line and the environment ---------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--ws-per-message-deflate", "false"], {"ws_per_message_deflate": False}),
        (["--no-access-log", "--no-proxy-headers"], {"access_log": False, "proxy_headers": False}),
        (["--use-colors"], {"use_colors": True}),
        (["--header", "X-A:1", "--header", "X-B: 2"], {"headers": ("X-A:1", "X-B: 2")}),
        (["--timeout-keep-alive", "7"], {"timeout_keep_alive": 7}),
        (["--log-level", "trace"], {"log_level": "trace"}),
    ],
    ids=["boolean-value", "flag-pairs", "colors", "repeated", "integer-timeout", "trace"],
)
def test_command_line_values(environ, args, expected):
    """Option values parse to what Uvicorn's parser gives."""
    params = parse("apps:app", *args)
    assert {name: params[name] for name in expected} == expected


@pytest.mark.parametrize("prefix", ["UVICORN", "CPPCORN"])
def test_every_kind_of_option_from_the_environment(environ, tmp_path, prefix):
    """`<PREFIX>_<NAME>` sets each kind of option as Uvicorn's click
    `auto_envvar_prefix` does: booleans and flags from true/false words,
    repeatable options split (paths on os.pathsep, the rest on whitespace),
    APP from `<PREFIX>_APP`."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    values = {
        "APP": "apps:app",
        "PORT": "9001",
        "RELOAD": "1",
        "FACTORY": "yes",
        "ACCESS_LOG": "false",
        "USE_COLORS": "no",
        "WS_PER_MESSAGE_DEFLATE": "false",
        "TIMEOUT_GRACEFUL_SHUTDOWN": "3",
        "RELOAD_DIRS": f"{first}{os.pathsep}{second}",
        "RELOAD_INCLUDES": "*.py *.html",
        "HEADERS": "X-A:1 X-B:2",
        "LOG_LEVEL": "debug",
    }
    for name, value in values.items():
        environ.setenv(f"{prefix}_{name}", value)
    expected = {
        "app": "apps:app",
        "port": 9001,
        "reload": True,
        "factory": True,
        "access_log": False,
        "use_colors": False,
        "ws_per_message_deflate": False,
        "timeout_graceful_shutdown": 3,
        "reload_dirs": (str(first), str(second)),
        "reload_includes": ("*.py", "*.html"),
        "headers": ("X-A:1", "X-B:2"),
        "log_level": "debug",
    }
    params = parse()
    assert {name: params[name] for name in expected} == expected


def test_cppcorn_variable_wins_over_uvicorn_variable(environ):
    environ.setenv("UVICORN_PORT", "9001")
    environ.setenv("CPPCORN_PORT", "9002")
    environ.setenv("UVICORN_HOST", "127.0.0.2")
    params = parse("apps:app")
    assert (params["port"], params["host"]) == (9002, "127.0.0.2")


def test_command_line_wins_over_both_prefixes(environ):
    environ.setenv("UVICORN_PORT", "9001")
    environ.setenv("CPPCORN_PORT", "9002")
    environ.setenv("UVICORN_APP", "from:env")
    environ.setenv("UVICORN_ACCESS_LOG", "true")
    params = parse("apps:app", "--port", "9003", "--no-access-log")
    assert (params["app"], params["port"], params["access_log"]) == ("apps:app", 9003, False)


def test_config_reads_no_prefixed_variable(environ):
    """`Config` (hence `cppcorn.run()`) reads neither UVICORN_* nor CPPCORN_*, as Uvicorn's."""
    environ.setenv("UVICORN_PORT", "9001")
    environ.setenv("CPPCORN_PORT", "9002")
    environ.setenv("UVICORN_ROOT_PATH", "/env")
    config = Config(simple_app(), log_config=None)
    assert (config.port, config.root_path) == (8000, "")


# --- The --env-file file, in a real process ---------------------------------------------


@pytest.fixture
def workdir(workdir: Path) -> Path:
    (workdir / "apps.py").write_text(PROCESS_APPS)
    return workdir


def test_env_file_sets_options(cppcorn_process, workdir):
    """UVICORN_* variables in the `--env-file` file set options (APP, the
    port and the root path here), as if they were in the environment."""
    port = free_port()
    env_file = workdir / "app.env"
    env_file.write_text(f"UVICORN_APP=apps:app\nUVICORN_PORT={port}\nUVICORN_ROOT_PATH=/api\n")
    server = cppcorn_process("--env-file", str(env_file)).wait_started()
    assert server.port == port
    assert httpx.get(f"{server.url}/items", timeout=5).json()["path"] == "/api/items"
    assert f"INFO:     Loading environment from '{env_file}'" in server.lines["stderr"]


def test_env_file_named_by_the_environment_and_real_environment_wins(cppcorn_process, workdir):
    """CPPCORN_ENV_FILE names the file; a variable set in the real
    environment wins over the file's (python-dotenv's rule), a CPPCORN_* one
    in the file over a UVICORN_* one, and the command line over all."""
    port = free_port()
    env_file = workdir / "app.env"
    env_file.write_text(f"UVICORN_APP=apps:nothing\nUVICORN_PORT=1\nCPPCORN_PORT={port}\nUVICORN_HOST=127.0.0.2\n")
    server = cppcorn_process(
        "--host", "127.0.0.1",
        env={"CPPCORN_ENV_FILE": str(env_file), "UVICORN_APP": "apps:app"},
    ).wait_started()
    assert server.wait_for(RUNNING_ON)["host"] == "127.0.0.1"
    assert server.port == port
    assert httpx.get(f"{server.url}/", timeout=5).status_code == 200


# --- Uvicorn's implementation names -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "lines"),
    [
        (
            ["--http", "h11", "--ws", "websockets"],
            [r"INFO: .*own compiled HTTP/1\.1 protocol: --http h11 is accepted",
             r"INFO: .*own compiled WebSocket protocol: --ws websockets is accepted"],
        ),
        (
            ["--http", "httptools", "--ws", "websockets-sansio"],
            [r"INFO: .*own compiled HTTP/1\.1 protocol: --http httptools is accepted",
             r"INFO: .*own compiled WebSocket protocol: --ws websockets-sansio is accepted"],
        ),
        (
            ["--http", "zttp", "--ws", "wsproto", "--loop", "zuvloop"],
            [r"INFO: .*own compiled HTTP/1\.1 protocol: --http zttp is accepted",
             r"INFO: .*own compiled WebSocket protocol: --ws wsproto is accepted",
             r"INFO: .*own compiled event loop: --loop zuvloop is accepted"],
        ),
        (
            ["--http", "myproto:HttpProtocol", "--ws", "myproto:WSProtocol"],
            [r"WARNING: .*cannot run protocol classes: --http myproto:HttpProtocol is not used",
             r"WARNING: .*cannot run protocol classes: --ws myproto:WSProtocol is not used"],
        ),
    ],
    ids=["h11-websockets", "httptools-sansio", "zttp-wsproto-zuvloop", "custom-classes"],
)
def test_uvicorn_implementations_are_served_by_cppcorns_own(cppcorn_process, args, lines):
    """Each of Uvicorn's `--http`, `--ws` and `--loop` values is accepted,
    explained in one line per option, and served by cppcorn's own protocol
    and loop (`--loop zuvloop`: the compiled cppcorn loop)."""
    server = cppcorn_process("apps:app", "--port", "0", *args).wait_started()
    response = httpx.get(f"{server.url}/", timeout=5)
    assert response.status_code == 200
    assert response.json()["loop"].startswith("cppcorn.loop")
    for line in lines:
        assert len([text for text in server.lines["stderr"] if re.match(line, text)]) == 1, line
    assert len([text for text in server.lines["stderr"] if " --" in text]) == len(lines)


def test_unknown_implementation_name_exits_3(run_cli):
    """A name that is neither Uvicorn's nor `module:Class`: one line, exit 3."""
    result = run_cli("apps:app", "--port", "0", "--ws", "wsprotoo")
    assert result.returncode == 3
    assert [line for line in result.stderr.splitlines() if line.startswith("ERROR:")] == [
        "ERROR:    --ws 'wsprotoo' is not one of auto, none, websockets, websockets-sansio, wsproto or module:Class."
    ]
    assert "Traceback" not in result.stderr


RUN_WITH_PROTOCOL_CLASSES = '''
import cppcorn
from apps import app


class UvicornStyleProtocol:
    """Stands for a protocol class written for Uvicorn."""


cppcorn.run(app, port=0, http=UvicornStyleProtocol, ws=UvicornStyleProtocol)
'''


def test_protocol_classes_warn_and_are_served_by_cppcorns_own(python_process, workdir):
    """`cppcorn.run(app, http=SomeClass, ws=SomeClass)`: one WARNING naming
    each class, and cppcorn's own protocol answers."""
    (workdir / "run_classes.py").write_text(RUN_WITH_PROTOCOL_CLASSES)
    server = python_process("run_classes.py").wait_started()
    assert httpx.get(f"{server.url}/", timeout=5).status_code == 200
    assert [line for line in server.lines["stderr"] if line.startswith("WARNING:")] == [
        "WARNING:  cppcorn uses its own compiled HTTP/1.1 protocol and cannot run protocol classes: "
        "--http __main__.UvicornStyleProtocol is not used.",
        "WARNING:  cppcorn uses its own compiled WebSocket protocol and cannot run protocol classes: "
        "--ws __main__.UvicornStyleProtocol is not used.",
    ]
