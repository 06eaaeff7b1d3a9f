"""pyperf micro-benchmarks of the HTTP protocol, in process, without sockets.

Each benchmark feeds one request to a protocol instance attached to a null
transport and runs the event loop (uvloop, as in the load benchmark) until
the response is written: request parsing, scope building, the ASGI round trip
and response serialisation, with no network and no kernel in the way. The same harness drives cppcorn's
compiled protocol and Uvicorn's httptools protocol, so the ratio between them
is what the protocol layers cost.

    bench/.venv/bin/python bench/micro.py --affinity 0 -o bench/results/micro.json
    bench/.venv/bin/python -m pyperf compare_to ... (or read the printed table)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pyperf
import uvloop

REQUESTS = {
    "get-minimal": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n",
    "get-browser": (
        b"GET /items/42?sort=desc&page=2 HTTP/1.1\r\n"
        b"Host: example.com\r\n"
        b"Connection: keep-alive\r\n"
        b"Cache-Control: max-age=0\r\n"
        b'sec-ch-ua: "Chromium";v="124", "Not-A.Brand";v="99"\r\n'
        b"sec-ch-ua-mobile: ?0\r\n"
        b'sec-ch-ua-platform: "Linux"\r\n'
        b"Upgrade-Insecure-Requests: 1\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36\r\n"
        b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
        b"Sec-Fetch-Site: none\r\n"
        b"Sec-Fetch-Mode: navigate\r\n"
        b"Sec-Fetch-Dest: document\r\n"
        b"Accept-Encoding: gzip, deflate, br\r\n"
        b"Accept-Language: en-US,en;q=0.9\r\n"
        b"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n\r\n"
    ),
    "post-json": (
        b"POST /api/items HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
        b"Content-Length: 64\r\n\r\n" + b'{"name": "widget", "price": 9.99, "tags": ["a", "b"], "n": 12345}'[:64]
    ),
}

BODY = b"Hello, world!"


async def app(scope: dict, receive: Callable, send: Callable) -> None:
    """Read the request body, answer 13 bytes with a Content-Length."""
    more_body = True
    while more_body:
        message = await receive()
        more_body = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


class NullTransport(asyncio.Transport):
    """Counts written bytes; never closes, never blocks."""

    EXTRA = {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000), "sslcontext": None}

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.EXTRA.get(name, default)

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, parts: Any) -> None:
        for part in parts:
            self.written += len(part)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def cppcorn_protocol() -> asyncio.Protocol:
    from cppcorn.http.connection import ServerState
    from cppcorn.http.protocol import HttpProtocol, HttpSettings

    state = ServerState()
    state.default_headers = b"date: " + formatdate(usegmt=True).encode() + b"\r\nserver: cppcorn\r\n"
    settings = HttpSettings(app=app, app_state={}, access_log=False)
    return HttpProtocol(settings, state)


def uvicorn_protocol() -> asyncio.Protocol:
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    config = Config(app, access_log=False, log_config=None, proxy_headers=True, lifespan="off")
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", formatdate(usegmt=True).encode()), (b"server", b"uvicorn")]
    return HttpToolsProtocol(config=config, server_state=state, app_state={})


SERVERS = {"cppcorn": cppcorn_protocol, "uvicorn": uvicorn_protocol}


def bench_protocol(loops: int, make_protocol: Callable[[], asyncio.Protocol], request: bytes) -> float:
    async def run() -> float:
        protocol = make_protocol()
        transport = NullTransport()
        protocol.connection_made(transport)
        sleep = asyncio.sleep
        start = time.perf_counter()
        for _ in range(loops):
            protocol.data_received(request)
            # One loop iteration: a task created by data_received runs to
            # completion in it (and an eagerly started one already has).
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
        for server_name, make_protocol in SERVERS.items():
            runner.bench_time_func(f"{request_name}-{server_name}", bench_protocol, make_protocol, request)


if __name__ == "__main__":
    main()
