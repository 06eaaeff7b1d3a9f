"""cppcorn's gunicorn workers (`cppcorn.workers`), under a real gunicorn.

Every test runs `python -m gunicorn -k cppcorn.workers.CppcornWorker` as a
subprocess in its own session (the arbiter and its workers are killed
together at the end), on a port gunicorn picks, and talks to it over real
sockets.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import ssl
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import posix_only, wait_until
from tests.subprocesses import PROCESS_APPS, ServerProcess, assert_two_workers_answer, tcp_get

gunicorn_config = pytest.importorskip("gunicorn.config")

pytestmark = posix_only

WORKER = "cppcorn.workers.CppcornWorker"
ASYNCIO_WORKER = "cppcorn.workers.CppcornAsyncioWorker"
LISTENING_AT = r"Listening at: https?://127\.0\.0\.1:(\d+)"
STARTED = "Application startup complete."
EXIT_TIMEOUT = 15.0

# Gunicorn 25+ opens a control socket in the user's home by default; tests
# running side by side must not share it.
NO_CONTROL_SOCKET = ["--no-control-socket"] if "control_socket_disable" in gunicorn_config.Config().settings else []

GUNICORN_APPS = '''
"""Applications only the gunicorn tests serve."""
import os
import sys
import time

from fastapi import FastAPI

from apps import app
from asgi_helpers import lifespan, respond_json

fastapi_app = FastAPI()


@fastapi_app.get("/")
async def describe(block: float = 0.0):
    """As `apps:app`: `?block=S` blocks the event loop for S seconds."""
    if block:
        print(f"BLOCKING {os.getpid()}", file=sys.stderr, flush=True)
        time.sleep(block)
    return {"pid": os.getpid(), "framework": "fastapi"}


async def logged(scope, receive, send):
    """`hello`, with a Content-Length unless the query is `stream`."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    headers = [(b"content-type", b"text/plain")]
    if scope["query_string"] != b"stream":
        headers.append((b"content-length", b"5"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


async def client(scope, receive, send):
    """The client and scheme the application sees."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await respond_json(send, {"client": scope["client"][0], "scheme": scope["scheme"]})


async def without_lifespan(scope, receive, send):
    """`apps:app`, as an application that does not speak lifespan would be."""
    if scope["type"] == "lifespan":
        raise RuntimeError("lifespan is not supported")
    await app(scope, receive, send)


async def lifespan_fails(scope, receive, send):
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "database is down"})
'''


@pytest.fixture
def workdir(workdir: Path) -> Path:
    (workdir / "apps.py").write_text(PROCESS_APPS)
    (workdir / "gunicorn_apps.py").write_text(GUNICORN_APPS)
    return workdir


@pytest.fixture
def gunicorn(python_process: Callable[..., ServerProcess]) -> Callable[..., ServerProcess]:
    """`gunicorn(app, *options, workers=1, worker=WORKER)`: a running gunicorn
    whose workers have all started; `process.port` is the port it bound.
    With `ready=False`, just the process (for servers that must fail)."""

    def start(app: str, *options: str, workers: int = 1, worker: str = WORKER, ready: bool = True) -> ServerProcess:
        process = python_process(
            "-m",
            "gunicorn",
            "--worker-class",
            worker,
            "--bind",
            "127.0.0.1:0",
            "--workers",
            str(workers),
            *NO_CONTROL_SOCKET,
            *options,
            app,
        )
        if ready:
            process.port = int(process.wait_for(LISTENING_AT)[1])
            process.wait_count(STARTED, workers)
        return process

    return start


def get(process: ServerProcess, path: str = "/", **kwargs: Any) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{process.port}{path}", timeout=10, **kwargs)


def log_lines_of(process: ServerProcess, text: str) -> list[str]:
    return [line for line in process.lines["stderr"] if text in line]


@pytest.mark.parametrize("app", ["apps:app", "gunicorn_apps:fastapi_app"])
def test_both_workers_serve(gunicorn, app):
    """A raw ASGI app and a FastAPI app, served by cppcorn in two workers
    that share gunicorn's socket and both answer."""
    process = gunicorn(app, workers=2)
    response = get(process)
    assert response.status_code == 200
    assert response.headers["server"] == "cppcorn"
    assert_two_workers_answer(tcp_get(process.port), process)


@pytest.mark.parametrize(
    ("worker", "loop"),
    [
        (ASYNCIO_WORKER, "asyncio.unix_events._UnixSelectorEventLoop"),
        (WORKER, "cppcorn.loop.loop.Loop"),
    ],
)
def test_event_loop_of_each_worker_class(gunicorn, worker, loop):
    """CppcornAsyncioWorker runs on the standard library's loop;
    CppcornWorker on `--loop auto`'s, cppcorn's own loop (these tests are
    POSIX-only, where it is built)."""
    process = gunicorn("apps:app", worker=worker)
    assert get(process).json()["loop"] == loop


def test_max_requests_recycles_workers_without_failed_requests(gunicorn):
    """`--max-requests 3`: each worker leaves after its third response and
    gunicorn replaces it; every request is answered meanwhile."""
    process = gunicorn("apps:app", "--max-requests", "3", workers=2)
    served: Counter[int] = Counter()
    for number in range(12):
        # A new connection each time, as independent clients would.
        response = get(process, f"/{number}")
        assert response.status_code == 200
        pid = response.json()["pid"]
        served[pid] += 1
        if served[pid] == 3:
            # The next request only once this worker is gone: until its next
            # tick (0.1 s) it still accepts, and a connection it accepted but
            # had not read yet when it shuts down is closed unanswered (a
            # race in the server's shutdown, not in the recycling).
            process.wait_for(re.escape(f"Worker exiting (pid: {pid})"))
    assert len(served) >= 4
    assert log_lines_of(process, "Maximum request limit of 3 exceeded. Terminating process.")


def test_keep_alive_closes_idle_connections(gunicorn, raw_client):
    """`--keep-alive 1`: a connection is kept for the next request, then
    closed after one idle second (cppcorn's own default is 5)."""
    process = gunicorn("apps:app", "--keep-alive", "1")
    client = raw_client(process.port, timeout=10)
    for _ in range(2):
        client.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        assert client.read_response().status == 200
    idle_since = time.monotonic()
    assert client.is_closed(timeout=5)
    assert 0.8 <= time.monotonic() - idle_since <= 2.0


def test_graceful_timeout_lets_in_flight_request_finish_on_sigterm(gunicorn, background):
    """SIGTERM to gunicorn: a request in flight still gets its response
    (within --graceful-timeout), then everything exits cleanly."""
    process = gunicorn("apps:app", "--graceful-timeout", "5")
    pending = background(get, process, "/?sleep=1")
    process.wait_for(r"SLEEPING \d+")
    process.send_signal(signal.SIGTERM)
    assert pending.result(timeout=10).status_code == 200
    assert process.wait_exit(EXIT_TIMEOUT) == 0
    assert log_lines_of(process, "Shutting down: Master")


def test_graceful_timeout_bounds_a_recycling_worker(gunicorn, background):
    """A worker leaving after --max-requests waits for a request in flight
    no longer than --graceful-timeout, then cancels it. (Without lifespan,
    nothing runs between the cancellation and the worker's last line.)"""
    process = gunicorn("gunicorn_apps:without_lifespan", "--max-requests", "1", "--graceful-timeout", "1")
    slow = background(get, process, "/?sleep=30")
    pid = int(process.wait_for(r"SLEEPING (\d+)")[1])
    assert get(process).status_code == 200  # the worker's last request
    with pytest.raises(httpx.TransportError):
        slow.result(timeout=8)
    process.wait_count(STARTED, 2)  # its replacement
    assert get(process).status_code == 200
    # The cancelled application's error is logged before the worker's last
    # line, not while its event loop closes.
    worker_lines = [line for line in process.lines["stderr"] if f"[{pid}] [" in line]
    ends = ["Cancel 1 running task(s)", "Exception in ASGI application", "Finished server process", "Worker exiting"]
    assert [end for line in worker_lines for end in ends if end in line] == ends
    assert "Worker exiting" in worker_lines[-1]


def test_access_logformat_atoms(gunicorn):
    """`--access-logformat`: gunicorn's atoms, from the request, the
    response head and the worker; unknown atoms render as `-`."""
    atoms = [*"hlutrsmUqHbBfaTDMLp", "{x-test}i", "{X-TEST}i", "{content-type}o", "{path}e", "nope"]
    log_format = "|".join(f"%({atom})s" for atom in atoms)
    process = gunicorn("gunicorn_apps:logged", "--access-logfile", "-", "--access-logformat", log_format)
    headers = {"user-agent": "test-agent", "referer": "http://ref/", "x-test": 'a "quoted" value'}
    assert get(process, "/some%20path?x=1&y=2", headers=headers, auth=("alice", "secret")).status_code == 200
    assert get(process, "/?stream").status_code == 200
    first = dict(zip(atoms, process.wait_for(r"GET /some", stream="stdout").string.split("|"), strict=True))
    pid = re.search(r"Booting worker with pid: (\d+)", process.stderr)[1]  # type: ignore[index]
    expected = {
        "h": "127.0.0.1",
        "l": "-",
        "u": "alice",
        "r": "GET /some%20path?x=1&y=2 HTTP/1.1",
        "s": "200",
        "m": "GET",
        "U": "/some path",
        "q": "x=1&y=2",
        "H": "HTTP/1.1",
        "b": "5",
        "B": "5",
        "f": "http://ref/",
        "a": "test-agent",
        "p": f"<{pid}>",
        "{x-test}i": 'a \\"quoted\\" value',
        "{X-TEST}i": 'a \\"quoted\\" value',
        "{content-type}o": "text/plain",
        "{path}e": "-",
        "nope": "-",
    }
    assert {atom: first[atom] for atom in expected} == expected
    assert re.fullmatch(r"\[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]", first["t"])
    assert first["T"] == "0"
    assert first["D"].isdigit() and first["M"].isdigit()
    assert re.fullmatch(r"0\.\d{6}", first["L"])
    # Streamed without Content-Length: the size is not known at response start.
    streamed = dict(zip(atoms, process.wait_for(r"GET /\?stream", stream="stdout").string.split("|"), strict=True))
    assert (streamed["b"], streamed["B"]) == ("-", "-")


def test_access_log_without_format_reads_like_cppcorn(gunicorn):
    """`--access-logfile -` alone: cppcorn's own access line."""
    process = gunicorn("apps:app", "--access-logfile", "-")
    assert get(process, "/plain").status_code == 200
    process.wait_for(r'^127\.0\.0\.1:\d+ - "GET /plain HTTP/1\.1" 200$', stream="stdout")


@pytest.mark.parametrize(
    ("app", "status", "reason"),
    [
        ("broken:app", 3, "Worker failed to boot."),
        ("apps:missing", 4, "App failed to load."),
        ("gunicorn_apps:lifespan_fails", 3, "Worker failed to boot."),
    ],
)
def test_worker_that_cannot_start_stops_gunicorn(gunicorn, app, status, reason):
    """An app that fails to import or to start (lifespan): the worker exits
    with gunicorn's boot error codes, and gunicorn gives up and exits."""
    process = gunicorn(app, ready=False)
    assert process.wait_exit(EXIT_TIMEOUT) == status
    assert reason in process.stderr


def test_reload_starts_a_worker_on_the_new_code(gunicorn, workdir):
    """`--reload`: editing the application stops the worker gracefully, and
    gunicorn's new worker serves the new code."""
    (workdir / "reloadable.py").write_text(RELOADABLE.format(version=1))
    process = gunicorn("reloadable:app", "--reload")
    first = get(process).json()
    assert first["version"] == 1
    (workdir / "reloadable.py").write_text(RELOADABLE.format(version=2))
    process.wait_for("Worker reloading: .*reloadable.py modified")
    process.wait_for(re.escape(f"Finished server process [{first['pid']}]"))
    process.wait_count(STARTED, 2)
    assert get(process).json()["version"] == 2


RELOADABLE = """
import os

from apps import app
from asgi_helpers import lifespan, respond_json


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await respond_json(send, {{"pid": os.getpid(), "version": {version}}})
"""


def test_hung_worker_is_killed_after_timeout_and_replaced(gunicorn, background):
    """`--timeout 2`: a worker whose event loop is blocked stops telling the
    arbiter it is alive; gunicorn kills it and starts another."""
    process = gunicorn("apps:app", "--timeout", "2")
    blocked = background(get, process, "/?block=30")
    pid = int(process.wait_for(r"BLOCKING (\d+)")[1])
    process.wait_for(re.escape(f"WORKER TIMEOUT (pid:{pid})"))
    with pytest.raises(httpx.TransportError):
        blocked.result(timeout=10)
    process.wait_count(STARTED, 2)
    assert get(process).json()["pid"] != pid


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((), {"client": "203.0.113.7", "scheme": "https"}),
        (("--forwarded-allow-ips", "192.0.2.1"), {"client": "127.0.0.1", "scheme": "http"}),
    ],
    ids=["default-trusts-loopback", "other-proxy-only"],
)
def test_forwarded_allow_ips(gunicorn, options, expected):
    """Gunicorn's `--forwarded-allow-ips` (default 127.0.0.1,::1) decides
    whose X-Forwarded-For and X-Forwarded-Proto headers are believed."""
    process = gunicorn("gunicorn_apps:client", *options)
    headers = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
    assert get(process, headers=headers).json() == expected


