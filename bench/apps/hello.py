"""The smallest useful ASGI 3 app: a fixed 13-byte plain-text body.

It measures the server, not the framework: no routing, no request body read.
Lifespan is answered properly so that every server starts it the same way and
none logs "lifespan unsupported".
"""

from bench.apps.asgi import fixed_response

BODY = b"Hello, world!"
app = fixed_response(BODY, b"text/plain")
