"""A differential check of request framing against h11, a strict reference
parser written from RFC 9112 (and independent of llhttp).

For each generated stream, the requests cppcorn hands the application
(method, target, headers, body; how many) must be the ones h11 parses from
the same bytes, or cppcorn must refuse where h11 refuses. Where the two may
rightly differ, `allowed_disagreement()` says so, each case with its reason;
everything else is a finding. cppcorn gets the bytes in the case's reads (so
a split never changes what is parsed), h11 all at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import h11

from tests.fuzz.apps import FuzzApp, SeenRequest
from tests.fuzz.findings import CaseFailed
from tests.fuzz.http_gen import HttpCase
from tests.http_harness import Harness

MAX_HEAD = 65536
# A chunk-size line with an extension: the chunk size, then ";".
CHUNK_EXTENSION = re.compile(rb"[0-9A-Fa-f]+[ \t]*;")
KNOWN_METHODS = {
    m.encode() for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
}  # cppcorn's default max_head_size; h11 gets the same bound


@dataclass
class Parsed:
    method: bytes
    target: bytes
    http_version: str
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""


@dataclass
class Reference:
    requests: list[Parsed] = field(default_factory=list)  # complete ones
    error: str | None = None  # h11 refused the request after these
    must_close: bool = False  # h11 stopped: the last request ends the connection


def h11_parse(data: bytes) -> Reference:
    result = Reference()
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    conn.receive_data(data)
    current: Parsed | None = None
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as error:
            result.error = str(error)
            return result
        if event is h11.NEED_DATA:
            return result
        if event is h11.PAUSED:
            if conn.our_state is not h11.SEND_RESPONSE:
                return result
            continue
        if isinstance(event, h11.Request):
            version = event.http_version.decode()
            current = Parsed(
                event.method, event.target, version, [(n.lower(), v) for n, v in event.headers.raw_items()]
            )
        elif isinstance(event, h11.Data):
            assert current is not None
            current.body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert current is not None
            result.requests.append(current)
            # Anything but a 2xx or 101 turns down a CONNECT or an Upgrade, so h11 reads on.
            conn.send(h11.Response(status_code=404, headers=[("content-length", "0")]))
            conn.send(h11.EndOfMessage())
            if conn.our_state is h11.MUST_CLOSE:
                result.must_close = True
                return result
            conn.start_next_cycle()
        elif isinstance(event, h11.ConnectionClosed):
            return result


def _as_parsed(request: SeenRequest) -> Parsed:
    return Parsed(request.method.encode(), request.target, request.http_version, request.headers, bytes(request.body))


def _tokens(headers: list[tuple[bytes, bytes]], name: bytes) -> set[bytes]:
    return {t.strip().lower() for n, v in headers if n == name for t in v.split(b",")}


def _same_target(ours: bytes, reference: bytes) -> bool:
    """ASGI's raw_path has no fragment, and an absolute-form target becomes
    its path (RFC 9112 3.2.2: the server takes the authority from it)."""
    reference = reference.split(b"#")[0]
    if reference.lower().startswith((b"http://", b"https://")):
        rest = reference.split(b"//", 1)[1]
        reference = b"/" + rest.split(b"/", 1)[1] if b"/" in rest else b"/"
    return ours == reference


def _normalized(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """h11 lowercases Transfer-Encoding's value (codings are case-insensitive, RFC 9112 7)."""
    return [(name, value.lower() if name == b"transfer-encoding" else value) for name, value in headers]


