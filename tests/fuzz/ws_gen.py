"""A structured generator of WebSocket client streams, and the reference
decoder that says what a server must make of them (RFC 6455, RFC 7692).

A case is: some HTTP requests pipelined before the upgrade (so that the
hand-over happens while responses are in progress), the upgrade request with
or without a permessage-deflate offer, then frames: messages fragmented
anywhere (across UTF-8 sequences too), control frames between fragments,
7/16/64-bit lengths, compressed messages (with or without the trailing
00 00 ff ff, ending in a BFINAL block, with and without context takeover),
and, in some cases, one violation (an unmasked frame, a reserved bit or
opcode, a bad close code or reason, invalid UTF-8, a message over the size
limit, a broken fragmentation), then how the client ends.

`reference_decode()` is our own small decoder, written from the RFCs, not
from the server's code: it gives the messages an application must receive
and the close code a server must fail the connection with.
"""

from __future__ import annotations

import codecs
import random
import struct
import zlib
from dataclasses import dataclass, field

from tests.fuzz.http_gen import split_reads
from tests.http_harness import parse_response
from tests.websocket_client import SAMPLE_KEY, accept_for, close_payload, encode_frame

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# The server's message size limit in the fuzz runs (small, so that 1009 is reached).
MAX_SIZE = 65536
VIOLATIONS = ("unmasked", "rsv2", "rsv3", "rsv1-uncompressed", "rsv1-control", "rsv1-continuation", "opcode",
              "long-control", "fragmented-control", "orphan-continuation", "interrupted-message", "bad-utf8",
              "bad-utf8-cut", "close-1-byte", "close-code", "close-reason-utf8", "too-big", "length-msb",
              "too-big-compressed")  # fmt: skip
BAD_CLOSE_CODES = (0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535)
GOOD_CLOSE_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999)
TEXTS = ("", "a", "hello", "héllo wörld", "日本語テキスト", "🎉 emoji 🎉", "x" * 200, "mixed ñ 中 🎉 " * 40)


@dataclass
class DeflateParams:
    client_no_context_takeover: bool = False
    client_window_bits: int = 15


@dataclass
class WsCase:
    seed: int
    prefix: bytes  # HTTP requests pipelined before the upgrade
    prefix_methods: list[str]
    upgrade: bytes
    offer: str | None
    deflate: DeflateParams | None  # what the offer must lead to
    frames: bytes
    reads: list[int]  # how the frames are written (the first write also carries prefix + upgrade)
    ending: str  # "close" (the client's Close is in `frames`), "open", "eof", "disconnect"
    violation: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        return self.prefix + self.upgrade + self.frames

    def describe(self) -> str:
        return (
            f"websocket seed={self.seed} offer={self.offer!r} violation={self.violation} ending={self.ending} "
            f"prefix={self.prefix_methods} reads={self.reads} frames={' '.join(self.notes)}"
        )


def frame(
    rng: random.Random,
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bool = True,
    length_form: str | None = None,
) -> bytes:
    """One client frame in the minimal length encoding, masked with a key
    from `rng`; `length_form="msb"` declares a 64-bit length with the most
    significant bit set (forbidden)."""
    length = len(payload) | (1 << 63) if length_form == "msb" else None
    key = rng.randbytes(4) if mask else None
    return encode_frame(opcode, payload, fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, mask=mask, length=length, key=key)


