"""`--workers N`: a real parent process (`python -m cppcorn apps:app --workers
2`) and its spawned workers, driven by real signals and real clients.

The application answers with the PID of the worker that served the request,
so a test sees which workers serve and when one is replaced. Load comes from
`Hammer`: client threads sending requests back to back, each on a new
connection, and recording every failure. New connections, because what the
supervisor guarantees is about listeners: no connection refused or dropped
while workers come and go. (A request sent on a kept-alive connection at the
moment the server closes it is lost with any server; clients retry those.)

Every process a test starts runs in a process group of its own, killed at
the end of the test (`ServerProcess.stop`), so that no worker outlives it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import assert_in_order, posix_only
from tests.subprocesses import BROKEN_MODULE, ServerProcess

pytestmark = posix_only

# SO_REUSEPORT spreads connections across listeners on Linux only.
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing is Linux's")

APPS = """
import asyncio
import ctypes
import os
import sys

from asgi_helpers import lifespan


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["path"] == "/slow":
        print(f"REQUEST-STARTED {os.getpid()}", file=sys.stderr, flush=True)
        await asyncio.sleep(float(scope["query_string"] or 1))
    elif scope["path"] == "/block":
        print(f"BLOCKING {os.getpid()}", file=sys.stderr, flush=True)
        # libc's sleep through PyDLL: a C call that holds the GIL, so that
        # no thread of this worker runs, its health check included.
        ctypes.PyDLL(None).sleep(30)
    body = str(os.getpid()).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""

WAIT = 15.0  # upper bound for a worker to start, be replaced, or be seen serving


def listeners_on(port: int) -> int:
    """How many TCP sockets listen on this port (Linux: /proc/net/tcp)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    # Fields: sl, local address (hex ip:port), remote address, state (0A: LISTEN).
    return sum(1 for line in lines if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A")


class Hammer:
    """Client threads sending GET requests back to back, each on a new
    connection, recording the PIDs that answered and every failure.

    `paused()` holds the clients between two requests: for a test step that
    must not have a request in flight (a SIGKILL loses what the killed
    worker was serving, with any server)."""

    def __init__(self, url: str, threads: int = 1) -> None:
        self.url = url
        self.pids: Counter[int] = Counter()
        self.failures: list[str] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._gate = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Hammer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in self._threads), "client thread did not stop"

    @property
    def count(self) -> int:
        with self._changed:
            return sum(self.pids.values()) + len(self.failures)

    def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(limits=limits, timeout=10) as client:
            while not self._stopping.is_set():
                with self._gate:
                    try:
                        response = client.get(self.url)
                        response.raise_for_status()
                        result: int | str = int(response.text)
                    except (httpx.HTTPError, ValueError) as exc:
                        result = repr(exc)
                with self._changed:
                    if isinstance(result, int):
                        self.pids[result] += 1
                    else:
                        self.failures.append(result)
                    self._changed.notify_all()

    def paused(self) -> threading.Lock:
        return self._gate

    def wait_until(self, predicate: Callable[[Counter[int]], bool], what: str, timeout: float = WAIT) -> None:
        """Wait until `predicate(pids that answered so far)` holds."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.pids), timeout):
                raise AssertionError(f"timed out waiting for {what}; answers {dict(self.pids)}")

    def wait_for_requests(self, count: int, timeout: float = WAIT) -> None:
        """Wait until `count` requests have been answered or have failed."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.count >= count, timeout):
                raise AssertionError(f"only {self.count} of {count} requests in {timeout} s")


@pytest.fixture
def workdir(workdir: Path) -> Path:
    (workdir / "apps.py").write_text(APPS)
    return workdir


@pytest.fixture
def serve_workers(cppcorn_process: Callable[..., ServerProcess]) -> Callable[..., ServerProcess]:
    """`serve_workers(*args)`: `apps:app --workers 2` on a free port, once
    the parent listens and every worker has completed its startup."""

    def start(*args: str, workers: int = 2, env: dict[str, str] | None = None) -> ServerProcess:
        if "WEB_CONCURRENCY" not in (env or {}):
            args = ("--workers", str(workers), *args)
        process = cppcorn_process("apps:app", "--port", "0", *args, env=env).wait_started()
        process.wait_count("Application startup complete.", workers, timeout=WAIT)
        return process

    return start


# --- Serving and stopping -------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_two_workers_serve_and_stop(serve_workers, sig):
    """`--workers 2`: the parent binds, logs its lines, two workers start and
    both serve; SIGTERM or SIGINT stops both gracefully, then the parent,
    which exits 0 (as Uvicorn's)."""
    process = serve_workers()
    lines = process.lines["stderr"]
    assert lines[0].startswith("INFO:     Uvicorn running on http://127.0.0.1:")
    assert lines[1] == f"INFO:     Started parent process [{process.pid}]"
    workers = process.server_pids()
    assert len(set(workers)) == 2 and process.pid not in workers
    # The parent logs "running on"; the workers do not.
    assert process.stderr.count("running on") == 1

    with Hammer(process.url) as hammer:
        hammer.wait_until(lambda pids: set(pids) == set(workers), "both workers to answer")
    assert hammer.failures == []

    process.send_signal(sig)
    assert process.wait_exit() == 0
    assert f"INFO:     Received {sig.name}, exiting." in lines
    for pid in workers:
        assert f"INFO:     Terminated child process [{pid}]" in lines
        assert f"INFO:     Waiting for child process [{pid}]" in lines
        assert f"INFO:     Finished server process [{pid}]" in lines
    assert lines[-1] == f"INFO:     Stopping parent process [{process.pid}]"


def test_web_concurrency_sets_the_number_of_workers(serve_workers):
    """`WEB_CONCURRENCY=3` without `--workers`: three workers."""
    process = serve_workers(workers=3, env={"WEB_CONCURRENCY": "3"})
    assert "--workers" not in process.args
    assert len(set(process.server_pids())) == 3


def test_sigterm_lets_in_flight_requests_finish(serve_workers):
    """Slow requests in flight on both workers when SIGTERM arrives complete
    with 200 before the workers and the parent exit."""
    process = serve_workers()
    client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=10)
    results: list[int | str] = []

    def slow_request() -> None:
        try:
            results.append(client.get(process.url + "/slow?1.5").status_code)
        except httpx.HTTPError as exc:
            results.append(repr(exc))

    threads = [threading.Thread(target=slow_request) for _ in range(6)]
    for thread in threads:
        thread.start()
    process.wait_count("REQUEST-STARTED", 6, timeout=WAIT)
    process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(10)
    client.close()

    assert results == [200] * 6
    assert process.wait_exit() == 0
    assert process.lines["stderr"][-1] == f"INFO:     Stopping parent process [{process.pid}]"


