"""Log every ASGI message at TRACE level, with bulky content summarised."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from cppcorn.logging import TRACE_LOG_LEVEL

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Keys whose values would flood the log: shown by size only.
_PLACEHOLDERS = {
    "body": "<{length} bytes>",
    "bytes": "<{length} bytes>",
    "text": "<{length} chars>",
    "headers": "<...>",
}


def message_with_placeholders(message: Mapping[str, Any]) -> dict[str, Any]:
    """Return a shallow copy of a message or scope with bulky values summarised."""
    summary = dict(message)
    for key, template in _PLACEHOLDERS.items():
        value = message.get(key)
        if value is not None:
            summary[key] = template.format(length=len(value))
    return summary


class MessageLoggerMiddleware:
    """Trace the scope, each received and sent message, and the outcome.

    Lines go to the `uvicorn.asgi` logger as `"<client> - ASGI [n] ..."`, where
    `n` numbers the calls to this app so interleaved requests can be told apart.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.task_counter = 0
        self.logger = logging.getLogger("uvicorn.asgi")

    def trace(self, message: str, *args: Any) -> None:
        self.logger.log(TRACE_LOG_LEVEL, message, *args)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.task_counter += 1
        task_counter = self.task_counter
        client = scope.get("client")
        prefix = f"{client[0]}:{client[1]:d} - ASGI" if client else "ASGI"

        async def logging_receive() -> Message:
            message = await receive()
            self.trace("%s [%d] Receive %s", prefix, task_counter, message_with_placeholders(message))
            return message

        async def logging_send(message: Message) -> None:
            self.trace("%s [%d] Send %s", prefix, task_counter, message_with_placeholders(message))
            await send(message)

        self.trace("%s [%d] Started scope=%s", prefix, task_counter, message_with_placeholders(scope))
        try:
            await self.app(scope, logging_receive, logging_send)
        except BaseException:
            # BaseException too: a cancelled request is worth a trace line.
            self.trace("%s [%d] Raised exception", prefix, task_counter)
            raise
        self.trace("%s [%d] Completed", prefix, task_counter)
