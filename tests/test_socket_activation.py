"""Sockets handed over by a process manager, run as real processes.

systemd socket activation: a launcher binds nothing itself; it moves the
sockets it inherited to descriptors 3, 4, ..., sets `LISTEN_FDS` and
`LISTEN_PID` to its own pid, and execs `python -m cppcorn`, as systemd
does. Then `--fd N` and `--uds PATH` shared by `--workers 2`. Every process
runs in a session of its own and is killed with its children at the end of
its test.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import posix_only, wait_until
from tests.test_cli import EXIT_TIMEOUT, ServerProcess, base_env, free_port

pytestmark = posix_only

STARTUP_TIMEOUT = 10.0
BLOCK_SECONDS = 1.0

APPS = '''
"""Applications for the process-management tests."""
import asyncio
import json
import os
import sys
import time


async def lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    """Names the process and event loop that answer. `?block=S` blocks the
    event loop for S seconds (the process accepts nothing meanwhile);
    `?sleep=S` waits S seconds without blocking it."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    while (await receive()).get("more_body"):
        pass
    name, _, value = scope["query_string"].decode().partition("=")
    if name == "block":
        print(f"BLOCKING {os.getpid()}", file=sys.stderr, flush=True)
        time.sleep(float(value))
    elif name == "sleep":
        print(f"SLEEPING {os.getpid()}", file=sys.stderr, flush=True)
        await asyncio.sleep(float(value))
    loop = type(asyncio.get_running_loop())
    body = json.dumps({
        "pid": os.getpid(),
        "loop": f"{loop.__module__}.{loop.__qualname__}",
        "path": scope["path"],
    }).encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
'''

LAUNCHER = '''
"""`python launcher.py FD[,FD...] ARGS...`: pass the sockets FD... the way
systemd does (at 3, 4, ... with LISTEN_FDS and LISTEN_PID), then exec
`python ARGS...` in this same process."""
import fcntl
import os
import sys

fds = [int(fd) for fd in sys.argv[1].split(",")]
# Out of the way first, so that moving one socket never overwrites another.
moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
for fd in fds:
    os.close(fd)
for target, fd in enumerate(moved, start=3):
    os.dup2(fd, target)
    os.close(fd)