def upgrade_request(offer: str | None, path: str = "/ws") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {SAMPLE_KEY}", "Sec-WebSocket-Version: 13"]  # fmt: skip
    if offer is not None:
        lines.append(f"Sec-WebSocket-Extensions: {offer}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def expected_deflate(offer: str | None) -> DeflateParams | None:
    """What a server that accepts the offer agrees to (RFC 7692 7.1)."""
    if offer is None:
        return None
    return DeflateParams("client_no_context_takeover" in offer, 12 if "client_max_window_bits" in offer else 15)


def _pieces(rng: random.Random, payload: bytes) -> list[bytes]:
    count = rng.choice((1, 1, 1, 2, 3, 6))
    if count == 1 or len(payload) < 2:
        return [payload] if rng.random() < 0.9 else [payload, b""]
    cuts = sorted(rng.sample(range(1, len(payload)), min(count - 1, len(payload) - 1)))
    return [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]


class _Compressor:
    """The client's side of permessage-deflate."""

    def __init__(self, params: DeflateParams) -> None:
        self.params = params
        self.shared: zlib._Compress | None = None

    def compress(self, rng: random.Random, data: bytes, notes: list[str]) -> bytes:
        fresh = zlib.compressobj(rng.choice((1, 6, 9)), zlib.DEFLATED, -self.params.client_window_bits)
        if self.params.client_no_context_takeover or self.shared is None:
            self.shared = fresh
        compressor = self.shared
        # "double-flush": an empty stored block after the sync flush, so the
        # message shows a whole 00 00 ff ff before the stripped one (a valid
        # sender cannot keep the last tail: RFC 7692 7.2.1 removes it).
        style = rng.choice(("sync", "sync", "sync", "double-flush", "bfinal"))
        notes.append(f"deflate:{style}")
        if style == "bfinal":
            self.shared = None  # a finished stream cannot go on: the next message starts a new one
            return compressor.compress(data) + compressor.flush(zlib.Z_FINISH)
        out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if style == "double-flush":
            out += compressor.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4]


