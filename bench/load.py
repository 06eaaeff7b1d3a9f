"""Load benchmark: cppcorn and its peers, side by side, in one run.

Method (docs: bench/README.md; binding: DESIGN.md section 4 "How we measure"):
every server runs pinned to one CPU, wrk with one thread pinned to the other,
64 keep-alive connections (with `--workers N`, each server runs N worker
processes and nothing is pinned: servers and wrk share the CPUs); each server gets a warm-up, then the rounds are
interleaved (round 1 of every server, then round 2, ...) so that the drift of a
noisy shared machine hits every server alike; the table shows medians.
Besides requests/s and p99 latency, it reports the CPU time the server's whole
process tree spent per request, which still compares servers when wrk, not the
server, is the bottleneck. Some scenarios change the load (their own wrk
options, Lua script or connection count): see SCENARIOS.

Standard library only; run it with bench/.venv/bin/python (bench/setup.sh).
Prints markdown on stdout, progress on stderr, and writes the raw results as
JSON to bench/results/<timestamp>.json (bench/chart.py draws them).
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import importlib.metadata
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:
    # Run as `python bench/load.py`, only bench/ is on the path. Appended, not
    # prepended: this process never imports cppcorn, and must not shadow
    # anything installed.
    sys.path.append(str(REPO_ROOT))

from bench.apps.large import BODY as LARGE_BODY  # the path is set just above
from bench.common import (
    CLOCK_TICKS,
    HOST,
    SHARED_CORE_PERCENT,
    ServerProcess,
    command_line,
    core_ticks,
    exit_on_signal,
    forget,
    format_value,
    free_port,
    log,
    median,
    portable_argv,
    short_number,
    signal_group,
    spawn,
    stop,
    stop_everything,
    table_cell,
    tree_cpu_seconds,
    without_repo_path,
)

SERVERS = ("cppcorn", "cppcorn-uvloop", "uvicorn", "granian", "nginx")
# With --workers N > 1: cppcorn twice, sharing one listening socket (the
# default) and with one SO_REUSEPORT listener per worker; nginx, the floor of
# the single-process runs, is left out.
WORKERS_SERVERS = ("cppcorn", "cppcorn-reuse-port", "uvicorn", "granian")
# Every scenario runs on these; nginx only where it can answer as the app does.
PYTHON_SERVERS = ("cppcorn", "cppcorn-uvloop", "cppcorn-reuse-port", "uvicorn", "granian")
WRK_SCRIPTS = BENCH_DIR / "wrk"
PIPELINE_DEPTH = 16  # requests per write in `pipelined`
UPLOAD_BYTES = 8 << 20  # request body of `upload`
MANY_CONNECTIONS = 1000  # `conn1000`
DEFAULT_SCENARIOS = "hello,fastapi"


# --------------------------------------------------------------------------
# Scenarios: which app, the load wrk puts on it, and what a correct answer
# to the probe request (GET / unless the scenario says otherwise) looks like.
# --------------------------------------------------------------------------

Check = Callable[[int, dict[str, str], bytes], str | None]  # status, headers, body -> error or None


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    app: str  # import string, relative to the repo root
    check: Check
    # The `location /` directives that make nginx answer as the app does,
    # given its run directory (to write files to serve into); None: nginx
    # cannot run this scenario.
    nginx: Callable[[Path], str] | None = None
    connections: int | None = None  # wrk -c, instead of --connections
    headers: tuple[tuple[str, str], ...] = ()  # sent with every request: by wrk (-H) and the probe
    script: str | None = None  # a wrk Lua script in bench/wrk/
    script_args: tuple[str, ...] = ()  # its arguments (after the URL)
    wrk_options: tuple[str, ...] = ()  # any other
    probe_method: str = "GET"
    probe_body: bytes | None = None
    # False where wrk's latency percentiles are wrong: with pipelining, its
    # coordinated-omission correction takes every response for a request
    # interval and adds samples below the minimum, which its percentiles then
    # never reach (all 0, wg/wrk#236). The report shows no latency there.
    latency: bool = True

    @property
    def servers(self) -> tuple[str, ...]:
        """Which servers can run it."""
        return PYTHON_SERVERS + (("nginx",) if self.nginx else ())

    @property
    def own_load(self) -> bool:
        """Whether wrk's load differs from the default (keep-alive GET /, --connections)."""
        return bool(self.connections or self.headers or self.script or self.wrk_options)


def wrk_arguments(scenario: Scenario, connections: int, duration: int, url: str) -> list[str]:
    """wrk's arguments for one run of the scenario."""
    headers = [arg for name, value in scenario.headers for arg in ("-H", f"{name}: {value}")]
    script = ["-s", str(WRK_SCRIPTS / scenario.script)] if scenario.script else []
    return ["-t1", f"-c{connections}", f"-d{duration}s", "--latency", *scenario.wrk_options,
            *headers, *script, url, *scenario.script_args]