@pytest.mark.parametrize("app", ["missing_module:app", "broken:app"], ids=["not-found", "raises"])
def test_worker_that_cannot_start_stops_the_parent_with_status_3(cppcorn_process, app):
    """A worker whose application cannot be imported (status 3), or raises
    while being imported (status 1, before it ever served), stops the
    parent with status 3 instead of being restarted forever."""
    process = cppcorn_process(app, "--workers", "2", "--port", "0")
    assert process.wait_exit(WAIT) == 3, process.stderr
    assert re.search(r"ERROR:    Child process \[\d+\] failed to start, stopping the parent process\.", process.stderr)
    assert len(set(process.server_pids())) <= 2  # none was started again
    assert process.lines["stderr"][-1] == f"INFO:     Stopping parent process [{process.pid}]"


# --- Replacing workers ------------------------------------------------------------


def test_killed_worker_is_replaced_while_requests_succeed(serve_workers):
    """A worker killed with SIGKILL is reaped and replaced (a new PID
    answers); meanwhile every request is served, by the other worker."""
    process = serve_workers()
    workers = set(process.server_pids())
    with Hammer(process.url) as hammer:
        hammer.wait_until(lambda pids: set(pids) == workers, "both workers to answer")
        victim = max(workers)
        # Between two requests, so that none is in flight on the victim.
        with hammer.paused():
            os.kill(victim, signal.SIGKILL)
            process.wait_for(rf"Child process \[{victim}\] died")
        served_before = hammer.count
        hammer.wait_until(lambda pids: len(set(pids) - workers) == 1, "the replacement to answer")
    assert hammer.failures == []
    assert hammer.count > served_before
    replacement = (set(process.server_pids()) - workers).pop()
    assert process.lines["stderr"].index(f"INFO:     Waiting for child process [{victim}]") < process.lines[
        "stderr"
    ].index(f"INFO:     Child process [{victim}] died")
    assert replacement not in workers


def test_worker_holding_the_gil_is_killed_and_replaced(serve_workers):
    """A worker that leaves a health check unanswered for longer than
    `--timeout-worker-healthcheck` (here: a C call holding the GIL) is
    killed and replaced; the other worker serves meanwhile."""
    process = serve_workers("--timeout-worker-healthcheck", "1")
    workers = set(process.server_pids())
    with Hammer(process.url) as hammer:
        hammer.wait_until(lambda pids: set(pids) == workers, "both workers to answer")
        blocked = httpx.Client(timeout=10)
        pending = threading.Thread(target=lambda: _ignore_errors(blocked.get, process.url + "/block"), daemon=True)
        # No other request in flight until the victim is blocked: what a
        # hung worker had accepted is lost with it, with any server.
        with hammer.paused():
            pending.start()
            victim = int(process.wait_for(r"BLOCKING (\d+)")[1])
        process.wait_for(
            rf"WARNING:  Child process \[{victim}\] did not answer the health check within 1 s; killing it\."
        )
        process.wait_for(rf"Child process \[{victim}\] died")
        hammer.wait_until(lambda pids: len(set(pids) - workers) == 1, "the replacement to answer")
        pending.join(10)
        blocked.close()
    assert hammer.failures == []


