"""The ASGI application the fuzzer serves: its behaviour is chosen by the
first segment of the request path, so that generated requests reach every
way an application reads bodies and responds (or fails, or frames its
response wrongly), and it records what it received for the checks.

`app` (module level, records nothing) is what `python -m cppcorn
tests.fuzz.apps:app` serves in the socket-level fuzzer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tests.http_harness import QUIET_ITERATIONS

# Paths whose application frames its response wrongly (issue 17 defect 7):
# none may leave mis-framed. The server owns the transfer framing: an app's
# `chunked` beside Content-Length is framed chunked alone (RFC 9112 6.3), and
# the rest is refused (500 if nothing was sent).
MISFRAMING = {
    "/bad-dup-cl": (200, [(b"content-length", b"3"), (b"content-length", b"3"), (b"transfer-encoding", b"chunked")]),
    "/bad-cl-te": (200, [(b"content-length", b"3"), (b"transfer-encoding", b"chunked")]),
    "/bad-te-gzip": (200, [(b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"gzip")]),
    "/bad-1xx": (103, [(b"content-length", b"3")]),
}
FRAMED_BY_THE_SERVER = {"/bad-dup-cl", "/bad-cl-te"}
# Paths whose application fails on purpose before it responds (the server
# answers 500 itself) or in the middle of a response (the server closes).
FAILS_BEFORE = {"/fail-before"} | (set(MISFRAMING) - FRAMED_BY_THE_SERVER)
CUT_SHORT = {"/fail-after", "/short"}


class FuzzAppError(Exception):
    """Raised by the application on purpose."""


@dataclass
class SeenRequest:
    """An HTTP request as the application received it."""

    kind: str
    method: str
    target: bytes  # raw_path, with ?query_string when there is one
    http_version: str
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False  # the body's last message (more_body False) arrived
    disconnected: bool = False  # receive() said http.disconnect

    def wants_close(self) -> bool:
        """The client asked the server to close after this request (RFC 9112 9.3, 9.6)."""
        tokens = {
            token.strip().lower()
            for name, value in self.headers
            if name == b"connection"
            for token in value.split(b",")
        }
        return b"close" in tokens or (self.http_version == "1.0" and b"keep-alive" not in tokens)


@dataclass
class WebSocketRecord:
    accepted: bool = False
    messages: list[tuple[str, bytes | str]] = field(default_factory=list)  # ("text"|"bytes", data)
    disconnect_code: int | None = None
    send_errors: int = 0


def kind_of(path: str) -> str:
    return "/" + path.split("/")[1] if path.startswith("/") else path


class FuzzApp:
    def __init__(self, *, record: bool = True, echo_only: bool = False) -> None:
        self.record = record
        self.echo_only = echo_only  # every path is /echo (the differential check compares requests only)
        self.requests: list[SeenRequest] = []
        self.websockets: list[WebSocketRecord] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await self._websocket(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: dict, receive: Any, send: Any) -> None:
        target = scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b"")
        kind = "/echo" if self.echo_only else kind_of(scope["path"])
        seen = SeenRequest(kind, scope["method"], target, scope["http_version"], list(scope["headers"]))
        if self.record:
            self.requests.append(seen)
        seq = (b"x-seq", b"%d" % (len(self.requests) - 1))

        async def read_body() -> None:
            while not seen.complete and not seen.disconnected:
                message = await receive()
                if message["type"] == "http.disconnect":
                    seen.disconnected = True
                else:
                    seen.body += message.get("body", b"")
                    seen.complete = not message.get("more_body", False)

        if kind in MISFRAMING:
            await read_body()
            status, headers = MISFRAMING[kind]
            await send({"type": "http.response.start", "status": status, "headers": [seq, *headers]})
            await send({"type": "http.response.body", "body": b"abc"})
            return
        if kind in FAILS_BEFORE:
            await read_body()
            raise FuzzAppError("failing before the response, on purpose")
        if kind == "/ignore":
            await send({"type": "http.response.start", "status": 200, "headers": [seq, (b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        if kind == "/early":
            await send({"type": "http.response.start", "status": 200, "headers": [seq]})
            await send({"type": "http.response.body", "body": b"early", "more_body": True})
            await read_body()
            await send({"type": "http.response.body", "body": bytes(seen.body[:100])})
            return
        if kind == "/slow":
            # Still running when what is pipelined behind it arrives; fewer
            # turns than the harness's QUIET_ITERATIONS, so that settle()
            # waits for it.
            for _ in range(QUIET_ITERATIONS // 2):
                await asyncio.sleep(0)
        await read_body()
        if kind == "/empty":
            await send({"type": "http.response.start", "status": 204, "headers": [seq]})
            await send({"type": "http.response.body", "body": b""})
        elif kind == "/not-modified":
            await send({"type": "http.response.start", "status": 304, "headers": [seq, (b"etag", b'"e"')]})
            await send({"type": "http.response.body", "body": b""})
        elif kind == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": [seq]})
            for part in (b"one,", b"", bytes(seen.body[:1000]), b"three"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif kind == "/big":
            await send({"type": "http.response.start", "status": 200, "headers": [seq]})
            for _ in range(16):
                await send({"type": "http.response.body", "body": b"b" * 65536, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif kind == "/fail-after":
            await send({"type": "http.response.start", "status": 200, "headers": [seq]})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            raise FuzzAppError("failing in the middle of the response, on purpose")
        elif kind == "/short":
            await send({"type": "http.response.start", "status": 200, "headers": [seq, (b"content-length", b"10")]})
            await send({"type": "http.response.body", "body": b"short"})
        else:  # /echo and anything else
            body = bytes(seen.body)
            headers = [seq, (b"content-length", b"%d" % len(body))]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def _websocket(self, receive: Any, send: Any) -> None:
        record = WebSocketRecord()
        if self.record:
            self.websockets.append(record)
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        record.accepted = True
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                record.disconnect_code = message.get("code")
                return
            if message.get("text") is not None:
                record.messages.append(("text", message["text"]))
                reply = {"type": "websocket.send", "text": message["text"]}
            else:
                record.messages.append(("bytes", message["bytes"]))
                reply = {"type": "websocket.send", "bytes": message["bytes"]}
            try:
                await send(reply)
            except Exception:  # closed meanwhile (ASGI: an OSError); what is queued must still come
                record.send_errors += 1


app = FuzzApp(record=False)
