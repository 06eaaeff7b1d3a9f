"""The smallest useful ASGI 3 app: a fixed 13-byte plain-text body.

It measures the server, not the framework: no routing, no request body read.
Lifespan is answered properly so that every server starts it the same way and
none logs "lifespan unsupported".
"""

from bench.apps.asgi import Receive, Scope, Send, lifespan

BODY = b"Hello, world!"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"text/plain"),
        (b"content-length", str(len(BODY)).encode("ascii")),
    ],
}
# Built once: the app should cost as little as possible per request.
RESPONSE_BODY = {"type": "http.response.body", "body": BODY}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send(START)
        await send(RESPONSE_BODY)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)
