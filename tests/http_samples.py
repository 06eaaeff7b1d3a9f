"""Requests and responses shared by the socket tests and the in-memory
protocol tests: a plain GET, heads of an exact size, the table of malformed
requests (each refused with 400 and the connection closed), and the bytes
of the server's own error responses."""

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def head_of_size(size: int, header_count: int = 1) -> bytes:
    """A complete GET head of exactly `size` bytes (final blank line included)."""
    start = b"GET / HTTP/1.1\r\nHost: x\r\n"
    padding = size - len(start) - 2 - sum(len(b"X-Pad-%03d: \r\n" % i) for i in range(header_count))
    assert padding >= header_count
    lines = []
    for i in range(header_count):
        share = padding // header_count + (padding % header_count if i == header_count - 1 else 0)
        lines.append(b"X-Pad-%03d: %s\r\n" % (i, b"a" * share))
    head = start + b"".join(lines) + b"\r\n"
    assert len(head) == size
    return head


def error_response(status: int, reason: bytes, body: bytes) -> bytes:
    """The server's own plain-text error response (no default headers)."""
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, reason, len(body), body)
    )


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
    "content-length-then-chunked": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    # HTTP/0.9's simple request, no valid request-line today (RFC 9112 3).
    "no-http-version": b"GET /\r\nHost: x\r\n\r\n",
    # Exactly one Host (RFC 9112 3.2; HTTP/1.0 may omit it, not repeat it).
    "http-1.1-without-host": b"GET / HTTP/1.1\r\n\r\n",
    "two-host-fields": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "http-1.0-two-host-fields": b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
}
