"""A raw ASGI 3 app reading the whole request body and answering with its length.

It measures how a server receives a large request body (bench/load.py's
`upload`: 8 MiB POSTs): the app only counts the bytes of every
`http.request` message until `more_body` is false, and answers 200 with the
count as text/plain.
"""

from bench.apps.asgi import Receive, Scope, Send, lifespan, respond


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await _count_body(receive, send)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)


async def _count_body(receive: Receive, send: Send) -> None:
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: nobody to answer
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = str(received).encode("ascii")
    await respond(send, body, b"text/plain")