def wrk_connections(scenario: Scenario, args: argparse.Namespace) -> int:
    return scenario.connections or args.connections


def _check_hello(status: int, headers: dict[str, str], body: bytes) -> str | None:
    if status != 200:
        return f"status {status}"
    if body != b"Hello, world!":
        return f"body {body[:80]!r}"
    if not headers.get("content-type", "").startswith("text/plain"):
        return f"content-type {headers.get('content-type')!r}"
    if headers.get("content-length") != "13":
        return f"content-length {headers.get('content-length')!r}"
    return None


def _check_close(status: int, headers: dict[str, str], body: bytes) -> str | None:
    if headers.get("connection", "").lower() != "close":
        return f"connection {headers.get('connection')!r} in answer to Connection: close"
    return _check_hello(status, headers, body)


def _check_fastapi(status: int, headers: dict[str, str], body: bytes) -> str | None:
    if status != 200:
        return f"status {status}"
    try:
        payload = json.loads(body)
    except ValueError:
        return f"body is not JSON: {body[:80]!r}"
    if payload != {"message": "Hello, world!"}:
        return f"body {body[:80]!r}"
    if not headers.get("content-type", "").startswith("application/json"):
        return f"content-type {headers.get('content-type')!r}"
    return None


def _check_large(status: int, headers: dict[str, str], body: bytes) -> str | None:
    if status != 200:
        return f"status {status}"
    if headers.get("content-length") != str(len(LARGE_BODY)):
        return f"content-length {headers.get('content-length')!r}"
    if body != LARGE_BODY:
        return f"body of {len(body)} bytes, not bench/apps/large.py's {len(LARGE_BODY)}"
    if not headers.get("content-type", "").startswith("application/octet-stream"):
        return f"content-type {headers.get('content-type')!r}"
    return None


def _check_upload(status: int, headers: dict[str, str], body: bytes) -> str | None:
    if status != 200:
        return f"status {status}"
    if body != str(UPLOAD_BYTES).encode():
        return f"body {body[:80]!r}: the app did not count the {UPLOAD_BYTES} bytes sent"
    return None


def _nginx_hello(rundir: Path) -> str:
    return 'return 200 "Hello, world!";'  # as bench/nginx.conf has it


def _nginx_large(rundir: Path) -> str:
    # The same bytes as the app, from a static file, as nginx serves files
    # in practice (sendfile).
    path = rundir / "large.bin"
    path.write_bytes(LARGE_BODY)
    # Started by root, nginx's workers run as nobody: let them reach the file
    # through the scratch directories (search, not list).
    path.chmod(0o644)
    for directory in (rundir, rundir.parent):
        directory.chmod(directory.stat().st_mode | 0o111)
    return (f"root {rundir};\ntry_files /large.bin =404;\n"
            "default_type application/octet-stream;\nsendfile on;")


HELLO_APP = "bench.apps.hello:app"
SCENARIOS = {
    "hello": Scenario(
        "hello",
        "raw ASGI hello world (13-byte text/plain)",
        HELLO_APP,
        _check_hello,
        nginx=_nginx_hello,
    ),
    "fastapi": Scenario(
        "fastapi",
        'FastAPI hello (async handler returning {"message": "Hello, world!"} as JSON)',
        "bench.apps.fastapi_app:app",
        _check_fastapi,
    ),
    "close": Scenario(
        "close",
        "hello, every request with `Connection: close` (a new TCP connection per request)",
        HELLO_APP,
        _check_close,
        nginx=_nginx_hello,
        headers=(("Connection", "close"),),
    ),
    "pipelined": Scenario(
        "pipelined",
        f"hello, {PIPELINE_DEPTH} pipelined requests per write (bench/wrk/pipeline.lua)",
        HELLO_APP,
        _check_hello,
        nginx=_nginx_hello,
        script="pipeline.lua",
        script_args=(str(PIPELINE_DEPTH),),
        latency=False,
    ),
    "large": Scenario(
        "large",
        "raw ASGI, a 1 MiB response body (application/octet-stream; nginx: a static file)",
        "bench.apps.large:app",
        _check_large,
        nginx=_nginx_large,
    ),
    "upload": Scenario(
        "upload",
        "raw ASGI, an 8 MiB POST body read whole, its length answered (bench/wrk/upload.lua)",
        "bench.apps.upload:app",
        _check_upload,
        script="upload.lua",
        script_args=(str(UPLOAD_BYTES),),
        # 64 uploads of 8 MiB at once: a slow server takes more than wrk's
        # default 2 s to answer some, which wrk would count as errors.
        wrk_options=("--timeout", "10s"),
        probe_method="POST",
        probe_body=b"x" * UPLOAD_BYTES,
    ),
    "conn1000": Scenario(
        "conn1000",
        f"hello, {MANY_CONNECTIONS:,} concurrent keep-alive connections",
        HELLO_APP,
        _check_hello,
        nginx=_nginx_hello,
        connections=MANY_CONNECTIONS,
    ),
}


