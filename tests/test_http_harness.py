"""The in-memory harness itself (tests/http_harness.py): its response reader
and the bounds on its waits. The protocol's behaviour is tested in
tests/test_memory_*.py."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import simple_app
from tests.http_harness import HarnessError, _Incomplete, parse_response

HEAD_200 = b"HTTP/1.1 200 OK\r\nx-a: 1\r\n"


def test_parse_content_length_response():
    data = HEAD_200 + b"content-length: 5\r\n\r\nHelloHTTP/1.1 204 No Content\r\n\r\n"
    response, end = parse_response(data)
    assert (response.status, response.reason, response.version) == (200, "OK", "HTTP/1.1")
    assert response.headers == [("x-a", "1"), ("content-length", "5")]
    assert response.header("X-A") == "1"
    assert (response.framing, response.body, response.complete) == ("content-length", b"Hello", True)
    second, end = parse_response(data, end)
    assert (second.status, second.framing, second.body) == (204, "none", b"")
    assert end == len(data)


def test_parse_chunked_response_with_extensions_and_trailers():
    body = b"5;ext=1\r\nHello\r\n2\r\n, \r\n0\r\nx-trailer: t\r\n\r\n"
    response, _ = parse_response(HEAD_200 + b"transfer-encoding: chunked\r\n\r\n" + body)
    assert response.framing == "chunked"
    assert response.chunks == [b"Hello", b", "]
    assert response.body == b"Hello, "
    assert response.raw_body == body
    assert response.trailers == [("x-trailer", "t")]
    assert response.complete


def test_parse_close_delimited_and_cut_short_responses():
    data = HEAD_200 + b"\r\nto the end"
    with pytest.raises(_Incomplete):
        parse_response(data)  # more may come while the connection is open
    response, _ = parse_response(data, eof=True)
    assert (response.framing, response.body, response.complete) == ("close", b"to the end", True)

    cut = HEAD_200 + b"content-length: 10\r\n\r\nabc"
    with pytest.raises(_Incomplete):
        parse_response(cut)
    response, _ = parse_response(cut, eof=True)
    assert (response.body, response.complete) == (b"abc", False)

    cut = HEAD_200 + b"transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n"
    response, _ = parse_response(cut, eof=True)
    assert (response.body, response.complete) == (b"abc", False)


def test_parse_head_and_interim_responses_have_no_body():
    data = b"HTTP/1.1 100 Continue\r\n\r\n" + HEAD_200 + b"content-length: 5\r\n\r\n"
    interim, end = parse_response(data)
    assert interim.status == 100
    response, end = parse_response(data, end, head=True)
    assert (response.status, response.body, response.header("content-length")) == (200, b"", "5")
    assert end == len(data)


def test_response_waits_are_bounded(harness):
    """An application that never stops making progress, or a response that
    never comes, ends in HarnessError instead of a hang."""

    async def endless(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            await asyncio.sleep(0)

    conn = harness.server(simple_app()).connect()
    with pytest.raises(HarnessError, match="no response"):
        conn.response()
    busy_conn = harness.connect(endless)
    harness.timeout = 0.05
    with pytest.raises(HarnessError, match="never became idle"):
        busy_conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(HarnessError, match="did not become true"):
        harness.settle(until=lambda: False, timeout=0.05)
    busy_conn.disconnect(settle=False)


def test_protocol_callback_errors_are_raised(harness):
    """An exception in a protocol callback (here: a str where bytes belong)
    fails the test instead of vanishing into the loop's log."""
    conn = harness.connect(simple_app())
    with pytest.raises(HarnessError, match=r"protocol\.data_received\(\) raised"):
        conn.call("data_received", "GET / HTTP/1.1\r\n\r\n")
