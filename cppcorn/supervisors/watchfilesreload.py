"""`--reload` with the `watchfiles` package (installed by `cppcorn[standard]`):
file-system notifications, filtered by `--reload-include` / `--reload-exclude`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from socket import socket
from typing import TYPE_CHECKING

from watchfiles import Change, watch

from cppcorn.supervisors.basereload import BaseReload

if TYPE_CHECKING:
    from cppcorn.config import Config

DEFAULT_INCLUDES = ["*.py"]
DEFAULT_EXCLUDES = [".*", ".py[cod]", ".sw.*", "~*"]


class FileFilter:
    """Which changed files count, as Uvicorn decides it: the file matches an
    include pattern (`*.py` and the user's) and no exclude pattern (hidden
    files, bytecode, editor swap and backup files, and the user's), and is
    not inside an excluded directory. A user pattern cancels the opposite
    default it equals (`--reload-exclude '*.py'`, `--reload-include '.*'`),
    and an include that spells out the end of the path (`.env`) wins over
    the excludes."""

    def __init__(self, config: Config) -> None:
        self.includes = _distinct(
            [pattern for pattern in DEFAULT_INCLUDES if pattern not in config.reload_excludes]
            + list(config.reload_includes)
        )
        self.excludes = _distinct(
            [pattern for pattern in DEFAULT_EXCLUDES if pattern not in config.reload_includes]
            # A pattern naming a directory is an excluded directory, not a file pattern.
            + [pattern for pattern in config.reload_excludes if not _names_dir(pattern)]
        )
        self.exclude_dirs: list[Path] = list(config.reload_dirs_excludes)

    def __call__(self, path: Path) -> bool:
        for include in self.includes:
            if path.match(include):
                return str(path).endswith(include) or not self._excluded(path)
        return False

    def _excluded(self, path: Path) -> bool:
        if any(directory in path.parents for directory in self.exclude_dirs):
            return True
        return any(path.match(exclude) for exclude in self.excludes)


class WatchFilesReload(BaseReload):
    reloader_name = "WatchFiles"

    def __init__(self, config: Config, target: Callable[..., None], sockets: list[socket]) -> None:
        super().__init__(config, target, sockets)
        self.reload_dirs: list[Path] = list(config.reload_dirs)
        self.watch_filter = FileFilter(config)
        self.watcher = watch(
            *self.reload_dirs,
            watch_filter=self._counts,
            stop_event=self.should_exit,
            # Come back at once when nothing changed (the changes are kept
            # for the next call): should_restart() waits `reload_delay`
            # between calls, and startup() returns without a wait.
            yield_on_timeout=True,
            rust_timeout=1,
            ignore_permission_denied=True,
        )

    def startup(self) -> None:
        # watch() watches from its first iteration on: make that before the
        # first worker starts, so that an edit made while it starts is not
        # missed (StatReload takes its baseline then too).
        next(self.watcher)
        super().startup()

    def _counts(self, change: Change, path: str) -> bool:
        return self.watch_filter(Path(path))

    def should_restart(self) -> list[Path] | None:
        self.pause()
        changes = next(self.watcher)
        return sorted({Path(path) for _, path in changes}) or None


def _distinct(patterns: list[str]) -> list[str]:
    return list(dict.fromkeys(patterns))


def _names_dir(pattern: str) -> bool:
    try:
        return Path(pattern).is_dir()
    except OSError:  # Windows refuses names like "*.py"
        return False
