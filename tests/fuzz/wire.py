"""A strict client-side reader of what a server writes: HTTP/1.1 responses
(RFC 9112) and, after a 101, WebSocket frames (RFC 6455 section 5).

Stricter than tests/http_harness.py's `parse_response` on purpose: that one
reads what a test expects, this one judges what a hostile-input run
produced. Every deviation a real client or proxy could read two ways is a
`Violation` (duplicate or malformed Content-Length, Content-Length beside
Transfer-Encoding, a transfer coding other than a final chunked, bad chunk
framing, a malformed status line or field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.http_harness import Response
from tests.websocket_client import Frame, parse_frame

STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9]) [\t -~\x80-\xff]*")
TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FIELD_VALUE = re.compile(rb"[\t -~\x80-\xff]*")
CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class Violation(Exception):
    """The server wrote something a strict client must reject."""


class Incomplete(Exception):
    """The bytes end inside a response (the connection is still open)."""


def _fields(raw_lines: list[bytes]) -> list[tuple[str, str]]:
    fields = []
    for line in raw_lines:
        name, colon, value = line.partition(b":")
        if not colon or not TOKEN.fullmatch(name):
            raise Violation(f"malformed field line {line!r}")
        value = value.strip(b" \t")
        if not FIELD_VALUE.fullmatch(value):
            raise Violation(f"control character in field {line!r}")
        fields.append((name.decode("latin-1"), value.decode("latin-1")))
    return fields


def read_response(data: bytes, start: int, *, head: bool, eof: bool) -> tuple[Response, int]:
    """The response at `data[start:]` and the offset after it. `head`: it
    answers a HEAD request; `eof`: nothing comes after `data`."""
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        if b"\n\n" in data[start:] or (eof and data[start:]):
            raise Violation(f"response head without CRLF CRLF: {data[start : start + 300]!r}")
        raise Incomplete
    raw_head = data[start : end + 4]
    lines = raw_head[:-4].split(b"\r\n")
    if any(b"\r" in line or b"\n" in line for line in lines):
        raise Violation(f"bare CR or LF in response head {raw_head!r}")
    status_line = STATUS_LINE.fullmatch(lines[0])
    if not status_line:
        raise Violation(f"malformed status line {lines[0]!r}")
    response = Response(int(status_line[1]), "", lines[0][:8].decode(), _fields(lines[1:]), raw_head)
    position = end + 4
    lengths = response.header_list("content-length")
    codings = [c.strip().lower() for v in response.header_list("transfer-encoding") for c in v.split(",")]
    if len(lengths) > 1:
        raise Violation(f"{len(lengths)} Content-Length fields: {raw_head!r}")
    if lengths and codings:
        raise Violation(f"Content-Length beside Transfer-Encoding: {raw_head!r}")
    if lengths and not lengths[0].isdigit():
        raise Violation(f"malformed Content-Length: {raw_head!r}")
    if codings and codings[-1] != "chunked":
        raise Violation(f"final transfer coding is not chunked: {raw_head!r}")
    if codings.count("chunked") > 1:
        raise Violation(f"chunked applied twice: {raw_head!r}")
    status = response.status
    if status < 200 or status in (204, 304):
        if status < 200 and (lengths or codings):
            raise Violation(f"framing fields on a {status} response: {raw_head!r}")
        if status == 204 and (lengths not in ([], ["0"]) or codings):
            raise Violation(f"framing fields on a 204 response: {raw_head!r}")
        return response, position
    if head:
        return response, position
    if codings:
        response.framing = "chunked"
        return _read_chunked(response, data, position, eof)
    if lengths:
        response.framing = "content-length"
        length = int(lengths[0])
        body = data[position : position + length]
        if len(body) < length:
            if not eof:
                raise Incomplete
            response.complete = False
        response.body = response.raw_body = body
        return response, position + len(body)
    response.framing = "close"
    if not eof:
        raise Incomplete
    response.body = response.raw_body = data[position:]
    return response, len(data)


def _read_chunked(response: Response, data: bytes, position: int, eof: bool) -> tuple[Response, int]:
    start = position

    def cut_short() -> tuple[Response, int]:
        if not eof:
            raise Incomplete
        response.complete = False
        response.raw_body = data[start:]
        response.body = b"".join(response.chunks)
        return response, len(data)

    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return cut_short()
        size_text = data[position:line_end]
        if not CHUNK_SIZE.fullmatch(size_text):  # the server writes no chunk extensions
            raise Violation(f"malformed chunk size line {size_text!r}")
        size = int(size_text, 16)
        position = line_end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", position - 2)
            if trailer_end < 0:
                return cut_short()
            response.trailers = _fields([line for line in data[position:trailer_end].split(b"\r\n") if line])
            position = trailer_end + 4
            break
        if len(data) < position + size + 2:
            return cut_short()
        if data[position + size : position + size + 2] != b"\r\n":
            raise Violation(f"chunk of {size} bytes not followed by CRLF")
        response.chunks.append(data[position : position + size])
        position += size + 2
    response.raw_body = data[start:position]
    response.body = b"".join(response.chunks)
    return response, position


# -- WebSocket frames from the server -------------------------------------------

VALID_OPCODES = {0x0, 0x1, 0x2, 0x8, 0x9, 0xA}


def valid_close_code(code: int) -> bool:
    """A code an endpoint may send in a Close frame (RFC 6455 7.4)."""
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) or 3000 <= code <= 4999


@dataclass
class ServerFrames:
    frames: list[Frame] = field(default_factory=list)
    rest: bytes = b""  # an incomplete frame at the end


def read_server_frames(data: bytes, *, deflate: bool) -> ServerFrames:
    """Every frame in `data`, checked as a client must check a server's
    frames; Violation on the first bad one or on bytes after a Close."""
    result = ServerFrames()
    position = 0
    in_message = False
    closed = False
    while position < len(data):
        parsed = parse_frame(data[position:])
        if parsed is None:
            result.rest = data[position:]
            break
        frame, size = parsed
        where = f"server frame {len(result.frames)} ({data[position : position + min(size, 40)]!r})"
        position += size
        if closed:
            raise Violation(f"{where} after the server's Close frame")
        if frame.masked:
            raise Violation(f"{where} is masked")
        if frame.opcode not in VALID_OPCODES:
            raise Violation(f"{where} has opcode {frame.opcode}")
        if frame.rsv2 or frame.rsv3 or (frame.rsv1 and (not deflate or frame.opcode not in (0x1, 0x2))):
            raise Violation(f"{where} has reserved bits set")
        if frame.opcode >= 0x8:
            if not frame.fin or len(frame.payload) > 125:
                raise Violation(f"{where}: fragmented or long control frame")
            if frame.opcode == 0x8:
                closed = True
                if len(frame.payload) == 1:
                    raise Violation(f"{where}: close payload of 1 byte")
                if frame.payload and not valid_close_code(frame.close_code):
                    raise Violation(f"{where}: close code {frame.close_code}")
                try:
                    frame.payload[2:].decode("utf-8")
                except UnicodeDecodeError:
                    raise Violation(f"{where}: close reason is not UTF-8") from None
        elif frame.opcode == 0x0:
            if not in_message:
                raise Violation(f"{where}: continuation outside a message")
            in_message = not frame.fin
        else:
            if in_message:
                raise Violation(f"{where}: new data frame inside a fragmented message")
            in_message = not frame.fin
        result.frames.append(frame)
    return result
