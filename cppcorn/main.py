"""The command line (`cppcorn APP`, `python -m cppcorn APP`) and `cppcorn.run()`.

Options and defaults are Uvicorn's. Every option (and APP) can also be set in
the environment, as Uvicorn reads it, `UVICORN_<NAME>` (`UVICORN_PORT=9000`,
`UVICORN_APP=main:app`, `UVICORN_RELOAD_DIRS` for `--reload-dir`: NAME is the
option's parameter name), or as `CPPCORN_<NAME>`, which wins over it; the
command line wins over both. The `--env-file` file is read before the other
options, so that the variables it sets count too; the real environment wins
over it. `cppcorn.run()` and `Config` read neither prefix, as in Uvicorn.
"""

from __future__ import annotations

import logging
import os
import platform
import ssl
import sys
from typing import Any

import click

import cppcorn
from cppcorn.config import (
    INTERFACES,
    LIFESPAN,
    LOG_LEVELS,
    LOGGING_CONFIG,
    SSL_PROTOCOL_VERSION,
    STARTUP_FAILURE,
    Config,
    MissingDependencyError,
)
from cppcorn.server import Server
from cppcorn.supervisors import ChangeReload, Multiprocess

logger = logging.getLogger("uvicorn.error")

LEVEL_CHOICES = click.Choice(list(LOG_LEVELS.keys()), case_sensitive=False)
LIFESPAN_CHOICES = click.Choice(list(LIFESPAN.keys()))
INTERFACE_CHOICES = click.Choice(list(INTERFACES))


def version_text() -> str:
    """The `--version` lines: versions, and which compiled parts are in use."""
    from importlib.machinery import EXTENSION_SUFFIXES

    from cppcorn.http import parser, protocol, response

    compiled = [
        module.__name__.rsplit(".", 1)[-1]
        for module in (parser, protocol, response)
        if module.__file__ and module.__file__.endswith(tuple(EXTENSION_SUFFIXES))
    ]
    loops = ["asyncio"]
    try:
        import uvloop

        loops.append(f"uvloop {uvloop.__version__}")
    except ImportError:
        pass
    return (
        f"Running cppcorn {cppcorn.__version__} with {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}\n"
        f"Compiled HTTP/1.1 core: {', '.join(compiled)} (llhttp {parser.LLHTTP_VERSION}); "
        f"event loops: {', '.join(loops)}"
    )


def print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(version_text())
    ctx.exit()


def parse_header(header: str) -> tuple[str, str]:
    name, separator, value = header.partition(":")
    if not separator:
        raise click.BadParameter(f"{header!r} is not a 'Name: value' header.", param_hint="--header")
    return name, value


# The environment variable prefixes, the first winning when both are set.
ENVIRONMENT_PREFIXES = ("CPPCORN", "UVICORN")


class EnvironmentCommand(click.Command):
    """A command whose every parameter also reads `CPPCORN_<NAME>`, then
    `UVICORN_<NAME>`: the names Uvicorn's click `auto_envvar_prefix` gives
    (NAME is the parameter name upper-cased), through the same click
    machinery, so that flags and repeatable options parse as in Uvicorn."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.name is not None:
                param.envvar = [f"{prefix}_{param.name.upper()}" for prefix in ENVIRONMENT_PREFIXES]


def load_env_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--env-file` is an eager option: its variables are loaded before the
    other options read the environment (the real environment wins over the
    file). `Config` loads the file again, a no-op by then, and logs it as
    Uvicorn does; without python-dotenv, it is `Config` that says so."""
    if value is None or ctx.resilient_parsing:
        return value
    try:
        from dotenv import load_dotenv
    except ImportError:
        return value
    load_dotenv(dotenv_path=value)
    return value


# --help shows every option's default, as Uvicorn's does, except the few
# whose default Uvicorn leaves unsaid (show_default=False).
@click.command(cls=EnvironmentCommand, context_settings={"show_default": True})
@click.argument("app")
@click.option("--host", type=str, default="127.0.0.1", help="Bind socket to this host.")
@click.option("--port", type=int, default=8000,
              help="Bind socket to this port. If 0, an available port will be picked.")
@click.option("--uds", type=str, default=None, help="Bind to a UNIX domain socket.")
@click.option("--fd", type=int, default=None, help="Bind to socket from this file descriptor.")
@click.option("--reload", is_flag=True, default=False, help="Enable auto-reload.")
@click.option("--reload-dir", "reload_dirs", multiple=True, type=click.Path(exists=True),
              help="Set reload directories explicitly, instead of using the current working directory.")