def test_heartbeat_keeps_idle_worker_alive(gunicorn):
    """`--timeout 2`: an idle worker tells the arbiter it is alive, so it is
    not killed as a hung one."""
    process = gunicorn("apps:app", "--timeout", "2")
    pid = get(process).json()["pid"]
    # Idle for three timeouts: the arbiter would have killed a silent worker.
    with pytest.raises(AssertionError, match="timed out"):
        process.wait_for("WORKER TIMEOUT", timeout=6)
    assert get(process).json()["pid"] == pid


def test_orphaned_worker_stops(gunicorn):
    """An arbiter killed outright: its workers notice and stop by themselves
    rather than serve forever unsupervised."""
    process = gunicorn("apps:app", "--timeout", "2")
    pid = get(process).json()["pid"]
    process.send_signal(signal.SIGKILL)
    process.wait_for(r"Parent changed, shutting down")
    process.wait_for(re.escape(f"Finished server process [{pid}]"))


def test_sigquit_stops_a_worker_gracefully(gunicorn, background):
    """SIGQUIT to a worker: it finishes the request in flight, then exits;
    gunicorn replaces it."""
    process = gunicorn("apps:app")
    pending = background(get, process, "/?sleep=1")
    pid = int(process.wait_for(r"SLEEPING (\d+)")[1])
    os.kill(pid, signal.SIGQUIT)
    assert pending.result(timeout=10).status_code == 200
    process.wait_for(re.escape(f"Worker exiting (pid: {pid})"))
    process.wait_count(STARTED, 2)
    assert get(process).json()["pid"] != pid


