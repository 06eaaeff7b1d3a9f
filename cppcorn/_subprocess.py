"""Starting a worker process: the same interpreter, spawned (not forked), so
that every worker imports the application afresh and no loop, thread or lock
state leaks from the supervisor."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Callable
from multiprocessing.context import SpawnProcess
from socket import socket
from typing import Any

from cppcorn.config import Config

# Listening sockets travel to the children through the spawn pipe.
multiprocessing.allow_connection_pickling()
spawn = multiprocessing.get_context("spawn")


def get_subprocess(config: Config, target: Callable[..., None], sockets: list[socket]) -> SpawnProcess:
    """A (not yet started) worker process running `target(sockets=sockets)`."""
    try:
        stdin_fileno: int | None = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        # No usable stdin (a daemon, a test runner): nothing to hand over.
        stdin_fileno = None
    kwargs: dict[str, Any] = {
        "config": config,
        "target": target,
        "sockets": sockets,
        "stdin_fileno": stdin_fileno,
    }
    return spawn.Process(target=subprocess_started, kwargs=kwargs)


def subprocess_started(
    config: Config, target: Callable[..., None], sockets: list[socket], stdin_fileno: int | None
) -> None:
    """The worker's entry point."""
    if stdin_fileno is not None:
        # Debuggers (pdb, breakpoint()) need the terminal in the worker too.
        sys.stdin = os.fdopen(stdin_fileno)
    # Logging is per process: configure it again from the same settings.
    config.configure_logging()
    # The supervisor stops us with SIGINT; a traceback then would be noise.
    with contextlib.suppress(KeyboardInterrupt):
        target(sockets=sockets)
