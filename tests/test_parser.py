"""The HTTP/1.1 request parser (cppcorn/http/parser.pyx, over llhttp), through
its Python surface: RequestParser(protocol).parse(data), in process.

A Recorder protocol snapshots each head into a plain dict inside on_head (the
parser reuses its RequestHead), and records body pieces and message ends.
Tests marked xfail(strict=True) state the behaviour RFC 9112 or the README
asks for where the parser does otherwise today.
"""

from __future__ import annotations

from typing import Any

import pytest
from cppcorn.http.parser import HttpParserError, RequestHead, RequestParser

HEAD_FIELDS = (
    "method",
    "http_version",
    "path",
    "raw_path",
    "query_string",
    "headers",
    "http_1_0",
    "is_head",
    "keep_alive",
    "expect_continue",
    "upgrade",
    "forwarded_for",
    "forwarded_proto",
)


class Recorder:
    """A protocol that records what the parser tells it: ("head", dict),
    ("body", bytes) and ("complete",) events, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_head(self, head: RequestHead) -> None:
        assert isinstance(head, RequestHead)
        snapshot = {name: getattr(head, name) for name in HEAD_FIELDS}
        snapshot["headers"] = list(head.headers)
        self.events.append(("head", snapshot))

    def on_body(self, data: bytes) -> None:
        assert type(data) is bytes
        self.events.append(("body", data))

    def on_message_complete(self) -> None:
        self.events.append(("complete",))

    @property
    def heads(self) -> list[dict[str, Any]]:
        return [event[1] for event in self.events if event[0] == "head"]

    @property
    def body(self) -> bytes:
        return b"".join(event[1] for event in self.events if event[0] == "body")

    def merged(self) -> list[tuple[Any, ...]]:
        """The events with adjacent body pieces joined: what does not depend
        on how the input was split."""
        merged: list[tuple[Any, ...]] = []
        for event in self.events:
            if event[0] == "body" and merged and merged[-1][0] == "body":
                merged[-1] = ("body", merged[-1][1] + event[1])
            else:
                merged.append(event)
        return merged


def make_parser(**options: Any) -> tuple[RequestParser, Recorder]:
    recorder = Recorder()
    return RequestParser(recorder, **options), recorder


def feed_all(parser: RequestParser, data: bytes) -> None:
    """Feed `data` as a server would: again with the rest after each
    complete message."""
    while data:
        consumed = parser.parse(data)
        assert 0 < consumed <= len(data)
        data = data[consumed:]


def parse_one(data: bytes, **options: Any) -> tuple[dict[str, Any], Recorder]:
    """Parse one complete request given whole; return its head and the recorder."""
    parser, recorder = make_parser(**options)
    assert parser.parse(data) == len(data)
    assert recorder.events[-1] == ("complete",)
    assert len(recorder.heads) == 1
    return recorder.heads[0], recorder


def head_of(data: bytes, **options: Any) -> dict[str, Any]:
    return parse_one(data, **options)[0]


def refusal(data: bytes, **options: Any) -> tuple[HttpParserError, RequestParser, Recorder]:
    """Feed `data` to a new parser and return the HttpParserError it raises
    (error_status and error_reason agree with it)."""
    parser, recorder = make_parser(**options)
    with pytest.raises(HttpParserError) as caught:
        feed_all(parser, data)
    error = caught.value
    assert (parser.error_status, parser.error_reason) == (error.status, error.reason)
    assert str(error) == f"{error.status}: {error.reason}"
    return error, parser, recorder


def get(target: bytes = b"/", *fields: bytes, version: bytes = b"1.1", method: bytes = b"GET") -> bytes:
    """A request head; an HTTP/1.1 one without a Host field gets `Host: x` first (a server needs it)."""
    if version != b"1.0" and not any(f.lower().startswith(b"host:") for f in fields):
        fields = (HOST, *fields)
    return method + b" " + target + b" HTTP/" + version + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


HOST = b"Host: x"
HOST_FIELD = (b"host", b"x")


# -- the request target --------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "path", "raw_path", "query_string"),
    [
        (b"/", "/", b"/", b""),
        (b"/p?q", "/p", b"/p", b"q"),
        (b"/a/b?x=1&y=%20z&x=2", "/a/b", b"/a/b", b"x=1&y=%20z&x=2"),
        (b"/?", "/", b"/", b""),
        (b"/p??a", "/p", b"/p", b"?a"),
        (b"/a%20b/%41%42", "/a b/AB", b"/a%20b/%41%42", b""),
        (b"/caf%C3%A9/%e2%82%ac", "/café/€", b"/caf%C3%A9/%e2%82%ac", b""),
        (b"/a%2Fb", "/a/b", b"/a%2Fb", b""),  # decoded like Uvicorn: raw_path keeps the difference
        (b"/%FF/x%C3", "/\ufffd/x\ufffd", b"/%FF/x%C3", b""),  # invalid UTF-8 replaced
        (b"/%zz%4", "/%zz%4", b"/%zz%4", b""),  # no escape: kept as is
        (b"/a+b", "/a+b", b"/a+b", b""),  # '+' is not a space in a path
        (b"//x/./y", "//x/./y", b"//x/./y", b""),  # no normalisation
        (b"/p#fragment", "/p", b"/p", b""),
        (b"/p?q=1#fragment?x", "/p", b"/p", b"q=1"),
        # The absolute form is reduced to the path.
        (b"http://example.com/p?q", "/p", b"/p", b"q"),
        (b"http://example.com:8080/a%20b/c", "/a b/c", b"/a%20b/c", b""),
        (b"https://example.com/p/q?a=b", "/p/q", b"/p/q", b"a=b"),
        (b"HTTPS://Example.COM:8443/x", "/x", b"/x", b""),
        (b"http://user@example.com/x?y#z", "/x", b"/x", b"y"),
        (b"http://example.com", "/", b"/", b""),
        (b"http://example.com/", "/", b"/", b""),
        (b"http://example.com?q=1", "/", b"/", b"q=1"),
    ],
)
def test_origin_and_absolute_forms(target, path, raw_path, query_string):
    head = head_of(get(target))
    assert (head["path"], head["raw_path"], head["query_string"]) == (path, raw_path, query_string)
    assert type(head["path"]) is str


def test_fragment_right_after_the_authority_gets_400():
    """llhttp reads the authority up to '/', '?' or the end; an absolute-URI
    has no fragment anyway (RFC 9112 3.2.2)."""
    assert refusal(get(b"http://example.com#f"))[0].status == 400


def test_absolute_form_of_another_scheme_is_kept_whole():
    head = head_of(get(b"ftp://example.com/x"))
    assert (head["path"], head["raw_path"], head["query_string"]) == (
        "ftp://example.com/x",
        b"ftp://example.com/x",
        b"",
    )


def test_asterisk_form():
    head = head_of(get(b"*", b"Host: x", method=b"OPTIONS"))
    assert (head["method"], head["path"], head["raw_path"], head["query_string"]) == ("OPTIONS", "*", b"*", b"")


def test_authority_form():
    data = get(b"example.com:443", b"Host: example.com:443", method=b"CONNECT")
    head = head_of(data)
    assert (head["method"], head["path"], head["raw_path"], head["query_string"]) == (
        "CONNECT",
        "example.com:443",
        b"example.com:443",
        b"",
    )
    assert head["upgrade"] is None


@pytest.mark.parametrize("target", [b"/caf\xc3\xa9", b"/a\xff", b"/a\x00b", b"/a\x7fb"])
def test_target_with_raw_non_ascii_or_control_bytes_is_refused(target):
    error, _, recorder = refusal(get(target))
    assert error.status == 400
    assert recorder.events == []


@pytest.mark.parametrize(
    "method",
    [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE", b"PROPFIND", b"MKCOL"],
)
def test_methods(method):
    head = head_of(get(b"/", b"Content-Length: 0", method=method))
    assert head["method"] == method.decode()
    assert head["is_head"] == (method == b"HEAD")


# -- header fields ---------------------------------------------------------------


def test_header_names_lower_cased_values_stripped_order_and_duplicates_kept():
    head = head_of(
        get(
            b"/",
            b"HOST:  example.com  ",
            b"X-Dup: a",
            b"Content-Type:text/plain",
            b"x-dup:\tb\t",
            b"X_Under_Score: \t v \t ",
            b"X-Empty:",
            b"X-Blank:   ",
            b"User-Agent: a b \t c",
            b"X-Dup: a",
        )
    )
    assert head["headers"] == [
        (b"host", b"example.com"),
        (b"x-dup", b"a"),
        (b"content-type", b"text/plain"),
        (b"x-dup", b"b"),
        (b"x_under_score", b"v"),
        (b"x-empty", b""),
        (b"x-blank", b""),
        (b"user-agent", b"a b \t c"),  # inner whitespace is kept
        (b"x-dup", b"a"),
    ]
    assert all(type(name) is bytes and type(value) is bytes for name, value in head["headers"])


def test_header_value_bytes_kept_as_they_are():
    head = head_of(get(b"/", b"X-Name: caf\xc3\xa9 \xff", b'Cookie: a=1; b="2"'))
    assert head["headers"] == [HOST_FIELD, (b"x-name", b"caf\xc3\xa9 \xff"), (b"cookie", b'a=1; b="2"')]


COMMON_NAMES = [
    b"host", b"connection", b"user-agent", b"accept", b"accept-encoding", b"accept-language",
    b"content-type", b"cookie", b"referer", b"origin", b"cache-control", b"authorization",
    b"pragma", b"x-real-ip", b"x-request-id", b"if-none-match", b"if-modified-since", b"range",
    b"sec-fetch-site", b"sec-fetch-mode", b"sec-fetch-dest", b"sec-fetch-user",
    b"upgrade-insecure-requests", b"dnt", b"te", b"forwarded", b"priority",
]  # fmt: skip


def test_common_and_uncommon_header_names():
    """Names the parser shares as constants (looked up by length) and names
    of the same lengths that merely resemble them."""
    uncommon = [b"hosx", b"x-forwarded-fox", b"a", b"xx", b"a-name-longer-than-thirty-two-bytes-x"]
    names = COMMON_NAMES + uncommon
    fields = [name.upper() + b": v%d" % i for i, name in enumerate(names)]
    head = head_of(get(b"/", *fields))
    assert head["headers"] == [(name, b"v%d" % i) for i, name in enumerate(names)]


def test_x_forwarded_for_fields_joined():
    head = head_of(
        get(
            b"/",
            b"X-Forwarded-For: 1.1.1.1",
            b"Host: x",
            b"x-forwarded-for:  2.2.2.2, 3.3.3.3 ",
            b"X-Forwarded-Proto: https",
        )
    )
    assert head["forwarded_for"] == b"1.1.1.1, 2.2.2.2, 3.3.3.3"
    assert head["forwarded_proto"] == b"https"
    # The fields stay in the header list as they came.
    assert head["headers"][0] == (b"x-forwarded-for", b"1.1.1.1")
    assert head["headers"][2] == (b"x-forwarded-for", b"2.2.2.2, 3.3.3.3")


def test_forwarded_headers_absent():
    head = head_of(get(b"/", b"Host: x", b"Forwarded: for=1.2.3.4"))
    assert head["forwarded_for"] is None
    assert head["forwarded_proto"] is None


def test_last_x_forwarded_proto_wins():
    head = head_of(get(b"/", b"X-Forwarded-Proto: http", b"X-Forwarded-Proto: https"))
    assert head["forwarded_proto"] == b"https"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ((b"Expect: 100-continue",), True),
        ((b"EXPECT: 100-Continue ",), True),
        ((b"expect:100-CONTINUE",), True),
        ((b"Expect: 100-continue-x",), False),
        ((b"Expect: foo",), False),
        ((), False),
    ],
)
def test_expect_continue(fields, expected):
    head = head_of(get(b"/", *fields, b"Content-Length: 0", method=b"POST"))
    assert head["expect_continue"] is expected


@pytest.mark.parametrize(
    ("fields", "upgrade"),
    [
        ((b"Connection: Upgrade", b"Upgrade: websocket"), b"websocket"),
        ((b"Upgrade: websocket", b"connection: upgrade"), b"websocket"),
        ((b"Connection: keep-alive, Upgrade", b"Upgrade: h2c"), b"h2c"),
        ((b"Upgrade: websocket",), None),  # not asked for by Connection
        ((b"Connection: keep-alive", b"Upgrade: websocket"), None),
        ((b"Connection: upgrade",), None),  # nothing to upgrade to
        ((), None),
    ],
)
def test_upgrade_only_when_connection_asks_for_it(fields, upgrade):
    head = head_of(get(b"/", b"Host: x", *fields))
    assert head["upgrade"] == upgrade
    assert [value for name, value in head["headers"] if name == b"upgrade"] == [
        field.split(b": ")[1] for field in fields if field.lower().startswith(b"upgrade:")
    ]


def test_request_after_an_upgrade_request_is_parsed_as_http():
    """The server answers an Upgrade request it does not take up as plain
    HTTP; what follows on the connection is the next request."""
    first = get(b"/ws", b"Connection: Upgrade", b"Upgrade: websocket")
    second = get(b"/next")
    parser, recorder = make_parser()
    assert parser.parse(first + second) == len(first)
    assert parser.parse(second) == len(second)
    assert [head["path"] for head in recorder.heads] == ["/ws", "/next"]
    assert [head["upgrade"] for head in recorder.heads] == [b"websocket", None]


# -- HTTP versions and keep-alive ------------------------------------------------


@pytest.mark.parametrize(
    ("version", "fields", "keep_alive"),
    [
        (b"1.1", (), True),
        (b"1.1", (b"Connection: keep-alive",), True),
        (b"1.1", (b"Connection: close",), False),
        (b"1.1", (b"Connection: Close",), False),
        (b"1.1", (b"Connection: keep-alive, close",), False),
        (b"1.1", (b"Connection: upgrade,CLOSE",), False),
        (b"1.1", (b"Connection: foo", b"Connection: close"), False),
        (b"1.1", (b"Connection: closed",), True),
        (b"1.0", (), False),
        (b"1.0", (b"Connection: keep-alive",), True),
        (b"1.0", (b"Connection: Keep-Alive",), True),
        (b"1.0", (b"Connection: close",), False),
        # Close wins over keep-alive, in any order and any field (RFC 9112 9.6).
        (b"1.0", (b"Connection: keep-alive, close",), False),
        (b"1.0", (b"Connection: close, keep-alive",), False),
        (b"1.0", (b"Connection: keep-alive", b"Connection: close"), False),
    ],
)
def test_versions_and_keep_alive(version, fields, keep_alive):
    head = head_of(get(b"/", b"Host: x", *fields, version=version))
    assert head["http_version"] == version.decode()
    assert head["http_1_0"] is (version == b"1.0")
    assert head["keep_alive"] is keep_alive


def test_is_head():
    assert head_of(get(b"/", method=b"HEAD"))["is_head"] is True
    assert head_of(get(b"/", method=b"GET"))["is_head"] is False


def test_defaults_of_a_minimal_request():
    head = head_of(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head == {
        "method": "GET",
        "http_version": "1.1",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [HOST_FIELD],
        "http_1_0": False,
        "is_head": False,
        "keep_alive": True,
        "expect_continue": False,
        "upgrade": None,
        "forwarded_for": None,
        "forwarded_proto": None,
    }


@pytest.mark.parametrize("version", [b"2.0", b"0.9"])
def test_other_major_versions_get_505(version):
    error, _, recorder = refusal(get(b"/", b"Host: x", version=version))
    assert (error.status, error.reason) == (505, "HTTP version not supported")
    assert recorder.events == []


def test_http_2_connection_preface_gets_505():
    error, _, _ = refusal(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert error.status == 505


@pytest.mark.parametrize("version", [b"1.2", b"1.9"])
def test_higher_minor_version_is_served_as_1_1(version):
    head = head_of(get(b"/", b"Host: x", version=version))
    assert head["http_version"] == "1.1"
    assert head["http_1_0"] is False
    assert head["keep_alive"] is True


@pytest.mark.parametrize("version", [b"10.0", b"1.10", b"1.", b"x.1"])
def test_malformed_version_gets_400(version):
    error, _, recorder = refusal(get(b"/", b"Host: x", version=version))
    assert error.status == 400
    assert recorder.events == []


@pytest.mark.parametrize("version", [b"3.0", b"9.9"])
def test_http_3_request_line_gets_505(version):
    error, _, recorder = refusal(get(b"/", b"Host: x", version=version))
    assert (error.status, error.reason) == (505, "HTTP version not supported")
    assert recorder.events == []


# -- Host --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 request without a Host header field"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "More than one Host header field"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHOST: a\r\n\r\n", "More than one Host header field"),
        (b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "More than one Host header field"),
    ],
    ids=["1.1-none", "1.1-two", "1.1-two-equal", "1.0-two"],
)
def test_request_without_exactly_one_host_gets_400(data, reason):
    """RFC 9112 3.2; HTTP/1.0 may omit Host, but not send two."""
    error, _, recorder = refusal(data)
    assert (error.status, error.reason) == (400, reason)
    assert recorder.events == []


def test_http_1_0_request_without_host_is_parsed():
    assert head_of(b"GET / HTTP/1.0\r\n\r\n")["headers"] == []


def test_empty_host_is_one_host():
    """An empty Host is valid (a target URI without an authority)."""
    assert head_of(b"GET / HTTP/1.1\r\nHost:\r\n\r\n")["headers"] == [(b"host", b"")]


# -- bodies ----------------------------------------------------------------------


def test_content_length_body():
    data = get(b"/upload", b"Content-Length: 11", method=b"POST") + b"hello world"
    head, recorder = parse_one(data)
    assert recorder.events == [("head", head), ("body", b"hello world"), ("complete",)]
    assert (b"content-length", b"11") in head["headers"]


def test_content_length_body_fed_in_pieces_is_delivered_in_pieces():
    parser, recorder = make_parser()
    head = get(b"/", b"Content-Length: 10", method=b"POST")
    assert parser.parse(head + b"abc") == len(head) + 3
    assert parser.parse(b"defg") == 4
    assert recorder.events[1:] == [("body", b"abc"), ("body", b"defg")]
    assert parser.parse(b"hij") == 3
    assert recorder.events[1:] == [("body", b"abc"), ("body", b"defg"), ("body", b"hij"), ("complete",)]


def test_content_length_with_whitespace_and_zero():
    assert parse_one(get(b"/", b"Content-Length:  5 ", method=b"POST") + b"hello")[1].body == b"hello"
    assert parse_one(get(b"/", b"Content-Length: 0", method=b"POST"))[1].events[1:] == [("complete",)]


def test_no_body_without_content_length_or_transfer_encoding():
    parser, recorder = make_parser()
    data = get(b"/", method=b"POST")
    assert parser.parse(data + b"GET") == len(data)
    assert recorder.events[1:] == [("complete",)]


def test_chunked_body_extensions_ignored_trailers_dropped():
    data = (
        get(b"/", b"Transfer-Encoding: chunked", method=b"POST")
        + b'5;name=value;quoted="a;b"\r\nhello\r\n'
        + b"A\r\n0123456789\r\n"
        + b"1;x\r\n!\r\n"
        + b"0;last\r\nX-Trailer: t\r\nChecksum: abc\r\n\r\n"
    )
    head, recorder = parse_one(data)
    assert recorder.events == [
        ("head", head),
        ("body", b"hello"),
        ("body", b"0123456789"),
        ("body", b"!"),
        ("complete",),
    ]
    assert head["headers"] == [HOST_FIELD, (b"transfer-encoding", b"chunked")]


@pytest.mark.parametrize(
    "coding",
    [
        b"chunked",
        b"Chunked",
        b"CHUNKED",
        b" chunked ",
        b",chunked",
        b", ,chunked",
        pytest.param(
            b"chunked,",
            marks=pytest.mark.xfail(
                strict=True,
                reason="llhttp refuses an empty list element after the final chunked (400), where "
                "RFC 9110 5.6.1 says a recipient MUST parse and ignore empty list elements; not fixable "
                "without changing llhttp: its lenient Transfer-Encoding mode clears the chunked flag for "
                "anything after chunked and would read the body to EOF",
            ),
        ),
    ],
)
def test_chunked_spelling(coding):
    data = get(b"/", b"Transfer-Encoding: " + coding, method=b"POST") + b"2\r\nhi\r\n0\r\n\r\n"
    assert parse_one(data)[1].body == b"hi"


def test_chunked_upper_case_hex_size_and_leading_zeros():
    data = get(b"/", b"Transfer-Encoding: chunked", method=b"POST") + b"000B\r\nhello world\r\n00\r\n\r\n"
    assert parse_one(data)[1].body == b"hello world"


@pytest.mark.parametrize(
    "fields",
    [
        (b"Transfer-Encoding: gzip, chunked",),
        (b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked"),
        (b"Transfer-Encoding: deflate , Chunked",),
    ],
)
def test_unsupported_coding_before_chunked_gets_501(fields):
    error, _, recorder = refusal(get(b"/", *fields, method=b"POST") + b"0\r\n\r\n")
    assert (error.status, error.reason) == (501, "Unsupported Transfer-Encoding")
    assert recorder.events == []


@pytest.mark.parametrize(
    "fields",
    [
        (b"Transfer-Encoding: chunked, gzip",),
        (b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"),
        (b"Transfer-Encoding: gzip",),
        (b"Transfer-Encoding: identity",),
        (b"Transfer-Encoding: chunked, chunked",),
    ],
)
def test_final_coding_not_chunked_gets_400(fields):
    """RFC 9112 6.3: the body length cannot be determined."""
    error, _, recorder = refusal(get(b"/", *fields, method=b"POST") + b"0\r\n\r\n")
    assert error.status == 400
    assert recorder.events == []


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ((b"Content-Length: 5", b"Content-Length: 6"), "Duplicate Content-Length"),
        ((b"Content-Length: 5", b"Content-Length: 5"), "Duplicate Content-Length"),  # RFC 9110 8.6: MAY reject
        ((b"Content-Length: 5, 5",), "Invalid character in Content-Length"),
        (
            (b"Content-Length: 5", b"Transfer-Encoding: chunked"),
            "Transfer-Encoding can't be present with Content-Length",
        ),
        (
            (b"Transfer-Encoding: chunked", b"Content-Length: 5"),
            "Content-Length can't be present with Transfer-Encoding",
        ),
        ((b"Content-Length: -1",), "Invalid character in Content-Length"),
        ((b"Content-Length: +5",), "Invalid character in Content-Length"),
        ((b"Content-Length: 5x",), "Invalid character in Content-Length"),
        ((b"Content-Length: 0x5",), "Invalid character in Content-Length"),
        ((b"Content-Length: 99999999999999999999999",), "Content-Length overflow"),
    ],
)
def test_conflicting_or_invalid_content_length_gets_400(fields, reason):
    error, _, recorder = refusal(get(b"/", *fields, method=b"POST") + b"hello!")
    assert (error.status, error.reason) == (400, reason)
    assert recorder.events == []


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"5 \r\nhello\r\n0\r\n\r\n",
        b"\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"FFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",  # overflow
        b"5\nhello\r\n0\r\n\r\n",  # bare LF after the size
        b"5\r\nhelloXX0\r\n\r\n",  # no CRLF after the data
    ],
)
def test_invalid_chunk_framing_gets_400(chunks):
    """The head is out before the body is: a bad chunk is refused after it."""
    error, _, recorder = refusal(get(b"/", b"Transfer-Encoding: chunked", method=b"POST") + chunks)
    assert error.status == 400
    assert [event[0] for event in recorder.events if event[0] != "body"] == ["head"]
    assert ("complete",) not in recorder.events


def test_http_1_0_with_transfer_encoding_does_not_keep_the_connection():
    """Faulty framing (RFC 9112 6.1): the body is read as chunked, and the
    request is the connection's last."""
    data = get(b"/", b"Connection: keep-alive", b"Transfer-Encoding: chunked", version=b"1.0", method=b"POST")
    head, recorder = parse_one(data + b"5\r\nhello\r\n0\r\n\r\n")
    assert recorder.body == b"hello"
    assert head["keep_alive"] is False


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        ((b"Content-Length: 5",), b"hello"),
        ((b"Transfer-Encoding: chunked",), b"5\r\nhello\r\n0\r\n\r\n"),
        ((), b""),
    ],
    ids=["content-length", "chunked", "none"],
)
def test_connect_body_framed_as_any_request_and_the_connection_not_kept(framing, body):
    """ASGI has no tunnel: a CONNECT's body is its body (never the next
    request), and the connection closes after it."""
    data = get(b"example.com:443", b"Host: example.com:443", *framing, method=b"CONNECT") + body
    head, recorder = parse_one(data)
    assert recorder.body == (b"hello" if framing else b"")
    assert head["keep_alive"] is False
    assert head["upgrade"] is None


