"""A raw ASGI 3 app answering every request with a 1 MiB body.

It measures how a server moves a large response: the body is built once, at
import, and sent in one `http.response.body` message with its content-length.
bench/load.py checks the answer against BODY, and serves the same bytes from
a static file with nginx.
"""

from bench.apps.asgi import fixed_response

# 1 MiB of every byte value in turn: not all zeros, and not compressible to
# nothing should anything on the way compress.
BODY = bytes(range(256)) * 4096
app = fixed_response(BODY, b"application/octet-stream")
