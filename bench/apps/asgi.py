"""What the benchmark apps share: ASGI 3 type aliases, the lifespan protocol
and the fixed-response app.

Lifespan is answered properly so that every server starts an app the same way
and none logs "lifespan unsupported".
"""

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _response_start(body: bytes, content_type: bytes) -> Message:
    return {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode("ascii")),
        ],
    }


async def respond(send: Send, body: bytes, content_type: bytes) -> None:
    """Answer 200 with `body`, its content-length given."""
    await send(_response_start(body, content_type))
    await send({"type": "http.response.body", "body": body})


def fixed_response(body: bytes, content_type: bytes) -> ASGIApp:
    """An app answering every request with 200 and `body`, its content-length
    given. The messages are built once: the app costs as little as possible
    per request, so that the server is what is measured."""
    start = _response_start(body, content_type)
    response_body = {"type": "http.response.body", "body": body}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send(start)
            await send(response_body)
        elif scope["type"] == "lifespan":
            await lifespan(receive, send)

    return app
