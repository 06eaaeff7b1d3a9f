"""`--reload`: a real reloader process (`python -m cppcorn apps:app --reload`)
started in a temporary directory holding the application, whose files the
tests edit; and `resolve_reload_settings` / `FileFilter` on their own.

Both reloaders run the same scenarios. The StatReload one is chosen the way
a user without `watchfiles` gets it: a `watchfiles` module that raises
ImportError comes first on the child's PYTHONPATH (it is inherited by the
spawned worker too), so the whole command line runs unchanged and only the
backend differs.

Every wait is for a log line, a response or a process state, with a
deadline. That a change
was *not* acted on is shown without sleeping: the ignored file is written
first and a watched one after it; the first reload must name only the
watched one. Files are replaced atomically (one clean change event), and no
bytecode is written, so that a rewritten module of the same size and second
is never served from a stale .pyc.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cppcorn.config import Config
from tests.conftest import posix_only, torn_down, wait_until
from tests.subprocesses import REPO_ROOT, ServerProcess

APP = """
import os

BODY = {body!r}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/crash":
        os._exit(1)
    await send({{
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-length", str(len(BODY)).encode())],
    }})
    await send({{"type": "http.response.body", "body": BODY}})
"""

BLOCK_WATCHFILES = 'raise ImportError("watchfiles is blocked for this test")\n'

BACKENDS = ["WatchFiles", "StatReload"]
RELOAD_TIMEOUT = 8.0  # from an edit to the new worker serving it


def write_file(path: Path, text: str) -> None:
    """Replace a file atomically, so that watchers see one complete change."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def write_app(directory: Path, body: bytes) -> None:
    write_file(directory / "apps.py", APP.format(body=body))


def get_body(process: ServerProcess) -> bytes:
    return httpx.get(process.url, timeout=5).content


def first_body(process: ServerProcess, timeout: float = RELOAD_TIMEOUT) -> bytes:
    """The first response: the reloader's socket only listens once the first
    worker serves on it, and refuses connections until then."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get_body(process)
        except httpx.ConnectError:
            if time.monotonic() > deadline or process.proc.poll() is not None:
                raise
            time.sleep(0.05)


def worker_pid(process: ServerProcess, other_than: int | None = None) -> int:
    """The PID of a worker that has started (other than `other_than`)."""
    exclude = rf"(?!{other_than}\])" if other_than is not None else ""
    match = process.wait_for(rf"Started server process \[{exclude}(\d+)\]", timeout=RELOAD_TIMEOUT)
    return int(match[1])


def reload_lines(process: ServerProcess) -> list[str]:
    return [line for line in process.lines["stderr"] if "detected changes" in line]


def assert_first_reload_is_for_the_app(process: ServerProcess, directory: Path) -> None:
    """Edit `apps.py` after other files were written: the first reload names
    `apps.py` alone, so the files written before it were ignored."""
    write_app(directory, b"v2")
    process.wait_for("detected changes", timeout=RELOAD_TIMEOUT)
    assert reload_lines(process)[0].endswith("detected changes in 'apps.py'. Reloading...")


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process we may not signal: it exists
        return True
    return True


def process_table() -> dict[int, tuple[int, str]]:
    """Every process, as `ps` lists them (POSIX): PID -> (parent PID, command)."""
    try:
        listing = subprocess.run(
            ["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "command="],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    table = {}
    for line in listing.splitlines():
        pid, ppid, command = [*line.split(None, 2), ""][:3]
        table[int(pid)] = (int(ppid), command)
    return table


def running_workers(process: ServerProcess) -> list[int]:
    """The reloader's worker processes still running (not yet exited)."""
    return [pid for pid, (ppid, command) in process_table().items() if ppid == process.pid and "spawn_main" in command]


def assert_reloader_stays(process: ServerProcess) -> None:
    """The reloader outlives its worker: it has not exited several checks
    (`--reload-delay 0.1`) after the worker did. Nothing is logged while it
    waits, so only the absence of an exit within a bound can show this."""
    assert not wait_until(lambda: process.proc.poll() is not None, timeout=0.5), (
        f"the reloader exited with its worker:\n{process.stderr}"
    )


