"""Does an event loop leak? Resident memory across a million call_soon()
callbacks and 100,000 TCP connections opened and closed, on one loop.

    python bench/loop_memory.py                      # cppcorn.loop
    python bench/loop_memory.py --event-loop uvloop --callbacks 1000000 --connections 100000

Each phase runs once to warm up (caches, free lists, the allocator's arenas),
then the resident set size is sampled after every tenth of the work. A loop
that keeps something per callback or per connection grows linearly; a flat
series means no leak. Connections go to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STEPS = 10


def rss_mib() -> float:
    """Resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "asyncio":
        return asyncio.SelectorEventLoop()
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))
    import cppcorn.loop

    return cppcorn.loop.new_event_loop()


async def run_callbacks(count: int) -> None:
    """`count` call_soon() callbacks, in batches of 10,000 run per iteration."""
    loop = asyncio.get_running_loop()
    calls = 0

    def callback(value: int) -> None:
        nonlocal calls
        calls += 1

    for _ in range(count // 10_000):
        done = loop.create_future()
        for index in range(10_000):
            loop.call_soon(callback, index)
        loop.call_soon(done.set_result, None)
        await done
    if calls != count // 10_000 * 10_000:
        raise SystemExit(f"only {calls} of {count} callbacks ran")


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class Client(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[bytes]) -> None:
        self.done = done
        self.received = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(b"ping")

    def data_received(self, data: bytes) -> None:
        self.received += data
        if self.received == b"ping":
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.received)


async def run_connections(count: int, port: int) -> None:
    """`count` connections, 50 at a time: connect, one echo, close."""
    loop = asyncio.get_running_loop()
    batch = 50

    async def one() -> None:
        done = loop.create_future()
        await loop.create_connection(lambda: Client(done), "127.0.0.1", port)
        if await done != b"ping":
            raise SystemExit("echo mismatch")

    for _ in range(count // batch):
        await asyncio.gather(*(one() for _ in range(batch)))


def measure(label: str, loop: asyncio.AbstractEventLoop, work, total: int) -> list[float]:
    step = total // STEPS
    loop.run_until_complete(work(step))  # warm-up
    gc.collect()
    samples = [rss_mib()]
    started = time.perf_counter()
    for _ in range(STEPS):
        loop.run_until_complete(work(step))
        gc.collect()
        samples.append(rss_mib())
    elapsed = time.perf_counter() - started
    series = " ".join(f"{value:.1f}" for value in samples)
    print(f"{label}: {total:,} in {elapsed:.1f} s; RSS MiB after each tenth: {series}; "
          f"growth {samples[-1] - samples[0]:+.1f} MiB")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--event-loop", default="cppcorn", choices=("cppcorn", "uvloop", "asyncio"))
    parser.add_argument("--callbacks", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=100_000)
    args = parser.parse_args()

    loop = new_loop(args.event_loop)
    print(f"{args.event_loop}: {type(loop).__module__}.{type(loop).__name__}, Python {sys.version.split()[0]}")
    measure("call_soon", loop, run_callbacks, args.callbacks)

    server = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    measure("TCP connections", loop, lambda n: run_connections(n, port), args.connections)
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()


if __name__ == "__main__":
    main()
