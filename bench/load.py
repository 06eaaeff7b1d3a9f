"""HTTP load benchmark: cppcorn and its peers under wrk (bench/README.md). The harness runs the servers and
rounds; here are the scenarios (the app, what wrk sends, the right answer), nginx's configuration and wrk."""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

sys.path.append(str(Path(__file__).resolve().parent.parent))  # the repo root: this process never imports cppcorn
from bench import harness
from bench.apps.large import BODY as LARGE_BODY
from bench.harness import HOST, Run, Scenario, Server

HELLO = b"Hello, world!"
PIPELINE_DEPTH = 16  # requests per write in `pipelined`
UPLOAD_BYTES = 8 << 20  # the request body of `upload`


@dataclass(frozen=True)
class HttpScenario(Scenario):
    # The probe request before measuring, and what must come back.
    probe: tuple[str, bytes | None] = ("GET", None)
    body: bytes | Any = HELLO  # bytes, or the JSON value the body must decode to
    answer_headers: tuple[tuple[str, str], ...] = (("content-type", "text/plain"), ("content-length", "13"))
    # nginx's `location /` directives answering the same, given its run directory (for files to serve); None: nginx
    # cannot run the scenario.
    nginx: Callable[[Path], str] | None = None
    headers: tuple[tuple[str, str], ...] = ()  # sent with every request, by wrk (-H) and the probe
    script: tuple[str, ...] = ()  # a Lua script in bench/wrk/ and its arguments
    wrk_options: tuple[str, ...] = ()
    # False with pipelining: wrk's coordinated-omission correction takes every response for a request interval, and its
    # percentiles are all 0 (wg/wrk#236).
    latency: bool = True


def nginx_hello(rundir: Path) -> str:
    return f'return 200 "{HELLO.decode()}";'


def nginx_large(rundir: Path) -> str:
    """The same bytes as the app's, from a static file, as nginx serves files (sendfile)."""
    (path := rundir / "large.bin").write_bytes(LARGE_BODY)
    # Started by root, nginx's workers run as nobody: let them reach the file.
    path.chmod(0o644)
    for directory in (rundir, rundir.parent):
        directory.chmod(directory.stat().st_mode | 0o111)
    return f"root {rundir};\ntry_files /large.bin =404;\ndefault_type application/octet-stream;\nsendfile on;"


HELLO_APP = "bench.apps.hello:app"
SCENARIOS = {s.name: s for s in (
    HttpScenario("hello", "raw ASGI hello world (13-byte text/plain)", HELLO_APP, nginx=nginx_hello),
    HttpScenario("fastapi", 'FastAPI hello (async handler returning {"message": "Hello, world!"} as JSON)',
                 "bench.apps.fastapi_app:app", body={"message": "Hello, world!"},
                 answer_headers=(("content-type", "application/json"),)),
    HttpScenario("close", "hello, every request with `Connection: close` (a new TCP connection per request)",
                 HELLO_APP, nginx=nginx_hello, headers=(("Connection", "close"),),
                 answer_headers=(("content-type", "text/plain"), ("content-length", "13"), ("connection", "close"))),
    HttpScenario("pipelined", f"hello, {PIPELINE_DEPTH} pipelined requests per write (bench/wrk/pipeline.lua; no p99: "
                 "wrk's percentiles are wrong with pipelining)",
                 HELLO_APP, nginx=nginx_hello, script=("pipeline.lua", str(PIPELINE_DEPTH)), latency=False),
    HttpScenario("large", "raw ASGI, a 1 MiB response body (application/octet-stream; nginx: a static file)",
                 "bench.apps.large:app", bytes_per_op=len(LARGE_BODY), body=LARGE_BODY, nginx=nginx_large,
                 answer_headers=(("content-type", "application/octet-stream"),
                                 ("content-length", str(len(LARGE_BODY))))),
    # 64 uploads of 8 MiB in flight: a slow server takes longer than wrk's default 2 s timeout.
    HttpScenario("upload", "raw ASGI, an 8 MiB POST body read whole, its length answered (bench/wrk/upload.lua)",
                 "bench.apps.upload:app", bytes_per_op=UPLOAD_BYTES, probe=("POST", b"x" * UPLOAD_BYTES),
                 body=str(UPLOAD_BYTES).encode(), answer_headers=(("content-type", "text/plain"),),
                 script=("upload.lua", str(UPLOAD_BYTES)), wrk_options=("--timeout", "10s")),
    HttpScenario("conn1000", "hello, 1,000 concurrent keep-alive connections", HELLO_APP, connections=1000,
                 nginx=nginx_hello),
)}


def check_answer(scenario: HttpScenario, status: int, headers: dict[str, str], body: bytes) -> str | None:
    """What is wrong with the answer to the probe, if anything."""
    if status != 200:
        return f"status {status}"
    if isinstance(scenario.body, bytes) and body != scenario.body:
        return f"a body of {len(body)} bytes, {body[:80]!r}"
    if not isinstance(scenario.body, bytes) and json.loads(body) != scenario.body:
        return f"body {body[:80]!r}"
    wrong = [f"{name} {headers.get(name)!r}" for name, value in scenario.answer_headers
             if not headers.get(name, "").lower().startswith(value)]
    return ", ".join(wrong) or None


