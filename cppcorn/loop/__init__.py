"""cppcorn.loop: a compiled asyncio event loop (epoll/poll), like uvloop.

    import cppcorn.loop
    cppcorn.loop.run(main())                                     # like asyncio.run()
    asyncio.run(main(), loop_factory=cppcorn.loop.new_event_loop)  # 3.12+
    asyncio.set_event_loop_policy(cppcorn.loop.EventLoopPolicy())  # policies: deprecated in 3.14

POSIX only for now; on Windows importing it raises ImportError.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

if sys.platform == "win32":  # pragma: no cover - IOCP backend not written yet
    raise ImportError("cppcorn.loop has no Windows backend yet; use asyncio's loop")

from asyncio import unix_events

from cppcorn.loop.loop import Loop

__all__ = ["EventLoopPolicy", "Loop", "new_event_loop", "run"]

T = TypeVar("T")


def new_event_loop() -> Loop:
    """A new cppcorn event loop."""
    return Loop()


# Subclassing asyncio's default Unix policy under the name it has on every
# version (3.14 deprecates policies and renames the public alias).
class EventLoopPolicy(unix_events._UnixDefaultEventLoopPolicy):
    """asyncio's default Unix policy (child watchers included on 3.10/3.11),
    making cppcorn loops."""

    def _loop_factory(self) -> Loop:
        return Loop()


def _check_no_running_loop() -> None:
    # Before any loop is made: asyncio.run() checks first too, so that the
    # error is this one and not one from tearing the new loop down.
    if asyncio._get_running_loop() is not None:
        raise RuntimeError("cppcorn.loop.run() cannot be called from a running event loop")


if sys.version_info >= (3, 11):

    def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
        """Run a coroutine on a new cppcorn loop, like asyncio.run()."""
        _check_no_running_loop()
        with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
            return runner.run(main)

else:

    def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
        """Run a coroutine on a new cppcorn loop, like asyncio.run()."""
        _check_no_running_loop()
        previous = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(EventLoopPolicy())
        try:
            return asyncio.run(main, debug=debug)
        finally:
            asyncio.set_event_loop_policy(previous)
