"""A raw ASGI 3 app answering every request with a 1 MiB body.

It measures how a server moves a large response: the body is built once, at
import, and sent in one `http.response.body` message with its content-length.
bench/load.py checks the answer against BODY, and serves the same bytes from
a static file with nginx.
"""

from bench.apps.asgi import Receive, Scope, Send, lifespan

# 1 MiB of every byte value in turn: not all zeros, and not compressible to
# nothing should anything on the way compress.
BODY = bytes(range(256)) * 4096
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(len(BODY)).encode("ascii")),
    ],
}
RESPONSE_BODY = {"type": "http.response.body", "body": BODY}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send(START)
        await send(RESPONSE_BODY)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)
