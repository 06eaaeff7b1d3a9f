"""Every server option, gathered and validated once: `Config`.

The names, defaults and meanings are Uvicorn's (0.54), so that `Config(...)`
and `cppcorn.run(...)` calls written for Uvicorn work unchanged. `load()`
resolves what needs the application: the SSL context, the default headers,
the lifespan class, and the application itself with its interface adapter.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from configparser import RawConfigParser
from pathlib import Path
from typing import IO, Any, Literal, NoReturn

import click

from cppcorn.importer import ImportFromStringError, import_from_string
from cppcorn.inherited_sockets import NotServable, inherited_socket, systemd_listen_fds
from cppcorn.lifespan import LifespanOff, LifespanOn
from cppcorn.logconfig import LOG_LEVELS, LOGGING_CONFIG, configure_logging
from cppcorn.logging import TRACE_LOG_LEVEL
from cppcorn.middleware.asgi2 import ASGI2Middleware
from cppcorn.middleware.message_logger import MessageLoggerMiddleware
from cppcorn.middleware.proxy_headers import TrustedHosts
from cppcorn.middleware.wsgi import WSGIMiddleware
from cppcorn.tls import create_ssl_context, ssl_options_error

__all__ = [
    "LOGGING_CONFIG",
    "LOG_LEVELS",
    "SSL_PROTOCOL_VERSION",
    "STARTUP_FAILURE",
    "Config",
    "create_ssl_context",
]

HTTPProtocolType = Literal["auto", "h11", "httptools", "zttp"]
WSProtocolType = Literal["auto", "none", "websockets", "websockets-sansio", "wsproto"]
LifespanType = Literal["auto", "on", "off"]
LoopFactoryType = Literal["none", "auto", "asyncio", "uvloop", "zuvloop", "cppcorn"]
InterfaceType = Literal["auto", "asgi3", "asgi2", "wsgi"]

# Uvicorn's implementation names. cppcorn has one HTTP/1.1 protocol and one
# WebSocket protocol, both compiled: every name but "auto" (and "none", which
# turns WebSockets off) is accepted and served by them, as is a custom
# "module:Class" or a protocol class, which cppcorn cannot run.
HTTP_PROTOCOLS = ("auto", "h11", "httptools", "zttp")
WS_PROTOCOLS = ("auto", "none", "websockets", "websockets-sansio", "wsproto")
LIFESPAN: dict[str, type[LifespanOn] | type[LifespanOff]] = {
    "auto": LifespanOn,
    "on": LifespanOn,
    "off": LifespanOff,
}
INTERFACES = ("auto", "asgi3", "asgi2", "wsgi")

SSL_PROTOCOL_VERSION: int = ssl.PROTOCOL_TLS_SERVER

# Exit status for every startup failure (import, bind, lifespan), as Uvicorn.
STARTUP_FAILURE = 3

logger = logging.getLogger("uvicorn.error")


def log_running_on(address_format: str, *args: Any) -> None:
    """Uvicorn's "running on" line, word for word: tools and tests written for
    Uvicorn wait for it, and IDEs open the URL it shows."""
    coloured_format = click.style(address_format, bold=True)
    logger.info(
        f"Uvicorn running on {address_format} (Press CTRL+C to quit)",
        *args,
        extra={"color_message": f"Uvicorn running on {coloured_format} (Press CTRL+C to quit)"},
    )


def _asyncio_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    return asyncio.new_event_loop


def _uvloop_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    import uvloop

    return uvloop.new_event_loop


def _cppcorn_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    import cppcorn.loop

    return cppcorn.loop.new_event_loop


def _auto_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    # cppcorn.loop wherever it is built (every POSIX system); uvloop, then
    # asyncio, elsewhere (Windows).
    for factory in (_cppcorn_loop_factory, _uvloop_loop_factory):
        try:
            return factory()
        except ImportError:
            pass
    return _asyncio_loop_factory()


LOOP_FACTORIES: dict[str, Callable[[], Callable[[], asyncio.AbstractEventLoop]]] = {
    "auto": _auto_loop_factory,
    "asyncio": _asyncio_loop_factory,
    "uvloop": _uvloop_loop_factory,
    # Uvicorn's compiled loop (0.53); cppcorn's own compiled loop takes its place.
    "zuvloop": _cppcorn_loop_factory,
    "cppcorn": _cppcorn_loop_factory,
}


class MissingDependencyError(ImportError):
    """An option needs an optional package that is not installed; the message
    says what to install. An ImportError, as Uvicorn raises."""


def _is_asgi3(app: Any) -> bool:
    """Uvicorn's `--interface auto` rule: ASGI 3 if the callable is a coroutine
    function (or a class with `__await__`), ASGI 2 otherwise."""
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    if inspect.isfunction(app):
        return inspect.iscoroutinefunction(app)
    # An instance: is its __call__ method a coroutine function?
    return inspect.iscoroutinefunction(getattr(app, "__call__", None))  # noqa: B004 - the method, not a callable test


def _qualified_name(thing: Any) -> str:
    qualname = getattr(thing, "__qualname__", None)
    return f"{thing.__module__}.{qualname}" if qualname else repr(thing)


def _startup_failure(message: str) -> NoReturn:
    """Log why the server cannot start, in one line, and exit (3)."""
    logger.error(message)
    sys.exit(STARTUP_FAILURE)


class Config:
    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 8000,
        uds: str | None = None,
        fd: int | None = None,
        loop: LoopFactoryType | str = "auto",
        http: type[asyncio.Protocol] | HTTPProtocolType | str = "auto",
        http2: bool = False,
        ws: type[asyncio.Protocol] | WSProtocolType | str = "auto",
        ws_max_size: int = 16 * 1024 * 1024,
        ws_max_queue: int = 32,
        ws_ping_interval: float | None = 20.0,
        ws_ping_timeout: float | None = 20.0,
        ws_per_message_deflate: bool = True,
        lifespan: LifespanType = "auto",
        env_file: str | os.PathLike[str] | None = None,
        log_config: dict[str, Any] | str | os.PathLike[str] | RawConfigParser | IO[Any] | None = LOGGING_CONFIG,
        log_level: str | int | None = None,
        access_log: bool = True,
        use_colors: bool | None = None,
        interface: InterfaceType = "auto",
        reload: bool = False,
        reload_dirs: list[str] | str | None = None,
        reload_delay: float = 0.25,
        reload_includes: list[str] | str | None = None,
        reload_excludes: list[str] | str | None = None,
        workers: int | None = None,
        proxy_headers: bool = True,
        server_header: bool = True,
        date_header: bool = True,
        forwarded_allow_ips: list[str] | str | None = None,
        root_path: str = "",
        limit_concurrency: int | None = None,
        limit_max_requests: int | None = None,
        limit_max_requests_jitter: int = 0,
        limit_request_header_size: int = 65536,
        backlog: int = 2048,
        reuse_port: bool = False,
        timeout_keep_alive: int | float = 5,
        timeout_request_headers: float = 30.0,
        timeout_drain: float = 1.0,
        timeout_notify: int = 30,
        timeout_graceful_shutdown: int | float | None = None,
        timeout_worker_healthcheck: int = 5,
        callback_notify: Callable[..., Awaitable[None]] | None = None,
        ssl_keyfile: str | os.PathLike[str] | None = None,
        ssl_certfile: str | os.PathLike[str] | None = None,
        ssl_keyfile_password: str | None = None,
        ssl_version: int = SSL_PROTOCOL_VERSION,
        ssl_cert_reqs: int = ssl.CERT_NONE,
        ssl_ca_certs: str | os.PathLike[str] | None = None,
        ssl_ciphers: str | None = None,
        ssl_context_factory: Callable[[Config, Callable[[], ssl.SSLContext]], ssl.SSLContext] | None = None,
        headers: list[tuple[str, str]] | None = None,
        factory: bool = False,
        h11_max_incomplete_event_size: int | None = None,
        reset_contextvars: bool = False,
    ):
        self.app = app
        self.host = host
        self.port = port
        self.uds = uds
        self.fd = fd
        self.loop = loop
        self.http = http
        self.http2 = http2
        self.ws = ws
        self.ws_max_size = ws_max_size
        self.ws_max_queue = ws_max_queue
        self.ws_ping_interval = ws_ping_interval
        self.ws_ping_timeout = ws_ping_timeout
        self.ws_per_message_deflate = ws_per_message_deflate
        self.lifespan = lifespan
        self.log_config = log_config
        self.log_level = log_level
        self.access_log = access_log
        self.use_colors = use_colors
        self.interface = interface
        self.reload = reload
        self.reload_dirs = reload_dirs
        self.reload_delay = reload_delay
        self.reload_includes = reload_includes
        self.reload_excludes = reload_excludes
        self.workers = workers or 1
        self.proxy_headers = proxy_headers
        self.server_header = server_header
        self.date_header = date_header
        self.root_path = root_path
        self.limit_concurrency = limit_concurrency
        self.limit_max_requests = limit_max_requests
        self.limit_max_requests_jitter = limit_max_requests_jitter
        self.backlog = backlog
        self.reuse_port = reuse_port
        self.timeout_keep_alive = timeout_keep_alive
        self.timeout_request_headers = timeout_request_headers
        self.timeout_drain = timeout_drain
        self.timeout_notify = timeout_notify
        self.timeout_graceful_shutdown = timeout_graceful_shutdown
        self.timeout_worker_healthcheck = timeout_worker_healthcheck
        self.callback_notify = callback_notify
        self.ssl_keyfile = ssl_keyfile
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile_password = ssl_keyfile_password
        self.ssl_version = ssl_version
        self.ssl_cert_reqs = ssl_cert_reqs
        self.ssl_ca_certs = ssl_ca_certs
        self.ssl_ciphers = ssl_ciphers
        self.ssl_context_factory = ssl_context_factory
        self.headers: list[tuple[str, str]] = list(headers or [])
        self.encoded_headers: list[tuple[bytes, bytes]] = []
        self.factory = factory
        self.h11_max_incomplete_event_size = h11_max_incomplete_event_size
        # Uvicorn's h11 option bounds the same thing (an incomplete request
        # head); a command line written for it keeps its limit here.
        self.limit_request_header_size = (
            h11_max_incomplete_event_size if h11_max_incomplete_event_size is not None else limit_request_header_size
        )
        self.reset_contextvars = reset_contextvars

        self.loaded = False
        self.configure_logging()

        # Resolved by resolve_reload_settings() when reloading.
        self.reload_dirs_excludes: list[Path] = []
        if self.should_reload:
            from cppcorn.supervisors.basereload import resolve_reload_settings

            resolve_reload_settings(self)

        if env_file is not None:
            try:
                from dotenv import load_dotenv
            except ImportError as exc:
                raise MissingDependencyError(
                    "Install the python-dotenv package or cppcorn[standard] to use `--env-file`."
                ) from exc
            logger.info("Loading environment from '%s'", env_file)
            load_dotenv(dotenv_path=env_file)

        if workers is None and "WEB_CONCURRENCY" in os.environ:
            self.workers = int(os.environ["WEB_CONCURRENCY"])

        # Sockets handed over by a process manager: --fd, or systemd socket
        # activation (LISTEN_FDS/LISTEN_PID, descriptors from 3 on) when
        # neither --fd nor --uds is given.
        self.fds: list[int] = [fd] if fd is not None else []
        if fd is None and uds is None:
            self.fds = systemd_listen_fds()
        # A descriptor that cannot be served on fails now, in the process
        # that inherited it, before the application starts.
        for inherited_fd in self.fds:
            self.inherited_socket(inherited_fd).close()

        self.forwarded_allow_ips: list[str] | str = (
            forwarded_allow_ips
            if forwarded_allow_ips is not None
            else os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
        )

        self._explain_options()

    def _explain_options(self) -> None:
        """Combinations that do not do what they seem to, and Uvicorn's
        implementation choices, are explained rather than ignored silently."""
        if (self.reload_dirs or self.reload_includes or self.reload_excludes) and not self.should_reload:
            logger.warning(
                "Current configuration will not reload as not all conditions are met, please refer to documentation."
            )
        if self.reload and self.workers > 1:
            logger.warning('"workers" flag is ignored when reloading is enabled.')
        if self.reuse_port and not hasattr(socket, "SO_REUSEPORT"):
            logger.warning("--reuse-port is not available on this platform: the workers share one socket.")
            self.reuse_port = False
        elif self.reuse_port and (self.uds is not None or self.fd is not None):
            logger.warning("--reuse-port applies to --host/--port only: the workers share the given socket.")
            self.reuse_port = False
        self._explain_implementation("--http", self.http, HTTP_PROTOCOLS, "HTTP/1.1")
        self._explain_implementation("--ws", self.ws, WS_PROTOCOLS, "WebSocket")
        if self.loop == "zuvloop":
            logger.info(
                "cppcorn runs on its own compiled event loop: --loop zuvloop is accepted for compatibility "
                "and means the same as --loop cppcorn."
            )

    def _explain_implementation(self, option: str, choice: Any, names: tuple[str, ...], protocol: str) -> None:
        """One line when Uvicorn's `--http`/`--ws` choice is served by cppcorn's
        own protocol: INFO for one of Uvicorn's implementation names, WARNING
        for a protocol class (`module:Class` or the class itself), whose code
        does not run."""
        if choice in ("auto", "none"):
            return
        if choice in names:
            logger.info(
                "cppcorn uses its own compiled %s protocol: %s %s is accepted for compatibility "
                "and means the same as %s auto.",
                protocol, option, choice, option,
            )
        elif not isinstance(choice, str) or ":" in choice:
            name = choice if isinstance(choice, str) else _qualified_name(choice)
            logger.warning(
                "cppcorn uses its own compiled %s protocol and cannot run protocol classes: %s %s is not used.",
                protocol, option, name,
            )

    @property
    def asgi_version(self) -> Literal["2.0", "3.0"]:
        return "2.0" if self.interface == "asgi2" else "3.0"

    @property
    def is_ssl(self) -> bool:
        return bool(self.ssl_keyfile or self.ssl_certfile or self.ssl_context_factory)

    @property
    def use_subprocess(self) -> bool:
        return bool(self.reload or self.workers > 1)

    @property
    def should_reload(self) -> bool:
        return isinstance(self.app, str) and self.reload

    def configure_logging(self) -> None:
        try:
            configure_logging(self.log_config, self.log_level, self.access_log, self.use_colors)
        except ImportError as exc:
            # The log config needs a package that is missing (PyYAML): log
            # with the default config, so that the error reads like the others.
            configure_logging(LOGGING_CONFIG, self.log_level, self.access_log, self.use_colors)
            raise MissingDependencyError(str(exc)) from exc

    def load(self) -> None:
        assert not self.loaded, "Config.load() was already called."

        if self.http2:
            raise ValueError("HTTP/2 is not supported by cppcorn (yet): remove --http2.")
        for option, choice, names in (("--http", self.http, HTTP_PROTOCOLS), ("--ws", self.ws, WS_PROTOCOLS)):
            if isinstance(choice, str) and choice not in names and ":" not in choice:
                _startup_failure(f"{option} {choice!r} is not one of {', '.join(names)} or module:Class.")
        if self.lifespan not in LIFESPAN:
            raise ValueError(f"--lifespan must be one of {', '.join(LIFESPAN)}, got {self.lifespan!r}.")
        if self.interface not in INTERFACES:
            raise ValueError(f"--interface must be one of {', '.join(INTERFACES)}, got {self.interface!r}.")

        self.ssl: ssl.SSLContext | None = self._load_ssl()
        self.encoded_headers = self._encode_headers()
        self.trusted_hosts = TrustedHosts(self.forwarded_allow_ips) if self.proxy_headers else None
        self.lifespan_class = LIFESPAN[self.lifespan]
        self.loaded_app = self._load_app()
        self.loaded = True

    def _load_ssl(self) -> ssl.SSLContext | None:
        def default_factory() -> ssl.SSLContext:
            if not self.ssl_certfile:
                raise RuntimeError(
                    "The default SSL context factory needs `ssl_certfile`: pass it, or build the SSLContext "
                    "inside `ssl_context_factory` without calling the default factory."
                )
            # The certificate with its key; the protocol and how peers are
            # verified; the ciphers.
            try:
                return create_ssl_context(
                    certfile=self.ssl_certfile, keyfile=self.ssl_keyfile, password=self.ssl_keyfile_password,
                    ssl_version=self.ssl_version, cert_reqs=self.ssl_cert_reqs, ca_certs=self.ssl_ca_certs,
                    ciphers=self.ssl_ciphers,
                )
            except (OSError, ValueError) as exc:
                _startup_failure(ssl_options_error(self, exc))

        if self.ssl_context_factory is not None:
            context = self.ssl_context_factory(self, default_factory)
            if not isinstance(context, ssl.SSLContext):
                raise TypeError(f"`ssl_context_factory` must return an `ssl.SSLContext`, got {type(context).__name__}")
            return context
        if self.is_ssl:
            if not self.ssl_certfile:
                _startup_failure("--ssl-keyfile needs --ssl-certfile, the certificate (chain) file that goes with it.")
            return default_factory()
        return None

    def _encode_headers(self) -> list[tuple[bytes, bytes]]:
        encoded = []
        for name, value in self.headers:
            # `--header "X: y"` means the value "y"; surrounding whitespace is
            # not part of a header value (RFC 9110 5.5).
            raw_name = name.strip().lower().encode("latin-1")
            raw_value = value.strip().encode("latin-1")
            if not raw_name or any(c in raw_name for c in b' \t\r\n:()<>@,;\\"/[]?={}') or any(
                c in raw_value for c in b"\r\n\x00"
            ):
                raise ValueError(f"Invalid --header {name}:{value!r}: expected a 'Name: value' header.")
            encoded.append((raw_name, raw_value))
        if self.server_header and not any(name == b"server" for name, _ in encoded):
            encoded.insert(0, (b"server", b"cppcorn"))
        return encoded

    def load_app(self) -> Any:
        """Import the application named by `app`; exits (3) on failure."""
        try:
            return import_from_string(self.app)
        except ImportFromStringError as exc:
            logger.error("Error loading ASGI app. %s", exc)
            sys.exit(STARTUP_FAILURE)
        except Exception as exc:
            # The module exists but fails to import (a syntax error, an import
            # inside it): a startup failure like any other, with its traceback.
            logger.error("Error loading ASGI app.", exc_info=exc)
            sys.exit(STARTUP_FAILURE)

    def _load_app(self) -> Any:
        app = self.load_app()

        # Factory auto-detection, as Uvicorn: always try calling the object.
        try:
            created = app()
        except TypeError as exc:
            if self.factory:
                logger.error("Error loading ASGI app factory: %s", exc)
                sys.exit(STARTUP_FAILURE)
        else:
            if not self.factory:
                logger.warning(
                    "ASGI app factory detected. Using it, but please consider setting the --factory flag explicitly."
                )
            app = created

        if self.interface == "auto":
            self.interface = "asgi3" if _is_asgi3(app) else "asgi2"
        if self.interface == "wsgi":
            app = WSGIMiddleware(app)
        elif self.interface == "asgi2":
            app = ASGI2Middleware(app)

        if logger.getEffectiveLevel() <= TRACE_LOG_LEVEL:
            app = MessageLoggerMiddleware(app)
        return app

    def get_loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop] | None:
        if self.loop == "none":
            return None
        if self.loop in LOOP_FACTORIES:
            try:
                return LOOP_FACTORIES[self.loop]()
            except ImportError as exc:
                if self.loop == "uvloop":
                    logger.error("--loop uvloop needs the uvloop package: pip install 'cppcorn[standard]'")
                else:
                    logger.error("--loop %s is not available here: %s", self.loop, exc)
                sys.exit(STARTUP_FAILURE)
        try:
            return import_from_string(self.loop)
        except ImportFromStringError as exc:
            logger.error("Error loading custom loop setup function. %s", exc)
            sys.exit(STARTUP_FAILURE)

    def inherited_socket(self, fd: int) -> socket.socket:
        """The listening socket handed over as `fd` (by `--fd` or systemd
        socket activation); exits (3) with one line saying why if it cannot
        be served on."""
        try:
            return inherited_socket(fd)
        except NotServable as exc:
            given_by = "--fd" if self.fd is not None else "systemd socket activation (LISTEN_FDS)"
            _startup_failure(f"Cannot serve on file descriptor {fd}, given by {given_by}: {exc}.")

    def bind_socket(self) -> socket.socket:
        """Bind the listening socket up front (for process managers that hand
        it to `Server.serve(sockets=[...])`); exits (3) on failure."""
        return self.bind_sockets()[0]

    def bind_sockets(self) -> list[socket.socket]:
        """The listening sockets a supervisor binds once and hands to its
        workers: the inherited descriptors, the Unix socket, or host:port."""
        if self.fds:
            sockets = [self.inherited_socket(fd) for fd in self.fds]
            for sock in sockets:
                log_running_on("socket %s", sock.getsockname())
        elif self.uds is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(self.uds)
                os.chmod(self.uds, 0o666)
            except OSError as exc:
                logger.error(exc)
                sys.exit(STARTUP_FAILURE)
            log_running_on("unix socket %s", self.uds)
            sockets = [sock]
        else:
            sockets = [self.bind_tcp_socket(self.port)]
        for sock in sockets:
            sock.set_inheritable(True)
            # Listen now: connections that come before a worker is serving
            # wait in the backlog instead of being refused.
            sock.listen(self.backlog)
        return sockets

    def bind_tcp_socket(self, port: int, reuse_port: bool = False, announce: bool = True) -> socket.socket:
        """A socket bound to host:port (exits (3) on failure), logged as the
        "running on" line when `announce`; with `reuse_port`, one of several
        SO_REUSEPORT listeners on the same address."""
        family = socket.AF_INET6 if self.host and ":" in self.host else socket.AF_INET
        sock = socket.socket(family=family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((self.host, port))
        except OSError as exc:
            sock.close()
            logger.error(exc)
            sys.exit(STARTUP_FAILURE)
        if announce:
            address_format = "%s://[%s]:%d" if family == socket.AF_INET6 else "%s://%s:%d"
            log_running_on(address_format, "https" if self.is_ssl else "http", self.host, sock.getsockname()[1])
        return sock