def kill_tree(process: ServerProcess) -> None:
    """Kill a reloader and what it started: its children (the worker,
    multiprocessing's resource tracker), and any worker it logged that
    outlived it. The reloader is stopped first, so that it cannot start
    another worker meanwhile. A process left alive would hold the output
    pipes open for ever."""
    if sys.platform == "win32":
        process.stop()
        return
    if process.proc.poll() is None:
        os.kill(process.pid, signal.SIGSTOP)
    logged = set(process.server_pids())
    for pid, (ppid, command) in process_table().items():
        if ppid == process.pid or (pid in logged and "multiprocessing" in command):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    process.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The directory the reloader runs in and watches, holding `apps.py`."""
    directory = tmp_path / "app"
    directory.mkdir()
    write_app(directory, b"v1")
    return directory


@pytest.fixture
def start_cppcorn(
    tmp_path: Path, cppcorn_process: Callable[..., ServerProcess]
) -> Iterator[Callable[..., ServerProcess]]:
    """`start(*args, backend=...)`: `python -m cppcorn *args` in `workdir`,
    with the given reloader available; killed with its workers at the end."""
    shim = tmp_path / "no-watchfiles"
    shim.mkdir()
    (shim / "watchfiles.py").write_text(BLOCK_WATCHFILES)

    def start(*args: str, backend: str = "WatchFiles") -> ServerProcess:
        path = [str(shim), str(REPO_ROOT)] if backend == "StatReload" else [str(REPO_ROOT)]
        env = {"PYTHONPATH": os.pathsep.join(path), "PYTHONDONTWRITEBYTECODE": "1"}
        return cppcorn_process(*args, "--port", "0", "--lifespan", "off", env=env)

    yield from torn_down(start, kill_tree)


@pytest.fixture
def reloader(start_cppcorn: Callable[..., ServerProcess], workdir: Path) -> Callable[..., ServerProcess]:
    """`reloader(backend, *extra_args)`: a reloader serving `apps:app`, with
    its first worker answering."""

    def start(backend: str, *args: str) -> ServerProcess:
        process = start_cppcorn(
            "apps:app", "--reload", "--reload-dir", str(workdir), "--reload-delay", "0.1", *args, backend=backend
        )
        process.wait_started()
        process.wait_for(rf"Started reloader process \[{process.pid}\] using {backend}$")
        assert first_body(process) == b"v1"
        return process

    return start


# --- Reloading on changes ------------------------------------------------------


@posix_only
@pytest.mark.parametrize("backend", BACKENDS)
def test_editing_the_app_reloads_it(reloader, workdir, backend):
    """An edit to the application is served by a new worker, within a bound;
    the lifecycle lines are Uvicorn's."""
    server = reloader(backend)
    assert f"Will watch for changes in these directories: ['{workdir}']" in server.stderr
    first = worker_pid(server)

    edited_at = time.monotonic()
    write_app(workdir, b"v2")
    server.wait_for(rf"WARNING:  {backend} detected changes in 'apps.py'\. Reloading\.\.\.$", timeout=RELOAD_TIMEOUT)
    worker_pid(server, other_than=first)
    assert get_body(server) == b"v2"
    assert time.monotonic() - edited_at < RELOAD_TIMEOUT
    server.wait_for(rf"Finished server process \[{first}\]")  # the old worker stopped gracefully


@posix_only
@pytest.mark.parametrize("backend", BACKENDS)
def test_text_file_change_does_not_reload_by_default(reloader, workdir, backend):
    server = reloader(backend)
    write_file(workdir / "notes.txt", "ignored")
    assert_first_reload_is_for_the_app(server, workdir)