def test_connect_body_that_looks_like_a_request_is_the_body():
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    data = b"CONNECT /x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(smuggled) + smuggled
    parser, recorder = make_parser()
    assert parser.parse(data + b"G") == len(data)
    assert [head["path"] for head in recorder.heads] == ["/x"]
    assert recorder.body == smuggled


def test_connect_with_an_upgrade_is_not_an_upgrade():
    head = head_of(get(b"a:1", b"Host: a:1", b"Connection: upgrade", b"Upgrade: websocket", method=b"CONNECT"))
    assert head["upgrade"] is None
    assert head["keep_alive"] is False


# -- limits ----------------------------------------------------------------------


def head_of_size(size: int, method: bytes = b"GET", target: bytes = b"/", fields: int = 2, sep: bytes = b": ") -> bytes:
    """A complete request head of exactly `size` bytes with `fields` fields (at least 2: Host first, the last
    padded)."""
    start = method + b" " + target + b" HTTP/1.1\r\nHost" + sep + b"x\r\n"
    start += b"".join(b"X-F%d%sv\r\n" % (i, sep) for i in range(1, fields - 1))
    start += b"X-Pad" + sep
    data = start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"
    assert len(data) == size
    return data


@pytest.mark.parametrize(
    ("method", "target", "fields"),
    [
        (b"GET", b"/", 2),
        (b"GET", b"/", 3),
        (b"OPTIONS", b"*", 2),
        (b"DELETE", b"/some/path?with=query", 8),
        (b"GET", b"http://example.com/p?q", 5),
    ],
)
@pytest.mark.parametrize("limit", [200, 1024])
def test_head_of_exactly_the_limit_accepted_one_byte_more_refused(limit, method, target, fields):
    data = head_of_size(limit, method, target, fields)
    head = head_of(data, max_head_size=limit)
    assert head["method"] == method.decode()
    assert len(head["headers"]) == fields

    error, _, recorder = refusal(head_of_size(limit + 1, method, target, fields), max_head_size=limit)
    assert (error.status, error.reason) == (431, "Request header section too large")
    assert recorder.events == []


