"""Serve a WSGI application, through the optional `a2wsgi` package."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

MISSING_A2WSGI = "--interface wsgi needs the a2wsgi package: pip install 'cppcorn[wsgi]'"


def WSGIMiddleware(app: WSGIApp, workers: int = 10) -> ASGIApp:
    """Wrap a WSGI app as an ASGI app running on a pool of `workers` threads.

    Like Uvicorn with a2wsgi, WebSocket scopes are closed and lifespan is
    acknowledged. The import is deferred so that cppcorn itself does not
    depend on a2wsgi; only `--interface wsgi` does.
    """
    try:
        import a2wsgi
    except ModuleNotFoundError as exc:
        raise ImportError(MISSING_A2WSGI) from exc
    return a2wsgi.WSGIMiddleware(app, workers=workers)
