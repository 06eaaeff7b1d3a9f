"""What the benchmark apps share: ASGI 3 types, the lifespan protocol (answered, so that every server starts
an app the same way and none logs "lifespan unsupported") and the answer with a fixed body."""

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def lifespan(receive: Receive, send: Send) -> None:
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


def response(body: bytes, content_type: bytes) -> tuple[Message, Message]:
    """The two messages of a 200 answer with `body` and its content-length."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    return start, {"type": "http.response.body", "body": body}


def fixed_response(body: bytes, content_type: bytes) -> ASGIApp:
    """An app answering every request with `body`. Its messages are built once: the app costs as little as possible, so
    that the server is what is measured."""
    start, response_body = response(body, content_type)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send(start)
            await send(response_body)
        elif scope["type"] == "lifespan":
            await lifespan(receive, send)

    return app