# --------------------------------------------------------------------------
# How each server is started, and which native modules it must have loaded.
# --------------------------------------------------------------------------


def server_command(name: str, scenario: Scenario, port: int, rundir: Path, workers: int,
                   connections: int) -> list[str]:
    py = sys.executable
    # cppcorn and uvicorn run one process unless told otherwise, and then
    # only take the option above one.
    worker_args = ["--workers", str(workers)] if workers > 1 else []
    if name in ("cppcorn", "cppcorn-uvloop", "cppcorn-reuse-port"):
        # --app-dir instead of running from the repo root: there, `python -m
        # cppcorn` would import the unbuilt source tree instead of the
        # installed, compiled package.
        return [py, "-m", "cppcorn", scenario.app, "--app-dir", str(REPO_ROOT),
                "--host", HOST, "--port", str(port), "--no-access-log",
                # `auto` is cppcorn's own loop; named, so that a build without
                # it fails instead of falling back to uvloop.
                "--log-level", "warning", "--loop", "uvloop" if name == "cppcorn-uvloop" else "cppcorn",
                *worker_args, *(["--reuse-port"] if name == "cppcorn-reuse-port" else [])]
    if name == "uvicorn":
        # Naming uvloop and httptools makes uvicorn fail instead of silently
        # falling back to asyncio/h11 when they are missing.
        return [py, "-m", "uvicorn", scenario.app, "--app-dir", str(REPO_ROOT),
                "--host", HOST, "--port", str(port), "--no-access-log",
                "--log-level", "warning", "--loop", "uvloop", "--http", "httptools", *worker_args]
    if name == "granian":
        return [py, "-m", "granian", scenario.app, "--working-dir", str(REPO_ROOT),
                "--interface", "asgi", "--workers", str(workers), "--loop", "uvloop",
                "--host", HOST, "--port", str(port), "--no-ws", "--no-access-log",
                "--log-level", "warning"]
    if name == "nginx":
        assert scenario.nginx is not None
        conf = write_nginx_conf(port, rundir, scenario.nginx(rundir), connections)
        return [find_tool("nginx"), "-p", str(rundir), "-c", str(conf), "-e", "stderr"]
    raise ValueError(name)


# Shared libraries that must be mapped in the server's process tree once it
# has answered a request: proof that the fast paths we asked for are in use.
REQUIRED_NATIVE = {
    "cppcorn": ("cppcorn/loop",),
    "cppcorn-uvloop": ("uvloop",),
    "cppcorn-reuse-port": ("cppcorn/loop",),
    "uvicorn": ("uvloop", "httptools"),
    "granian": ("uvloop",),
    "nginx": (),
}

PEER_PACKAGES = ("cppcorn", "uvicorn", "uvloop", "httptools", "granian",
                 "fastapi", "starlette", "pydantic")


def write_nginx_conf(port: int, rundir: Path, location: str, connections: int) -> Path:
    nginx_v = subprocess.run([find_tool("nginx"), "-V"], capture_output=True,
                             text=True, timeout=10).stderr
    # One temp path per module this build has, so that nginx never needs the
    # system's /var/lib/nginx; naming a module that is compiled out is an error.
    temp_paths = []
    for module in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        if f"--without-http_{module}_module" not in nginx_v:
            temp_paths.append(f"    {module}_temp_path {rundir}/{module}_temp;")
    text = (BENCH_DIR / "nginx.conf").read_text()
    text = (text.replace("@PORT@", str(port)).replace("@RUNDIR@", str(rundir))
            .replace("@TEMP_PATHS@", "\n".join(temp_paths)))
    # The template's `location / { ... }` gets the scenario's directives...
    text = _replace_once(r"(\n\s*location / \{)[^{}]*(\})", lambda m: f"{m[1]}\n{location}\n{m[2]}", text)
    # ... and its worker one connection per wrk connection, and some to spare
    # (otherwise nginx closes connections in use to accept new ones).
    text = _replace_once(r"worker_connections (\d+);",
                         lambda m: f"worker_connections {max(int(m[1]), connections + 100)};", text)
    conf = rundir / "nginx.conf"
    conf.write_text(text)
    return conf


def _replace_once(pattern: str, replacement: Callable[[re.Match[str]], str], text: str) -> str:
    text, found = re.subn(pattern, replacement, text)
    if found != 1:
        raise RuntimeError(f"bench/nginx.conf: {found} matches of {pattern!r} instead of one")
    return text


