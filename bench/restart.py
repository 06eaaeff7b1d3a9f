"""Restart benchmark: requests lost while servers restart under keep-alive load (bench/README.md). Each server is
started by the harness (pinned, checked) and restarted by SIGHUP, SIGTERM or --limit-max-requests while this
process's own client keeps 32 keep-alive connections busy and counts every request it sent, got an answer to, or
lost, and how."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent.parent))  # the repo root: this process never imports cppcorn
from bench import harness
from bench.harness import HOST, Server
from bench.load import HELLO_APP, HttpScenario, LoadBenchmark

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
FAILURES = ("reset", "EOF", "timeout", "other")  # a request sent and never answered
SERVERS = ("cppcorn", "cppcorn-baseline", "cppcorn-reuse-port", "uvicorn", "granian")


@dataclass(frozen=True)
class Cycle(HttpScenario):
    workers: int = 1
    # Per server family, the options that make it restart on its own; a family missing here cannot run the cycle.
    options: dict[str, tuple[str, ...]] | None = None


def cycles(max_requests: int) -> dict[str, Cycle]:
    limit = ("--limit-max-requests", str(max_requests))
    return {c.name: c for c in (
        Cycle("sighup", "--workers 2, SIGHUP to the supervisor: a rolling restart of every worker", HELLO_APP,
              workers=2),
        Cycle("sigterm", "a single server, SIGTERM, then started again", HELLO_APP),
        # granian 2.8 has no request limit (only --workers-lifetime, 60 s at least, and --workers-max-rss).
        Cycle("max-requests", f"--workers 2 --limit-max-requests {max_requests}: each worker replaced after that "
              "many requests", HELLO_APP, workers=2, options={"cppcorn": limit, "uvicorn": limit}),
    )}


# -- The client: keep-alive connections counting every request. ---------------


class Load:
    """`connections` keep-alive connections, each sending `GET /` as soon as the last answer is read. A request written
    is `sent`; it is `answered` by a whole response (Content-Length framed), or failed: reset, EOF before the whole
    response, no answer within `timeout` seconds, or other (a status other than 200, an answer it cannot parse). A
    connection found closed before the next request is written (as HTTP clients check before reusing one) loses
    nothing: `closed idle`. A refused connect (nothing listening) is `connects refused`, and retried 10 ms later."""

    def __init__(self, port: int, connections: int, timeout: float) -> None:
        self.port, self.timeout, self.stopping = port, timeout, False
        self.counts: Counter[str] = Counter()
        self.gaps = array("d")  # seconds from reading a response to writing the next request on that connection
        self.waiting: dict[asyncio.StreamWriter, float] = {}  # a connection's unanswered request: when it was sent
        self.timed_out: set[asyncio.StreamWriter] = set()
        self.tasks = [asyncio.ensure_future(self.connection()) for _ in range(connections)]
        self.tasks.append(asyncio.ensure_future(self.watchdog()))

    async def stop(self) -> dict[str, Any]:
        self.stopping = True  # each connection finishes the request it is waiting for
        await asyncio.gather(*self.tasks[:-1])
        self.tasks[-1].cancel()
        return dict(self.counts)

    async def watchdog(self) -> None:
        """One timer for every connection: cheaper than a timeout per request."""
        while True:
            await asyncio.sleep(0.25)
            now = time.perf_counter()
            for writer in [w for w, sent in self.waiting.items() if now - sent > self.timeout]:
                self.timed_out.add(writer)
                writer.transport.abort()

    async def connection(self) -> None:
        while not self.stopping:
            try:
                reader, writer = await asyncio.open_connection(HOST, self.port)
            except OSError as exc:
                self.counts["connects refused" if isinstance(exc, ConnectionRefusedError) else "connect errors"] += 1
                await asyncio.sleep(0.01)
                continue
            try:
                await self.requests(reader, writer)
            finally:
                self.waiting.pop(writer, None)
                self.timed_out.discard(writer)
                writer.transport.abort()

    async def requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered_at = None
        while not self.stopping:
            if reader.at_eof() or reader.exception():
                self.counts["closed idle"] += 1
                return
            writer.write(REQUEST)
            self.waiting[writer] = sent_at = time.perf_counter()
            if answered_at is not None:
                self.gaps.append(sent_at - answered_at)
            self.counts["sent"] += 1
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
                await reader.readexactly(int(headers.get(b"content-length", 0)))
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                kind = "EOF" if isinstance(exc, asyncio.IncompleteReadError) else "reset" if isinstance(exc, OSError) \
                    else "other"  # a response it cannot parse
                self.counts["timeout" if writer in self.timed_out else kind] += 1
                return
            answered_at = time.perf_counter()
            del self.waiting[writer]
            self.counts["answered" if lines[0].split(b" ")[1:2] == [b"200"] else "other"] += 1
            if headers.get(b"connection", b"").lower() == b"close":
                return


# -- The cycles. ---------------------------------------------------------------


class RestartBenchmark(LoadBenchmark):
    title = "Restart benchmark"
    load_generator = "client"
    tools = ()

    def command(self, server: Server, args: argparse.Namespace) -> list[str]:
        cycle = server.scenario
        assert isinstance(cycle, Cycle)
        # The harness pins only a single process: here the workers share the servers' CPU too.
        pin = ["taskset", "-c", str(args.server_cpu)] if args.workers > 1 else []
        return [*pin, *super().command(server, args), *(cycle.options or {}).get(harness.family(server.name), ())]


def workers_of(server: Server) -> set[int]:
    assert server.proc is not None
    return set(harness.tree_pids(server.proc.pid)) - {server.proc.pid}


async def sighup(server: Server, cycle: Cycle) -> str | None:
    """A rolling restart, done once `workers` of the old processes have exited and as many run again; what went
    wrong."""
    assert server.proc is not None
    old, deadline = await asyncio.to_thread(workers_of, server), time.monotonic() + 30
    server.proc.send_signal(signal.SIGHUP)
    while server.alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if len(old - (now := await asyncio.to_thread(workers_of, server))) >= cycle.workers and len(now) >= len(old):
            return None
    return "the workers were not all replaced within 30 s"


async def sigterm(server: Server) -> str | None:
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.to_thread(server.proc.wait, 30)
    except subprocess.TimeoutExpired:
        return "still running 30 s after SIGTERM"
    finally:
        server.stop()
    return None


async def run_cycles(bench: RestartBenchmark, cycle: Cycle, server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """Starts the server, puts it under load and restarts it `args.cycles` times (max-requests: lets it run for
    `args.duration` s); the client's counts and gaps, the restarts (max-requests: answered requests / the limit)."""
    notes: list[str] = []
    await asyncio.to_thread(server.start, bench, args)
    if server.error:
        return {"error": server.failure()}
    load, started, restarts = Load(server.port, args.connections, args.timeout), time.monotonic(), 0
    await asyncio.sleep(args.interval)
    while cycle.name == "max-requests" and time.monotonic() - started < args.duration + args.interval \
            and server.alive():
        await asyncio.sleep(0.1)
    for number in range(1, args.cycles + 1) if cycle.name != "max-requests" else ():
        if problem := await (sigterm(server) if cycle.name == "sigterm" else sighup(server, cycle)):
            notes.append(f"cycle {number}: {problem}")
            break
        restarts = number
        if cycle.name == "sigterm":
            if number == args.cycles:
                break  # the last one stays down
            await asyncio.to_thread(server.start, bench, args)
        if not server.alive():
            break
        await asyncio.sleep(args.interval)
    counts = await load.stop()
    if cycle.name != "sigterm":
        server.alive()  # notes a death
    server.stop()
    if cycle.name == "max-requests":  # each worker exits after that many: polling /proc would miss the short-lived
        restarts = counts.get("answered", 0) // args.max_requests
    gap = sorted(load.gaps)
    return {"error": server.error and server.failure(), "restarts": restarts, "seconds": time.monotonic() - started,
            "counts": counts, "notes": notes, "gap": {"count": len(gap), **({
                "median_us": statistics.median(gap) * 1e6, "p99_us": gap[len(gap) * 99 // 100] * 1e6,
                "max_us": gap[-1] * 1e6} if gap else {})}}


# -- Report. -------------------------------------------------------------------


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    rows = ["| server | restarts | requests sent | answered | **failed** | reset | EOF | timeout | other "
            "| closed idle | connects refused | notes |", "|---|" + "--:|" * 10 + "---|"]
    for name, r in results.items():
        if "counts" not in r:
            rows.append(f"| {name} |{' — |' * 10} {r['error']} |")
            continue
        c, notes = r["counts"], r["notes"] + ([f"**failed**: {r['error']}"] if r["error"] else [])
        notes += [f"{c['connect errors']} connects failed otherwise"] if c.get("connect errors") else []
        cells = [r["restarts"], c.get("sent", 0), c.get("answered", 0), f"**{sum(c.get(k, 0) for k in FAILURES):,}**",
                 *(c.get(k, 0) for k in (*FAILURES, "closed idle", "connects refused"))]
        rows.append(f"| {name} | " + " | ".join(f"{v:,}" if isinstance(v, int) else v for v in cells)
                    + f" | {'; '.join(notes).replace('|', '/')} |")
    return rows


def report(env: dict[str, Any], chosen: list[Cycle], results: dict[str, dict[str, dict[str, Any]]],
           args: argparse.Namespace) -> str:
    lines = [f"### {env['benchmark']}, {env['date']}", "", f"- command: `{env['command']}` (commit {env['commit']})",
             f"- machine: {env['cpu_model']}, {env['cpus']} CPUs, Linux {env['kernel']}",
             f"- {env['python']}; " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if k in SERVERS),
             f"- method: every server's processes pinned to CPU {args.server_cpu}, the client (one Python process, "
             f"asyncio) to CPU {args.load_cpu}; {args.connections} keep-alive connections sending `GET /` (the hello "
             f"app) back to back; {args.interval:g} s of load before the first restart and between restarts; a "
             f"request is failed when reset, cut by EOF, or unanswered for {args.timeout:g} s"]
    for cycle in chosen:
        lines += ["", f"#### {cycle.name}: {cycle.title}", "", *table(results[cycle.name])]
    lines += ["", "#### Gap between reading a response and writing the next request on the same connection", "",
              "| cycle | server | gaps | median µs | p99 µs | max µs |", "|---|---|--:|--:|--:|--:|"]
    lines += [f"| {c} | {name} | {g['count']:,} | " + " | ".join(f"{g.get(k, 0):,.1f}" for k in
                                                              ("median_us", "p99_us", "max_us")) + " |"
              for c, rs in results.items() for name, r in rs.items() if (g := r.get("gap"))]
    return "\n".join(lines) + "\n"