os.environ["LISTEN_FDS"] = str(len(fds))
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
'''


class CommandProcess(ServerProcess):
    """A `ServerProcess` for any command line (`ServerProcess` runs `python
    -m cppcorn`), started in a session of its own so that `stop()` kills the
    children it started too."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> None:
        self.args = command
        self.proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=pass_fds,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.port = 0
        self.scheme = "http"
        self.lines = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, "stderr"), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        super().stop()

    def wait_count(self, text: str, count: int, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait until `text` has been logged `count` times (by as many workers)."""
        if not wait_until(lambda: self.stderr.count(text) >= count, timeout=timeout):
            raise AssertionError(f"{text!r} not logged {count} times; stderr:\n{self.stderr}")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "apps.py").write_text(APPS)
    (tmp_path / "launcher.py").write_text(LAUNCHER)
    return tmp_path


@pytest.fixture
def launch(workdir: Path) -> Iterator[Callable[..., CommandProcess]]:
    """`launch(*python_args, pass_fds=(...))`: `python ARGS` in the work
    directory, killed with its children at the end of the test."""
    processes: list[CommandProcess] = []

    def start(*args: str, pass_fds: tuple[int, ...] = ()) -> CommandProcess:
        process = CommandProcess([sys.executable, *args], workdir, base_env(), pass_fds)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


@pytest.fixture
def listeners() -> Iterator[Callable[[], socket.socket]]:
    """`listener()`: a listening TCP socket on a free loopback port, as a
    process manager would pass it."""
    sockets: list[socket.socket] = []

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sockets.append(sock)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        return sock

    yield make
    for sock in sockets:
        sock.close()


def running_on_socket(port: int) -> str:
    return re.escape(f"cppcorn running on socket ('127.0.0.1', {port}) (Press CTRL+C to quit)")


def pids_answering(get: Callable[[str], httpx.Response], process: ServerProcess) -> set[int]:
    """The pids of two different processes answering on the same socket: one
    blocks its event loop, so the request made meanwhile goes to another."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        blocked = executor.submit(get, f"/?block={BLOCK_SECONDS}")
        blocking_pid = int(process.wait_for(r"BLOCKING (\d+)")[1])
        other = get("/")
        assert blocked.result(timeout=10).json()["pid"] == blocking_pid
    assert other.status_code == 200
    return {blocking_pid, other.json()["pid"]}


def tcp_get(port: int) -> Callable[[str], httpx.Response]:
    def get(path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)

    return get


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_serves_on_systemd_socket_without_binding_another(launch, listeners):
    """LISTEN_FDS=1: the process serves on the socket at fd 3 and binds
    nothing else (not even the --port it is given)."""
    sock = listeners()
    port = sock.getsockname()[1]
    unused_port = free_port()
    process = launch(
        "launcher.py",
        str(sock.fileno()),
        "-m",
        "cppcorn",
        "apps:app",
        "--port",
        str(unused_port),
        pass_fds=(sock.fileno(),),
    )
    sock.close()  # only the server holds it now
    process.wait_for(running_on_socket(port))
    response = httpx.get(f"http://127.0.0.1:{port}/activated", timeout=5)
    assert response.status_code == 200
    # The exec'd launcher itself: LISTEN_PID named the serving process.
    assert response.json()["pid"] == process.pid
    assert response.json()["path"] == "/activated"
    assert refuses_connections(unused_port)
    assert "running on http" not in process.stderr
    process.send_signal(signal.SIGINT)
    assert process.wait_exit() == 0


def test_two_systemd_sockets_are_both_served(launch, listeners):
    """LISTEN_FDS=2: fds 3 and 4 are both served, each announced."""
    first, second = listeners(), listeners()
    ports = [first.getsockname()[1], second.getsockname()[1]]
    fds = (first.fileno(), second.fileno())
    process = launch("launcher.py", f"{fds[0]},{fds[1]}", "-m", "cppcorn", "apps:app", pass_fds=fds)
    first.close()
    second.close()
    for port in ports:
        process.wait_for(running_on_socket(port))
    for port in ports:
        response = httpx.get(f"http://127.0.0.1:{port}/on-{port}", timeout=5)
        assert response.status_code == 200
        assert response.json()["path"] == f"/on-{port}"


def test_systemd_socket_shared_by_workers(launch, listeners):
    """LISTEN_FDS with --workers 2: the supervisor hands the inherited socket
    to both workers, and both answer on it."""
    sock = listeners()
    port = sock.getsockname()[1]
    process = launch(
        "launcher.py", str(sock.fileno()), "-m", "cppcorn", "apps:app", "--workers", "2", pass_fds=(sock.fileno(),)
    )
    sock.close()
    process.wait_for(running_on_socket(port))
    process.wait_count("Application startup complete.", 2)
    pids = pids_answering(tcp_get(port), process)
    assert len(pids) == 2
    assert process.pid not in pids


def test_fd_shared_by_workers(launch, listeners):
    """`--fd N --workers 2`: both workers answer on the inherited socket."""
    sock = listeners()
    port = sock.getsockname()[1]
    process = launch(
        "-m", "cppcorn", "apps:app", "--fd", str(sock.fileno()), "--workers", "2", pass_fds=(sock.fileno(),)
    )
    sock.close()
    process.wait_for(running_on_socket(port))
    process.wait_count("Application startup complete.", 2)
    pids = pids_answering(tcp_get(port), process)
    assert len(pids) == 2
    assert process.pid not in pids


def test_uds_shared_by_workers(launch, short_tmp):
    """`--uds PATH --workers 2`: a socket file with mode 0o666, served by
    both workers, and removed at exit."""
    path = short_tmp / "workers.sock"
    process = launch("-m", "cppcorn", "apps:app", "--uds", str(path), "--workers", "2")
    process.wait_for(re.escape(f"cppcorn running on unix socket {path} (Press CTRL+C to quit)"))
    process.wait_count("Application startup complete.", 2)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666

    def get(target: str) -> httpx.Response:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), timeout=10) as client:
            return client.get(f"http://cppcorn{target}")

    pids = pids_answering(get, process)
    assert len(pids) == 2
    process.send_signal(signal.SIGINT)
    assert process.wait_exit(EXIT_TIMEOUT) == 0
    assert not path.exists()