@posix_only
def test_reload_include_watches_text_files(reloader, workdir):
    server = reloader("WatchFiles", "--reload-include", "*.txt")
    first = worker_pid(server)
    write_file(workdir / "notes.txt", "watched")
    server.wait_for(r"WatchFiles detected changes in 'notes\.txt'\. Reloading\.\.\.$", timeout=RELOAD_TIMEOUT)
    worker_pid(server, other_than=first)
    assert get_body(server) == b"v1"


@posix_only
def test_reload_exclude_ignores_patterns_and_directories(reloader, workdir):
    (workdir / "generated").mkdir()
    server = reloader("WatchFiles", "--reload-exclude", "skip_*.py", "--reload-exclude", "generated")
    write_file(workdir / "skip_me.py", "X = 1\n")
    write_file(workdir / "generated" / "models.py", "X = 1\n")
    assert_first_reload_is_for_the_app(server, workdir)


@posix_only
def test_statreload_warns_that_patterns_need_watchfiles(reloader):
    server = reloader("StatReload", "--reload-include", "*.txt")
    assert "WARNING:  --reload-include and --reload-exclude have no effect unless watchfiles is installed." in (
        server.stderr
    )


# --- Workers that fail ------------------------------------------------------------


@posix_only
@pytest.mark.parametrize("backend", BACKENDS)
def test_syntax_error_keeps_reloader_alive_until_fixed(reloader, workdir, backend):
    """A worker that cannot import the application ends; the reloader stays,
    keeps restarting on changes, and the fix brings the server back."""
    server = reloader(backend)
    first = worker_pid(server)

    write_file(workdir / "apps.py", "def app(:\n")
    server.wait_for(r"SyntaxError", timeout=RELOAD_TIMEOUT)
    assert wait_until(lambda: not running_workers(server)), "the worker that failed to import is still running"
    assert_reloader_stays(server)

    # With no worker left, a change still starts one (which fails again).
    write_file(workdir / "other.py", "X = 1\n")
    server.wait_for(rf"{backend} detected changes in 'other\.py'", timeout=RELOAD_TIMEOUT)
    assert wait_until(lambda: server.stderr.count("SyntaxError") >= 2, RELOAD_TIMEOUT), server.stderr

    write_app(workdir, b"fixed")
    worker_pid(server, other_than=first)
    assert get_body(server) == b"fixed"


@posix_only
def test_crashed_worker_is_replaced_on_next_change(reloader, workdir):
    server = reloader("WatchFiles")
    first = worker_pid(server)
    with pytest.raises(httpx.TransportError):  # the worker died mid-request
        httpx.get(server.url + "/crash", timeout=5)
    assert wait_until(lambda: not running_workers(server)), "the crashed worker is still running"
    assert_reloader_stays(server)

    write_app(workdir, b"v2")
    worker_pid(server, other_than=first)
    assert get_body(server) == b"v2"


# --- Stopping ---------------------------------------------------------------------


@posix_only
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_reloader_and_worker(reloader, backend, sig):
    server = reloader(backend)
    worker = worker_pid(server)
    server.send_signal(sig)
    assert server.wait_exit() == 0
    assert f"INFO:     Stopping reloader process [{server.pid}]" in server.lines["stderr"]
    assert f"INFO:     Finished server process [{worker}]" in server.lines["stderr"]
    assert wait_until(lambda: not pid_exists(worker)), f"worker {worker} still running"
    assert "Traceback" not in server.stderr


# --- Warnings about the configuration ---------------------------------------------


@posix_only
def test_workers_flag_is_ignored_with_reload(reloader):
    server = reloader("WatchFiles", "--workers", "2")
    assert 'WARNING:  "workers" flag is ignored when reloading is enabled.' in server.lines["stderr"]
    assert len(server.server_pids()) == 1, server.stderr


def test_reload_options_without_reload_warn(start_cppcorn, workdir):
    server = start_cppcorn("apps:app", "--reload-dir", str(workdir), "--reload-include", "*.txt").wait_started()
    assert (
        "WARNING:  Current configuration will not reload as not all conditions are met, "
        "please refer to documentation." in server.lines["stderr"]
    )
    assert first_body(server) == b"v1"
    assert "reloader" not in server.stderr


