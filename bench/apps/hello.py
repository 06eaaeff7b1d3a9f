"""The smallest useful ASGI 3 app, a fixed 13-byte text/plain body: the server is what is measured."""

from bench.apps.asgi import fixed_response

app = fixed_response(b"Hello, world!", b"text/plain")
