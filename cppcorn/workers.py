"""Gunicorn worker classes: `gunicorn -k cppcorn.workers.CppcornWorker app:app`.

API-compatible with `uvicorn.workers.UvicornWorker` (and the `uvicorn-worker`
package): `CONFIG_KWARGS` chooses the event loop, `worker.config` is the
server's `Config`. Gunicorn owns the listening sockets, the number of workers
and their recycling; each worker runs one cppcorn `Server` on the sockets it
was given, with gunicorn's settings:

- `--keep-alive` -> `timeout_keep_alive`; `--graceful-timeout` ->
  `timeout_graceful_shutdown`; `--max-requests` (plus gunicorn's jitter) ->
  `limit_max_requests`; `--backlog`; `--forwarded-allow-ips`.
- `--reload`: a change stops the worker gracefully and gunicorn starts a new
  one, which imports the new code.
- `--timeout`: the worker tells the arbiter it is alive at least every half
  timeout, as gunicorn's own workers do, and stops if its arbiter is gone.
- TLS (`--certfile`, `--keyfile`, `--ca-certs`, `--cert-reqs`, `--ciphers`):
  the context is built by gunicorn itself, so its `ssl_context` server hook
  applies. `--do-handshake-on-connect` and `--suppress-ragged-eofs` do not
  apply: the event loop runs the TLS layer.
- Logging goes through gunicorn's handlers (`--error-logfile`,
  `--access-logfile`, `--log-level`, `--log-config*`); as with gunicorn's own
  workers, there is no access log unless one is configured.

The access log: without `--access-logformat`, lines read like cppcorn's own
(`127.0.0.1:53124 - "GET / HTTP/1.1" 200`). With it, they are formatted with
gunicorn's atoms, computed from cppcorn's access record, which is logged when
the response *starts*:

- from the record: `h` (client address), `l`, `t` (time of the record),
  `r`, `m`, `U` (decoded path), `q`, `H`, `s`, `p`.
- from the request and the response head, which are kept for the access log
  only when the format names one of these atoms: `u` (HTTP Basic user), `f`,
  `a`, `{header}i`, `{header}o`, and
  - `b` / `B`: the body size the response head declares (Content-Length,
    which cppcorn enforces; 0 for HEAD, 1xx, 204, 304); `-` for a response
    streamed without Content-Length, whose size is not known yet.
  - `T`, `D`, `M`, `L`: the time from the request reaching the application to
    the start of the response; gunicorn measures to the end of the response,
    which is the same for a response sent in one piece, but not for a stream.
- not available: `{variable}e` (there is no WSGI environ), rendered `-` like
  any unknown atom.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import logging
import os
import re
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, ClassVar
from urllib.parse import unquote

try:
    from gunicorn.arbiter import Arbiter
    from gunicorn.sock import ssl_context as gunicorn_ssl_context
    from gunicorn.workers.base import Worker
except ImportError as exc:
    raise ImportError(
        "cppcorn.workers runs cppcorn under gunicorn, which is not installed: pip install 'cppcorn[gunicorn]'"
    ) from exc

from cppcorn.config import Config
from cppcorn.server import Server, asyncio_run

__all__ = ["CppcornAsyncioWorker", "CppcornWorker", "UvicornH11Worker", "UvicornWorker"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class CppcornWorker(Worker):
    """A gunicorn worker serving an ASGI application with cppcorn; the event
    loop is `--loop auto`'s: cppcorn's own where it is built, else uvloop when
    installed, else asyncio."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "auto", "http": "auto"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server: Server | None = None
        self.access_format: GunicornAccessFormat | None = None
        self.config = Config(**self.config_kwargs())

    def config_kwargs(self) -> dict[str, Any]:
        cfg = self.cfg
        kwargs: dict[str, Any] = {
            "app": None,
            "log_config": None,
            "timeout_keep_alive": cfg.keepalive,
            "timeout_graceful_shutdown": cfg.graceful_timeout,
            # self.timeout is half gunicorn's --timeout; the server looks at
            # the clock once a second, so ask one second early.
            "timeout_notify": max(self.timeout - 1, 0),
            "callback_notify": self.callback_notify,
            # self.max_requests has gunicorn's jitter added already.
            "limit_max_requests": self.max_requests if cfg.max_requests > 0 else None,
            "forwarded_allow_ips": cfg.forwarded_allow_ips,
        }
        if cfg.is_ssl:
            kwargs["ssl_context_factory"] = self.ssl_context
        if cfg.backlog:
            kwargs["backlog"] = cfg.backlog
        kwargs.update(self.CONFIG_KWARGS)
        return kwargs

    def ssl_context(self, config: Config, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        # Gunicorn's own context, with its `ssl_context` hook applied.
        return gunicorn_ssl_context(self.cfg)

    def init_process(self) -> None:
        # Logging is set up here, after the fork: __init__ runs in the arbiter.
        self.use_gunicorn_logging()
        super().init_process()

    def use_gunicorn_logging(self) -> None:
        for name, source in (("uvicorn.error", self.log.error_log), ("uvicorn.access", self.log.access_log)):
            logger = logging.getLogger(name)
            logger.handlers = source.handlers
            logger.setLevel(source.level)
            logger.propagate = False
        log_format = self.cfg.access_log_format
        # Only when there is an access log to write, as gunicorn decides.
        if self.log.access_log.handlers and log_format != self.cfg.settings["access_log_format"].default:
            self.access_format = GunicornAccessFormat(log_format)
            logging.getLogger("uvicorn.access").addFilter(self.access_format)

    def init_signals(self) -> None:
        # The arbiter's handlers were inherited through the fork: drop them.
        # SIGINT and SIGTERM are the server's; SIGQUIT and SIGUSR1 go through
        # the event loop once it runs (see _serve).
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        # Until then, SIGUSR1's default action would kill the worker.
        signal.signal(signal.SIGUSR1, self.handle_usr1)
        signal.siginterrupt(signal.SIGUSR1, False)

    def run(self) -> None:
        asyncio_run(self._serve(), loop_factory=self.config.get_loop_factory())

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        if self.access_format is not None and self.access_format.needs_exchange:
            self.config.load()
            self.config.loaded_app = RecordExchange(self.config.loaded_app)
        self.server = Server(config=self.config)
        loop = asyncio.get_running_loop()
        # Reopening log files from the loop, not from a signal handler, keeps
        # it clear of a handler that is writing.
        loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        loop.add_signal_handler(signal.SIGQUIT, self.stop_serving)
        # Gunicorn's reloader (--reload) tells the worker to go through this
        # pipe; the arbiter then starts a worker on the new code. (Uvicorn's
        # worker does not listen, and goes on serving the old code.)
        loop.add_reader(self.PIPE[0], self.on_reload_request)
        # The sockets themselves rather than gunicorn's wrappers, which uvloop
        # cannot take over cleanly (it closes the descriptor behind the
        # wrapper, which then fails to close it again).
        await self.server.serve(sockets=[listener.sock for listener in self.sockets])
        if not self.server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def on_reload_request(self) -> None:
        os.read(self.PIPE[0], 4096)
        self.stop_serving()

    def stop_serving(self) -> None:
        """Gunicorn's quick shutdown (SIGQUIT), and a lost arbiter: a graceful
        stop, bounded by --graceful-timeout."""
        self.alive = False
        if self.server is not None:
            self.server.should_exit = True

    async def callback_notify(self) -> None:
        self.notify()
        if os.getppid() != self.ppid and self.alive:
            # Orphaned: nobody will stop or replace this worker.
            self.log.info("Parent changed, shutting down: %s", self)
            self.stop_serving()


class CppcornAsyncioWorker(CppcornWorker):
    """A gunicorn worker on the standard library's asyncio event loop."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "asyncio", "http": "auto"}


# Uvicorn's names, for `-k cppcorn.workers.UvicornWorker` after a search and
# replace; cppcorn has no h11, so the H11 worker keeps only its asyncio loop.
UvicornWorker = CppcornWorker
UvicornH11Worker = CppcornAsyncioWorker


# --- The access log in gunicorn's format ---------------------------------------

ATOM = re.compile(r"%\(([^)]*)\)")
# What the access record itself carries.
RECORD_ATOMS = frozenset("hltrmUqHsp")
NO_BODY_STATUSES = (204, 304)


class Exchange:
    """What an access line needs beyond the record: the request head, when
    the application got it, and the response head."""

    __slots__ = ("request_headers", "response_headers", "started")

    def __init__(self, request_headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.request_headers = request_headers
        self.started = time.perf_counter()
        self.response_headers: Iterable[tuple[bytes, bytes]] = ()


# The exchange of the request whose task is running. The access record is
# logged from the application's `send`, in that same task.
current_exchange: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar(
    "cppcorn_gunicorn_exchange", default=None
)


class RecordExchange:
    """ASGI middleware keeping each HTTP request's `Exchange` for the access log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = Exchange(scope["headers"])
        current_exchange.set(exchange)

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.response_headers = message.get("headers", ())
            await send(message)

        await self.app(scope, receive, send_and_record)


class Atoms(dict[str, Any]):
    """Gunicorn's rules for atoms: an unknown one renders as `-`, header atoms
    match in any case, and double quotes in values are escaped."""

    def __init__(self, atoms: dict[str, Any]) -> None:
        super().__init__(
            (key, value.replace('"', '\\"') if isinstance(value, str) else value) for key, value in atoms.items()
        )

    def __missing__(self, key: str) -> Any:
        lowered = key.lower()
        if key.startswith("{") and lowered != key:
            return self.get(lowered, "-")
        return "-"


class GunicornAccessFormat(logging.Filter):
    """Gives cppcorn's access records gunicorn's shape: the message is the
    --access-logformat and the arguments are the atoms, so gunicorn's
    handlers and formatters see what gunicorn itself would log."""

    def __init__(self, log_format: str) -> None:
        super().__init__()
        self.log_format = log_format
        self.needs_exchange = any(atom not in RECORD_ATOMS for atom in ATOM.findall(log_format))

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            record.msg = self.log_format
            record.args = access_atoms(record, current_exchange.get())
        return True


def access_atoms(record: logging.LogRecord, exchange: Exchange | None) -> Atoms:
    client_addr, method, full_path, http_version, status = record.args  # type: ignore[misc]
    path, _, query = full_path.partition("?")
    protocol = f"HTTP/{http_version}"
    atoms: dict[str, Any] = {
        # "host:port", or "" on a Unix socket.
        "h": client_addr.rpartition(":")[0] or "-",
        "l": "-",
        "t": time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(record.created)),
        "r": f"{method} {full_path} {protocol}",
        "m": method,
        "U": unquote(path),
        "q": query,
        "H": protocol,
        "s": status,
        "p": f"<{record.process}>",
    }
    if exchange is not None:
        atoms.update(exchange_atoms(exchange, method, status))
    return Atoms(atoms)


