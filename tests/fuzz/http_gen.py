"""A structured generator of HTTP/1.1 request streams.

A stream is several pipelined requests, each with a framing chosen from every
combination a client (or an attacker) can write: Content-Length, chunked with
extensions and trailers, both, neither, duplicates, transfer codings, HTTP/1.0
and 1.1, keep-alive and close tokens, Expect: 100-continue, HEAD, CONNECT,
OPTIONS *, Upgrade; then, for some streams, a mutation that aims at the error
paths (a flipped byte, a cut, a bare LF, an obs-fold, a huge field). How the
stream reaches the server is part of the case too: the sizes of the reads and
how the client ends (stays open, half-closes, or resets at a random byte).

Everything comes from one `random.Random`, so a seed is a reproducer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# What the fuzz application does for a path (tests/fuzz/apps.py): the first
# part of the target selects it.
HTTP_PATHS = (
    "/echo", "/echo", "/echo", "/stream", "/ignore", "/early", "/empty", "/not-modified",
    "/fail-before", "/fail-after", "/short", "/slow", "/bad-dup-cl", "/bad-cl-te", "/bad-1xx", "/bad-te-gzip",
)  # fmt: skip
METHODS = ("GET", "GET", "POST", "POST", "PUT", "HEAD", "HEAD", "DELETE", "PATCH", "OPTIONS", "CONNECT")
FRAMINGS = (
    "none", "none", "length", "length", "length", "chunked", "chunked", "chunked",
    "length+chunked", "chunked+length", "length-twice", "length-differs", "length-list", "length-malformed",
    "gzip,chunked", "chunked,gzip", "chunked-twice", "identity", "te-list",
)  # fmt: skip
MUTATIONS = ("flip", "cut", "insert", "bare-lf", "bare-cr", "obs-fold", "huge-field", "space-before-colon",
             "nul", "duplicate-line", "drop-line", "huge-chunk-size", "tab-in-target")  # fmt: skip
MALFORMED_LENGTHS = (b"+5", b"5 5", b"0x5", b"-1", b"5;", b"", b"99999999999999999999999", b"5\x0b")


@dataclass
class RequestSpec:
    """One request as generated (before a mutation)."""

    method: str
    version: str
    framing: str
    start: int  # its span in the unmutated stream
    end: int


@dataclass
class HttpCase:
    seed: int
    data: bytes
    reads: list[int]  # sizes of the client's writes, each read by the server separately
    ending: str  # "open", "eof" (half-close) or "disconnect"
    requests: list[RequestSpec] = field(default_factory=list)
    mutation: str | None = None
    mutated_at: int | None = None  # bytes before this offset are as generated

    def intact(self, index: int) -> RequestSpec | None:
        """The spec of request `index` if no mutation touched it or what precedes it."""
        if index >= len(self.requests):
            return None
        spec = self.requests[index]
        return spec if self.mutated_at is None or spec.end <= self.mutated_at else None

    def describe(self) -> str:
        return f"http seed={self.seed} mutation={self.mutation} ending={self.ending} reads={self.reads}"


def _chunked(rng: random.Random, body: bytes) -> bytes:
    out = bytearray()
    position = 0
    while position < len(body):
        size = min(len(body) - position, rng.choice((1, 3, 16, 100, 5000, 70000)))
        size_text = b"%x" % size if rng.random() < 0.7 else b"%X" % size
        if rng.random() < 0.1:
            size_text = b"00" + size_text
        extension = rng.choice((b"", b"", b"", b";a=b", b';name="quoted value"', b";x", b" ;ext"))
        out += size_text + extension + b"\r\n" + body[position : position + size] + b"\r\n"
        position += size
    out += b"0" + rng.choice((b"", b"", b";last=1")) + b"\r\n"
    if rng.random() < 0.2:
        out += rng.choice((b"X-Trailer: yes\r\n", b"Expires: never\r\nX-Two: 2\r\n"))
    return bytes(out + b"\r\n")


def _body(rng: random.Random) -> bytes:
    size = rng.choice((0, 1, 5, 17, 100, 1000, 4096, 70000)) if rng.random() < 0.9 else rng.randrange(300_000)
    return rng.randbytes(size) if size < 2000 else bytes([rng.randrange(256)]) * size


def generate_request(rng: random.Random) -> tuple[bytes, str, str, str]:
    """One request: (bytes, method, version, framing)."""
    method = rng.choice(METHODS)
    version = "1.1" if rng.random() < 0.85 else "1.0"
    path = rng.choice(HTTP_PATHS)
    target = path + rng.choice(("", "", "?q=1", "?a=%20b&c", "/sub", "#frag"))
    if method == "CONNECT":
        target = rng.choice(("example.com:443", "127.0.0.1:80", path))
    elif method == "OPTIONS" and rng.random() < 0.3:
        target = "*"
    elif rng.random() < 0.05:
        target = "http://x" + target  # absolute form
    lines = [f"{method} {target} HTTP/{version}".encode()]
    host_count = 1 if rng.random() < 0.93 else rng.choice((0, 2))
    lines += [b"Host: " + rng.choice((b"x", b"example.com:8000", b"y"))] * host_count
    connection = rng.choice((None, None, None, b"keep-alive", b"close", b"Close", b"keep-alive, close",
                             b"upgrade", b"close, upgrade", b"TE, keep-alive"))  # fmt: skip
    if connection is not None:
        lines.append(b"Connection: " + connection)
    if rng.random() < 0.1:
        lines.append(b"Expect: 100-continue")
    if rng.random() < 0.06:
        lines.append(b"Upgrade: " + rng.choice((b"h2c", b"foo/1", b"websocket")))
    if rng.random() < 0.2:
        lines.append(rng.choice((b"X-Empty:", b"Accept: */*", b"User-Agent: fuzz\t1", b"X-Long: " + b"v" * 2000)))
    framing = rng.choice(FRAMINGS) if method not in ("GET", "HEAD") or rng.random() < 0.2 else "none"
    body = _body(rng) if framing != "none" else b""
    length = b"%d" % len(body)
    payload = body
    if framing == "length":
        lines.append(b"Content-Length: " + length)
    elif framing == "chunked":
        lines.append(b"Transfer-Encoding: " + rng.choice((b"chunked", b"Chunked", b"CHUNKED")))
        payload = _chunked(rng, body)
    elif framing in ("length+chunked", "chunked+length"):
        headers = [b"Content-Length: " + length, b"Transfer-Encoding: chunked"]
        lines += headers if framing == "length+chunked" else headers[::-1]
        payload = _chunked(rng, body)
    elif framing == "length-twice":
        lines += [b"Content-Length: " + length] * 2
    elif framing == "length-differs":
        lines += [b"Content-Length: " + length, b"Content-Length: %d" % (len(body) + 1)]
    elif framing == "length-list":
        lines.append(b"Content-Length: " + length + b", " + length)
    elif framing == "length-malformed":
        lines.append(b"Content-Length: " + rng.choice(MALFORMED_LENGTHS))
    elif framing in ("gzip,chunked", "chunked,gzip"):
        lines.append(b"Transfer-Encoding: " + framing.replace(",", ", ").encode())
        payload = _chunked(rng, body)
    elif framing == "chunked-twice":
        lines += [b"Transfer-Encoding: chunked"] * 2
        payload = _chunked(rng, body)
    elif framing == "identity":
        lines += [b"Transfer-Encoding: identity", b"Content-Length: " + length]
    elif framing == "te-list":
        lines.append(b"Transfer-Encoding: " + rng.choice((b"chunked, chunked", b"identity, chunked", b"chunked,")))
        payload = _chunked(rng, body)
    if rng.random() < 0.3:
        fields = lines[1:]
        rng.shuffle(fields)
        lines[1:] = fields
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    return head + payload, method, version, framing


def _mutate(rng: random.Random, data: bytes) -> tuple[bytes, str, int]:
    """(mutated data, mutation name, offset before which nothing changed)."""
    mutation = rng.choice(MUTATIONS)
    line_ends = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\r\n"] if len(data) < 20000 else []
    at = rng.randrange(len(data)) if data else 0
    if mutation in ("bare-lf", "bare-cr", "obs-fold", "duplicate-line", "drop-line", "space-before-colon",
                    "huge-field", "nul") and line_ends:  # fmt: skip
        at = rng.choice(line_ends)
        line_start = data.rfind(b"\r\n", 0, at) + 2 if data.rfind(b"\r\n", 0, at) >= 0 else 0
        line = data[line_start:at]
        if mutation == "bare-lf":
            return data[:at] + b"\n" + data[at + 2 :], mutation, at
        if mutation == "bare-cr":
            return data[:at] + b"\r" + data[at + 2 :], mutation, at
        if mutation == "obs-fold":
            return data[:at] + b"\r\n " + b"folded" + data[at:], mutation, at
        if mutation == "duplicate-line":
            return data[:at] + b"\r\n" + line + data[at:], mutation, at
        if mutation == "drop-line":
            return data[:line_start] + data[at + 2 :], mutation, line_start
        if mutation == "space-before-colon" and b":" in line:
            colon = line_start + line.index(b":")
            return data[:colon] + b" " + data[colon:], mutation, colon
        if mutation == "huge-field":
            return data[:at] + b"\r\nX-Huge: " + b"h" * rng.choice((70_000, 200_000)) + data[at:], mutation, at
        if mutation == "nul":
            return data[:at] + b"\x00" + data[at:], mutation, at
    if mutation == "cut":
        return data[:at], mutation, at
    if mutation == "insert":
        return data[:at] + bytes([rng.randrange(256)]) + data[at:], mutation, at
    if mutation == "huge-chunk-size":
        return data[:at] + b"\r\nFFFFFFFFFFFFFFFFFF\r\n" + data[at:], mutation, at
    if mutation == "tab-in-target":
        space = data.find(b" ", at)
        if space < 0:
            return data, mutation, len(data)
        return data[:space] + b"\t" + data[space + 1 :], mutation, space
    if not data:
        return data, mutation, 0
    return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :], "flip", at


def split_reads(rng: random.Random, size: int) -> list[int]:
    """Sizes of the client's writes: one, a few random cuts, or many small ones."""
    shape = rng.random()
    if size <= 1 or shape < 0.35:
        return [size] if size else []
    if shape < 0.5 and size <= 300:
        return [1] * size
    cuts = sorted(rng.sample(range(1, size), min(size - 1, rng.randint(1, 12))))
    return [b - a for a, b in zip([0, *cuts], [*cuts, size], strict=True)]


def generate_http_case(seed: int, *, mutate: bool | None = None) -> HttpCase:
    rng = random.Random(seed)
    data = bytearray()
    requests = []
    for _ in range(rng.choice((1, 1, 2, 3, 5))):
        raw, method, version, framing = generate_request(rng)
        requests.append(RequestSpec(method, version, framing, len(data), len(data) + len(raw)))
        data += raw
    mutation = mutated_at = None
    data = bytes(data)
    if mutate if mutate is not None else rng.random() < 0.3:
        data, mutation, mutated_at = _mutate(rng, data)
    ending = rng.choice(("open", "open", "eof", "disconnect"))
    if ending == "disconnect" and data and rng.random() < 0.5:
        data = data[: rng.randrange(len(data))]  # the reset comes in the middle
        mutated_at = len(data) if mutated_at is None else min(mutated_at, len(data))
    return HttpCase(seed, data, split_reads(rng, len(data)), ending, requests, mutation, mutated_at)
