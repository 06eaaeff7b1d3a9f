"""The middlewares driven as real ASGI apps: scope in, receive/send coroutines."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import pytest

from cppcorn.middleware.asgi2 import ASGI2Middleware
from cppcorn.middleware.message_logger import MessageLoggerMiddleware
from cppcorn.middleware.proxy_headers import ProxyHeadersMiddleware, TrustedHosts
from cppcorn.middleware.wsgi import WSGIMiddleware

Message = dict[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


def run(coro: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout=5)

    return asyncio.run(bounded())


async def call(app: ASGIApp, scope: dict[str, Any], incoming: Iterable[Message] = ()) -> list[Message]:
    """Run `app` once, feeding it `incoming` then a disconnect; return what it sent."""
    pending = list(incoming)
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def http_scope(
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    headers: list[tuple[bytes, bytes]] | None = None,
    type: str = "http",
) -> dict[str, Any]:
    return {
        "type": type,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "ws" if type == "websocket" else "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": headers or [],
        "client": client,
        "server": ("127.0.0.1", 8000),
    }


def proxied_scope(
    trusted_hosts: list[str] | str,
    headers: list[tuple[bytes, bytes]],
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    type: str = "http",
) -> dict[str, Any]:
    """The scope the app sees behind ProxyHeadersMiddleware."""
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)

    run(call(ProxyHeadersMiddleware(app, trusted_hosts), http_scope(client, headers, type)))
    return seen


# TrustedHosts


@pytest.mark.parametrize(
    ("trusted", "host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("127.0.0.1, 10.0.0.1", "10.0.0.1", True),
        (["127.0.0.1", "10.0.0.1"], "10.0.0.1", True),
        # IPv6 is compared as an address, not as text.
        ("::1", "0:0:0:0:0:0:0:1", True),
        ("2001:db8::1", "2001:DB8:0::1", True),
        ("::1", "::2", False),
        ("10.0.0.0/8", "10.20.30.40", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("fd00::/8", "fd12:3456::1", True),
        ("fd00::/8", "fe80::1", False),
        ("127.0.0.1, unix:", "unix:", True),
        ("127.0.0.1", "unix:", False),
        # A malformed network is kept as a literal string, so it never matches an IP.
        ("10.0.0.0/99", "10.0.0.1", False),
        ("10.0.0.0/99", "10.0.0.0/99", True),
        ("*", "8.8.8.8", True),
        (["*"], "anything", True),
        # "*" only means "everyone" on its own; in a list it is a literal.
        ("127.0.0.1, *", "8.8.8.8", False),
    ],
)
def test_trusted_hosts_membership(trusted: list[str] | str, host: str, expected: bool) -> None:
    assert (host in TrustedHosts(trusted)) is expected


def test_trusted_hosts_missing_host() -> None:
    assert None not in TrustedHosts("127.0.0.1")
    assert "" not in TrustedHosts("127.0.0.1")
    assert None in TrustedHosts("*")


def test_trust_decisions_are_cached() -> None:
    trusted = TrustedHosts("127.0.0.1")
    for _ in range(3):
        assert "127.0.0.1" in trusted
    info = trusted._is_trusted_cached.cache_info()
    assert (info.hits, info.misses, info.maxsize) == (2, 1, 4096)

    # Over-long hosts are decided without being remembered.
    assert "a" * 300 not in trusted
    assert trusted._is_trusted_cached.cache_info().currsize == 1


@pytest.mark.parametrize(
    ("trusted", "x_forwarded_for", "expected"),
    [
        # The first untrusted hop from the right is the client.
        ("127.0.0.1", "1.2.3.4, 5.6.7.8", ("5.6.7.8", 0)),
        ("127.0.0.1, 5.6.7.8", "1.2.3.4, 5.6.7.8", ("1.2.3.4", 0)),
        ("10.0.0.0/8", "1.2.3.4, 8.8.8.8, 10.0.0.1, 10.0.0.2", ("8.8.8.8", 0)),
        # Every hop trusted: the leftmost one.
        ("10.0.0.0/8", "10.0.0.1, 10.0.0.2", ("10.0.0.1", 0)),
        ("*", "1.2.3.4, 5.6.7.8", ("1.2.3.4", 0)),
        # Ports.
        ("127.0.0.1", "1.2.3.4:8080", ("1.2.3.4", 8080)),
        ("127.0.0.1", "[::1]:8080", ("::1", 8080)),
        ("127.0.0.1", "[2001:db8::1]", ("2001:db8::1", 0)),
        ("127.0.0.1", "2001:db8::1", ("2001:db8::1", 0)),
        ("10.0.0.0/8", "1.2.3.4:1111, 10.0.0.1:2222", ("1.2.3.4", 1111)),
        ("*", "[::1]:443, 1.2.3.4", ("::1", 443)),
        # Malformed ports: bracketed hosts keep the host, others stay whole.
        ("127.0.0.1", "[::1]:http", ("::1", 0)),
        ("127.0.0.1", "1.2.3.4:http", ("1.2.3.4:http", 0)),
        ("127.0.0.1", "[::1]junk", ("[::1]junk", 0)),
        ("127.0.0.1", "[::1", ("[::1", 0)),
        # An empty value or empty rightmost hop names nobody.
        ("127.0.0.1", "", ("", 0)),
        ("127.0.0.1", "1.2.3.4, ", ("", 0)),
    ],
)
def test_get_trusted_client_address(
    trusted: list[str] | str, x_forwarded_for: str, expected: tuple[str, int]
) -> None:
    trusted_hosts = TrustedHosts(trusted)
    assert trusted_hosts.get_trusted_client_address(x_forwarded_for) == expected
    assert trusted_hosts.get_trusted_client_host(x_forwarded_for) == expected[0]


def test_apply_rewrites_scope_directly() -> None:
    scope = http_scope(headers=[])
    TrustedHosts("127.0.0.1").apply(scope, b" https ", b"1.2.3.4, 5.6.7.8:99")
    assert scope["scheme"] == "https"
    assert scope["client"] == ("5.6.7.8", 99)


def test_apply_decodes_latin1() -> None:
    scope = http_scope()
    TrustedHosts("127.0.0.1").apply(scope, None, b"caf\xe9")
    assert scope["client"] == ("café", 0)


def test_apply_without_headers_is_a_no_op() -> None:
    scope = http_scope()
    before = dict(scope)
    TrustedHosts("*").apply(scope, None, None)
    assert scope == before


# ProxyHeadersMiddleware


def test_forwarded_for_from_trusted_proxy() -> None:
    scope = proxied_scope("127.0.0.1", [(b"x-forwarded-for", b"1.2.3.4, 5.6.7.8")])
    assert scope["client"] == ("5.6.7.8", 0)


def test_forwarded_for_all_trusted_gives_leftmost() -> None:
    scope = proxied_scope("127.0.0.1, 5.6.7.8", [(b"x-forwarded-for", b"1.2.3.4, 5.6.7.8")])
    assert scope["client"] == ("1.2.3.4", 0)


def test_forwarded_for_ports() -> None:
    assert proxied_scope("127.0.0.1", [(b"x-forwarded-for", b"1.2.3.4:8080")])["client"] == ("1.2.3.4", 8080)
    assert proxied_scope("127.0.0.1", [(b"x-forwarded-for", b"[::1]:8080")])["client"] == ("::1", 8080)


def test_repeated_forwarded_for_headers_are_joined_in_order() -> None:
    headers = [(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", b"2.2.2.2")]
    assert proxied_scope("127.0.0.1", headers)["client"] == ("2.2.2.2", 0)


def test_empty_forwarded_for_keeps_peer() -> None:
    scope = proxied_scope("127.0.0.1", [(b"x-forwarded-for", b"")])
    assert scope["client"] == ("127.0.0.1", 50000)


def test_trusted_ipv6_proxy() -> None:
    scope = proxied_scope("::1", [(b"x-forwarded-for", b"1.2.3.4")], client=("::1", 50000))
    assert scope["client"] == ("1.2.3.4", 0)


@pytest.mark.parametrize(
    ("values", "scheme"),
    [
        ([b"https"], "https"),
        ([b" https\t"], "https"),
        ([b"http", b"https"], "https"),
        # The last header wins even when it is invalid, and then nothing changes.
        ([b"https", b"bogus"], "http"),
        ([b"HTTPS"], "http"),
        ([b"ftp"], "http"),
        ([b"https, http"], "http"),
        ([b"wss"], "wss"),
    ],
)
def test_forwarded_proto_on_http(values: list[bytes], scheme: str) -> None:
    headers = [(b"x-forwarded-proto", value) for value in values]
    assert proxied_scope("127.0.0.1", headers)["scheme"] == scheme


@pytest.mark.parametrize(
    ("value", "scheme"),
    [(b"http", "ws"), (b"https", "wss"), (b"ws", "ws"), (b"wss", "wss"), (b"gopher", "ws")],
)
def test_forwarded_proto_on_websocket(value: bytes, scheme: str) -> None:
    scope = proxied_scope("127.0.0.1", [(b"x-forwarded-proto", value)], type="websocket")
    assert scope["scheme"] == scheme


def test_untrusted_client_is_untouched() -> None:
    headers = [(b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"1.2.3.4")]
    scope = proxied_scope("127.0.0.1", headers, client=("10.0.0.1", 50000))
    assert scope == http_scope(("10.0.0.1", 50000), headers)


def test_missing_client_is_untrusted() -> None:
    headers = [(b"x-forwarded-for", b"1.2.3.4")]
    assert proxied_scope("127.0.0.1", headers, client=None)["client"] is None
    assert proxied_scope("*", headers, client=None)["client"] == ("1.2.3.4", 0)


def test_star_trusts_every_client() -> None:
    headers = [(b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"1.2.3.4")]
    scope = proxied_scope("*", headers, client=("203.0.113.9", 1))
    assert (scope["scheme"], scope["client"]) == ("https", ("1.2.3.4", 0))


def test_lifespan_passes_through() -> None:
    received: list[Message] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope == {"type": "lifespan", "asgi": {"version": "3.0"}}
        received.append(await receive())
        await send({"type": "lifespan.startup.complete"})

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    sent = run(call(ProxyHeadersMiddleware(app, "*"), scope, [{"type": "lifespan.startup"}]))
    assert received == [{"type": "lifespan.startup"}]
    assert sent == [{"type": "lifespan.startup.complete"}]


# ASGI2Middleware


def test_asgi2_adaptation() -> None:
    class ASGI2App:
        def __init__(self, scope: dict[str, Any]) -> None:
            self.scope = scope

        async def __call__(self, receive: Any, send: Any) -> None:
            request = await receive()
            body = b"%s %s" % (self.scope["path"].encode(), request["body"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})

    sent = run(call(ASGI2Middleware(ASGI2App), http_scope(), [{"type": "http.request", "body": b"ping"}]))
    assert sent == [
        {"type": "http.response.start", "status": 200, "headers": []},
        {"type": "http.response.body", "body": b"/ ping"},
    ]


# WSGIMiddleware


def echo_wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    start_response("201 Created", [("Content-Type", "text/plain"), ("X-Method", environ["REQUEST_METHOD"])])
    return [b"got: ", body]


def test_wsgi_serves_app() -> None:
    scope = http_scope(headers=[(b"content-length", b"11"), (b"content-type", b"text/plain")])
    scope["method"] = "POST"
    incoming = [
        {"type": "http.request", "body": b"hello ", "more_body": True},
        {"type": "http.request", "body": b"world", "more_body": False},
    ]
    sent = run(call(WSGIMiddleware(echo_wsgi_app), scope, incoming))

    start, *body = sent
    assert start["type"] == "http.response.start"
    assert start["status"] == 201
    assert (b"content-type", b"text/plain") in start["headers"]
    assert (b"x-method", b"POST") in start["headers"]
    assert all(message["type"] == "http.response.body" for message in body)
    assert b"".join(message["body"] for message in body) == b"got: hello world"
    assert body[-1].get("more_body", False) is False


def test_wsgi_workers_size_the_thread_pool() -> None:
    assert WSGIMiddleware(echo_wsgi_app, workers=3).executor._max_workers == 3


def test_wsgi_without_a2wsgi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "a2wsgi", None)  # makes `import a2wsgi` fail
    with pytest.raises(ImportError, match=r"--interface wsgi needs the a2wsgi package: pip install 'cppcorn\[wsgi\]'"):
        WSGIMiddleware(echo_wsgi_app)


# MessageLoggerMiddleware


@pytest.fixture
def asgi_log(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.LogCaptureFixture]:
    """Capture `uvicorn.asgi` at TRACE, whatever logging config other tests left behind."""
    logger = logging.getLogger("uvicorn.asgi")
    monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr(logger, "disabled", False)
    logger.addHandler(caplog.handler)
    caplog.set_level(5, logger="uvicorn.asgi")
    yield caplog
    logger.removeHandler(caplog.handler)


def test_message_logger_traces_a_request(asgi_log: pytest.LogCaptureFixture) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = await receive()
        assert request["body"] == b"hello"  # the app still gets the real body
        await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
        await send({"type": "http.response.body", "body": b"hi"})

    scope = http_scope(headers=[(b"host", b"example.com")])
    run(call(MessageLoggerMiddleware(app), scope, [{"type": "http.request", "body": b"hello", "more_body": False}]))

    logged_scope = dict(scope, headers="<...>")
    assert asgi_log.messages == [
        f"127.0.0.1:50000 - ASGI [1] Started scope={logged_scope}",
        "127.0.0.1:50000 - ASGI [1] Receive {'type': 'http.request', 'body': '<5 bytes>', 'more_body': False}",
        "127.0.0.1:50000 - ASGI [1] Send {'type': 'http.response.start', 'status': 200, 'headers': '<...>'}",
        "127.0.0.1:50000 - ASGI [1] Send {'type': 'http.response.body', 'body': '<2 bytes>'}",
        "127.0.0.1:50000 - ASGI [1] Completed",
    ]
    assert {(record.name, record.levelno) for record in asgi_log.records} == {("uvicorn.asgi", 5)}


def test_message_logger_websocket_and_counter(asgi_log: pytest.LogCaptureFixture) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "websocket.send", "text": "héllo", "bytes": None})
        await send({"type": "websocket.send", "bytes": b"\x00\x01\x02"})

    middleware = MessageLoggerMiddleware(app)
    run(call(middleware, http_scope(type="websocket")))
    asgi_log.clear()
    run(call(middleware, http_scope(client=None, type="websocket")))

    # The second call is numbered 2 and, without a client, has no address prefix.
    assert asgi_log.messages[1:] == [
        "ASGI [2] Send {'type': 'websocket.send', 'text': '<5 chars>', 'bytes': None}",
        "ASGI [2] Send {'type': 'websocket.send', 'bytes': '<3 bytes>'}",
        "ASGI [2] Completed",
    ]
    assert asgi_log.messages[0].startswith("ASGI [2] Started scope={'type': 'websocket',")


def test_message_logger_exception(asgi_log: pytest.LogCaptureFixture) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run(call(MessageLoggerMiddleware(app), http_scope()))
    assert asgi_log.messages[-1] == "127.0.0.1:50000 - ASGI [1] Raised exception"


def test_message_logger_silent_above_trace(asgi_log: pytest.LogCaptureFixture) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})

    asgi_log.set_level(logging.DEBUG, logger="uvicorn.asgi")
    run(call(MessageLoggerMiddleware(app), http_scope()))
    assert asgi_log.records == []