def _message(rng: random.Random, compressor: _Compressor | None, notes: list[str], violation: str | None) -> bytes:
    """One data message, fragmented, with control frames between its frames."""
    text = rng.random() < 0.6
    if text:
        payload = rng.choice(TEXTS).encode()
        if violation in ("bad-utf8", "bad-utf8-cut"):
            at = rng.randrange(len(payload) + 1)
            invalid = rng.choice((b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"))
            payload = payload[:at] + invalid + payload[at:]
    else:
        payload = rng.randbytes(rng.choice((0, 1, 10, 125, 126, 300, 70000 if violation == "too-big" else 65536)))
    if violation == "too-big" and len(payload) <= MAX_SIZE:
        payload = b"z" * (MAX_SIZE + 1 + rng.randrange(100))
    compressed = compressor is not None and (rng.random() < 0.6 or violation == "too-big-compressed")
    if violation == "too-big-compressed":
        payload = b"z" * (MAX_SIZE + 1 + rng.randrange(100))
    wire_payload = compressor.compress(rng, payload, notes) if compressed else payload
    pieces = _pieces(rng, wire_payload)
    notes.append(f"{'text' if text else 'binary'}{'+z' if compressed else ''}:{len(payload)}/{len(pieces)}")
    out = bytearray()
    for index, piece in enumerate(pieces):
        opcode = (TEXT if text else BINARY) if index == 0 else CONT
        fin = index == len(pieces) - 1
        rsv1 = compressed and index == 0
        if index and violation == "rsv1-continuation":
            rsv1, violation = True, None
        if index and violation == "interrupted-message":
            out += frame(rng, BINARY, b"new")
            violation = None
        out += frame(rng, opcode, piece, fin=fin, rsv1=rsv1)
        if not fin and rng.random() < 0.3:
            out += frame(rng, rng.choice((PING, PONG)), rng.randbytes(rng.choice((0, 5, 125))))
    return bytes(out)


def _violation_frame(rng: random.Random, violation: str) -> bytes:
    if violation == "unmasked":
        return frame(rng, TEXT, b"unmasked", mask=False)
    if violation == "rsv2":
        return frame(rng, BINARY, b"r", rsv2=True)
    if violation == "rsv3":
        return frame(rng, TEXT, b"r", rsv3=True)
    if violation == "rsv1-uncompressed":  # only reached without deflate (see generate_ws_case)
        return frame(rng, TEXT, b"r", rsv1=True)
    if violation == "rsv1-control":
        return frame(rng, PING, b"p", rsv1=True)
    if violation == "opcode":
        return frame(rng, rng.choice((3, 4, 5, 6, 7, 0xB, 0xC, 0xF)), b"?")
    if violation == "long-control":
        return frame(rng, rng.choice((PING, PONG, CLOSE)), b"\x03\xe8" + b"l" * 124)
    if violation == "fragmented-control":
        return frame(rng, PING, b"f", fin=False)
    if violation == "orphan-continuation":
        return frame(rng, CONT, b"orphan")
    if violation == "close-1-byte":
        return frame(rng, CLOSE, b"\x03")
    if violation == "close-code":
        return frame(rng, CLOSE, close_payload(rng.choice(BAD_CLOSE_CODES), b"bad"))
    if violation == "close-reason-utf8":
        return frame(rng, CLOSE, close_payload(1000, b"bad \xff reason"))
    if violation == "length-msb":
        return frame(rng, BINARY, b"", length_form="msb")  # the header (mask key included) is all there is
    raise AssertionError(violation)


def generate_ws_case(seed: int) -> WsCase:
    rng = random.Random(seed)
    prefix = bytearray()
    prefix_methods = []
    for _ in range(rng.choice((0, 0, 0, 1, 2))):
        path = rng.choice(("/slow", "/echo", "/big", "/stream"))
        method = rng.choice(("GET", "GET", "HEAD"))
        prefix += f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        prefix_methods.append(method)
    offer = rng.choice((None, None, "permessage-deflate", "permessage-deflate; client_no_context_takeover",
                        "permessage-deflate; client_max_window_bits", "x-unknown, permessage-deflate"))  # fmt: skip
    params = expected_deflate(offer)
    violation = rng.choice(VIOLATIONS) if rng.random() < 0.35 else None
    if violation == "rsv1-uncompressed" and params is not None:
        violation = "rsv2"
    if violation == "too-big-compressed" and params is None:
        violation = "too-big"
    compressor = _Compressor(params) if params is not None else None
    notes: list[str] = []
    frames = bytearray()
    message_count = rng.choice((0, 1, 2, 3, 5, 8))
    violation_at = rng.randrange(message_count + 1)
    for index in range(message_count + 1):
        if index == violation_at and violation is not None:
            if violation in ("bad-utf8", "bad-utf8-cut", "too-big", "too-big-compressed", "rsv1-continuation",
                             "interrupted-message"):  # fmt: skip
                before = len(frames)
                frames += _message(rng, compressor, notes, violation)
                if violation == "bad-utf8-cut":  # the frame never ends: the server must not wait for it
                    frames = frames[: before + max(2, len(frames) - before - rng.randint(1, 3))]
                    notes.append(f"!{violation}")
                    break
            else:
                frames += _violation_frame(rng, violation)
            notes.append(f"!{violation}")
        if index < message_count:
            if rng.random() < 0.15:
                frames += frame(rng, rng.choice((PING, PONG)), rng.randbytes(rng.choice((0, 4, 125))))
            frames += _message(rng, compressor, notes, None)
    ending = rng.choice(("close", "close", "close", "open", "eof", "disconnect"))
    if violation == "bad-utf8-cut":
        ending = "open"
    if ending == "close":
        code = rng.choice((None, *GOOD_CLOSE_CODES))
        reason = rng.choice((b"", b"bye", "ciao ñ".encode()))
        frames += frame(rng, CLOSE, b"" if code is None else close_payload(code, reason))
    return WsCase(seed, bytes(prefix), prefix_methods, upgrade_request(offer), offer, params, bytes(frames),
                  split_reads(rng, len(frames)), ending, violation, notes)  # fmt: skip


# -- the reference decoder ------------------------------------------------------


@dataclass
class Expected:
    messages: list[tuple[str, bytes | str]] = field(default_factory=list)
    fail_code: int | None = None  # the server must fail the connection with this code
    client_close: bytes | None = None  # the payload of the client's valid Close frame
    incomplete: bool = False  # the stream ends inside a frame


def reference_decode(data: bytes, deflate: DeflateParams | None, max_size: int = MAX_SIZE) -> Expected:
    """What a conforming server makes of the client's frames in `data`."""
    result = Expected()
    position = 0
    message_opcode: int | None = None
    compressed = False
    parts: list[bytes] = []
    size = 0
    decompressor = None
    utf8 = codecs.getincrementaldecoder("utf-8")()

    def fail(code: int) -> Expected:
        result.fail_code = code
        return result

    while position < len(data):
        if len(data) - position < 2:
            result.incomplete = True
            break
        first, second = data[position], data[position + 1]
        fin, rsv1, rsv2, rsv3, opcode = first & 0x80, first & 0x40, first & 0x20, first & 0x10, first & 0x0F
        length, offset = second & 0x7F, position + 2
        if length >= 126:
            width = 2 if length == 126 else 8
            if len(data) < offset + width:
                result.incomplete = True
                break
            length = int.from_bytes(data[offset : offset + width], "big")
            offset += width
            if length >> 63:
                return fail(1002)
        if not second & 0x80 or rsv2 or rsv3 or opcode not in (0, 1, 2, 8, 9, 10):
            return fail(1002)
        if opcode >= 8:
            if not fin or length > 125 or rsv1:
                return fail(1002)
        elif opcode == CONT:
            if message_opcode is None or rsv1:
                return fail(1002)
        else:
            if message_opcode is not None or (rsv1 and deflate is None):
                return fail(1002)
        # The limit bounds what a server buffers: the wire size of a
        # compressed message counts too (as in the websockets library).
        if opcode in (1, 2, 0) and size + length > max_size:
            return fail(1009)
        end = offset + 4 + length
        if len(data) < end:
            available = data[offset + 4 : end]
            if opcode in (TEXT, CONT) and (message_opcode or opcode) == TEXT and not (compressed or rsv1):
                key = data[offset : offset + 4]
                if len(key) == 4 and available:
                    try:
                        utf8.decode(_unmask(available, key))
                    except UnicodeDecodeError:
                        result.incomplete = True
                        return fail(1007)
            result.incomplete = True
            break
        payload = _unmask(data[offset + 4 : end], data[offset : offset + 4])
        position = end
        if opcode == CLOSE:
            if len(payload) == 1:
                return fail(1002)
            if payload:
                code = struct.unpack("!H", payload[:2])[0]
                if not (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
                    return fail(1002)
                try:
                    payload[2:].decode("utf-8")
                except UnicodeDecodeError:
                    return fail(1007)
            result.client_close = payload
            return result
        if opcode in (PING, PONG):
            continue
        if opcode != CONT:
            message_opcode, compressed = opcode, bool(rsv1)
        size += len(payload)
        if not compressed and message_opcode == TEXT:
            try:
                utf8.decode(payload, final=bool(fin))
            except UnicodeDecodeError:
                return fail(1007)
        parts.append(payload)
        if not fin:
            continue
        whole = b"".join(parts)
        if compressed:
            assert deflate is not None
            if decompressor is None or deflate.client_no_context_takeover or decompressor.eof:
                decompressor = zlib.decompressobj(-deflate.client_window_bits)
            try:
                whole = decompressor.decompress(whole + b"\x00\x00\xff\xff", max_size + 1)
            except zlib.error:
                return fail(1007)  # see apps: a server may also say 1002; checked as "a failure code"
            if len(whole) > max_size or decompressor.unconsumed_tail:
                return fail(1009)
            if message_opcode == TEXT:
                try:
                    whole.decode("utf-8")
                except UnicodeDecodeError:
                    return fail(1007)
        result.messages.append(("text", whole.decode("utf-8")) if message_opcode == TEXT else ("bytes", whole))
        message_opcode, compressed, parts, size = None, False, [], 0
        utf8.reset()
    return result


def _unmask(payload: bytes, key: bytes) -> bytes:
    size = len(payload)
    if not size:
        return b""
    repeated = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(size, "big")


def read_handshake(data: bytes, start: int) -> tuple[int, dict[str, str], int] | None:
    """(status, headers, offset after the head) of the response at `start`, or None if incomplete."""
    if data.find(b"\r\n\r\n", start) < 0:
        return None
    response, end = parse_response(data, start, head=True)
    return response.status, {name.lower(): value for name, value in response.headers}, end


ACCEPT = accept_for(SAMPLE_KEY)