def find_tool(name: str) -> str:
    # nginx lives in /usr/sbin, which is not on every user's PATH.
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise SystemExit(f"{name} not found: run bench/setup.sh first")
    return path


def raise_open_files_limit(needed: int) -> None:
    """The soft RLIMIT_NOFILE up to the hard limit, for this process and all it
    starts: with `conn1000`, wrk and the server each hold 1,000 sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < needed:
        log(f"warning: open files limited to {hard} (ulimit -Hn); {needed} needed: "
            "expect connect errors")


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------

_LATENCY_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    socket_errors: dict[str, int]
    non_2xx_3xx: int
    wrk_cpu_s: float  # wrk's own utime+stime: near duration_s means wrk is the bottleneck

    def problems(self) -> list[str]:
        found = [f"{n} {kind} errors" for kind, n in self.socket_errors.items() if n]
        if self.non_2xx_3xx:
            found.append(f"{self.non_2xx_3xx} non-2xx/3xx responses")
        return found


def _latency_ms(text: str, percentile: str) -> float:
    m = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
    if m is None:
        raise ValueError(f"no {percentile}% latency in wrk output")
    return float(m.group(1)) * _LATENCY_UNITS_MS[m.group(2)]


def parse_wrk(text: str, wrk_cpu_s: float) -> WrkResult:
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", text, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if total is None or rate is None:
        raise ValueError("no request count in wrk output")
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors = dict(zip(errors, map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return WrkResult(
        requests=int(total.group(1)),
        duration_s=float(total.group(2)) * _LATENCY_UNITS_MS[total.group(3)] / 1e3,
        requests_per_s=float(rate.group(1)),
        p50_ms=_latency_ms(text, "50"),
        p99_ms=_latency_ms(text, "99"),
        socket_errors=errors,
        non_2xx_3xx=int(m.group(1)) if m else 0,
        wrk_cpu_s=wrk_cpu_s,
    )


def pinned_to(cpu: int, args: argparse.Namespace) -> list[str]:
    """The taskset prefix pinning a command to `cpu`; none with --workers N,
    where servers and wrk share every CPU."""
    return [] if args.workers > 1 else ["taskset", "-c", str(cpu)]


def measured_cores(args: argparse.Namespace) -> tuple[list[int], list[int]]:
    """The CPUs whose busy time is the server's core, and wrk's: with
    --workers N, every CPU is the servers' and wrk has none of its own."""
    if args.workers > 1:
        return args.cpus, []
    return [args.server_cpu], [args.wrk_cpu]


def run_wrk(port: int, scenario: Scenario, args: argparse.Namespace, duration: int) -> WrkResult:
    argv = [*pinned_to(args.wrk_cpu, args), find_tool("wrk"),
            *wrk_arguments(scenario, wrk_connections(scenario, args), duration, f"http://{HOST}:{port}/")]
    with tempfile.TemporaryFile() as out:
        proc = spawn(argv, stdout=out, stderr=subprocess.STDOUT)
        # wrk normally ends on its own after `duration`; the timer is only a
        # safety net so that a hung wrk cannot hang the benchmark.
        timer = threading.Timer(duration + 30, signal_group, (proc.pid, signal.SIGKILL))
        timer.start()
        try:
            # wait4 rather than wait(): it also returns wrk's CPU time.
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        forget(proc)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}: {text.strip()[-500:]}")
    return parse_wrk(text, usage.ru_utime + usage.ru_stime)


# --------------------------------------------------------------------------
# One server under test
# --------------------------------------------------------------------------


@dataclass
class Run:
    round: int
    requests: int
    requests_per_s: float
    p50_ms: float | None  # None: not measured (Scenario.latency)
    p99_ms: float | None
    server_cpu_s: float
    cpu_us_per_request: float
    server_cpu_percent: float  # of one core, over the window
    core_busy_percent: float  # the server's core (every CPU with --workers), whoever used it, softirq included
    core_softirq_percent: float
    # Core time used by neither the server nor softirq (nor wrk, with
    # --workers): other processes that ran on the server's core (this is a
    # shared machine) and slowed it down. A lower bound: the kernel charges
    # some softirq time to the server itself.
    core_other_percent: float
    wrk_cpu_percent: float
    # The same for wrk's core: others there starve the load generator (0
    # with --workers, where wrk has no core of its own).
    wrk_core_other_percent: float
    wall_s: float
    socket_errors: dict[str, int]
    non_2xx_3xx: int
    problems: list[str]


