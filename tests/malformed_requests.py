"""Malformed requests, each refused with 400 and the connection closed: one
table for the socket tests and the in-memory protocol tests."""

MALFORMED = {
    "garbage-request-line": b"garbage\r\n\r\n",
    "invalid-method-characters": b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "header-without-colon": b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    "content-length-abc": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "content-length-negative": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "chunk-size-zz": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
    "lf-only-line-endings": b"GET / HTTP/1.1\nHost: x\n\n",
    "nul-in-header-value": b"GET / HTTP/1.1\r\nHost: x\r\nX-Value: a\x00b\r\n\r\n",
    "bad-version": b"GET / HTTP/1.x\r\nHost: x\r\n\r\n",
    # Framing the server must not guess at.
    "transfer-encoding-gzip-alone": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "transfer-encoding-identity": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nabc",
    "transfer-encoding-chunked-then-gzip": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"
    ),
    "chunked-with-content-length": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
    ),
    "differing-content-lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    # Identical duplicates: llhttp refuses any repeated Content-Length (RFC 9112
    # allows either refusing or merging; refusing is the safe choice).
    "identical-content-lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
}