def _compare(index: int, ours: Parsed, reference: Parsed) -> None:
    context = {"index": index, "method": reference.method.decode("latin-1"), "http_version": reference.http_version}
    if ours.method != reference.method or not _same_target(ours.target, reference.target):
        raise CaseFailed("differential-request-line", f"request {index}: {ours.method!r} {ours.target!r}, "
                         f"h11 {reference.method!r} {reference.target!r}", **context)  # fmt: skip
    if _normalized(ours.headers) != reference.headers:
        raise CaseFailed("differential-headers", f"request {index}: {ours.headers!r}, h11 {reference.headers!r}",
                         **context)  # fmt: skip
    if ours.body != reference.body:
        raise CaseFailed("differential-body", f"request {index}: {len(ours.body)} bytes {ours.body[:80]!r}, "
                         f"h11 {len(reference.body)} bytes {reference.body[:80]!r}", **context)  # fmt: skip


def allowed_disagreement(case: HttpCase, ours: list[Parsed], reference: Reference) -> str | None:
    """Why cppcorn may serve a different number of requests than h11, or None."""
    count = len(reference.requests)
    if reference.must_close and len(ours) > count and count:
        last = reference.requests[-1]
        tokens = _tokens(last.headers, b"connection")
        # h11 never keeps an HTTP/1.0 connection alive; Uvicorn (and RFC 9112 9.3, "keep-alive" in HTTP/1.0) does.
        persistent = last.http_version == "1.0" and b"keep-alive" in tokens and b"close" not in tokens
        if persistent and not any(n == b"transfer-encoding" for n, _ in last.headers):
            return "HTTP/1.0 keep-alive"
    if len(ours) < count:
        # ASGI has no tunnel: a CONNECT (its body framed as any request's) is
        # the connection's last request, where h11 reads on until a 2xx.
        if ours and ours[-1].method == b"CONNECT":
            return "nothing after a CONNECT"
        refused = reference.requests[len(ours)]
        lengths = [value for name, value in refused.headers if name == b"content-length"]
        raw = case.data.lower()
        # h11 merges identical Content-Length values (a list, or repeated
        # fields) into one; RFC 9110 8.6 lets a recipient reject them instead.
        if lengths and (
            raw.count(b"\ncontent-length:") > 1 or re.search(rb"content-length:[ \t]*%s[ \t]*," % lengths[0], raw)
        ):
            return "repeated Content-Length"
        # RFC 9112 6.1: a server MAY reject a request with both Transfer-Encoding and Content-Length.
        if lengths and any(name == b"transfer-encoding" for name, _ in refused.headers):
            return "Content-Length beside Transfer-Encoding"
        # RFC 9112 2.2: a recipient MAY take a bare LF as a line terminator (h11 does; llhttp refuses):
        # made by the mutation, or by a CR flipped or shifted before its LF.
        at = case.mutated_at or 0
        if case.mutation == "bare-lf" or (case.mutation in ("flip", "insert") and case.data[at + 1 : at + 2] == b"\n"):
            return "bare LF"
        # RFC 9112 5.2: a server MUST either reject an obs-fold with 400 or replace it (h11 does).
        if case.mutation == "obs-fold":
            return "obs-fold"
        # RFC 9112 3.2: a target is origin-, absolute-, authority- or asterisk-form; h11 does not check which.
        if refused.method != b"CONNECT" and not refused.target.startswith((b"/", b"*", b"http://", b"https://")):
            return "malformed request-target"
        # RFC 9110 9.1: a method is any token, and a server answers one it does not implement with 501;
        # llhttp knows the registered methods only and refuses the others with 400.
        if refused.method not in KNOWN_METHODS:
            return "unknown method"
        # h11 does not look inside chunk extensions; a NUL or a control byte is no quoted-string (RFC 9112 7.1.1).
        # h11 lets control characters through in field values and chunk extensions; RFC 9110 5.5 and
        # RFC 9112 7.1.1 do not (only HTAB is allowed among them).
        if case.mutation in ("nul", "insert", "flip") and any(
            (byte < 0x20 and byte != 0x09) or byte == 0x7F for byte in case.data[case.mutated_at or 0 :][:1]
        ):
            return "control character"
        # cppcorn's --max-head-size (431) bounds the header section and the trailer section; h11 checks its
        # bound only on an unfinished event, and keeps no trailers.
        if sum(len(name) + len(value) + 4 for name, value in refused.headers) > MAX_HEAD:
            return "head over the size limit"
        if case.mutation == "huge-field":
            return "field over the size limit"
        # RFC 9110 15.6.6: 505 for a major version the server does not support; h11 takes any digits.
        if not refused.http_version.startswith("1."):
            return "HTTP major version other than 1"
        # RFC 9112 7.1.1: a chunk extension is tokens and quoted strings; h11 does not look inside it.
        line_start = case.data.rfind(b"\n", 0, at) + 1
        if case.mutation in ("insert", "flip") and CHUNK_EXTENSION.match(case.data, line_start):
            return "chunk extension not a token"
    # RFC 9112 7.1.1 allows BWS before a chunk extension's ";", h11 does not.
    h11_refused_bws = reference.error is not None and reference.error.startswith("illegal chunk header")
    if h11_refused_bws and len(ours) == count + 1 and b" ;" in case.data:
        return "BWS before a chunk extension"
    # RFC 9112 2.2: a server SHOULD ignore an empty line before a request line; h11 refuses it.
    if reference.error == "no request line received" and len(ours) > count and case.mutation == "duplicate-line":
        return "empty line before a request line"
    return None


