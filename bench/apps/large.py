"""An ASGI 3 app answering every request with a 1 MiB body, built once and sent in one message: how a server
moves a large response. bench/load.py checks the answer against BODY and has nginx serve it from a file."""

from bench.apps.asgi import fixed_response

BODY = bytes(range(256)) * 4096  # every byte value in turn: not all zeros, not compressible to nothing
app = fixed_response(BODY, b"application/octet-stream")
