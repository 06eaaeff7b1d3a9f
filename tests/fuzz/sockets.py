"""The socket-level fuzzer: generated and mutated streams against a real
server process (`python -m cppcorn tests.fuzz.apps:app` on 127.0.0.1), over
many connections at once, with random pacing, half-closes and resets.

After each batch: the server must answer a probe request within a bound
(liveness), its resident memory must stay within a bound of what it had
after the first batch, and its log must show no exception but the
application's own.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import struct
import time
from dataclasses import dataclass

from tests.fuzz.findings import Finding
from tests.fuzz.http_gen import generate_http_case
from tests.fuzz.ws_gen import MAX_SIZE, generate_ws_case
from tests.subprocesses import REPO_ROOT, ServerProcess, base_env, cppcorn_command

PROBE = b"POST /echo HTTP/1.1\r\nHost: probe\r\nContent-Length: 5\r\n\r\nprobe"
PROBE_TIMEOUT = 3.0
READ_IDLE = 0.3  # a connection's reading ends after this long without bytes
RSS_GROWTH_LIMIT = 64 * 1024 * 1024
# Exceptions the fuzz application raises on purpose, or that send() raises for its misframed responses.
EXPECTED_EXCEPTION = re.compile(r"^(tests\.fuzz\.apps\.FuzzAppError|RuntimeError)\b")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b.*")


@dataclass
class SocketCounts:
    connections: int = 0
    bytes_sent: int = 0
    batches: int = 0
    resets: int = 0


def start_server() -> ServerProcess:
    args = ["tests.fuzz.apps:app", "--port", "0", "--lifespan", "off", "--no-access-log",
            "--ws-max-size", str(MAX_SIZE), "--timeout-keep-alive", "2"]  # fmt: skip
    return ServerProcess(cppcorn_command(*args), REPO_ROOT, base_env()).wait_started()


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def _connection(port: int, rng: random.Random, seed: int, counts: SocketCounts) -> None:
    case = generate_http_case(seed) if rng.random() < 0.7 else generate_ws_case(seed)
    data, reads = (case.data, case.reads) if hasattr(case, "requests") else (case.data, [len(case.data)])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    counts.connections += 1
    reset_at = rng.randrange(len(reads) + 1) if rng.random() < 0.25 else None
    try:
        position = 0
        for index, size in enumerate(reads[:50] if len(reads) > 50 else reads):
            if index == reset_at:
                break
            writer.write(data[position : position + size])
            position += size
            counts.bytes_sent += size
            if rng.random() < 0.3:
                await asyncio.sleep(rng.random() * 0.005)
        writer.write(data[position:] if reset_at is None else b"")
        if reset_at is not None:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close() sends RST
            counts.resets += 1
            return
        if rng.random() < 0.3 and writer.can_write_eof():
            writer.write_eof()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            chunk = await asyncio.wait_for(reader.read(65536), READ_IDLE)
            if not chunk:
                break
    except (asyncio.TimeoutError, ConnectionError, OSError):
        pass
    finally:
        writer.close()


def probe(port: int) -> bytes:
    """One request on a new connection; what came back within PROBE_TIMEOUT."""
    with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as sock:
        sock.sendall(PROBE)
        received = b""
        deadline = time.monotonic() + PROBE_TIMEOUT
        while not received.endswith(b"probe") and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
        return received


def unexpected_exceptions(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if EXCEPTION_LINE.match(line) and not EXPECTED_EXCEPTION.match(line)]


def fuzz_sockets(
    seed: int, *, deadline: float, batch: int = 40, concurrency: int = 20
) -> tuple[SocketCounts, list[Finding]]:
    counts = SocketCounts()
    findings: list[Finding] = []
    server = start_server()
    rng = random.Random(seed)
    baseline = None
    try:
        while time.monotonic() < deadline:
            seeds = [rng.randrange(2**32) for _ in range(batch)]

            async def run_batch(seeds: list[int] = seeds) -> None:
                limit = asyncio.Semaphore(concurrency)

                async def one(case_seed: int) -> None:
                    async with limit:
                        await _connection(server.port, random.Random(case_seed), case_seed, counts)

                await asyncio.gather(*(one(s) for s in seeds))

            asyncio.run(run_batch())
            counts.batches += 1
            answer = probe(server.port)
            rss = rss_bytes(server.pid)
            baseline = rss if baseline is None else baseline
            problem = None
            if not answer.startswith(b"HTTP/1.1 200") or not answer.endswith(b"probe"):
                problem = ("liveness", f"probe after batch {counts.batches} got {answer[:200]!r}")
            elif rss > baseline + RSS_GROWTH_LIMIT:
                problem = (
                    "rss",
                    f"VmRSS {rss >> 20} MiB after batch {counts.batches}, {baseline >> 20} MiB after the first",
                )
            elif unexpected_exceptions(server.stderr):
                problem = ("error-logged", "; ".join(unexpected_exceptions(server.stderr))[:600])
            if problem is not None:
                findings.append(Finding("sockets", problem[0], problem[1], f"sockets seed={seed} batch seeds={seeds}",
                                        seed, b"", context={"batch_seeds": seeds}))  # fmt: skip
                break
    finally:
        server.stop()
    return counts, findings
