"""An ASGI 3 app reading the whole request body and answering its length: how a server receives a large body."""

from bench.apps.asgi import Receive, Scope, Send, lifespan, response


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    received, more_body = 0, True
    while more_body:
        if (message := await receive())["type"] != "http.request":  # http.disconnect: nobody to answer
            return
        received += len(message.get("body", b""))
        more_body = message.get("more_body", False)
    for message in response(str(received).encode(), b"text/plain"):
        await send(message)
