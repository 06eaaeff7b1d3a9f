"""Logging configured in code, the way apps written for Uvicorn do it, against
a real server: a health-check filter on the access logger, an app writing into
the server's log, handlers and levels set at import time or in the lifespan,
a dictConfig of the app's own, and log pipelines that route records on their
logger name and read the access record's five args. Each works with Uvicorn's
logger names and with their cppcorn aliases.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until
from tests.subprocesses import ServerProcess, base_env, free_port

# An app module: `PRELUDE` runs at import time, with `NAME` the logger name
# under test; the app answers every request with 200 and logs a warning
# through NAME on /log.
APP_MODULE = """
import json
import logging
import logging.config

NAME = {name!r}
{prelude}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                {on_startup}
                await send({{"type": "lifespan.startup.complete"}})
            else:
                await send({{"type": "lifespan.shutdown.complete"}})
                return
    if scope["path"] == "/log":
        logging.getLogger(NAME).warning("from the app")
    await send({{"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}})
    await send({{"type": "http.response.body", "body": b"ok"}})
"""

# Writes each record it handles to records.jsonl: what a log pipeline sees.
RECORDING_HANDLER = """
class Recorder(logging.Handler):
    def emit(self, record):
        with open("records.jsonl", "a") as file:
            file.write(json.dumps({"name": record.name, "msg": record.msg, "args": list(record.args or ())}) + "\\n")
"""

BOTH_NAMES = pytest.mark.parametrize("prefix", ["uvicorn", "cppcorn"])


@pytest.fixture
def serve_app(cppcorn_process: Callable[..., ServerProcess], workdir: Path) -> Callable[..., ServerProcess]:
    """`serve_app(name, prelude=..., on_startup=..., *args)`: write the app module and serve it."""

    def start(name: str, prelude: str = "", on_startup: str = "pass", *args: str) -> ServerProcess:
        (workdir / "logapp.py").write_text(
            APP_MODULE.format(name=name, prelude=textwrap.dedent(prelude), on_startup=on_startup)
        )
        return cppcorn_process("logapp:app", "--port", "0", *args).wait_started()

    return start


def recorded(workdir: Path) -> list[dict]:
    path = workdir / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@BOTH_NAMES
def test_health_check_filter_added_at_import(serve_app: Callable[..., ServerProcess], prefix: str) -> None:
    """The filter every FastAPI deployment copies: no access lines for /health."""
    prelude = """
        class EndpointFilter(logging.Filter):
            def filter(self, record):
                return record.getMessage().find("/health") == -1

        logging.getLogger(NAME).addFilter(EndpointFilter())
    """
    server = serve_app(f"{prefix}.access", prelude)
    for path in ("/health", "/health?probe=1", "/ready"):
        assert httpx.get(server.url + path, timeout=5).status_code == 200
    server.wait_for(r'"GET /ready HTTP/1.1" 200 OK', stream="stdout")
    assert "/health" not in server.stdout


@BOTH_NAMES
def test_app_logs_into_the_server_log(serve_app: Callable[..., ServerProcess], prefix: str) -> None:
    server = serve_app(f"{prefix}.error")
    assert httpx.get(server.url + "/log", timeout=5).status_code == 200
    server.wait_for(r"^WARNING:  from the app$")


@BOTH_NAMES
def test_handler_added_in_lifespan_sees_uvicorn_records(
    serve_app: Callable[..., ServerProcess], workdir: Path, prefix: str
) -> None:
    """A handler added on the server's loggers during startup gets the records
    a log pipeline routes on: Uvicorn's logger names, the access record's
    five args, the lifecycle messages."""
    on_startup = f'for suffix in ("error", "access"): logging.getLogger("{prefix}." + suffix).addHandler(Recorder())'
    server = serve_app("uvicorn.error", RECORDING_HANDLER, on_startup)
    with httpx.Client(timeout=5) as client:
        assert client.get(server.url + "/items?id=1%202").status_code == 200
        client_port = client.get(server.url + "/").extensions["network_stream"].get_extra_info("client_addr")[1]
    server.wait_for(r'"GET / HTTP/1.1" 200', stream="stdout")
    records = recorded(workdir)
    assert {"name": "uvicorn.error", "msg": "Application startup complete.", "args": []} in records
    access = [record for record in records if record["name"] == "uvicorn.access"]
    assert access == [
        {"name": "uvicorn.access", "msg": '%s - "%s %s HTTP/%s" %d',
         "args": [f"127.0.0.1:{client_port}", "GET", "/items?id=1%202", "1.1", 200]},
        {"name": "uvicorn.access", "msg": '%s - "%s %s HTTP/%s" %d',
         "args": [f"127.0.0.1:{client_port}", "GET", "/", "1.1", 200]},
    ]


@BOTH_NAMES
def test_level_set_at_import(
    cppcorn_process: Callable[..., ServerProcess], workdir: Path, prefix: str
) -> None:
    """Levels set when the app is imported outrank the defaults (and --log-level),
    as with Uvicorn, which imports the app after configuring logging."""
    (workdir / "logapp.py").write_text(
        APP_MODULE.format(
            name=f"{prefix}.error",
            prelude="logging.getLogger(NAME).setLevel(logging.WARNING)",
            on_startup="pass",
        )
    )
    port = free_port()
    server = cppcorn_process("logapp:app", "--port", str(port), "--log-level", "info")
    assert wait_until(lambda: _answers(port), timeout=10), server.stderr
    assert httpx.get(f"http://127.0.0.1:{port}/log", timeout=5).status_code == 200
    server.wait_for(r"^WARNING:  from the app$")
    assert server.stderr.splitlines() == ["WARNING:  from the app"]
    server.wait_for(r'"GET /log HTTP/1.1" 200', stream="stdout")


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_app_dictconfig_naming_uvicorn_loggers(cppcorn_process: Callable[..., ServerProcess], workdir: Path) -> None:
    """An app's own dictConfig, with dictConfig's default
    disable_existing_loggers=True: the loggers it names work (their cppcorn
    aliases, which it leaves out, are not what the server logs on)."""
    prelude = RECORDING_HANDLER + """
logging.config.dictConfig({
    "version": 1,
    "handlers": {"recorder": {"()": Recorder}},
    "loggers": {
        "uvicorn.access": {"handlers": ["recorder"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"handlers": ["recorder"], "level": "INFO", "propagate": False},
    },
})
"""
    (workdir / "logapp.py").write_text(APP_MODULE.format(name="uvicorn.error", prelude=prelude, on_startup="pass"))
    port = free_port()
    server = cppcorn_process("logapp:app", "--port", str(port))
    assert wait_until(lambda: _answers(port), timeout=10), server.stderr
    assert httpx.get(f"http://127.0.0.1:{port}/log", timeout=5).status_code == 200
    assert wait_until(lambda: len([r for r in recorded(workdir) if r["name"] == "uvicorn.access"]) == 2)
    names = {(record["name"], record["msg"]) for record in recorded(workdir)}
    assert ("uvicorn.error", "Application startup complete.") in names
    assert ("uvicorn.error", "from the app") in names


def test_cppcorn_loggers_made_before_import_are_handed_over(workdir: Path) -> None:
    """A program that configured cppcorn's loggers before importing cppcorn
    keeps its handlers, filters and levels, and its child loggers propagate
    into the server's."""
    script = textwrap.dedent(
        """
        import logging

        seen = []

        class Keep(logging.Handler):
            def emit(self, record):
                seen.append((record.name, record.getMessage()))

        access = logging.getLogger("cppcorn.access")
        access.addHandler(Keep())
        access.addFilter(lambda record: "secret" not in record.getMessage())
        access.setLevel(logging.WARNING)
        child = logging.getLogger("cppcorn.error.child")

        import cppcorn

        uvicorn_access = logging.getLogger("uvicorn.access")
        assert uvicorn_access.level == logging.WARNING, uvicorn_access.level
        uvicorn_access.warning("shown")
        uvicorn_access.warning("secret")
        uvicorn_access.info("below the level")
        logging.getLogger("uvicorn.error").addHandler(Keep())
        logging.getLogger("uvicorn.error").propagate = False
        child.warning("from the child")
        assert logging.getLogger("cppcorn.error.child").parent is logging.getLogger("cppcorn.error")
        print(seen)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=workdir, env=base_env(), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(
        [("uvicorn.access", "shown"), ("cppcorn.error.child", "from the child")]
    )