def test_head_without_header_fields_at_the_limit():
    data = b"GET /abc HTTP/1.0\r\n\r\n"
    assert head_of(data, max_head_size=len(data))["path"] == "/abc"
    assert refusal(data, max_head_size=len(data) - 1)[0].status == 431


def test_default_limit_is_65536():
    assert head_of(head_of_size(65536))["method"] == "GET"
    assert refusal(head_of_size(65537))[0].status == 431


@pytest.mark.parametrize("limit", [200, 1024])
def test_head_at_the_limit_fed_byte_by_byte(limit):
    """The same boundary when the head arrives one byte at a time."""
    parser, recorder = make_parser(max_head_size=limit)
    data = head_of_size(limit)
    for i in range(len(data)):
        assert parser.parse(data[i : i + 1]) == 1
    assert [event[0] for event in recorder.events] == ["head", "complete"]

    parser, recorder = make_parser(max_head_size=limit)
    data = head_of_size(limit + 1)
    for i in range(limit):
        parser.parse(data[i : i + 1])
    with pytest.raises(HttpParserError) as caught:
        parser.parse(data[limit:])
    assert caught.value.status == 431
    assert recorder.events == []


def test_request_line_over_the_limit_in_one_piece_gets_431_before_the_head_ends():
    error, _, _ = refusal(b"GET /" + b"a" * 300, max_head_size=256)
    assert error.status == 431