@dataclass
class ServerUnderTest(ServerProcess):
    scenario: Scenario = field(kw_only=True)
    warmup: dict[str, Any] | None = None
    runs: list[Run] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # runs that produced no numbers

    def command(self, args: argparse.Namespace) -> list[str]:
        return server_command(self.name, self.scenario, self.port, self.rundir, args.workers,
                              wrk_connections(self.scenario, args))

    def pinning(self, args: argparse.Namespace) -> list[str]:
        return pinned_to(args.server_cpu, args)

    def verify(self) -> None:
        self._check_response()
        missing = self.check_native(REQUIRED_NATIVE[self.name])
        if missing:
            raise RuntimeError(f"{', '.join(missing)} not loaded in the server's processes")

    def _check_response(self) -> None:
        """The scenario's probe request, and its check of the answer."""
        scenario = self.scenario
        request = f"{scenario.probe_method} /"
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            conn.request(scenario.probe_method, "/", body=scenario.probe_body, headers=dict(scenario.headers))
            response = conn.getresponse()
            body = response.read()
            headers = {k.lower(): v for k, v in response.getheaders()}
        except (OSError, http.client.HTTPException) as exc:
            raise RuntimeError(f"{request} failed: {exc!r}") from exc
        finally:
            conn.close()
        problem = scenario.check(response.status, headers, body)
        if problem:
            raise RuntimeError(f"{request} answered wrongly: {problem}")

    def measure(self, args: argparse.Namespace, round_no: int, duration: int) -> Run | None:
        assert self.proc is not None
        # Sampled right before and right after wrk: the window is wrk's run
        # plus the few milliseconds it needs to start and connect.
        server_cores, wrk_cores = measured_cores(args)
        core_before = core_ticks(server_cores)
        wrk_core_before = core_ticks(wrk_cores)
        cpu_before, wall_before = tree_cpu_seconds(self.proc.pid), time.monotonic()
        try:
            result = run_wrk(self.port, self.scenario, args, duration)
        except (RuntimeError, ValueError) as exc:
            if self.alive():  # a dead server explains itself; otherwise record it
                what = "warm-up" if round_no == 0 else f"round {round_no}"
                self.notes.append(f"{what}: wrk failed: {str(exc).splitlines()[0]}")
                log(f"  {self.name}: {self.notes[-1]}")
            return None
        cpu_s = tree_cpu_seconds(self.proc.pid) - cpu_before
        wall_s = time.monotonic() - wall_before
        busy, softirq = (after - before for after, before in
                         zip(core_ticks(server_cores), core_before))
        wrk_busy, wrk_softirq = (after - before for after, before in
                                 zip(core_ticks(wrk_cores), wrk_core_before))
        # Sharing the cores, wrk is one more known user of them.
        shared_wrk_s = result.wrk_cpu_s if args.workers > 1 else 0.0
        return Run(
            round=round_no,
            requests=result.requests,
            requests_per_s=result.requests_per_s,
            p50_ms=result.p50_ms if self.scenario.latency else None,
            p99_ms=result.p99_ms if self.scenario.latency else None,
            server_cpu_s=cpu_s,
            cpu_us_per_request=cpu_s * 1e6 / result.requests if result.requests else float("nan"),
            server_cpu_percent=100 * cpu_s / wall_s,
            core_busy_percent=100 * busy / CLOCK_TICKS / wall_s,
            core_softirq_percent=100 * softirq / CLOCK_TICKS / wall_s,
            core_other_percent=max(0.0, 100 * (busy - softirq) / CLOCK_TICKS / wall_s
                                   - 100 * (cpu_s + shared_wrk_s) / wall_s),
            wrk_cpu_percent=100 * result.wrk_cpu_s / wall_s,
            wrk_core_other_percent=max(0.0, 100 * (wrk_busy - wrk_softirq) / CLOCK_TICKS / wall_s
                                       - 100 * result.wrk_cpu_s / wall_s),
            wall_s=wall_s,
            socket_errors=result.socket_errors,
            non_2xx_3xx=result.non_2xx_3xx,
            problems=result.problems(),
        )

    def clean_runs(self) -> list[Run]:
        """Runs without errors: the only ones the medians are taken from."""
        return [r for r in self.runs if not r.problems]


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------


def run_scenario(scenario: Scenario, names: list[str], args: argparse.Namespace,
                 scratch: Path) -> list[ServerUnderTest]:
    log(f"scenario {scenario.name}: {scenario.title}")
    servers = []
    for name in names:
        rundir = scratch / f"{scenario.name}-{name}"
        rundir.mkdir()
        server = ServerUnderTest(name, free_port(), rundir, scenario=scenario)
        servers.append(server)
        server.start(args)  # one at a time: start-up CPU would disturb the others

    ready = [s for s in servers if s.ok]
    for server in ready if args.warmup > 0 else []:
        log(f"  warm-up {server.name} ({args.warmup:g} s)")
        if server.alive():
            run = server.measure(args, 0, args.warmup)
            server.warmup = asdict(run) if run else None

    for round_no in range(1, args.rounds + 1):
        # Rotate the order each round as well, so that no server is always the
        # one measured right after a particular other (or right after a pause).
        shift = (round_no - 1) % max(len(ready), 1)
        for server in ready[shift:] + ready[:shift]:
            if not server.alive():
                continue
            time.sleep(args.pause)
            run = server.measure(args, round_no, args.duration)
            if run is None:
                continue
            server.runs.append(run)
            flag = f"  !! {', '.join(run.problems)}" if run.problems else ""
            log(f"  round {round_no} {server.name:8} {run.requests_per_s:>10,.0f} req/s"
                f"  p99 {format_value(run.p99_ms, '6.2f')} ms  {run.cpu_us_per_request:5.1f} us/req"
                f"  server {run.server_cpu_percent:3.0f}% cpu (core {run.core_busy_percent:3.0f}%)"
                f"  wrk {run.wrk_cpu_percent:3.0f}% cpu{flag}")

    for server in servers:
        if server.proc is not None:
            stop(server.proc)
    return servers


