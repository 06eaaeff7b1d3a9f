"""`--reload` without `watchfiles`: poll the modification times of the
`*.py` files under the reload directories every `reload_delay` seconds."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from socket import socket
from typing import TYPE_CHECKING

from cppcorn.supervisors.basereload import BaseReload

if TYPE_CHECKING:
    from cppcorn.config import Config

logger = logging.getLogger("uvicorn.error")


class StatReload(BaseReload):
    reloader_name = "StatReload"

    def __init__(self, config: Config, target: Callable[..., None], sockets: list[socket]) -> None:
        super().__init__(config, target, sockets)
        if config.reload_includes or config.reload_excludes:
            logger.warning("--reload-include and --reload-exclude have no effect unless watchfiles is installed.")
        # The baseline is taken before the first worker starts, and each scan
        # moves it forward rather than starting afresh after a restart, so
        # that an edit made while a worker restarts is not missed.
        self.mtimes: dict[Path, float] = dict(self.scan())

    def should_restart(self) -> list[Path] | None:
        self.pause()
        changed = []
        for path, mtime in self.scan():
            # A file that appeared since the last scan counts too: it may be
            # the module whose absence made the worker fail.
            if mtime > self.mtimes.get(path, float("-inf")):
                changed.append(path)
            self.mtimes[path] = mtime
        return changed or None

    def scan(self) -> Iterator[tuple[Path, float]]:
        for path in self.iter_py_files():
            try:
                yield path, path.stat().st_mtime
            except OSError:  # removed while we looked
                continue

    def iter_py_files(self) -> Iterator[Path]:
        for reload_dir in self.config.reload_dirs:
            for path in reload_dir.rglob("*.py"):
                yield path.resolve()
