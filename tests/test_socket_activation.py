"""Sockets handed over by a process manager, run as real processes.

systemd socket activation: a launcher binds nothing itself; it moves the
sockets it inherited to descriptors 3, 4, ..., sets `LISTEN_FDS` and
`LISTEN_PID` to its own pid, and execs `python -m cppcorn`, as systemd
does. Then `--fd N` and `--uds PATH` shared by `--workers 2`. Every process
runs in a session of its own and is killed with its children at the end of
its test.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
from pathlib import Path

import httpx
import pytest

from tests.conftest import posix_only
from tests.subprocesses import PROCESS_APPS, ServerProcess, assert_two_workers_answer, free_port, tcp_get

pytestmark = posix_only

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


@pytest.fixture
def workdir(workdir: Path) -> Path:
    (workdir / "apps.py").write_text(PROCESS_APPS)
    (workdir / "launcher.py").write_text(LAUNCHER)
    return workdir


def running_on_socket(port: int) -> str:
    return re.escape(f"Uvicorn running on socket ('127.0.0.1', {port}) (Press CTRL+C to quit)")


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_serves_on_systemd_socket_without_binding_another(python_process, listeners):
    """LISTEN_FDS=1: the process serves on the socket at fd 3 and binds
    nothing else (not even the --port it is given)."""
    sock = listeners()
    port = sock.getsockname()[1]
    unused_port = free_port()
    process = python_process(
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


def test_two_systemd_sockets_are_both_served(python_process, listeners):
    """LISTEN_FDS=2: fds 3 and 4 are both served, each announced."""
    first, second = listeners(), listeners()
    ports = [first.getsockname()[1], second.getsockname()[1]]
    fds = (first.fileno(), second.fileno())
    process = python_process("launcher.py", f"{fds[0]},{fds[1]}", "-m", "cppcorn", "apps:app", pass_fds=fds)
    first.close()
    second.close()
    for port in ports:
        process.wait_for(running_on_socket(port))
    for port in ports:
        response = httpx.get(f"http://127.0.0.1:{port}/on-{port}", timeout=5)
        assert response.status_code == 200
        assert response.json()["path"] == f"/on-{port}"


def test_systemd_descriptor_that_is_not_a_listening_socket_exits_3(python_process, listeners):
    """LISTEN_FDS naming a connected socket: exit status 3 with one line that
    says so, before the application starts (no traceback)."""
    listener = listeners()
    with socket.create_connection(listener.getsockname(), timeout=5) as connection:
        fd = connection.fileno()
        process = python_process("launcher.py", str(fd), "-m", "cppcorn", "apps:app", pass_fds=(fd,))
        assert process.wait_exit() == 3
    assert [line for line in process.lines["stderr"] if line.startswith("ERROR:")] == [
        "ERROR:    Cannot serve on file descriptor 3, given by systemd socket activation (LISTEN_FDS): "
        "it is a connected socket, not a listening one."
    ]
    assert "Traceback" not in process.stderr
    assert "Application startup" not in process.stderr


def assert_workers_serve_on(sock: socket.socket, process: ServerProcess) -> None:
    """Both workers of `process` answer on the listening socket it was handed
    (closed here, so that only the server holds it)."""
    port = sock.getsockname()[1]
    sock.close()
    process.wait_for(running_on_socket(port))
    process.wait_count("Application startup complete.", 2)
    assert_two_workers_answer(tcp_get(port), process)


def test_systemd_socket_shared_by_workers(python_process, listeners):
    """LISTEN_FDS with --workers 2: the supervisor hands the inherited socket
    to both workers, and both answer on it."""
    sock = listeners()
    process = python_process(
        "launcher.py", str(sock.fileno()), "-m", "cppcorn", "apps:app", "--workers", "2", pass_fds=(sock.fileno(),)
    )
    assert_workers_serve_on(sock, process)


def test_fd_shared_by_workers(cppcorn_process, listeners):
    """`--fd N --workers 2`: both workers answer on the inherited socket."""
    sock = listeners()
    process = cppcorn_process("apps:app", "--fd", str(sock.fileno()), "--workers", "2", pass_fds=(sock.fileno(),))
    assert_workers_serve_on(sock, process)


def test_uds_shared_by_workers(cppcorn_process, short_tmp):
    """`--uds PATH --workers 2`: a socket file with mode 0o666, served by
    both workers, and removed at exit."""
    path = short_tmp / "workers.sock"
    process = cppcorn_process("apps:app", "--uds", str(path), "--workers", "2")
    process.wait_for(re.escape(f"Uvicorn running on unix socket {path} (Press CTRL+C to quit)"))
    process.wait_count("Application startup complete.", 2)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666

    def get(target: str) -> httpx.Response:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), timeout=10) as client:
            return client.get(f"http://cppcorn{target}")

    assert_two_workers_answer(get, process)
    process.send_signal(signal.SIGINT)
    assert process.wait_exit() == 0
    assert not path.exists()
