"""A raw ASGI 3 WebSocket echo app: accept, send every message back, until disconnect.

It measures the server, not a framework: no routing, no subprotocol, no
compression of its own (the server's permessage-deflate, if the client offered
and the server agreed, is the server's business; bench/ws.py's client offers
none). A text message comes back as text, a binary one as binary.

Plain HTTP is answered too, for the harness: `GET /` says the app is up, and
`GET /modules` lists the WebSocket-related modules imported in the server's
process (bench/ws.py checks with it which of Uvicorn's WebSocket
implementations is really in use: a pure-Python module is not visible in
/proc/<pid>/maps).
Lifespan is answered properly so that every server starts it the same way.
"""

import json
import sys

from bench.apps.asgi import Receive, Scope, Send, lifespan, respond

ACCEPT = {"type": "websocket.accept"}
# Module names (prefixes) that say which WebSocket implementation a server runs.
MODULE_PREFIXES = ("uvicorn.protocols.websockets", "websockets", "wsproto",
                   "cppcorn.http.websocket", "granian")
OK_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
}
OK_BODY = {"type": "http.response.body", "body": b"OK"}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "websocket":
        await _echo(receive, send)
    elif kind == "http":
        if scope["path"] == "/modules":
            await _modules(send)
        else:
            await send(OK_START)
            await send(OK_BODY)
    elif kind == "lifespan":
        await lifespan(receive, send)


async def _echo(receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send(ACCEPT)
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":  # websocket.disconnect
            return
        data = message.get("bytes")
        if data is not None:
            await send({"type": "websocket.send", "bytes": data})
        else:
            await send({"type": "websocket.send", "text": message.get("text") or ""})


async def _modules(send: Send) -> None:
    names = sorted(n for n in sys.modules if n.startswith(MODULE_PREFIXES))
    body = json.dumps(names).encode()
    await respond(send, body, b"application/json")