@click.option("--reload-include", "reload_includes", multiple=True,
              help="Set glob patterns to include while watching for files. Includes '*.py' by default; these "
              "defaults can be overridden with `--reload-exclude`. This option has no effect unless watchfiles "
              "is installed.")
@click.option("--reload-exclude", "reload_excludes", multiple=True,
              help="Set glob patterns to exclude while watching for files. Includes '.*, .py[cod], .sw.*, ~*' by "
              "default; these defaults can be overridden with `--reload-include`. This option has no effect unless "
              "watchfiles is installed.")
@click.option("--reload-delay", type=float, default=0.25,
              help="Delay between previous and next check if application needs to be reloaded.")
@click.option("--workers", default=None, type=int,
              help="Number of worker processes. Defaults to the $WEB_CONCURRENCY environment variable if available, "
              "or 1. Not valid with --reload.")
@click.option("--reuse-port/--no-reuse-port", is_flag=True, default=False,
              help="With --workers: each worker binds its own SO_REUSEPORT listener and the kernel spreads "
              "connections across them (Linux), instead of all workers sharing one socket.")
@click.option("--loop", type=str, default="auto",
              help="Event loop factory implementation: auto (cppcorn where it is built, else uvloop if "
              "installed, else asyncio), asyncio, uvloop, cppcorn (the compiled loop; zuvloop means the same), "
              "none, or module:factory.")
@click.option("--http", type=str, default="auto",
              help="HTTP protocol implementation. cppcorn always uses its compiled llhttp protocol; "
              "Uvicorn's auto, h11, httptools, zttp and module:Class are accepted for compatibility.")
@click.option("--http2", is_flag=True, default=False, help="Enable HTTP/2. [not supported: refused]")
@click.option("--ws", type=str, default="auto",
              help="WebSocket protocol implementation: auto or none. cppcorn always uses its compiled "
              "WebSocket protocol; Uvicorn's websockets, websockets-sansio, wsproto and module:Class are "
              "accepted for compatibility.")
@click.option("--ws-max-size", type=int, default=16777216, help="WebSocket max size message in bytes.")
@click.option("--ws-max-queue", type=int, default=32, help="The maximum length of the WebSocket message queue.")
@click.option("--ws-ping-interval", type=float, default=20.0, help="WebSocket ping interval in seconds.")
@click.option("--ws-ping-timeout", type=float, default=20.0, help="WebSocket ping timeout in seconds.")
@click.option("--ws-per-message-deflate", type=bool, default=True, help="WebSocket per-message-deflate compression.")
@click.option("--lifespan", type=LIFESPAN_CHOICES, default="auto", help="Lifespan implementation.")
@click.option("--interface", type=INTERFACE_CHOICES, default="auto",
              help="Select ASGI3, ASGI2, or WSGI as the application interface.")
@click.option("--env-file", type=click.Path(exists=True), default=None, is_eager=True, callback=load_env_file,
              help="Environment configuration file.")
@click.option("--log-config", type=click.Path(exists=True), default=None,
              help="Logging configuration file. Supported formats: .ini, .json, .yaml. Configs written for "
              "Uvicorn apply unchanged.")
@click.option("--log-level", type=LEVEL_CHOICES, default=None, help="Log level. [default: info]")
@click.option("--access-log/--no-access-log", is_flag=True, default=True, show_default=False,
              help="Enable/Disable access log.")
@click.option("--use-colors/--no-use-colors", is_flag=True, default=None, help="Enable/Disable colorized logging.")
@click.option("--proxy-headers/--no-proxy-headers", is_flag=True, default=True, show_default=False,
              help="Enable/Disable X-Forwarded-Proto, X-Forwarded-For to populate url scheme and remote address "
              "info.")
@click.option("--server-header/--no-server-header", is_flag=True, default=True, show_default=False,
              help="Enable/Disable default Server header.")
@click.option("--date-header/--no-date-header", is_flag=True, default=True, show_default=False,
              help="Enable/Disable default Date header.")
@click.option("--forwarded-allow-ips", type=str, default=None,
              help="Comma separated list of IP Addresses, IP Networks, or literals (e.g. UNIX Socket path) to trust "
              "with proxy headers. Defaults to the $FORWARDED_ALLOW_IPS environment variable if available, or "
              "'127.0.0.1,::1'. The literal '*' means trust everything.")
@click.option("--root-path", type=str, default="", show_default=False,
              help="Set the ASGI 'root_path' for applications submounted below a given URL path.")
@click.option("--limit-concurrency", type=int, default=None,
              help="Maximum number of concurrent connections or tasks to allow, before issuing HTTP 503 responses.")
@click.option("--backlog", type=int, default=2048, show_default=False,
              help="Maximum number of connections to hold in backlog")