def _ignore_errors(call: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the request whose worker is killed fails, as it must
        call(*args)


def test_sighup_restarts_every_worker_without_losing_a_request(serve_workers):
    """SIGHUP under load: each worker is replaced by a new one that serves
    before the old one is told to stop; every request succeeds. As in
    Uvicorn, the parent waits for each old worker to exit before starting
    the next replacement."""
    process = serve_workers()
    old = set(process.server_pids())
    with Hammer(process.url, threads=2) as hammer:
        hammer.wait_until(lambda pids: set(pids) == old, "both workers to answer")
        process.send_signal(signal.SIGHUP)
        process.wait_for("Received SIGHUP, restarting processes.")
        for pid in old:
            process.wait_for(rf"Finished server process \[{pid}\]")
        after_restart = Counter(hammer.pids)
        hammer.wait_for_requests(max(1000, hammer.count + 200))
        since = hammer.pids - after_restart
    new = set(process.server_pids()) - old
    assert len(new) == 2
    assert hammer.failures == []
    assert set(since) == new
    lines = process.lines["stderr"]
    first_new, second_new = [pid for pid in process.server_pids() if pid in new]
    first_old, second_old = [pid for pid in old_in_termination_order(lines) if pid in old]
    assert_in_order(
        lines,
        [
            f"INFO:     Started server process [{first_new}]",
            f"INFO:     Terminated child process [{first_old}]",
            f"INFO:     Waiting for child process [{first_old}]",
            f"INFO:     Finished server process [{first_old}]",
            f"INFO:     Started server process [{second_new}]",
            f"INFO:     Terminated child process [{second_old}]",
            f"INFO:     Waiting for child process [{second_old}]",
            f"INFO:     Finished server process [{second_old}]",
        ],
    )


TERMINATED = re.compile(r"INFO:     Terminated child process \[(\d+)\]")


def old_in_termination_order(lines: list[str]) -> list[int]:
    """The workers the parent terminated, in that order."""
    return [int(match[1]) for line in lines if (match := TERMINATED.fullmatch(line))]


def test_sighup_keeps_the_workers_when_a_new_one_cannot_start(serve_workers, workdir):
    """SIGHUP after the application was broken on disk: the first new worker
    fails to start, the restart is aborted, and the old workers go on
    serving; the parent does not stop."""
    process = serve_workers()
    old = set(process.server_pids())
    (workdir / "apps.py").write_text(BROKEN_MODULE)
    process.send_signal(signal.SIGHUP)
    match = process.wait_for(r"ERROR:    New child process \[(\d+)\] was not ready in time; keeping worker \[\d+\]")
    assert int(match[1]) not in old
    with Hammer(process.url) as hammer:
        hammer.wait_for_requests(50)
    assert hammer.failures == [] and set(hammer.pids) <= old
    assert process.proc.poll() is None
    assert not any(f"Terminated child process [{pid}]" in process.stderr for pid in old)


def test_sigttin_adds_a_worker_and_sigttou_removes_one(serve_workers):
    """SIGTTIN starts a third worker, which serves; each SIGTTOU stops one,
    down to one worker and no further."""
    process = serve_workers()
    with Hammer(process.url) as hammer:
        process.send_signal(signal.SIGTTIN)
        process.wait_for("Received SIGTTIN, increasing the number of processes.")
        process.wait_count("Application startup complete.", 3, timeout=WAIT)
        workers = process.server_pids()
        assert len(set(workers)) == 3
        hammer.wait_until(lambda pids: len(pids) == 3, "the third worker to answer")

        for stopped in (1, 2):
            process.send_signal(signal.SIGTTOU)
            process.wait_count("Received SIGTTOU, decreasing number of processes.", stopped, timeout=WAIT)
            process.wait_count("Finished server process", stopped, timeout=WAIT)
        process.send_signal(signal.SIGTTOU)
        process.wait_for("Already reached one process, cannot decrease the number of processes anymore.")
        survivors = [pid for pid in workers if f"Finished server process [{pid}]" not in process.stderr]
        before = Counter(hammer.pids)
        hammer.wait_for_requests(hammer.count + 50)
        since = hammer.pids - before
    assert hammer.failures == []
    assert len(survivors) == 1 and set(since) == set(survivors)
    for pid in set(workers) - set(survivors):
        assert_in_order(
            process.lines["stderr"],
            [
                f"INFO:     Terminated child process [{pid}]",
                f"INFO:     Waiting for child process [{pid}]",
                f"INFO:     Finished server process [{pid}]",
            ],
        )
    assert process.server_pids() == workers  # none was started to replace them


@pytest.mark.parametrize(
    "sockets", [[], pytest.param(["--reuse-port"], marks=linux_only)], ids=["shared-socket", "reuse-port"]
)
def test_limit_max_requests_replaces_workers_without_losing_a_request(serve_workers, sockets):
    """`--limit-max-requests 5`: each worker stops once it has served 5
    requests (or the few more that arrive before its next tick) and is
    replaced; every request of two clients sending at once succeeds, even
    when both workers are between a stop and their replacement: connections
    wait in the listening sockets' queues, which the parent keeps open."""
    process = serve_workers("--limit-max-requests", "5", *sockets)
    original = set(process.server_pids())
    with Hammer(process.url, threads=2) as hammer:
        hammer.wait_until(
            lambda pids: len(set(pids) - original) >= 2 and sum(pids.values()) >= 60, "two replacements to answer"
        )
    assert hammer.failures == []
    assert process.stderr.count("Maximum request limit of 5 exceeded. Terminating process.") >= 2
    for pid in original:
        # Replaced while finishing, or once finished: whichever the parent saw first.
        process.wait_for(rf"Child process \[{pid}\] (stopped serving; starting its replacement\.|died)")


def test_worker_at_its_request_limit_is_replaced_before_it_finishes(serve_workers):
    """A worker that reached `--limit-max-requests` stops accepting but
    finishes its slow in-flight request; its replacement starts meanwhile."""
    process = serve_workers("--limit-max-requests", "1")
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=10) as client:
        slow = threading.Thread(target=lambda: responses.append(client.get(process.url + "/slow?3")))
        responses: list[httpx.Response] = []
        slow.start()
        retiring = int(process.wait_for(r"REQUEST-STARTED (\d+)")[1])
        # Its first completed request takes the worker to its limit (the
        # other worker, and its replacements, retire along the way).
        deadline = time.monotonic() + WAIT
        while int(client.get(process.url).text) != retiring:
            assert time.monotonic() < deadline, "the worker with the slow request never served another"
        slow.join(10)
    assert [response.status_code for response in responses] == [200]
    assert int(responses[0].text) == retiring
    process.wait_for(rf"Finished server process \[{retiring}\]")
    lines = process.lines["stderr"]
    replacing = lines.index(f"INFO:     Child process [{retiring}] stopped serving; starting its replacement.")
    finished = lines.index(f"INFO:     Finished server process [{retiring}]")
    started_meanwhile = [
        pid for pid in process.server_pids() if replacing < lines.index(f"INFO:     Started server process [{pid}]")
    ]
    assert any(lines.index(f"INFO:     Started server process [{pid}]") < finished for pid in started_meanwhile)


