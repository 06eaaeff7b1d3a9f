"""The server's lifecycle: startup, the supervising tick, graceful shutdown.

`Server(config).serve()` can run inside an event loop the caller owns;
`Server.run()` makes the loop itself. Per-connection work is done by the
compiled protocol (`cppcorn.http.protocol`); this module only starts and
stops it, and ticks ten times a second to refresh the `date` header, expire
idle connections and watch for the signal to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Sequence
from email.utils import formatdate
from types import FrameType
from typing import Any, TypeVar

from cppcorn._signals import handling_signals
from cppcorn.config import STARTUP_FAILURE, Config, log_running_on
from cppcorn.http.connection import ServerState
from cppcorn.http.parser import LLHTTP_VERSION
from cppcorn.http.protocol import HttpProtocol, HttpSettings
from cppcorn.http.websocket import WebSocketSettings

__all__ = ["HANDLED_SIGNALS", "Server", "ServerState"]

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
if sys.platform == "win32":
    HANDLED_SIGNALS += (signal.SIGBREAK,)

TICK_SECONDS = 0.1
TICKS_PER_SECOND = 10
# How often shutdown looks whether the connections it closed are gone.
CLOSED_CONNECTIONS_POLL_SECONDS = 0.01
# How long the tasks cancelled at shutdown get to end (and log) before the
# server reports it has finished.
CANCELLED_TASKS_GRACE_SECONDS = 1.0

logger = logging.getLogger("uvicorn.error")

_T = TypeVar("_T")


def asyncio_run(
    main: Coroutine[Any, Any, _T], *, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
) -> _T:
    """`asyncio.run(main, loop_factory=...)`, on every supported Python."""
    if sys.version_info >= (3, 12):
        return asyncio.run(main, loop_factory=loop_factory)
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main)
    # 3.10: asyncio.run has no loop factory; install the loop by hand and
    # clean up the way asyncio.run does.
    loop = (loop_factory or asyncio.new_event_loop)()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.server_state = ServerState()
        self.started = False
        self.should_exit = False
        self.force_exit = False
        self.last_notified = 0.0
        self.servers: list[asyncio.AbstractServer] = []
        self._captured_signals: list[int] = []

    @functools.cached_property
    def limit_max_requests(self) -> int | None:
        if self.config.limit_max_requests is None:
            return None
        return self.config.limit_max_requests + random.randint(0, self.config.limit_max_requests_jitter)

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        return asyncio_run(self.serve(sockets=sockets), loop_factory=self.config.get_loop_factory())

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        with self.capture_signals():
            await self._serve(sockets)

    async def _serve(self, sockets: list[socket.socket] | None = None) -> None:
        process_id = os.getpid()
        config = self.config
        if not config.loaded:
            config.load()
        self.lifespan = config.lifespan_class(config)

        logger.info("Started server process [%d]", process_id)
        await self.startup(sockets=sockets)
        if not self.should_exit:
            await self.main_loop()
        if self.started:
            await self.shutdown(sockets=sockets)
            logger.info("Finished server process [%d]", process_id)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)

        config = self.config
        loop = asyncio.get_running_loop()
        state = self.server_state
        state.now = time.monotonic()
        self._refresh_default_headers()
        websocket = None
        if config.ws != "none" and config.interface != "wsgi":
            websocket = WebSocketSettings(
                app=config.loaded_app,
                logger=logger,
                reset_contextvars=config.reset_contextvars,
                max_size=config.ws_max_size, max_queue=config.ws_max_queue,
                ping_interval=config.ws_ping_interval, ping_timeout=config.ws_ping_timeout,
                per_message_deflate=config.ws_per_message_deflate,
            )
        settings = HttpSettings(
            app=config.loaded_app,
            app_state=self.lifespan.state,
            root_path=config.root_path,
            asgi_version=config.asgi_version,
            limit_concurrency=config.limit_concurrency,
            timeout_keep_alive=config.timeout_keep_alive, timeout_request_headers=config.timeout_request_headers,
            timeout_drain=self._drain_window(),
            max_head_size=config.limit_request_header_size,
            trusted_hosts=config.trusted_hosts,
            access_log=config.access_log,
            reset_contextvars=config.reset_contextvars,
            websocket=websocket,
        )

        def create_protocol() -> HttpProtocol:
            return HttpProtocol(settings, state)

        listeners: Sequence[socket.socket]
        try:
            if sockets is not None:
                # Pre-bound sockets, from a process manager.
                self.servers = [
                    await loop.create_server(create_protocol, sock=sock, ssl=config.ssl, backlog=config.backlog)
                    for sock in sockets
                ]
                listeners = sockets
            elif config.fds:
                self.servers = [
                    await loop.create_server(
                        create_protocol, sock=socket.socket(fileno=os.dup(fd)), ssl=config.ssl, backlog=config.backlog
                    )
                    for fd in config.fds
                ]
                listeners = [sock for server in self.servers for sock in server.sockets]
            elif config.uds is not None:
                mode = os.stat(config.uds).st_mode if os.path.exists(config.uds) else 0o666
                server = await loop.create_unix_server(
                    create_protocol, path=config.uds, ssl=config.ssl, backlog=config.backlog
                )
                os.chmod(config.uds, mode)
                self.servers = [server]
                listeners = server.sockets
            else:
                server = await loop.create_server(
                    create_protocol,
                    host=config.host,
                    port=config.port,
                    ssl=config.ssl,
                    backlog=config.backlog,
                    # Each worker binds its own listener; the kernel spreads
                    # connections across them.
                    reuse_port=config.reuse_port or None,
                )
                self.servers = [server]
                listeners = server.sockets
        except OSError as exc:
            logger.error(exc)
            await self.lifespan.shutdown()
            sys.exit(STARTUP_FAILURE)

        if sockets is None:
            self._log_started_message(listeners)
        logger.debug(
            "Serving with the %s event loop, the compiled HTTP/1.1 protocol (llhttp %s)%s.",
            type(loop).__module__.split(".")[0],
            LLHTTP_VERSION,
            " and WebSockets" if websocket is not None else "",
        )
        self.started = True

    def _log_started_message(self, listeners: Sequence[socket.socket]) -> None:
        config = self.config
        if config.fds:
            for listener in listeners:
                log_running_on("socket %s", listener.getsockname())
        elif config.uds is not None:
            log_running_on("unix socket %s", config.uds)
        else:
            host = "0.0.0.0" if config.host is None else config.host
            address_format = "%s://[%s]:%d" if ":" in host else "%s://%s:%d"
            port = config.port or listeners[0].getsockname()[1]
            log_running_on(address_format, "https" if config.ssl else "http", host, port)

    def _refresh_default_headers(self) -> None:
        lines = []
        if self.config.date_header:
            lines.append(b"date: " + formatdate(usegmt=True).encode("ascii") + b"\r\n")
        lines.extend(name + b": " + value + b"\r\n" for name, value in self.config.encoded_headers)
        self.server_state.default_headers = b"".join(lines)

    async def main_loop(self) -> None:
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            await asyncio.sleep(TICK_SECONDS)
            should_exit = await self.on_tick(counter)

    async def on_tick(self, counter: int) -> bool:
        # Keep-alive and request-header deadlines are checked here, against a
        # clock the connections read without a system call.
        self.server_state.expire_connections(time.monotonic())

        if counter % TICKS_PER_SECOND == 0:
            self._refresh_default_headers()
            if self.config.callback_notify is not None:
                now = time.time()
                if now - self.last_notified > self.config.timeout_notify:
                    self.last_notified = now
                    await self.config.callback_notify()

        if self.should_exit:
            return True
        max_requests = self.limit_max_requests
        if max_requests is not None and self.server_state.total_requests >= max_requests:
            logger.info("Maximum request limit of %d exceeded. Terminating process.", max_requests)
            return True
        return False

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        logger.info("Shutting down")

        # Stop accepting, let the connections accepted last read the request
        # they were opened for, then drain every connection: busy ones close
        # after their current response, idle ones after the next request or
        # the drain window (see HttpProtocol.shutdown()).
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        await asyncio.sleep(TICK_SECONDS)
        self.server_state.expire_connections(time.monotonic())
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await self._let_closed_connections_go()

        try:
            await asyncio.wait_for(self._wait_tasks_to_complete(), timeout=self.config.timeout_graceful_shutdown)
        except asyncio.TimeoutError:
            logger.error(
                "Cancel %s running task(s), timeout graceful shutdown exceeded", len(self.server_state.tasks)
            )
            for task in list(self.server_state.tasks):
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
            for connection in list(self.server_state.connections):
                connection.abort()

        if not self.force_exit:
            await self.lifespan.shutdown()
        await self._end_remaining_tasks()

    async def _let_closed_connections_go(self) -> None:
        """shutdown() closed the idle connections and the WebSockets; each
        leaves the server's set when its transport reports the loss, a loop
        iteration or a few later. Let them (for up to a tick, as Uvicorn,
        whose tick comes after shutdown()), so that only connections with
        work in progress are waited for and announced as such."""
        deadline = time.monotonic() + TICK_SECONDS
        while self.server_state.connections and time.monotonic() < deadline:
            await asyncio.sleep(CLOSED_CONNECTIONS_POLL_SECONDS)

    def _drain_window(self) -> float:
        """--timeout-drain, within --timeout-graceful-shutdown (which bounds
        the whole drain) when that is set."""
        window = self.config.timeout_drain
        if self.config.timeout_graceful_shutdown is not None:
            window = min(window, self.config.timeout_graceful_shutdown)
        return max(window, 0.0)

    async def _end_remaining_tasks(self) -> None:
        """Let the tasks cancelled on timeout end, and end those a forced
        exit left running, before the server reports it has finished: what
        they log (the application's error, the access line of its 500) must
        come before "Finished server process", not after it, when the event
        loop closes. Bounded, for an application that ignores cancellation."""
        tasks = list(self.server_state.tasks)
        if not tasks:
            return
        if self.force_exit:
            for task in tasks:
                task.cancel()
        await asyncio.wait(tasks, timeout=CANCELLED_TASKS_GRACE_SECONDS)

    async def _wait_tasks_to_complete(self) -> None:
        state = self.server_state
        # Connections between requests close quietly within the drain
        # window; only those with work in progress are announced.
        if any(connection.is_busy() for connection in state.connections) and not self.force_exit:
            logger.info("Waiting for connections to close. (CTRL+C to force quit)")
        while state.connections and not self.force_exit:
            await asyncio.sleep(TICK_SECONDS)
            state.expire_connections(time.monotonic())

        if state.tasks and not self.force_exit:
            logger.info("Waiting for background tasks to complete. (CTRL+C to force quit)")
            while state.tasks and not self.force_exit:
                await asyncio.sleep(TICK_SECONDS)

        if not self.force_exit:
            for server in self.servers:
                await server.wait_closed()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Signal handlers can only be installed from the main thread; an
        # embedding program running us elsewhere keeps its own.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        with handling_signals(HANDLED_SIGNALS, self.handle_exit):
            yield
        # Having shut down gracefully, let the signals have their usual effect
        # (KeyboardInterrupt, or death by SIGTERM), most recent first.
        for captured_signal in reversed(self._captured_signals):
            signal.raise_signal(captured_signal)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._captured_signals.append(sig)
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True
