"""A raw WebSocket client for tests: the opening handshake over a plain socket,
then frames built by hand (masked or not, any opcode, reserved bits, declared
lengths), so that malformed input can be sent and the server's frames read
back exactly as they are on the wire.

Every read is bounded by the socket timeout. Frames are built and parsed by
module functions, which bench/ws.py's asynchronous load generator uses too.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import zlib
from dataclasses import dataclass, field

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3


def accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bool = True,
    length: int | None = None,
    key: bytes | None = None,
) -> bytes:
    """One frame as a client sends it. `length` overrides the declared
    payload length (the payload itself is still `payload`); `key` is the
    masking key (default: a random one)."""
    declared = len(payload) if length is None else length
    head = bytearray(
        [(0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0) | (0x10 if rsv3 else 0) | opcode]
    )
    mask_bit = 0x80 if mask else 0
    if declared < 126:
        head.append(mask_bit | declared)
    elif declared <= 0xFFFF:
        head.append(mask_bit | 126)
        head += struct.pack("!H", declared)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", declared)
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4) if key is None else key
    masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload)) if len(payload) < 4096 else _mask(payload, key)
    return bytes(head) + key + masked


def _mask(payload: bytes, key: bytes) -> bytes:
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def deflate(payload: bytes, window_bits: int = 15) -> bytes:
    """A whole message compressed as permessage-deflate sends it (no context
    takeover): raw deflate, sync-flushed, without the final 00 00 ff ff."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -window_bits)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def inflate(payload: bytes, decompressor: zlib._Decompress | None = None) -> bytes:
    decompressor = decompressor or zlib.decompressobj(-15)
    return decompressor.decompress(payload + b"\x00\x00\xff\xff")


@dataclass
class Frame:
    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    masked: bool
    payload: bytes

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode("utf-8")


def parse_frame(data: bytes | bytearray) -> tuple[Frame, int] | None:
    """The frame at the start of `data` (unmasked if it was masked) and its
    length; None while `data` does not hold all of it."""
    if len(data) < 2:
        return None
    first, second = data[0], data[1]
    length, offset = second & 0x7F, 2
    if length >= 126:
        size = 2 if length == 126 else 8
        if len(data) < offset + size:
            return None
        length = int.from_bytes(data[offset : offset + size], "big")
        offset += size
    masked = bool(second & 0x80)
    payload_at = offset + 4 if masked else offset
    end = payload_at + length
    if len(data) < end:
        return None
    payload = bytes(data[payload_at:end])
    if masked:
        payload = _mask(payload, bytes(data[offset:payload_at]))
    frame = Frame(
        fin=bool(first & 0x80),
        rsv1=bool(first & 0x40),
        rsv2=bool(first & 0x20),
        rsv3=bool(first & 0x10),
        opcode=first & 0x0F,
        masked=masked,
        payload=payload,
    )
    return frame, end


@dataclass
class HandshakeResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes = b""

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


class RawWebSocket:
    """A client on a plain socket. `connect()` sends the upgrade request and
    reads the response head; frames are sent and read by hand afterwards."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        self.response: HandshakeResponse | None = None

    # -- handshake ---------------------------------------------------------

    def request(
        self,
        path: str = "/",
        *,
        key: str | None = SAMPLE_KEY,
        version: str | None = "13",
        headers: list[tuple[str, str]] | tuple = (),
        method: str = "GET",
    ) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade"]
        if key is not None:
            lines.append(f"Sec-WebSocket-Key: {key}")
        if version is not None:
            lines.append(f"Sec-WebSocket-Version: {version}")
        lines += [f"{name}: {value}" for name, value in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def connect(self, path: str = "/", **kwargs) -> HandshakeResponse:
        self.sock.sendall(self.request(path, **kwargs))
        return self.read_handshake()

    def read_handshake(self) -> HandshakeResponse:
        raw = self._read_until(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        self.response = HandshakeResponse(status, headers, raw)
        return self.response

    def read_body(self) -> bytes:
        """The body of a non-101 response (Content-Length framed or up to EOF)."""
        assert self.response is not None
        length = self.response.header("content-length")
        if length is not None:
            return self._read_exactly(int(length))
        if (self.response.header("transfer-encoding") or "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._read_until(b"\r\n")
                    return body
                body += self._read_exactly(size)
                self._read_until(b"\r\n")
        return self.read_to_eof()

    # -- bytes -------------------------------------------------------------

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError(f"connection closed by the server; buffer {self.buffer[:200]!r}")
        self.buffer += chunk

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._fill()
        index = self.buffer.index(marker) + len(marker)
        data, self.buffer = self.buffer[:index], self.buffer[index:]
        return data

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_to_eof(self) -> bytes:
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            self.buffer += chunk
        data, self.buffer = self.buffer, b""
        return data

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    # -- frames ------------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes = b"", **kwargs) -> None:
        self.sock.sendall(encode_frame(opcode, payload, **kwargs))

    def send_text(self, text: str) -> None:
        self.send_frame(TEXT, text.encode("utf-8"))

    def send_bytes(self, data: bytes) -> None:
        self.send_frame(BINARY, data)

    def send_close(self, code: int | None = 1000, reason: bytes = b"") -> None:
        self.send_frame(CLOSE, b"" if code is None else close_payload(code, reason))

    def recv_frame(self) -> Frame:
        while (parsed := parse_frame(self.buffer)) is None:
            self._fill()
        frame, end = parsed
        self.buffer = self.buffer[end:]
        return frame

    def recv_data_frame(self) -> Frame:
        """The next frame that is not a ping or pong."""
        while True:
            frame = self.recv_frame()
            if frame.opcode not in (PING, PONG):
                return frame

    def recv_close(self) -> Frame:
        """Read until the server's close frame (data frames before it are skipped)."""
        while True:
            frame = self.recv_frame()
            if frame.opcode == CLOSE:
                return frame

    def server_closed(self) -> bool:
        """True once the server has closed the TCP connection (within the timeout)."""
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return True
                self.buffer += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()
