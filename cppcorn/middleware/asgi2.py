"""Run an ASGI2 ("double callable") application under an ASGI3 server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGI2Instance = Callable[[Receive, Send], Awaitable[None]]
ASGI2App = Callable[[Scope], ASGI2Instance]


class ASGI2Middleware:
    """Adapt `app(scope)(receive, send)` to `app(scope, receive, send)`."""

    def __init__(self, app: ASGI2App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)