@click.option("--limit-max-requests", type=int, default=None,
              help="Maximum number of requests to service before terminating the process.")
@click.option("--limit-max-requests-jitter", type=int, default=0, help="Maximum jitter to add to limit_max_requests.")
@click.option("--limit-request-header-size", type=int, default=65536,
              help="Largest request line plus header section, in bytes; larger requests get 431.")
@click.option("--timeout-keep-alive", type=float, default=5,
              help="Close Keep-Alive connections if no new data is received within this timeout (in seconds).")
@click.option("--timeout-request-headers", type=float, default=30.0,
              help="Close a connection whose request line and headers have not all arrived within this many "
              "seconds (with 408 if part of them did): a defence against slowloris clients.")
@click.option("--timeout-drain", type=float, default=1.0,
              help="On a graceful shutdown or restart, how long a keep-alive connection between requests stays "
              "open for a request that may already be on its way, which is served with `Connection: close`.")
@click.option("--timeout-graceful-shutdown", type=float, default=None,
              help="Maximum number of seconds to wait for graceful shutdown.")
@click.option("--timeout-worker-healthcheck", type=int, default=5,
              help="Maximum number of seconds to wait for a worker to respond to a healthcheck.")
@click.option("--ssl-keyfile", type=str, default=None, help="SSL key file")
@click.option("--ssl-certfile", type=str, default=None, help="SSL certificate file")
@click.option("--ssl-keyfile-password", type=str, default=None, help="SSL keyfile password")
@click.option("--ssl-version", type=int, default=int(SSL_PROTOCOL_VERSION),
              help="SSL version to use (see stdlib ssl module's)")
@click.option("--ssl-cert-reqs", type=int, default=int(ssl.CERT_NONE),
              help="Whether client certificate is required (see stdlib ssl module's)")
@click.option("--ssl-ca-certs", type=str, default=None, help="CA certificates file")
@click.option("--ssl-ciphers", type=str, default=None,
              help="Ciphers to use (see stdlib ssl module's). Defaults to OpenSSL's safe defaults.")
@click.option("--header", "headers", multiple=True,
              help="Specify custom default HTTP response headers as a Name:Value pair")
@click.option("--version", is_flag=True, callback=print_version, expose_value=False, is_eager=True,
              help="Display the cppcorn version and exit.")
@click.option("--app-dir", default="",
              help="Look for APP in the specified directory, by adding this to the PYTHONPATH. Defaults to the "
              "current working directory.")
@click.option("--h11-max-incomplete-event-size", "h11_max_incomplete_event_size", type=int, default=None,
              help="Accepted for Uvicorn compatibility: sets --limit-request-header-size.")
@click.option("--reset-contextvars", is_flag=True, default=False,
              help="Run each ASGI request in a fresh contextvars.Context. Hides context set in the lifespan.")
@click.option("--factory", is_flag=True, default=False,
              help="Treat APP as an application factory, i.e. a () -> <ASGI app> callable.")
def main(app: str, headers: tuple[str, ...], app_dir: str, log_config: str | None, **options: Any) -> None:
    """Serve the ASGI application APP ("module:attribute")."""
    sys.path.insert(0, app_dir)
    run(
        app,
        headers=[parse_header(header) for header in headers],
        log_config=LOGGING_CONFIG if log_config is None else log_config,
        **options,
    )


def run(app: Any, *, app_dir: str | None = None, **kwargs: Any) -> None:
    """Run a server for `app` (an ASGI application or an import string) until
    it is told to stop: in this process, or in worker processes under a
    supervisor with `workers > 1` or `reload=True`. Exits with status 3 if it
    cannot start."""
    if app_dir is not None:
        sys.path.insert(0, app_dir)

    try:
        config = Config(app, **kwargs)
    except MissingDependencyError as exc:
        logger.error(exc)
        sys.exit(STARTUP_FAILURE)
    server = Server(config=config)

    if config.use_subprocess:
        if not isinstance(app, str):
            logger.warning("You must pass the application as an import string to enable 'reload' or 'workers'.")
            sys.exit(STARTUP_FAILURE)
    elif isinstance(app, str):
        # Fail on an unimportable application before anything else starts.
        config.load_app()

    try:
        if config.should_reload:
            ChangeReload(config, target=server.run, sockets=config.bind_sockets()).run()
        elif config.workers > 1:
            # With --reuse-port every worker binds its own listener.
            sockets = [] if config.reuse_port else config.bind_sockets()
            Multiprocess(config, target=server.run, sockets=sockets).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if config.uds and os.path.exists(config.uds):
            os.remove(config.uds)

    if not server.started and not config.use_subprocess:
        sys.exit(STARTUP_FAILURE)