def test_field_over_the_limit_in_one_piece_gets_431_before_the_head_ends():
    error, _, _ = refusal(b"GET / HTTP/1.1\r\nX-Huge: " + b"a" * 4096, max_head_size=1024)
    assert error.status == 431


def test_head_growing_in_small_pieces_is_refused_as_soon_as_it_passes_the_limit():
    parser, recorder = make_parser(max_head_size=1024)
    pieces = [b"GET / HTTP/1.1\r\n"] + [b"X-H-%03d: vvvvvvvvvv\r\n" % i for i in range(100)]  # 16, then 21 each
    received = 0
    for piece in pieces:
        if received + len(piece) > 1024:
            break
        assert parser.parse(piece) == len(piece)
        received += len(piece)
    assert received == 1024
    with pytest.raises(HttpParserError) as caught:
        parser.parse(piece)
    assert caught.value.status == 431
    assert recorder.events == []


def test_whitespace_padding_over_several_pieces_is_bounded():
    """Leading whitespace llhttp skips is counted too once the head spans
    several reads."""
    parser, _ = make_parser(max_head_size=100)
    data = b"GET / HTTP/1.1\r\nX: "
    parser.parse(data)
    with pytest.raises(HttpParserError) as caught:
        for _ in range(200):
            parser.parse(b" ")
    assert caught.value.status == 431