# --------------------------------------------------------------------------
# Environment and report
# --------------------------------------------------------------------------


def environment(args: argparse.Namespace) -> dict[str, Any]:
    cpu_model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in PEER_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["nginx"] = _tool_version([find_tool("nginx"), "-v"]).removeprefix("nginx version: ")
    versions["wrk"] = _tool_version([find_tool("wrk"), "-v"]).split(" Copyright")[0]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(),
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "load_average_at_start": Path("/proc/loadavg").read_text().split()[:3],
        # The interpreter's build (compiler, date) changes Python-level speed too.
        "python": f"{platform.python_implementation()} {platform.python_version()} "
                  f"({platform.python_compiler()}, {platform.python_build()[1]})",
        "versions": versions,
        "settings": {k: getattr(args, k) for k in (
            "connections", "duration", "rounds", "warmup", "pause", "server_cpu", "wrk_cpu", "workers")},
        "scenarios": {name: {"title": SCENARIOS[name].title, "wrk": wrk_command_line(SCENARIOS[name], args)}
                      for name in args.scenarios},
    }


def wrk_command_line(scenario: Scenario, args: argparse.Namespace) -> str:
    """wrk's command for a round of the scenario, as the report shows it."""
    url = f"http://{HOST}:<port>/"
    argv = wrk_arguments(scenario, wrk_connections(scenario, args), args.duration, url)
    return "wrk " + " ".join(arg if arg == url else shlex.quote(without_repo_path(arg)) for arg in argv)


