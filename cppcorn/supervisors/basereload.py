"""`--reload`: what to watch (`resolve_reload_settings`), and the supervisor
that runs the application in a worker process and replaces that worker when
a watched file changes (`BaseReload`; the watching itself is a subclass's).

The worker is a separate, spawned process so that every restart imports the
application afresh. A worker that cannot start (a syntax error mid-edit) or
that dies on its own only ends that worker: the reloader keeps watching and
starts a new one after the next change.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.context import SpawnProcess
from pathlib import Path
from socket import socket
from types import FrameType
from typing import TYPE_CHECKING

import click

from cppcorn._subprocess import get_subprocess

if TYPE_CHECKING:
    from cppcorn.config import Config

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)

logger = logging.getLogger("uvicorn.error")


# ---------------------------------------------------------------- settings


def resolve_reload_settings(config: Config) -> None:
    """Turn the `reload_dirs`, `reload_includes` and `reload_excludes` given
    to `Config` (a string, a list or None each) into what the reloaders use,
    stored back on `config`, as Uvicorn does:

    - `reload_includes` / `reload_excludes`: the user's patterns (the
      defaults are added by the file filter), an excluded pattern removed
      from the includes;
    - `reload_dirs`: absolute directories, from `reload_dirs` and from the
      include patterns that name directories, without nested duplicates,
      minus the directories excluded; the current directory if none remain;
    - `reload_dirs_excludes`: the directories the exclude patterns name.
    """
    given_dirs = _as_list(config.reload_dirs)
    includes, watch_dirs = _split_patterns(_as_list(config.reload_includes), extra_dirs=given_dirs)
    excludes, excluded_dirs = _split_patterns(_as_list(config.reload_excludes))

    watch_dirs = [
        directory
        for directory in watch_dirs
        if not any(excluded == directory or excluded in directory.parents for excluded in excluded_dirs)
    ]
    includes = [pattern for pattern in includes if pattern not in excludes]

    if not watch_dirs:
        if given_dirs:
            logger.warning(
                "Provided reload directories %s did not contain valid directories, watching current working directory.",
                given_dirs,
            )
        watch_dirs = [Path.cwd()]

    config.reload_dirs = watch_dirs
    config.reload_dirs_excludes = excluded_dirs
    config.reload_includes = includes
    config.reload_excludes = excludes
    logger.info("Will watch for changes in these directories: %s", sorted(str(path) for path in watch_dirs))


def _as_list(value: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None) -> list[str]:
    """A `reload_*` argument (one path or pattern, or several) as a list of
    distinct strings."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return list(dict.fromkeys(os.fspath(item) for item in value))


def _split_patterns(patterns: list[str], extra_dirs: Iterable[str] = ()) -> tuple[list[str], list[Path]]:
    """The patterns, and the directories among `extra_dirs` and those the
    patterns name (literally, or as a glob matched in the current directory),
    absolute and with the ones inside another removed."""
    cwd = Path.cwd()
    candidates = [Path(directory) for directory in extra_dirs]
    for pattern in patterns:
        # ".*" would only match hidden directories here, which is not what
        # anyone writing it means: it stays a file pattern only.
        if pattern == ".*":
            continue
        if _is_dir(Path(pattern)):
            candidates.append(Path(pattern))
        else:
            candidates.extend(match for match in _glob(cwd, pattern) if _is_dir(match))
    directories = list(dict.fromkeys(path.resolve() for path in candidates if _is_dir(path)))
    outermost = [path for path in directories if not any(other in path.parents for other in directories)]
    return list(dict.fromkeys(patterns)), outermost


def _is_dir(path: Path) -> bool:
    try:
        return path.resolve().is_dir()
    except OSError:  # Windows refuses names like "*.py"
        return False


def _glob(directory: Path, pattern: str) -> list[Path]:
    try:
        return list(directory.glob(pattern))
    except (ValueError, OSError):  # an absolute or otherwise unusable pattern
        return []


# -------------------------------------------------------------- supervisor


class BaseReload:
    """Run `target(sockets=sockets)` in a worker process, and restart it
    whenever `should_restart()` (the subclass's watcher) reports changes."""

    reloader_name: str = ""

    def __init__(self, config: Config, target: Callable[..., None], sockets: list[socket]) -> None:
        self.config = config
        self.target = target
        self.sockets = sockets
        self.should_exit = threading.Event()
        self.pid = os.getpid()
        # On Windows the CTRL_C_EVENT sent to restart the worker reaches this
        # process too; it must not be taken for the user's Ctrl+C.
        self.is_restarting = False
        self.process: SpawnProcess | None = None

    def run(self) -> None:
        self.startup()
        for changes in self:
            if changes:
                logger.warning(
                    "%s detected changes in %s. Reloading...",
                    self.reloader_name,
                    ", ".join(_display_path(path) for path in changes),
                )
                self.restart()
        self.shutdown()

    def __iter__(self) -> Iterator[list[Path] | None]:
        return self

    def __next__(self) -> list[Path] | None:
        return self.should_restart()

    def should_restart(self) -> list[Path] | None:
        """Wait for the next check; the changed files, if any. Raises
        StopIteration once the reloader is told to stop."""
        raise NotImplementedError("a reloader must implement should_restart()")

    def pause(self) -> None:
        """Wait `reload_delay` between checks, ending the iteration on a stop."""
        if self.should_exit.wait(self.config.reload_delay):
            raise StopIteration

    def signal_handler(self, sig: int, frame: FrameType | None) -> None:
        if sys.platform == "win32" and self.is_restarting:
            self.is_restarting = False
        else:
            self.should_exit.set()

    def startup(self) -> None:
        _log_highlighted("Started reloader process [{}] using {}", self.pid, self.reloader_name)
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, self.signal_handler)
        self.start_worker()

    def start_worker(self) -> None:
        self.process = get_subprocess(config=self.config, target=self.target, sockets=self.sockets)
        self.process.start()

    def restart(self) -> None:
        self.stop_worker()
        # A stop asked for while the old worker was finishing: do not start
        # a worker only to stop it again.
        if not self.should_exit.is_set():
            self.start_worker()

    def stop_worker(self) -> None:
        """Ask the worker to shut down gracefully and wait for it. A worker
        that already died (a crash, an application that failed to import)
        is only reaped."""
        assert self.process is not None
        if self.process.is_alive():
            if sys.platform == "win32":
                self.is_restarting = True
                assert self.process.pid is not None
                os.kill(self.process.pid, signal.CTRL_C_EVENT)
                # The console delivers the event only once something is
                # written to it.
                sys.stdout.write(" ")
                sys.stdout.flush()
            else:
                self.process.terminate()
        self.process.join()

    def shutdown(self) -> None:
        assert self.process is not None
        if sys.platform == "win32":
            # The console already sent the user's Ctrl+C to the worker.
            self.process.join()
        else:
            self.stop_worker()
        for sock in self.sockets:
            sock.close()
        _log_highlighted("Stopping reloader process [{}]", self.pid)


def _log_highlighted(template: str, *values: object) -> None:
    """An INFO line whose values (a PID, a name) are in colour when the log
    format uses colours."""
    coloured = template.format(*(click.style(str(value), fg="cyan", bold=True) for value in values))
    logger.info(template.format(*values), extra={"color_message": coloured})


def _display_path(path: Path) -> str:
    """A changed file as the warning names it: relative to the current
    directory when it is inside it."""
    try:
        return f"'{path.relative_to(Path.cwd())}'"
    except ValueError:
        return f"'{path}'"