def test_workers_stop_when_the_parent_is_killed(serve_workers):
    """A parent killed with SIGKILL cannot stop its workers: they notice
    that it is gone and shut down gracefully, freeing the port."""
    process = serve_workers()
    workers = process.server_pids()
    os.kill(process.pid, signal.SIGKILL)
    for pid in workers:
        process.wait_for(rf"Finished server process \[{pid}\]")
    assert process.stderr.count("WARNING:  Parent process is gone; shutting down.") == 2
    with pytest.raises(httpx.ConnectError):
        httpx.get(process.url, timeout=5)


# --- --reuse-port -----------------------------------------------------------------


@linux_only
def test_reuse_port_serves_on_two_workers_and_restarts_without_loss(serve_workers):
    """`--reuse-port`: one SO_REUSEPORT listener per worker, both serving;
    SIGHUP under load replaces both without losing a request, since the
    parent keeps each listener (and its queue) open across the swap."""
    process = serve_workers("--reuse-port")
    assert listeners_on(process.port) == 2
    old = set(process.server_pids())
    with Hammer(process.url, threads=2) as hammer:
        hammer.wait_until(lambda pids: set(pids) == old, "both workers to answer")
        process.send_signal(signal.SIGHUP)
        for pid in old:
            process.wait_for(rf"Finished server process \[{pid}\]", timeout=WAIT)
        hammer.wait_for_requests(max(1000, hammer.count + 200))
    assert hammer.failures == []
    assert len(set(process.server_pids()) - old) == 2
    assert len(hammer.pids) == 4
    # The new workers took over the same two listeners.
    assert listeners_on(process.port) == 2
