"""The in-process driver: each generated case is played against the HTTP
protocol behind tests/http_harness.py's fake transport (no sockets), and the
invariants are checked on what the server wrote and what the application
received:

- every response strictly well-formed (tests/fuzz/wire.py), one per request
  the application saw, in order (the application numbers them, x-seq), then
  at most one server-made error response, and nothing after a response that
  says `connection: close` or after a request that asked to close;
- no body for HEAD, 204 and 304; Content-Length honoured; no chunked body
  for an HTTP/1.0 client; 1xx never final, 100 only after Expect;
- WebSocket: the 101 as negotiated, the server's frames well-formed, the
  messages the application receives equal to what the reference decoder
  (tests/fuzz/ws_gen.py) delivers, each echoed before the close, the close
  code the reference decoder expects when the client broke the protocol;
- after the client is gone: no task, connection or waiter left, nothing
  raised in a callback, no error logged but the application's own, and every
  step bounded (the harness raises when the loop does not become idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from cppcorn.http.websocket import WebSocketSettings

from tests.fuzz.apps import CUT_SHORT, FAILS_BEFORE, FRAMED_BY_THE_SERVER, MISFRAMING, FuzzApp, FuzzAppError
from tests.fuzz.findings import CaseFailed, Finding
from tests.fuzz.http_gen import HttpCase, generate_http_case
from tests.fuzz.wire import Incomplete, Violation, read_response, read_server_frames
from tests.fuzz.ws_gen import ACCEPT, MAX_SIZE, WsCase, expected_deflate, generate_ws_case, reference_decode
from tests.http_harness import Harness, HarnessError, MemoryConnection, MemoryServer

# A write buffer small enough that large responses pause the protocol's writing.
WRITE_BUFFER = (65536, 16384)


@dataclass
class Counts:
    cases: int = 0
    requests: int = 0  # requests the application saw
    responses: int = 0
    frames: int = 0  # WebSocket frames the server wrote
    messages: int = 0  # WebSocket messages the application received

    def add(self, other: Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def new_server(harness: Harness, app: FuzzApp) -> MemoryServer:
    # The WebSocket protocol's log (failed connections, the app's errors) is
    # not checked: what the client sees is. It must not go to stderr either.
    logger = logging.Logger("fuzz.websocket")
    logger.addHandler(logging.NullHandler())
    websocket = WebSocketSettings(app=app, logger=logger, ping_interval=None, max_size=MAX_SIZE)
    return harness.server(app, websocket=websocket)


def _play(conn: MemoryConnection, data: bytes, reads: list[int], *, drain: bool) -> None:
    position = 0
    for size in reads:
        conn.send(data[position : position + size])
        position += size
        if drain:
            conn.read()


def _end(conn: MemoryConnection, ending: str, *, drain: bool) -> None:
    if ending == "eof":
        conn.send_eof()
    elif ending == "disconnect":
        conn.disconnect()
    for _ in range(100):  # the client reads all that comes (each read lets 64 KiB more out)
        if not drain or not conn.transport.unread:
            break
        conn.read()


def _transfer_codings(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"transfer-encoding" for name, _ in headers)


def check_http_responses(case: HttpCase, app: FuzzApp, conn: MemoryConnection, start: int = 0) -> int:
    """The invariants on the response stream of an HTTP case; the number of responses."""
    data = conn.received
    closed = conn.closed
    seen = app.requests
    position = start
    responses = []
    pending = False
    while position < len(data):
        index = len(responses)
        spec = case.intact(index)
        head_server_error = index >= len(seen) and spec is not None and spec.method == "HEAD"
        head = seen[index].method == "HEAD" if index < len(seen) else head_server_error
        context = {"index": index, "app_kind": seen[index].kind if index < len(seen) else None}
        try:
            response, position = read_response(data, position, head=head, eof=closed)
        except Incomplete:
            pending = True
            break
        except Violation as violation:
            raise CaseFailed("strict-response", str(violation), **context) from None
        if head and not data.startswith(b"HTTP/1.", position) and position < len(data):
            # What follows the head of a HEAD response can only be the next response.
            context["head_server_error"] = response.header("x-seq") is None
            raise CaseFailed("head-body", f"{response.raw_head!r} followed by {data[position:][:100]!r}", **context)
        if response.status < 200:
            if response.status == 101:
                break  # an upgrade the generator made by chance: WebSocket cases check those
            expected = index < len(seen) and any(n == b"expect" for n, _ in seen[index].headers)
            if response.status != 100 or not expected:
                raise CaseFailed("1xx", f"{response.raw_head!r} as response {index}", **context)
            continue
        responses.append(response)
        sequence = response.header("x-seq")
        if index < len(seen):
            request = seen[index]
            context.update(method=request.method, http_version=request.http_version)
            if sequence is None:
                app_failed = request.kind in FAILS_BEFORE and response.status == 500
                body_refused = not request.complete and response.status >= 400  # a malformed body: 400, 413
                if not (app_failed or body_refused):
                    raise CaseFailed("order", f"response {index} was not made by the app: {response.raw_head!r}",
                                     **context)  # fmt: skip
            elif sequence != str(index):
                raise CaseFailed("order", f"response {index} answers request {sequence}", **context)
            elif request.kind in FRAMED_BY_THE_SERVER:
                if response.framing == "content-length" or response.body != (b"" if head else b"abc"):
                    raise CaseFailed("misframed-response", f"written: {response.raw!r}", **context)
            elif request.kind in MISFRAMING:
                raise CaseFailed("misframed-response", f"written: {response.raw_head!r}", **context)
            if request.http_version == "1.0" and response.framing == "chunked":
                raise CaseFailed("chunked-to-1.0", f"{response.raw_head!r}", **context)
            # Cut short is right when the app fails mid-response or the request body turned out malformed
            # after the response started (the server can only close then).
            body_failed = not request.complete
            if (
                not response.complete
                and request.kind not in CUT_SHORT
                and case.ending != "disconnect"
                and not body_failed
            ):
                raise CaseFailed("cut-short", f"response {index} cut short: {response.raw[:300]!r}", **context)
        elif sequence is not None or response.status < 400:
            raise CaseFailed("order", f"response {index} for no request the app saw: {response.raw_head!r}", **context)
        must_close = response.header("connection") == "close"
        if index < len(seen):
            request = seen[index]
            te_in_1_0 = request.http_version == "1.0" and _transfer_codings(request.headers)
            has_length = any(name == b"content-length" for name, _ in request.headers)
            if request.wants_close() or te_in_1_0 or (has_length and _transfer_codings(request.headers)):
                context["transfer_encoding_in_1_0"] = te_in_1_0
                if position < len(data):
                    more = data[position:][:200]
                    raise CaseFailed("kept-alive-after-close", f"more after response {index}: {more!r}", **context)
                must_close = True
        elif not must_close:
            raise CaseFailed("error-keeps-alive", f"server-made {response.raw_head!r} without connection: close")
        if must_close:
            if position < len(data):
                raise CaseFailed("after-close", f"bytes after {response.raw_head!r}: {data[position:][:200]!r}",
                                 **context)  # fmt: skip
            if not closed and not pending:
                raise CaseFailed("not-closed", f"connection open after {response.raw_head!r}", **context)
    if case.ending == "open" and not closed:
        for index, request in enumerate(seen):
            waiting = not request.complete and not request.disconnected
            if index >= len(responses) and not waiting and not (pending and index == len(responses)):
                raise CaseFailed("missing-response", f"request {index} ({request.kind}) got no response",
                                 index=index, app_kind=request.kind)  # fmt: skip
    return len(responses)


def _check_logs(server: MemoryServer, app: FuzzApp) -> None:
    # RuntimeError: what the server raises in send() for a response the app frames wrongly
    app_errs = any(request.kind in MISFRAMING or request.kind in CUT_SHORT for request in app.requests)
    for record in server.log:
        if record.levelno < logging.ERROR:
            continue
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, FuzzAppError) or (app_errs and isinstance(exc, RuntimeError)):
            continue
        if exc is None and app_errs:
            continue
        raise CaseFailed("error-logged", f"{record.getMessage()} {exc!r}")


def _finish(harness: Harness, server: MemoryServer, conn: MemoryConnection, app: FuzzApp, **context: object) -> None:
    """The client goes away; nothing may be left behind."""
    if not conn.lost:
        conn.disconnect()
    harness.settle()
    leftovers = [task for task in asyncio.all_tasks(harness.loop) if not task.done()]
    if leftovers or server.state.tasks or server.state.connections:
        raise CaseFailed("leftover-tasks", f"after connection_lost: tasks {leftovers or server.state.tasks}, "
                         f"connections {server.state.connections}", **context)  # fmt: skip
    _check_logs(server, app)


def run_http_case(harness: Harness, case: HttpCase) -> Counts:
    app = FuzzApp()
    server = new_server(harness, app)
    drain = case.seed % 4 == 0
    conn = server.connect(write_buffer=WRITE_BUFFER) if drain else server.connect()
    try:
        _play(conn, case.data, case.reads, drain=drain)
        _end(conn, case.ending, drain=drain)
        responses = check_http_responses(case, app, conn)
        _finish(harness, server, conn, app)
    finally:
        harness.connections.remove(conn)
    return Counts(cases=1, requests=len(app.requests), responses=responses)


def run_ws_case(harness: Harness, case: WsCase) -> Counts:
    app = FuzzApp()
    server = new_server(harness, app)
    drain = bool(case.prefix) and case.seed % 2 == 0
    conn = server.connect(write_buffer=WRITE_BUFFER) if drain else server.connect()
    context = {"pipelined_before_upgrade": bool(case.prefix), "violation": case.violation}
    try:
        # The prefix and the upgrade come in one write with the first frames, as a pipelining client sends them.
        first = case.reads[0] if case.reads else 0
        conn.send(case.prefix + case.upgrade + case.frames[:first])
        if drain:
            conn.read()
        _play(conn, case.frames[first:], case.reads[1:], drain=drain)
        _end(conn, case.ending, drain=drain)
        counts = _check_ws(case, app, conn, context)
        _finish(harness, server, conn, app, **context)
    finally:
        harness.connections.remove(conn)
    return counts


def _check_ws(case: WsCase, app: FuzzApp, conn: MemoryConnection, context: dict) -> Counts:
    data = conn.received
    position = 0
    for index, method in enumerate(case.prefix_methods):
        try:
            response, position = read_response(data, position, head=method == "HEAD", eof=conn.closed)
        except Incomplete:
            if case.ending == "disconnect":
                return Counts(cases=1)
            raise CaseFailed("hang", f"pipelined response {index} incomplete before the 101", **context) from None
        except Violation as violation:
            raise CaseFailed("strict-response", str(violation), **context) from None
        if response.header("x-seq") != str(index):
            raise CaseFailed("order", f"pipelined response {index}: {response.raw_head!r}", **context)
    try:
        handshake, position = read_response(data, position, head=False, eof=False)
    except Incomplete:
        if case.ending == "disconnect":
            return Counts(cases=1)  # gone before its turn
        raise CaseFailed("ws-handshake", f"no 101: {data[position:][:300]!r}", **context) from None
    except Violation as error:
        raise CaseFailed("ws-handshake", f"no 101: {error!r} {data[position:][:300]!r}", **context) from None
    if handshake.status != 101 or handshake.header("sec-websocket-accept") != ACCEPT:
        raise CaseFailed("ws-handshake", f"{handshake.raw_head!r}", **context)
    agreed = handshake.header("sec-websocket-extensions")
    deflate = expected_deflate(agreed) if agreed else None
    if deflate != case.deflate:
        raise CaseFailed("ws-negotiation", f"offer {case.offer!r} got {agreed!r}", **context)
    try:
        frames = read_server_frames(data[position:], deflate=deflate is not None).frames
    except Violation as violation:
        raise CaseFailed("ws-frames", str(violation), **context) from None
    expected = reference_decode(case.frames, case.deflate)
    received = app.websockets[0].messages if app.websockets else []
    if expected.fail_code is None and case.ending in ("eof", "open") and len(received) < len(expected.messages):
        context["received_none"] = not received
        # Without a Close or a violation, the app must still get every message before the client left.
        raise CaseFailed("ws-messages", f"received {len(received)} of {len(expected.messages)} messages", **context)
    if received != expected.messages[: len(received)] or (
        len(received) < len(expected.messages) and case.ending == "close"
    ):
        context["received_none"] = not received
        context["lost_after_bfinal"] = _lost_after_bfinal(case, received, expected.messages)
        raise CaseFailed("ws-messages", f"app received {_short(received)}, reference {_short(expected.messages)}",
                         **context)  # fmt: skip
    replies = _server_messages(frames, deflate is not None)
    if replies[: len(received)] != [data for _, data in received][: len(replies)]:
        raise CaseFailed("ws-echo", f"echoes {_short(replies)} for {_short(received)}", **context)
    closes = [frame for frame in frames if frame.opcode == 0x8]
    if expected.fail_code is not None:
        if not closes and expected.incomplete and case.violation == "bad-utf8-cut":
            raise CaseFailed("ws-utf8-not-failed-early", "invalid UTF-8 in an unfinished frame: no 1007", **context)
        if not closes or closes[0].close_code != expected.fail_code:
            got = closes[0].close_code if closes else None
            # The replies to the messages before the violation go out first, and one may wait for a client
            # that reads no more: one that resets the connection can leave before the Close is written.
            gone_first = got is None and case.ending == "disconnect"
            if not gone_first and not (
                closes and expected.fail_code == 1007 and got == 1002 and "deflate" in str(case.notes)
            ):
                raise CaseFailed("ws-close-code", f"{case.violation}: expected {expected.fail_code}, got {got}",
                                 **context)  # fmt: skip
        if len(replies) < len(received):
            raise CaseFailed("ws-reply-dropped", f"{len(received)} messages, {len(replies)} echoes before the close",
                             **context)  # fmt: skip
        if not conn.closed:
            raise CaseFailed("not-closed", "open after failing the WebSocket connection", **context)
    elif expected.client_close is not None:
        if not closes:
            raise CaseFailed("ws-close", "no Close frame in reply to the client's", **context)
        if not conn.closed:
            raise CaseFailed("not-closed", "open after the closing handshake", **context)
    elif expected.incomplete and case.violation == "bad-utf8-cut" and not closes:
        pass  # only a failure when the reference says 1007 (fail_code above)
    return Counts(cases=1, requests=len(case.prefix_methods) + 1, frames=len(frames), messages=len(received))


def _lost_after_bfinal(case: WsCase, received: list, expected: list) -> bool:
    """Defect 9's signature: a message after one that ended in a BFINAL block arrives empty."""
    compressed = [note for note in case.notes if note.startswith("deflate:")]
    if "deflate:bfinal" not in compressed[:-1]:
        return False
    for index, got in enumerate(received):
        wanted = expected[index] if index < len(expected) else None
        if got != wanted:  # empty where the reference has data, or has failed the connection
            return not got[1] and (wanted is None or bool(wanted[1]))
    return False


