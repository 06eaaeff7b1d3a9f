"""Does an event loop leak? Resident memory across a million call_soon() callbacks and 100,000 TCP connections
(connect, one echo, close) on one loop, sampled after each tenth of the work, after a tenth as warm-up (caches,
free lists, arenas): flat means no leak. The loop and the echo pieces are bench/loop.py's."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable

import loop as loopbench  # bench/loop.py: bench/ is on the path

STEPS = 10


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def connections(count: int, port: int) -> None:
    """`count` connections to the echo server, 50 at a time: connect, one echo, close."""
    loop = asyncio.get_running_loop()
    messages = loopbench.make_messages(4)

    async def one() -> None:
        transport, client = await loop.create_connection(lambda: loopbench.PingPongClient(messages), "127.0.0.1", port)
        await client.connected
        await client.exchange(1)
        transport.close()
        await client.closed

    for _ in range(count // 50):
        await asyncio.gather(*(one() for _ in range(50)))


def measure(label: str, loop: asyncio.AbstractEventLoop, work: Callable[[int], Awaitable[object]], total: int) -> None:
    loop.run_until_complete(work(total // STEPS))  # the warm-up
    gc.collect()
    samples = [rss_mib()]
    started = time.perf_counter()
    for _ in range(STEPS):
        loop.run_until_complete(work(total // STEPS))
        gc.collect()
        samples.append(rss_mib())
    print(f"{label}: {total:,} in {time.perf_counter() - started:.1f} s; RSS MiB after each tenth: "
          f"{' '.join(f'{v:.1f}' for v in samples)}; growth {samples[-1] - samples[0]:+.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--event-loop", default="cppcorn", choices=("cppcorn", "uvloop", "asyncio"))
    parser.add_argument("--callbacks", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=100_000)
    args = parser.parse_args()
    loop = loopbench.new_loop(args.event_loop)
    print(f"{args.event_loop}: {type(loop).__module__}.{type(loop).__name__}, Python {sys.version.split()[0]}")
    measure("call_soon", loop, lambda n: loopbench.bench_call_soon(n // loopbench.BATCH), args.callbacks)
    transports: set[asyncio.BaseTransport] = set()
    echo = loop.create_server(lambda: loopbench.EchoServerProtocol(transports), "127.0.0.1", 0)
    server = loop.run_until_complete(echo)
    port = server.sockets[0].getsockname()[1]
    measure("TCP connections", loop, lambda n: connections(n, port), args.connections)
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()


if __name__ == "__main__":
    main()
