"""Real processes for the tests that run cppcorn (or gunicorn, or a launcher)
as a subprocess.

`ServerProcess` starts a command in a session of its own and reads its
stdout and stderr line by line in background threads, so that a test can
wait for a line, a count of lines or the exit, each with a deadline; `stop()`
kills its whole process group (workers and other children included). The
`python_process` and `cppcorn_process` fixtures in `tests/conftest.py` start
them in the test's `workdir` and stop them at the end of the test.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]

STARTUP_TIMEOUT = 10.0
EXIT_TIMEOUT = 10.0

# `running on http://127.0.0.1:PORT`, `https://...`, with any log format around it.
RUNNING_ON = re.compile(r"running on (?P<scheme>https?)://(?P<host>[^:\s]+):(?P<port>\d+)")
SERVER_STARTED = re.compile(r"Started server process \[(\d+)\]")


# Modules in every work directory (the `workdir` fixture), for the
# application modules the tests write there: `asgi_helpers` (the lifespan
# protocol's startup and shutdown, a JSON response); `broken` cannot be
# imported.
ASGI_HELPERS_MODULE = '''
import json


async def lifespan(receive, send):
    """Complete the lifespan startup, then the shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond_json(send, payload):
    """Send `payload` as a whole application/json response."""
    body = json.dumps(payload).encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
'''
BROKEN_MODULE = 'raise RuntimeError("this module cannot be imported")\n'

# `apps.py` of the socket activation and gunicorn tests.
PROCESS_APPS = '''
"""Applications for the process-management tests: `app` names the process and
event loop that answer (see `assert_two_workers_answer`)."""
import asyncio
import os
import sys
import time

from asgi_helpers import lifespan, respond_json


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
    await respond_json(send, {
        "pid": os.getpid(),
        "loop": f"{loop.__module__}.{loop.__qualname__}",
        "path": scope["path"],
    })
'''


def base_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: ours, without variables that
    would change a server's configuration, with the repository importable."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CPPCORN_", "UVICORN_"))
        and key not in ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "GUNICORN_CMD_ARGS")
    }
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra)
    return env


def cppcorn_command(*args: str) -> list[str]:
    """`python -m cppcorn ARGS`, with this interpreter."""
    return [sys.executable, "-m", "cppcorn", *args]


class ServerProcess:
    """A subprocess whose stdout and stderr are read line by line in
    background threads, so that tests can wait for a line with a deadline.
    It runs in a session (and process group) of its own, so that `stop()`
    also ends any workers it started."""

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
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, "stderr"), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, name: str) -> None:
        for line in stream:
            with self._changed:
                self.lines[name].append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stderr(self) -> str:
        with self._changed:
            return "\n".join(self.lines["stderr"])

    @property
    def stdout(self) -> str:
        with self._changed:
            return "\n".join(self.lines["stdout"])

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def wait_for(
        self, pattern: str | re.Pattern[str], stream: str = "stderr", timeout: float = STARTUP_TIMEOUT
    ) -> re.Match[str]:
        """Wait for a line matching `pattern` (a regex) on `stream`."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[stream]:
                    match = regex.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                exited = self.proc.poll() is not None and not any(reader.is_alive() for reader in self._readers)
                if exited or remaining <= 0:
                    raise AssertionError(
                        f"no line matching {regex.pattern!r} on {stream} "
                        f"({'process exited with ' + str(self.proc.returncode) if exited else 'timed out'});\n"
                        f"stderr:\n{chr(10).join(self.lines['stderr'])}\nstdout:\n{chr(10).join(self.lines['stdout'])}"
                    )
                self._changed.wait(min(remaining, 0.5))

    def wait_count(self, text: str, count: int, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait until `text` has been logged on stderr `count` times (by as
        many workers, say)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.stderr.count(text) >= count, timeout):
                raise AssertionError(f"{text!r} not logged {count} times; stderr:\n{self.stderr}")

    def wait_started(self) -> ServerProcess:
        """Wait for the `running on` line and remember the scheme and port."""
        match = self.wait_for(RUNNING_ON)
        self.scheme = match["scheme"]
        self.port = int(match["port"])
        return self

    def server_pids(self) -> list[int]:
        """Every server process (worker) started so far, from the
        `Started server process [PID]` lines, in order."""
        return [int(match[1]) for match in SERVER_STARTED.finditer(self.stderr)]

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        """Wait for the process to end (and for its output to be read)."""
        try:
            returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the process did not exit within {timeout} s; stderr:\n{self.stderr}") from None
        for reader in self._readers:
            reader.join(5)
        return returncode

    def stop(self) -> None:
        """Kill the process and its whole process group; harmless once done."""
        if sys.platform != "win32":
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        elif self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(EXIT_TIMEOUT)
        for reader in self._readers:
            reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def free_port() -> int:
    """A loopback TCP port nothing listens on (as of now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tcp_get(port: int) -> Callable[[str], httpx.Response]:
    """`get(path)`: one GET to 127.0.0.1:PORT on a new connection."""

    def get(path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)

    return get


# How long `assert_two_workers_answer` blocks one process's event loop.
BLOCK_SECONDS = 1.0


def assert_two_workers_answer(get: Callable[[str], httpx.Response], process: ServerProcess) -> None:
    """Two different processes, neither of them `process` (their parent),
    answer on the same socket: one blocks its event loop (`?block=S`,
    announced by a `BLOCKING PID` line), so the request made meanwhile goes
    to another."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        blocked = executor.submit(get, f"/?block={BLOCK_SECONDS}")
        blocking_pid = int(process.wait_for(r"BLOCKING (\d+)")[1])
        other = get("/")
        assert blocked.result(timeout=10).json()["pid"] == blocking_pid
    assert other.status_code == 200
    pids = {blocking_pid, other.json()["pid"]}
    assert len(pids) == 2
    assert process.pid not in pids
