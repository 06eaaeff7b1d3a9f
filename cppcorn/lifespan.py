"""The ASGI lifespan protocol: startup and shutdown events for the application.

`LifespanOn` runs the application's lifespan coroutine beside the server
(`--lifespan on`, and `auto`, which tolerates applications that do not speak
it); `LifespanOff` does nothing (`--lifespan off`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cppcorn.config import Config

logger = logging.getLogger("uvicorn.error")

INVALID_TRANSITION = "Got invalid state transition on lifespan protocol."


class LifespanOff:
    def __init__(self, config: Config) -> None:
        self.should_exit = False
        self.state: dict[str, Any] = {}

    async def startup(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class LifespanOn:
    def __init__(self, config: Config) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.startup_done = asyncio.Event()
        self.shutdown_done = asyncio.Event()
        self.events: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.error_occurred = False
        self.startup_failed = False
        self.shutdown_failed = False
        self.should_exit = False
        self.state: dict[str, Any] = {}
        self.task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        logger.info("Waiting for application startup.")
        # Keep a reference: the loop only holds tasks weakly.
        self.task = asyncio.get_running_loop().create_task(self.main())
        await self.events.put({"type": "lifespan.startup"})
        await self.startup_done.wait()
        self._conclude("startup", self.startup_failed)

    async def shutdown(self) -> None:
        if self.error_occurred:
            return
        logger.info("Waiting for application shutdown.")
        await self.events.put({"type": "lifespan.shutdown"})
        await self.shutdown_done.wait()
        self._conclude("shutdown", self.shutdown_failed)

    def _conclude(self, phase: str, failed: bool) -> None:
        """Log how `phase` ended. A failure the application reported, or with
        `--lifespan on` any error, tells the server to exit."""
        if failed or (self.error_occurred and self.config.lifespan == "on"):
            logger.error(f"Application {phase} failed. Exiting.")
            self.should_exit = True
        else:
            logger.info(f"Application {phase} complete.")

    async def main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.config.loaded_app(scope, self.receive, self.send)
        except BaseException as exc:
            self.error_occurred = True
            if self.startup_failed or self.shutdown_failed:
                return
            if isinstance(exc, asyncio.CancelledError) and self.startup_done.is_set():
                # The event loop closing after a forced exit (a second
                # Ctrl+C), which skips the shutdown event: nothing the
                # application did, and nothing to log after the server's
                # last line.
                return
            if self.config.lifespan == "auto":
                # Many applications do not implement lifespan and raise on the
                # unknown scope type: that is not an error in auto mode.
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
            else:
                logger.error("Exception in 'lifespan' protocol\n", exc_info=exc)
        finally:
            # A lifespan coroutine that returns without a word still counts
            # as started (and stopped), as in Uvicorn.
            self.startup_done.set()
            self.shutdown_done.set()

    async def send(self, message: dict[str, Any]) -> None:
        message_type = message.get("type")
        if message_type == "lifespan.startup.complete":
            self._check(not self.startup_done.is_set() and not self.shutdown_done.is_set())
            self.startup_done.set()
        elif message_type == "lifespan.startup.failed":
            self._check(not self.startup_done.is_set() and not self.shutdown_done.is_set())
            self.startup_failed = True
            self.startup_done.set()
            if message.get("message"):
                logger.error(message["message"])
        elif message_type == "lifespan.shutdown.complete":
            self._check(self.startup_done.is_set() and not self.shutdown_done.is_set())
            self.shutdown_done.set()
        elif message_type == "lifespan.shutdown.failed":
            self._check(self.startup_done.is_set() and not self.shutdown_done.is_set())
            self.shutdown_failed = True
            self.shutdown_done.set()
            if message.get("message"):
                logger.error(message["message"])
        else:
            raise RuntimeError(f"Unexpected ASGI lifespan message type {message_type!r}.")

    @staticmethod
    def _check(valid: bool) -> None:
        if not valid:
            raise RuntimeError(INVALID_TRANSITION)

    async def receive(self) -> dict[str, str]:
        return await self.events.get()