def exchange_atoms(exchange: Exchange, method: str, status: int) -> dict[str, Any]:
    elapsed = time.perf_counter() - exchange.started
    request = decode_headers(exchange.request_headers)
    response = decode_headers(exchange.response_headers)
    size = body_size(method, status, response)
    atoms: dict[str, Any] = {f"{{{name}}}i": value for name, value in request.items()}
    atoms.update({f"{{{name}}}o": value for name, value in response.items()})
    atoms.update(
        u=basic_auth_user(request.get("authorization", "")),
        f=request.get("referer", "-"),
        a=request.get("user-agent", "-"),
        b="-" if size is None else str(size),
        B="-" if size is None else size,
        T=int(elapsed),
        D=int(elapsed * 1_000_000),
        M=int(elapsed * 1000),
        L=f"{elapsed:.6f}",
    )
    return atoms


def decode_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in headers}


def body_size(method: str, status: int, response_headers: dict[str, str]) -> int | None:
    """The size of the response body, if its head tells."""
    if method == "HEAD" or status < 200 or status in NO_BODY_STATUSES:
        return 0
    try:
        return int(response_headers["content-length"])
    except (KeyError, ValueError):
        return None


def basic_auth_user(authorization: str) -> str:
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "basic":
        return "-"
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "-"
    return decoded.partition(":")[0] or "-"