# --- resolve_reload_settings and the file filter ----------------------------------


@pytest.fixture
def log_records() -> Iterator[list[logging.LogRecord]]:
    """What `uvicorn.error` logs at INFO and above during the test."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("uvicorn.error")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory (the current directory during the test)."""
    for name in ("src/pkg", "docs", "build_a", "build_b"):
        (tmp_path / name).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def reload_config(**kwargs: object) -> Config:
    return Config("apps:app", reload=True, log_config=None, **kwargs)  # type: ignore[arg-type]


def test_reload_dirs_default_to_current_directory(tree, log_records):
    config = reload_config()
    assert config.reload_dirs == [tree]
    assert config.reload_dirs_excludes == []
    assert config.reload_includes == [] and config.reload_excludes == []
    assert [record.getMessage() for record in log_records] == [
        f"Will watch for changes in these directories: ['{tree}']"
    ]


def test_reload_dirs_string_list_duplicates_and_nesting(tree):
    assert reload_config(reload_dirs="src").reload_dirs == [tree / "src"]
    config = reload_config(reload_dirs=["src/pkg", "src", "docs", "src", str(tree / "docs")])
    assert sorted(config.reload_dirs) == [tree / "docs", tree / "src"]


def test_include_patterns_naming_directories_are_watched(tree):
    config = reload_config(reload_dirs=["docs"], reload_includes=["src", "build_*", "*.txt"])
    assert sorted(config.reload_dirs) == [tree / "build_a", tree / "build_b", tree / "docs", tree / "src"]
    assert sorted(config.reload_includes) == ["*.txt", "build_*", "src"]


def test_exclude_patterns_naming_directories_are_excluded(tree):
    config = reload_config(reload_dirs=["src", "docs"], reload_excludes=["src", "*.log", ".*"])
    assert config.reload_dirs == [tree / "docs"]
    assert config.reload_dirs_excludes == [tree / "src"]
    assert sorted(config.reload_excludes) == ["*.log", ".*", "src"]


def test_excluding_every_reload_dir_falls_back_to_current_directory(tree, log_records):
    config = reload_config(reload_dirs=["src/pkg"], reload_excludes=["src"])
    assert config.reload_dirs == [tree]
    assert any(
        record.levelno == logging.WARNING
        and record.getMessage()
        == "Provided reload directories ['src/pkg'] did not contain valid directories, "
        "watching current working directory."
        for record in log_records
    )


def test_excluded_pattern_is_removed_from_includes(tree):
    config = reload_config(reload_includes=["*.txt", "*.cfg"], reload_excludes=["*.txt"])
    assert config.reload_includes == ["*.cfg"]


@pytest.fixture
def file_filter(tree: Path) -> Callable[..., Callable[[Path], bool]]:
    pytest.importorskip("watchfiles")
    from cppcorn.supervisors.watchfilesreload import FileFilter

    def make(**kwargs: object) -> Callable[[Path], bool]:
        return FileFilter(reload_config(**kwargs))

    return make


def test_file_filter_defaults(file_filter, tree):
    counts = file_filter()
    assert counts(tree / "src" / "app.py")
    for ignored in ("notes.txt", ".hidden.py", "app.pyc", ".app.py.swp", "~app.py"):
        assert not counts(tree / ignored), ignored


def test_file_filter_user_patterns_override_defaults(file_filter, tree):
    counts = file_filter(reload_includes=["*.txt", ".env"], reload_excludes=["*.py"])
    assert counts(tree / "notes.txt")
    assert counts(tree / ".env")  # spelled out: wins over the ".*" default exclude
    assert not counts(tree / "app.py")
    assert file_filter(reload_includes=[".*"])(tree / ".hidden.py")


def test_file_filter_excluded_directories(file_filter, tree):
    counts = file_filter(reload_excludes=["src", "build_*"])
    assert not counts(tree / "src" / "pkg" / "app.py")
    assert not counts(tree / "build_b" / "gen.py")
    assert counts(tree / "docs" / "conf.py")