def write_nginx_conf(server: Server) -> Path:
    """bench/nginx.conf filled in. A *_temp_path per module of this build: naming a module compiled out is an error."""
    scenario, rundir = server.scenario, server.rundir
    assert isinstance(scenario, HttpScenario) and scenario.nginx is not None
    built = subprocess.run([harness.find_tool("nginx"), "-V"], capture_output=True, text=True, timeout=10).stderr
    values = {"PORT": server.port, "RUNDIR": rundir, "WORKER_CONNECTIONS": max(1024, scenario.connections + 100),
              "LOCATION": scenario.nginx(rundir), "TEMP_PATHS": "\n".join(
                  f"    {m}_temp_path {rundir}/{m}_temp;" for m in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
                  if f"--without-http_{m}_module" not in built)}
    (conf := rundir / "nginx.conf").write_text(
        re.sub(r"@(\w+)@", lambda m: str(values[m[1]]), (harness.BENCH_DIR / "nginx.conf").read_text()))
    return conf


def wrk_arguments(scenario: HttpScenario, duration: float, url: str) -> list[str]:
    headers = [arg for name, value in scenario.headers for arg in ("-H", f"{name}: {value}")]
    script = ["-s", str(harness.BENCH_DIR / "wrk" / scenario.script[0])] if scenario.script else []
    return ["-t1", f"-c{scenario.connections}", f"-d{duration:g}s", "--latency", *scenario.wrk_options, *headers,
            *script, url, *scenario.script[1:]]


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # in milliseconds


def parse_wrk(text: str) -> tuple[int, float, float, list[str]]:
    """(requests, requests/s, p99 ms, errors) from wrk's output."""
    total = re.search(r"^\s*(\d+) requests in", text, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
    if total is None or rate is None or p99 is None:
        raise harness.LoadError(f"no request count or latency in wrk's output: {text.strip()[-300:]}")
    problems = []
    if errors := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        kinds = ("connect", "read", "write", "timeout")
        problems = [f"{n} {kind} errors" for kind, n in zip(kinds, errors.groups(), strict=True) if int(n)]
    if non_2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        problems.append(f"{non_2xx[1]} non-2xx/3xx responses")
    return int(total[1]), float(rate[1]), float(p99[1]) * UNITS[p99[2]], problems


class LoadBenchmark(harness.Benchmark):
    title = "Load benchmark"
    results_prefix = ""
    load_generator = "wrk"
    rate_label = "requests/s"
    op = "req"
    servers = harness.SERVERS
    tools = ("wrk", "nginx")
    server_options: ClassVar[dict[str, tuple[str, ...]]] = {"granian": ("--no-ws",)}
    duration, warmup, pause = 8.0, 2.0, 0.5

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--scenarios", default="hello,fastapi",
                            help=f"comma-separated, from: {','.join(SCENARIOS)}, or all (default: %(default)s)")
        parser.add_argument("--connections", type=int, default=64,
                            help="wrk -c, where the scenario does not say (default: %(default)s)")

    def select_scenarios(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Scenario]:
        if args.duration != int(args.duration) or args.connections < 1:
            parser.error("--duration: whole seconds (wrk's); --connections: positive")
        names = harness.choose(parser, "--scenarios", ",".join(SCENARIOS) if args.scenarios == "all"
                               else args.scenarios, tuple(SCENARIOS))
        scenarios = [dataclasses.replace(SCENARIOS[n], connections=SCENARIOS[n].connections or args.connections)
                     for n in names]
        url = f"http://{HOST}:<port>/"
        return [dataclasses.replace(s, load="wrk " + " ".join(a if a == url else shlex.quote(harness.portable(a))
                                                              for a in wrk_arguments(s, args.duration, url)))
                for s in scenarios]

    def serves(self, server: str, scenario: Scenario) -> bool:
        return server != "nginx" or getattr(scenario, "nginx", None) is not None

    def command(self, server: Server, args: argparse.Namespace) -> list[str]:
        if server.name != "nginx":
            return super().command(server, args)
        conf = write_nginx_conf(server)
        return [harness.find_tool("nginx"), "-p", str(server.rundir), "-c", str(conf), "-e", "stderr"]

    def verify(self, server: Server) -> None:
        scenario = server.scenario
        assert isinstance(scenario, HttpScenario)
        method, body = scenario.probe
        conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
        try:
            conn.request(method, "/", body=body, headers=dict(scenario.headers))
            response = conn.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}
            if problem := check_answer(scenario, response.status, headers, response.read()):
                raise RuntimeError(f"{method} / answered wrongly: {problem}")
        except http.client.HTTPException as exc:
            raise RuntimeError(f"{method} / failed: {exc!r}") from exc
        finally:
            conn.close()

    def apply_load(self, server: Server, scenario: Scenario, args: argparse.Namespace, duration: float) -> Run:
        assert isinstance(scenario, HttpScenario) and server.proc is not None
        argv = [*harness.pinned_to(args.load_cpu, args), harness.find_tool("wrk"),
                *wrk_arguments(scenario, duration, f"http://{HOST}:{server.port}/")]
        # The window: wrk's run, and the few milliseconds it needs to start and connect.
        cpu_before, started = harness.tree_cpu_seconds(server.proc.pid), time.monotonic()
        code, out, usage = harness.run_to_end(argv, timeout=duration + 30)
        wall_s, cpu_s = time.monotonic() - started, harness.tree_cpu_seconds(server.proc.pid) - cpu_before
        if code != 0:
            raise harness.LoadError(f"wrk exited with {code}: {out.strip()[-300:]}")
        count, rate, p99, problems = parse_wrk(out)
        return harness.make_run(count, rate, p99 if scenario.latency else None, wall_s, cpu_s,
                                usage.ru_utime + usage.ru_stime, problems)

    def method(self, args: argparse.Namespace) -> str:
        return "wrk (one thread, `--latency`; each scenario's command below)"


if __name__ == "__main__":
    sys.exit(harness.main(LoadBenchmark()))