def test_sigusr1_reopens_log_files(gunicorn, workdir):
    """SIGUSR1 to a worker (logrotate's signal): it reopens its log files
    and keeps serving."""
    log_file = workdir / "access.log"
    process = gunicorn("apps:app", "--access-logfile", str(log_file))
    pid = get(process, "/before").json()["pid"]
    assert wait_until(lambda: "GET /before" in log_file.read_text())
    log_file.rename(workdir / "access.log.1")
    os.kill(pid, signal.SIGUSR1)
    assert wait_until(log_file.exists)  # reopened by the worker alone
    assert get(process, "/after").json()["pid"] == pid
    assert wait_until(lambda: "GET /after" in log_file.read_text())
    assert "GET /after" not in (workdir / "access.log.1").read_text()


def test_tls_with_gunicorn_certificate_settings(gunicorn, workdir):
    """`--certfile/--keyfile`: HTTPS, with the context gunicorn builds."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file, key_file, cert_file = workdir / "ca.pem", workdir / "key.pem", workdir / "cert.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    process = gunicorn("apps:app", "--certfile", str(cert_file), "--keyfile", str(key_file))
    verify = ssl.create_default_context(cafile=str(ca_file))
    response = httpx.get(f"https://127.0.0.1:{process.port}/secure", verify=verify, timeout=10)
    assert response.status_code == 200
    assert response.json()["path"] == "/secure"


def test_import_without_gunicorn_says_how_to_install_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "cppcorn.workers", raising=False)
    for name in [name for name in sys.modules if name == "gunicorn" or name.startswith("gunicorn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "gunicorn", None)
    with pytest.raises(ImportError, match=r"pip install .cppcorn\[gunicorn\]."):
        importlib.import_module("cppcorn.workers")


def test_uvicorn_worker_names():
    """`-k cppcorn.workers.UvicornWorker` works after a search and replace."""
    from cppcorn import workers

    assert workers.UvicornWorker is workers.CppcornWorker
    assert workers.UvicornH11Worker is workers.CppcornAsyncioWorker