def run_all(bench: RestartBenchmark, chosen: list[Cycle], args: argparse.Namespace,
            scratch: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Each cycle, each server in turn, alone on its CPU."""
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for cycle in chosen:
        results[cycle.name] = {}
        for name in args.servers:
            if cycle.options is not None and harness.family(name) not in cycle.options:
                results[cycle.name][name] = {"error": f"{name} has no equivalent: not run"}
                continue
            harness.log(f"{cycle.name}: {name}")
            (rundir := scratch / f"{cycle.name}-{name}").mkdir()
            server = Server(name, cycle, harness.free_port(), rundir)
            cycle_args = argparse.Namespace(**vars(args), workers=cycle.workers)
            results[cycle.name][name] = r = asyncio.run(run_cycles(bench, cycle, server, cycle_args))
            r["command"] = [harness.portable(a, scratch) for a in server.argv]
            harness.log(f"  {r.get('restarts')} restarts, {r.get('counts')}, gaps {r.get('gap')}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description="Restart benchmark: requests lost across restarts under keep-alive "
                                     "load, cppcorn and its peers (bench/README.md).")
    parser.add_argument("--servers", default="cppcorn,uvicorn,granian", help=f"from: {','.join(SERVERS)}")
    parser.add_argument("--scenarios", default="sighup,sigterm,max-requests", help="which restarts (default: all)")
    for option, kind, default, what in (
            ("--cycles", int, 5, "restarts per server (sighup, sigterm)"),
            ("--duration", float, 10, "seconds of load for max-requests"),
            ("--max-requests", int, 2000, "--limit-max-requests for max-requests"),
            ("--interval", float, 1.5, "seconds of load before the first restart and between restarts"),
            ("--connections", int, 32, "keep-alive connections"), ("--timeout", float, 5, "seconds a request may take"),
            ("--start-timeout", float, 30, "seconds a server may take to listen"),
            ("--server-cpu", int, 0, "the servers' CPU"), ("--client-cpu", int, 1, "the client's CPU")):
        parser.add_argument(option, type=kind, default=default, help=f"{what} (default: %(default)s)")
    parser.add_argument("--baseline", metavar="PYTHON", help="adds cppcorn-baseline, run by this interpreter")
    parser.add_argument("--results-dir", type=Path, default=harness.BENCH_DIR / "results", help="where the JSON goes")
    args = parser.parse_args()
    args.load_cpu = args.client_cpu
    if args.baseline and not (found := shutil.which(args.baseline)):
        parser.error(f"--baseline: no interpreter {args.baseline}")
    args.baseline = args.baseline and os.path.abspath(found)  # not resolved: a venv's python is a link
    args.servers = harness.choose(parser, "--servers", args.servers + ",cppcorn-baseline" * bool(args.baseline),
                                  SERVERS)
    known = cycles(args.max_requests)
    chosen = [known[n] for n in harness.choose(parser, "--scenarios", args.scenarios, tuple(known))]
    harness.find_tool("taskset")
    os.sched_setaffinity(0, {args.load_cpu})  # the client; the servers are started under taskset
    bench = RestartBenchmark()
    env = harness.environment(bench, chosen, args)
    if (results := harness.in_scratch(lambda scratch: run_all(bench, chosen, args, scratch))) is None:
        return 130
    out = harness.write_json(args, "restart-", {"environment": env, "cycles": results})
    print(report(env, chosen, results, args))
    harness.log(f"raw results: {os.path.relpath(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
