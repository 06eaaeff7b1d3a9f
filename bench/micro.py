"""pyperf micro-benchmarks of the HTTP protocol in process: one request fed to a protocol on a null transport,
the uvloop loop run until the response is written (parse, scope, ASGI round trip, serialise), for cppcorn's
protocol and Uvicorn's httptools one. Run it outside the repo root, where the installed cppcorn is imported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pyperf
import uvloop

BROWSER_HEADERS = (
    'Connection: keep-alive\r\nCache-Control: max-age=0\r\nsec-ch-ua: "Chromium";v="124", "Not-A.Brand";v="99"\r\n'
    'sec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: "Linux"\r\nUpgrade-Insecure-Requests: 1\r\n'
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
    "Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Dest: document\r\n"
    "Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n"
    "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n"
)
JSON_BODY = '{"name": "widget", "price": 9.99, "tags": ["a", "b"], "n": 12345}'[:64]
REQUESTS = {
    "get-minimal": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n",
    "get-browser": f"GET /items/42?sort=desc&page=2 HTTP/1.1\r\nHost: example.com\r\n{BROWSER_HEADERS}\r\n".encode(),
    "post-json": ("POST /api/items HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
                  f"Content-Length: 64\r\n\r\n{JSON_BODY}").encode(),
}
BODY = b"Hello, world!"


async def app(scope: dict, receive: Callable, send: Callable) -> None:
    """Reads the request body, answers 13 bytes with a content-length."""
    while (await receive()).get("more_body", False):
        pass
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


class NullTransport(asyncio.Transport):
    """Counts the bytes written; never closes, never blocks."""

    def __init__(self) -> None:
        super().__init__({"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000), "sslcontext": None})
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, parts: Any) -> None:
        self.written += sum(map(len, parts))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def cppcorn_protocol() -> asyncio.Protocol:
    from cppcorn.http.connection import ServerState
    from cppcorn.http.protocol import HttpProtocol, HttpSettings

    state = ServerState()
    state.default_headers = b"date: " + formatdate(usegmt=True).encode() + b"\r\nserver: cppcorn\r\n"
    return HttpProtocol(HttpSettings(app=app, app_state={}, access_log=False), state)


def uvicorn_protocol() -> asyncio.Protocol:
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    config = Config(app, access_log=False, log_config=None, proxy_headers=True, lifespan="off")
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", formatdate(usegmt=True).encode()), (b"server", b"uvicorn")]
    return HttpToolsProtocol(config=config, server_state=state, app_state={})


def bench_protocol(loops: int, make_protocol: Callable[[], asyncio.Protocol], request: bytes) -> float:
    async def run() -> float:
        protocol, transport = make_protocol(), NullTransport()
        protocol.connection_made(transport)
        sleep = asyncio.sleep
        start = time.perf_counter()
        for _ in range(loops):
            protocol.data_received(request)
            # One loop iteration: a task started by data_received runs to completion in it (and an eagerly started one
            # already has).
            await sleep(0)
        elapsed = time.perf_counter() - start
        assert transport.written >= loops * len(BODY), "responses were not written"
        return elapsed

    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()


def main() -> None:
    runner = pyperf.Runner()
    runner.metadata["description"] = "HTTP protocol in process: parse, scope, ASGI round trip, serialise"
    for request_name, request in REQUESTS.items():
        for server_name, make_protocol in (("cppcorn", cppcorn_protocol), ("uvicorn", uvicorn_protocol)):
            runner.bench_time_func(f"{request_name}-{server_name}", bench_protocol, make_protocol, request)


if __name__ == "__main__":
    main()
