"""Supervisors: the parent process of `--workers N` and of `--reload`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cppcorn.supervisors.basereload import BaseReload
from cppcorn.supervisors.multiprocess import Multiprocess

if TYPE_CHECKING:
    ChangeReload: type[BaseReload]
else:
    try:
        from cppcorn.supervisors.watchfilesreload import WatchFilesReload as ChangeReload
    except ImportError:  # watchfiles is optional (cppcorn[standard])
        from cppcorn.supervisors.statreload import StatReload as ChangeReload

__all__ = ["BaseReload", "ChangeReload", "Multiprocess"]