@pytest.mark.xfail(
    strict=True,
    reason="the limit is checked against a head rebuilt as 'name: value' per field (_check_headers): a head of "
    "max_head_size bytes whose fields have no space after the colon counts one byte more per field and gets 431. "
    "Counting the raw bytes needs where the head ends, which no llhttp callback tells; pausing llhttp at every "
    "head to learn it costs a second llhttp_execute() per request, too much for a bound off by one byte per field",
)
def test_head_of_exactly_the_limit_without_space_after_colons_accepted():
    data = head_of_size(200, fields=2, sep=b":")
    assert head_of(data, max_head_size=200)["headers"][1][0] == b"x-pad"


CHUNKED_POST = get(b"/", b"Transfer-Encoding: chunked", method=b"POST")


def test_trailer_section_within_the_limit_is_tolerated():
    """The trailer bound counts field names and values."""
    trailers = b"X-T: " + b"a" * 97 + b"\r\n\r\n"  # 3 + 97 bytes
    _, recorder = parse_one(CHUNKED_POST + b"2\r\nhi\r\n0\r\n" + trailers, max_head_size=100)
    assert recorder.body == b"hi"


@pytest.mark.parametrize(
    "trailers",
    [
        b"X-T: " + b"a" * 98 + b"\r\n\r\n",
        b"X-Trailer: " + b"a" * 300 + b"\r\n\r\n",
        b"X:\r\n" * 101 + b"\r\n",
    ],
)
def test_oversized_trailer_section_gets_431(trailers):
    error, _, recorder = refusal(CHUNKED_POST + b"2\r\nhi\r\n0\r\n" + trailers, max_head_size=100)
    assert (error.status, error.reason) == (431, "Request trailer section too large")
    assert recorder.body == b"hi"
    assert ("complete",) not in recorder.events