def _tool_version(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    return (out.stderr or out.stdout).strip().splitlines()[0]


def summarise(server: ServerUnderTest, floor: ServerUnderTest | None) -> dict[str, Any]:
    clean = server.clean_runs()
    return {
        "requests_per_s": median([r.requests_per_s for r in clean]),
        "p99_ms": median([r.p99_ms for r in clean if r.p99_ms is not None]),
        "cpu_us_per_request": median([r.cpu_us_per_request for r in clean]),
        "cpu_vs_floor": cpu_vs_floor(server, floor),
        "server_cpu_percent": median([r.server_cpu_percent for r in clean]),
        "core_busy_percent": median([r.core_busy_percent for r in clean]),
        "wrk_cpu_percent": median([r.wrk_cpu_percent for r in clean]),
        "clean_rounds": len(clean),
    }


def cpu_vs_floor(server: ServerUnderTest, floor: ServerUnderTest | None) -> float | None:
    """The median over the rounds of the server's CPU µs/request divided by
    the floor's (nginx's) in the same round: each ratio compares two runs
    made within a round of each other, which a median of each server's own
    rounds does not, on a machine whose speed drifts between rounds."""
    if floor is None:
        return None
    floor_cpu = {r.round: r.cpu_us_per_request for r in floor.clean_runs()}
    return median([r.cpu_us_per_request / floor_cpu[r.round]
                   for r in server.clean_runs() if r.round in floor_cpu])


def floor_of(servers: list[ServerUnderTest]) -> ServerUnderTest | None:
    return next((s for s in servers if s.name == "nginx"), None)


def core_labels(settings: dict[str, Any]) -> tuple[str, str]:
    """How the notes name the server's cores and wrk's."""
    if settings["workers"] > 1:
        return "the CPUs", "the CPUs"
    return f"CPU {settings['server_cpu']}", f"CPU {settings['wrk_cpu']}"


def _shared_core_note(run: Run, labels: tuple[str, str]) -> str:
    taken = [f"≥{pct:.0f}% of {label}" for pct, label in
             zip((run.core_other_percent, run.wrk_core_other_percent), labels)
             if pct > SHARED_CORE_PERCENT]
    return f"round {run.round}: other processes took {' and '.join(taken)}"


def markdown_table(servers: list[ServerUnderTest], labels: tuple[str, str]) -> str:
    floor = floor_of(servers)
    summaries = {s.name: summarise(s, floor) for s in servers}
    baseline = summaries.get("uvicorn", {}).get("requests_per_s")
    rows = [
        "| server | requests/s | vs uvicorn | p99 ms | CPU µs/req | CPU vs nginx | server CPU | core busy "
        "| wrk CPU | requests/s per round | p99 ms per round | CPU µs/req per round | notes |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|---|---|",
    ]
    for server in servers:
        s = summaries[server.name]
        if not server.ok and not server.runs:
            reason = server.failure_summary()
            rows.append(f"| {server.name} | — | — | — | — | — | — | — | — | | | | **failed**: {table_cell(reason)} |")
            continue
        ratio = (f"{s['requests_per_s'] / baseline:.2f}x"
                 if baseline and s["requests_per_s"] is not None else "—")
        per_round = [(r, "!" if r.problems else "") for r in server.runs]
        notes = [f"round {r.round}: {', '.join(r.problems)} (not in the medians)"
                 for r in server.runs if r.problems] + server.notes
        notes += [_shared_core_note(r, labels) for r in server.runs
                  if max(r.core_other_percent, r.wrk_core_other_percent) > SHARED_CORE_PERCENT]
        if not server.ok:
            notes.append(f"**failed**: {server.failure_summary()}")
        rows.append(
            f"| {server.name} | {format_value(s['requests_per_s'], ',.0f')} | {ratio} "
            f"| {format_value(s['p99_ms'], '.2f')} | {format_value(s['cpu_us_per_request'], '.1f')} "
            f"| {format_value(s['cpu_vs_floor'], '.2f', 'x')} "
            f"| {format_value(s['server_cpu_percent'], '.0f', '%')} | {format_value(s['core_busy_percent'], '.0f', '%')} "
            f"| {format_value(s['wrk_cpu_percent'], '.0f', '%')} "
            f"| {' / '.join(short_number(r.requests_per_s) + m for r, m in per_round)} "
            f"| {' / '.join(format_value(r.p99_ms, '.2f') + m for r, m in per_round)} "
            f"| {' / '.join(f'{r.cpu_us_per_request:.1f}{m}' for r, m in per_round)} "
            f"| {table_cell('; '.join(notes))} |")
    return "\n".join(rows)


def markdown_report(env: dict[str, Any], results: dict[str, list[ServerUnderTest]]) -> str:
    v = env["versions"]
    st = env["settings"]
    lines = [
        f"### Load benchmark, {env['date']}",
        "",
        f"- command: `{env['command']}`",
        f"- machine: {env['cpu_model']}, {env['cpus']} CPUs, Linux {env['kernel']}, "
        f"load average at start {' '.join(env['load_average_at_start'])}",
        f"- {env['python']}; " + ", ".join(f"{k} {v[k]}" for k in v),
        "- method: " + method_summary(env),
    ]
    for name, servers in results.items():
        lines += ["", f"#### {name}: {SCENARIOS[name].title}", ""]
        if SCENARIOS[name].own_load:
            lines += [f"Load: `{env['scenarios'][name]['wrk']}`", ""]
        if not SCENARIOS[name].latency:
            lines += ["No p99: wrk's latency percentiles are wrong with pipelining (wg/wrk#236).", ""]
        lines.append(markdown_table(servers, core_labels(st)))
    return "\n".join(lines) + "\n"


def method_summary(env: dict[str, Any]) -> str:
    st = env["settings"]
    wrk = f"`wrk -t1 -c{st['connections']} -d{st['duration']:g}s --latency`"
    rounds = (f"{st['warmup']:g} s warm-up per server, then {st['rounds']} interleaved rounds; medians "
              f"over the rounds without errors (rounds marked ! had errors and are left out). CPU µs/req "
              f"= utime+stime of the server's process tree over the run / requests; CPU vs nginx = the "
              f"median over the rounds of that figure divided by nginx's in the same round")
    if st["workers"] > 1:
        return (f"every server with {st['workers']} worker processes; the servers and {wrk} run "
                f"**unpinned, sharing the {env['cpus']} CPUs** (too few to pin server and load "
                f"generator apart, so wrk's own CPU use slows the servers too); {rounds}; server CPU "
                f"and wrk CPU are % of one core, core busy is all use of all the CPUs (kernel softirq "
                f"included), % of one core ({env['cpus']} busy CPUs = {100 * env['cpus']}%).")
    return (f"server pinned to CPU {st['server_cpu']}, {wrk} pinned to CPU {st['wrk_cpu']}; {rounds}; "
            f"server CPU, core busy (all use of the server's core, kernel softirq included) and wrk "
            f"CPU are % of one core.")


def to_json(env: dict[str, Any], results: dict[str, list[ServerUnderTest]]) -> dict[str, Any]:
    return {
        "environment": env,
        "scenarios": {
            name: [
                {
                    "server": s.name,
                    "command": portable_argv(s.argv),
                    "error": s.error,
                    "log_excerpt": s.log_excerpt,
                    "notes": s.notes,
                    "native_modules_loaded": s.native,
                    "summary": summarise(s, floor_of(servers)),
                    "warmup": s.warmup,
                    "runs": [asdict(r) for r in s.runs],
                }
                for s in servers
            ]
            for name, servers in results.items()
        },
    }


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run cppcorn and its peers side by side under wrk (see bench/README.md).")
    parser.add_argument("--servers", default=None,
                        help=f"comma-separated, from: {','.join(SERVERS)} (default: all of them); with "
                             f"--workers N > 1, from: {','.join(WORKERS_SERVERS)} (default: all of them)")
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS,
                        help=f"comma-separated, from: {','.join(SCENARIOS)}, or all (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default: %(default)s)")
    parser.add_argument("--duration", type=int, default=8, help="seconds per round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="warm-up seconds per server and scenario (default: %(default)s)")
    parser.add_argument("--pause", type=float, default=0.5,
                        help="idle seconds before each run (default: %(default)s)")
    parser.add_argument("--start-timeout", type=float, default=30,
                        help="seconds a server may take to answer (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes per server; above 1, servers and wrk run unpinned, "
                             "sharing the CPUs, and nginx is left out (default: %(default)s)")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU the servers run on")
    parser.add_argument("--wrk-cpu", type=int, default=1, help="CPU wrk runs on")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results",
                        help="where the JSON goes (default: bench/results)")
    args = parser.parse_args()

    known = SERVERS if args.workers == 1 else WORKERS_SERVERS
    args.servers = _names(parser, "--servers", args.servers or ",".join(known), known)
    if args.scenarios.strip() == "all":
        args.scenarios = ",".join(SCENARIOS)
    args.scenarios = _names(parser, "--scenarios", args.scenarios, tuple(SCENARIOS))
    if args.rounds < 1 or args.duration <= 0 or args.connections < 1 or args.warmup < 0 or args.workers < 1:
        parser.error("--rounds, --duration, --connections and --workers must be positive")
    available = os.sched_getaffinity(0)
    args.cpus = sorted(available)
    if {args.server_cpu, args.wrk_cpu} - available or args.server_cpu == args.wrk_cpu:
        parser.error(f"--server-cpu and --wrk-cpu must be two different CPUs of {sorted(available)}")
    return args