def _server_messages(frames: list, deflate: bool) -> list[bytes | str]:
    import zlib

    messages: list[bytes | str] = []
    parts: list[bytes] = []
    opcode = compressed = None
    decompressor = zlib.decompressobj(-15)
    for frame in frames:
        if frame.opcode >= 0x8:
            continue
        if frame.opcode:
            opcode, compressed, parts = frame.opcode, frame.rsv1, []
        parts.append(frame.payload)
        if frame.fin:
            whole = b"".join(parts)
            if compressed:
                whole = decompressor.decompress(whole + b"\x00\x00\xff\xff")
            messages.append(whole.decode("utf-8") if opcode == 0x1 else whole)
    return messages


def _short(items: list) -> str:
    text = repr([item if len(repr(item)) < 60 else f"<{len(item)}>" for item in items])
    return text[:400]


def run_case(harness: Harness, seed: int, kind: str) -> Counts:
    case = generate_http_case(seed) if kind == "http" else generate_ws_case(seed)
    runner = run_http_case if kind == "http" else run_ws_case
    return runner(harness, case)  # type: ignore[arg-type]


def finding_for(seed: int, kind: str, error: BaseException) -> Finding:
    case = generate_http_case(seed) if kind == "http" else generate_ws_case(seed)
    if isinstance(error, CaseFailed):
        invariant, message, context = error.invariant, error.message, error.context
    elif isinstance(error, HarnessError):
        text = str(error)
        invariant = "callback-error" if "raised" in text or "reported" in text else "hang"
        message, context = text[:600], {}
    else:
        invariant, message, context = "crash", repr(error)[:600], {}
    if isinstance(case, WsCase):
        context.setdefault("pipelined_before_upgrade", bool(case.prefix))
    return Finding("inprocess", invariant, message, case.describe(), seed, case.data, case.reads, case.ending, context)


def fuzz(
    seeds: range | list[int], *, loop: str = "asyncio", deadline: float | None = None
) -> tuple[Counts, list[Finding]]:
    """Run the HTTP and the WebSocket case of each seed; stop at `deadline` (time.monotonic())."""
    counts = Counts()
    findings: list[Finding] = []
    harness = Harness(loop)
    try:
        for seed in seeds:
            if deadline is not None and time.monotonic() > deadline:
                break
            for kind in ("http", "ws"):
                try:
                    counts.add(run_case(harness, seed, kind))
                except Exception as error:
                    counts.cases += 1
                    findings.append(finding_for(seed, kind, error))
                    harness.close()  # a broken case may leave anything behind: a new loop for the next
                    harness = Harness(loop)
    finally:
        with contextlib.suppress(HarnessError):
            harness.close()
    return counts, findings