def test_oversized_trailer_section_in_pieces_gets_431():
    parser, _ = make_parser(max_head_size=100)
    parser.parse(CHUNKED_POST + b"0\r\n")
    with pytest.raises(HttpParserError) as caught:
        for i in range(200):
            parser.parse(b"X-%d: v\r\n" % i)
    assert caught.value.status == 431


def test_trailer_section_within_the_limit_over_several_pieces_is_tolerated():
    """Raw bytes of a trailer section spread over reads are counted once."""
    parser, recorder = make_parser(max_head_size=100)
    pieces = [CHUNKED_POST + b"2\r\nhi\r\n0\r\n", b"X-T: " + b"a" * 40, b"a" * 40, b"\r\n\r\n"]  # 89 bytes
    for piece in pieces:
        assert parser.parse(piece) == len(piece)
    assert recorder.events[-1] == ("complete",)


def test_trailer_whitespace_padding_over_several_pieces_is_bounded():
    parser, _ = make_parser(max_head_size=100)
    parser.parse(CHUNKED_POST + b"0\r\nX: ")
    with pytest.raises(HttpParserError) as caught:
        for _ in range(1000):
            parser.parse(b" ")
    assert caught.value.status == 431


# -- pipelining and split input ----------------------------------------------------


def test_pipelined_requests_parsed_one_at_a_time():
    first = get(b"/first", b"Content-Length: 3", method=b"POST") + b"abc"
    second = get(b"/second?x", b"Host: y")
    parser, recorder = make_parser()
    assert parser.parse(first + second) == len(first)
    assert [event[0] for event in recorder.events] == ["head", "body", "complete"]
    assert parser.parse(second) == len(second)
    assert [head["path"] for head in recorder.heads] == ["/first", "/second"]
    assert recorder.heads[1]["query_string"] == b"x"
    assert recorder.heads[1]["headers"] == [(b"host", b"y")]
    assert recorder.events[-1] == ("complete",)