def _names(parser: argparse.ArgumentParser, option: str, value: str,
           known: tuple[str, ...]) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        parser.error(f"{option}: unknown {unknown}; choose from {', '.join(known)}")
    return [n for n in known if n in names]  # a fixed order keeps reports comparable


def estimated_seconds(args: argparse.Namespace) -> float:
    runs = sum(len([n for n in args.servers if n in SCENARIOS[s].servers]) for s in args.scenarios)
    return runs * (args.warmup + 1 + args.rounds * (args.duration + args.pause + 0.2))


def main() -> int:
    args = parse_args()
    for tool in ("wrk", "taskset", "nginx"):
        find_tool(tool)
    # A socket per connection in wrk and in the server, and some to spare.
    raise_open_files_limit(max(wrk_connections(SCENARIOS[s], args) for s in args.scenarios) + 100)
    signal.signal(signal.SIGTERM, exit_on_signal)
    signal.signal(signal.SIGHUP, exit_on_signal)
    if args.workers == 1:
        # The harness itself sleeps while wrk runs; keep whatever it does do
        # (the /proc scans between runs) off the servers' CPU. (Not with
        # --workers: what it starts would inherit the pinning.)
        os.sched_setaffinity(0, {args.wrk_cpu})

    env = environment(args)
    log(f"about {estimated_seconds(args) / 60:.1f} min: servers {','.join(args.servers)}, "
        f"scenarios {','.join(args.scenarios)}")
    if args.workers > 1:
        log(f"{args.workers} workers per server: servers and wrk unpinned, sharing CPUs {args.cpus}")
    results: dict[str, list[ServerUnderTest]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="cppcorn-bench-") as scratch:
            for name in args.scenarios:
                scenario = SCENARIOS[name]
                names = [n for n in args.servers if n in scenario.servers]
                results[name] = run_scenario(scenario, names, args, Path(scratch))
    finally:
        stop_everything()

    report = markdown_report(env, results)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.results_dir / f"{stamp}.json"
    out.write_text(json.dumps(to_json(env, results), indent=2) + "\n")
    print(report)
    log(f"raw results: {os.path.relpath(out)}")
    log("chart: " + shlex.join([os.path.relpath(sys.executable), os.path.relpath(BENCH_DIR / "chart.py"),
                                os.path.relpath(out)]))
    measured = any(s.runs for servers in results.values() for s in servers)
    return 0 if measured else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted: every process it started is stopped; no report")
        sys.exit(130)