def run_differential_case(harness: Harness, case: HttpCase) -> int:
    """Check one case; the number of requests compared."""
    app = FuzzApp(echo_only=True)
    server = harness.server(app)
    conn = server.connect()
    try:
        position = 0
        for size in case.reads:
            conn.send(case.data[position : position + size])
            position += size
        ours = [_as_parsed(request) for request in app.requests if request.complete]
        conn.disconnect()
    finally:
        harness.connections.remove(conn)
    reference = h11_parse(case.data)
    for index, (mine, theirs) in enumerate(zip(ours, reference.requests, strict=False)):
        _compare(index, mine, theirs)
    count = len(reference.requests)
    if len(ours) == count or allowed_disagreement(case, ours, reference):
        return min(len(ours), count)
    index = min(len(ours), count)
    spec = ours[index] if len(ours) > count else None
    # Whatever follows a CONNECT is read as a tunnel by cppcorn today (issue 17 defect 5).
    context: dict = {"index": index, "after_connect": any(p.method == b"CONNECT" for p in ours[: index + 1])}
    if spec is not None:
        host_count = sum(1 for n, _ in spec.headers if n == b"host")
        te_in_1_0 = spec.http_version == "1.0" and any(n == b"transfer-encoding" for n, _ in spec.headers)
        context.update(method=spec.method.decode("latin-1"), http_version=spec.http_version, host_count=host_count,
                       transfer_encoding_in_1_0=te_in_1_0)  # fmt: skip
        if reference.must_close and index == count:
            previous = reference.requests[-1]
            context.update(http_version=previous.http_version, method=previous.method.decode("latin-1"),
                           transfer_encoding_in_1_0=previous.http_version == "1.0"
                           and any(n == b"transfer-encoding" for n, _ in previous.headers))  # fmt: skip
            raise CaseFailed("differential-kept-alive", f"served {len(ours)} requests, h11 closes after {count}",
                             **context)  # fmt: skip
        raise CaseFailed("differential-accepted", f"served request {index} {spec.method!r} {spec.target!r} "
                         f"{spec.headers!r}; h11: {reference.error}", **context)  # fmt: skip
    missing = reference.requests[index]
    context.update(method=missing.method.decode("latin-1"), http_version=missing.http_version,
                   host_count=sum(1 for n, _ in missing.headers if n == b"host"))  # fmt: skip
    raise CaseFailed("differential-refused", f"h11 parses request {index} {missing.method!r} {missing.target!r} "
                     f"{missing.headers!r} (body {len(missing.body)}), cppcorn served {len(ours)}",
                     **context)  # fmt: skip