def test_pipelined_request_split_inside_the_second_head():
    first = get(b"/a")
    second = get(b"/b", b"Host: x")
    parser, recorder = make_parser()
    assert parser.parse(first + second[:10]) == len(first)
    assert parser.parse(second[:10]) == 10
    assert parser.parse(second[10:]) == len(second) - 10
    assert [head["path"] for head in recorder.heads] == ["/a", "/b"]


def test_empty_lines_before_a_request_are_ignored():
    """RFC 9112 2.2: at least one empty line before a request line is ignored."""
    parser, recorder = make_parser()
    feed_all(parser, get(b"/a") + b"\r\n" + get(b"/b"))
    feed_all(parser, b"\r\n\r\n" + get(b"/c"))
    assert [head["path"] for head in recorder.heads] == ["/a", "/b", "/c"]


def test_empty_and_bytes_like_input():
    parser, recorder = make_parser()
    assert parser.parse(b"") == 0
    data = get(b"/x")
    assert parser.parse(bytearray(data)) == len(data)
    assert parser.parse(memoryview(data)) == len(data)
    assert [head["path"] for head in recorder.heads] == ["/x", "/x"]


SPLIT_MESSAGES = {
    "content-length": get(
        b"/a%20b?q=1", b"Host: example.com", b"X-Forwarded-For: 1.1.1.1", b"x-forwarded-for: 2.2.2.2",
        b"Expect: 100-continue", b"Content-Length: 13", method=b"POST",
    ) + b"hello, world!",
    "chunked-with-trailers": get(b"/chunked", b"Transfer-Encoding: chunked", method=b"PUT")
    + b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\n",
    "pipelined": get(b"http://example.com/one", b"Connection: keep-alive", version=b"1.0")
    + get(b"/two", b"Connection: Upgrade", b"Upgrade: websocket", b"Content-Length: 2", method=b"POST")
    + b"ok"
    + get(b"*", method=b"OPTIONS"),
}  # fmt: skip


@pytest.mark.parametrize("name", SPLIT_MESSAGES)
def test_split_at_every_byte_boundary_gives_the_same_events(name):
    data = SPLIT_MESSAGES[name]
    whole_parser, whole = make_parser()
    feed_all(whole_parser, data)
    expected = whole.merged()
    assert expected[-1] == ("complete",)
    for split in range(1, len(data)):
        parser, recorder = make_parser()
        feed_all(parser, data[:split])
        feed_all(parser, data[split:])
        assert recorder.merged() == expected, f"split at {split}"


