"""An ASGI 3 WebSocket echo app: accept, send every message back as it came (binary as binary, text as text)
until the client disconnects; no routing, no subprotocol, no compression of its own."""

from bench.apps.asgi import Receive, Scope, Send, fixed_response

not_websocket = fixed_response(b"OK", b"text/plain")  # plain HTTP and lifespan


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        await not_websocket(scope, receive, send)
    elif (await receive())["type"] == "websocket.connect":
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":  # until websocket.disconnect
            if (data := message.get("bytes")) is not None:
                await send({"type": "websocket.send", "bytes": data})
            else:
                await send({"type": "websocket.send", "text": message.get("text") or ""})
