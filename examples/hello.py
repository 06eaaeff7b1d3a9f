"""A minimal raw ASGI application: `cppcorn examples.hello:app`."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return  # lifespan: nothing to set up
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, world!"})