@pytest.mark.parametrize("name", SPLIT_MESSAGES)
def test_fed_one_byte_at_a_time_gives_the_same_events(name):
    data = SPLIT_MESSAGES[name]
    whole_parser, whole = make_parser()
    feed_all(whole_parser, data)
    parser, recorder = make_parser()
    for i in range(len(data)):
        feed_all(parser, data[i : i + 1])
    assert recorder.merged() == whole.merged()


# -- malformed input -------------------------------------------------------------


# Refused with 400 before any event: garbage request lines, bad header fields,
# bare LF line endings.
MALFORMED_HEADS = [
    b"hello world\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
    b"get / HTTP/1.1\r\n\r\n",  # methods are case-sensitive
    b"FOO / HTTP/1.1\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / http/1.1\r\n\r\n",
    b"GET / HTTP/1.1 \r\n\r\n",
    b"GET / HTTP/1\r\n\r\n",
    b"GET / HTTP/2\r\n\r\n",
    b"GET / HTTP/1.x\r\n\r\n",
    b"GET /a b HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\rX\r\n\r\n",
    b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n",  # space in the name
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",  # space before the colon
    b"GET / HTTP/1.1\r\nHo\x01st: x\r\n\r\n",  # control character in the name
    b"GET / HTTP/1.1\r\nHo\x7fst: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nH\xc3\xa9: x\r\n\r\n",  # non-ASCII name
    b'GET / HTTP/1.1\r\nHo"st: x\r\n\r\n',  # not a token character
    b"GET / HTTP/1.1\r\n: x\r\n\r\n",  # empty name
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",  # no colon
    b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",  # leading whitespace (obs-fold at the first line)
    b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",  # NUL in the value
    b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",  # control character in the value
    b"GET / HTTP/1.1\r\nHost: a\x7fb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",  # bare CR in the value
    b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  # obs-fold
    b"GET / HTTP/1.1\n\n",
    b"GET / HTTP/1.1\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\n",
]


@pytest.mark.parametrize("data", MALFORMED_HEADS)
def test_malformed_heads_get_400(data):
    error, _, recorder = refusal(data)
    assert error.status == 400
    assert recorder.events == []


@pytest.mark.parametrize("data", [b"GET /\r\n\r\n", b"GET /\r\nHost: x\r\n\r\n"])
def test_missing_http_version_gets_400(data):
    error, _, _ = refusal(data)
    assert error.status == 400


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 200 + b"\r\n\r\n", 431),
        (CHUNKED_POST + b"0\r\nX: " + b"a" * 200 + b"\r\n\r\n", 431),
    ],
)
def test_parser_stays_in_error(data, status):
    error, parser, recorder = refusal(data, max_head_size=100)
    assert error.status == status
    events = list(recorder.events)
    for more in (b"GET / HTTP/1.1\r\n\r\n", b"x"):
        with pytest.raises(HttpParserError) as caught:
            parser.parse(more)
        assert (caught.value.status, caught.value.reason) == (error.status, error.reason)
        assert (parser.error_status, parser.error_reason) == (error.status, error.reason)
    assert recorder.events == events


def test_error_status_before_any_error():
    parser, _ = make_parser()
    assert (parser.error_status, parser.error_reason) == (0, None)
    feed_all(parser, get(b"/"))
    assert (parser.error_status, parser.error_reason) == (0, None)


def test_parser_stays_in_error_after_a_431_for_a_head_spread_over_reads():
    parser, recorder = make_parser(max_head_size=100)
    parser.parse(b"GET / HTTP/1.1\r\nX: ")
    with pytest.raises(HttpParserError):
        parser.parse(b" " * 90)
    with pytest.raises(HttpParserError) as caught:
        parser.parse(b"v\r\n\r\n")
    assert caught.value.status == 431
    assert recorder.events == []


# -- the Python callbacks --------------------------------------------------------


class Failure(Exception):
    pass


class FailingRecorder(Recorder):
    def __init__(self, where: str, exception: BaseException) -> None:
        super().__init__()
        self.where = where
        self.exception = exception

    def on_head(self, head: RequestHead) -> None:
        super().on_head(head)
        if self.where == "head":
            raise self.exception

    def on_body(self, data: bytes) -> None:
        super().on_body(data)
        if self.where == "body":
            raise self.exception

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.where == "complete":
            raise self.exception


@pytest.mark.parametrize("where", ["head", "body", "complete"])
@pytest.mark.parametrize("exception", [Failure("boom"), KeyboardInterrupt()], ids=["Exception", "BaseException"])
def test_callback_exception_propagates_out_of_parse(where, exception):
    recorder = FailingRecorder(where, exception)
    parser = RequestParser(recorder)
    with pytest.raises(type(exception)) as caught:
        parser.parse(get(b"/", b"Content-Length: 2", method=b"POST") + b"hi" + get(b"/next"))
    assert caught.value is exception
    assert recorder.events[-1][0] == where
    assert parser.error_status == 0
    # The parser does not go on after it.
    with pytest.raises(HttpParserError) as refused:
        parser.parse(get(b"/next"))
    assert refused.value.status == 400
    assert len(recorder.heads) == 1
