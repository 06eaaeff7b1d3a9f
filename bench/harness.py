"""The harness of bench/load.py and bench/ws.py: the servers under test side by side in one run, each started
pinned to one CPU and checked, then warmed up and measured in interleaved rounds while a load generator runs on
the other CPU. A `Benchmark` says what differs: scenarios, checks, load. Method: bench/README.md."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
HOST = "127.0.0.1"  # the only address the benchmarks ever talk to
SATURATED_PERCENT = 90.0  # a load generator this busy is the bottleneck
# Every server, in report order. cppcorn-baseline is cppcorn as --baseline's interpreter imports it; cppcorn-reuse-port
# runs only with --workers N > 1.
SERVERS = ("cppcorn", "cppcorn-baseline", "cppcorn-uvloop", "cppcorn-reuse-port", "uvicorn", "granian", "nginx")
# Extension modules that must be mapped in the server's processes once it has answered: proof that it runs the fast
# paths it was asked for.
NATIVE = {"cppcorn": ("cppcorn/loop",), "cppcorn-baseline": ("cppcorn/loop",), "cppcorn-reuse-port": ("cppcorn/loop",),
          "cppcorn-uvloop": ("uvloop",), "uvicorn": ("uvloop", "httptools"), "granian": ("uvloop",), "nginx": ()}
# The ratio columns: a server's figure over these servers' in the same round.
RATE_REFERENCES = ("uvicorn", "cppcorn-baseline")
CPU_REFERENCES = ("uvicorn", "nginx", "cppcorn-baseline")
T = TypeVar("T")
PACKAGES = ("cppcorn", "uvicorn", "uvloop", "httptools", "websockets", "granian", "fastapi", "starlette", "pydantic")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def family(server: str) -> str:
    return server.split("-")[0]  # cppcorn for every cppcorn-* variant


def portable(text: str, scratch: Path | None = None) -> str:
    """Without this machine's paths: reports get pasted into committed files."""
    text = text.replace(str(scratch), "<scratch>") if scratch else text
    return text.replace(str(REPO_ROOT) + os.sep, "").replace(str(REPO_ROOT), ".")


def find_tool(name: str) -> str:
    # nginx lives in /usr/sbin, which is not on every user's PATH.
    if path := shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin"):
        return path
    raise SystemExit(f"{name} not found: run bench/setup.sh first")


# -- Processes: each in its own process group, all stopped on any exit. -------

_started: list[subprocess.Popen[bytes]] = []


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    _started.append(proc := subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, **kwargs))
    return proc


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM its process group, SIGKILL what is left of it when the leader has exited or after `grace` seconds: a
    server's worker can outlive its parent."""
    signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    signal_group(proc.pid, signal.SIGKILL)
    proc.wait()
    _started.remove(proc)


def exit_on_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through main()'s finally, which stops everything


def run_to_end(argv: list[str], timeout: float) -> tuple[int, str, resource.struct_rusage]:
    """A load generator's exit code, output and resource usage (wait4 gives its CPU time). The timer only keeps a hung
    one from hanging the run."""
    with tempfile.TemporaryFile() as out:
        proc = spawn(argv, stdout=out, stderr=subprocess.STDOUT)
        timer = threading.Timer(timeout, signal_group, (proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()  # interrupted, it stays in _started: main() stops it
        _started.remove(proc)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return proc.returncode, out.read().decode(errors="replace"), usage


# -- A process tree's CPU time and libraries, from /proc. ---------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 is index 0)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:  # the process is gone
        return None
    return data[data.rindex(b")") + 2 :].decode().split()  # the name may hold spaces and ')'


def tree_pids(root: int) -> list[int]:
    """The root and its descendants, from every process's parent pid (/proc/<pid>/task/<tid>/children needs
    CONFIG_PROC_CHILDREN)."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        if fields := _stat_fields(int(entry)):
            children.setdefault(int(fields[1]), []).append(int(entry))
    pids, todo = [], [root]
    while todo:
        pids.append(pid := todo.pop())
        todo.extend(children.get(pid, ()))
    return pids


def tree_cpu_seconds(root: int) -> float:
    """utime+stime of the tree's processes, all threads, and cutime+cstime: the CPU of descendants reaped during the
    window (stat fields 14-17)."""
    ticks = sum(sum(map(int, f[11:15])) for pid in tree_pids(root) if (f := _stat_fields(pid)))
    return ticks / os.sysconf("SC_CLK_TCK")


def mapped_libraries(root: int) -> set[str]:
    found: set[str] = set()
    for pid in tree_pids(root):
        with contextlib.suppress(OSError):
            found.update(re.findall(r"(/\S+\.so)\b", Path(f"/proc/{pid}/maps").read_text()))
    return found


def pinned_to(cpu: int, args: argparse.Namespace) -> list[str]:
    """The taskset prefix; none with --workers N, where everything shares the CPUs."""
    return [] if args.workers > 1 else ["taskset", "-c", str(cpu)]


# -- Scenarios, measured windows, benchmarks. ---------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    app: str  # import string in bench.apps
    connections: int = 0  # 0: --connections
    bytes_per_op: int | None = None  # the payload of a request or round trip: adds MB/s
    load: str | None = None  # the load generator's command, for the report


class LoadError(Exception):
    """The load generator failed: the window has no numbers."""


@dataclass
class Run:
    """One measured window: a round, or the warm-up (round 0)."""

    count: int  # requests or round trips completed
    rate: float  # per second
    p99_ms: float | None
    cpu_us_per_op: float  # the server's process tree's
    server_cpu_percent: float  # of one core
    load_cpu_percent: float  # the load generator's, of one core
    wall_s: float
    problems: list[str]  # errors: the round is left out of the medians
    notes: list[str]  # remarks that do not disqualify it
    round: int = 0


def make_run(count: int, rate: float, p99_ms: float | None, wall_s: float, server_cpu_s: float, load_cpu_s: float,
             problems: list[str], notes: list[str] | None = None) -> Run:
    return Run(count, rate, p99_ms, server_cpu_s * 1e6 / count if count else float("nan"),
               100 * server_cpu_s / wall_s, 100 * load_cpu_s / wall_s, wall_s, problems, notes or [])


class Benchmark:
    """What differs between the HTTP and the WebSocket benchmark."""

    title: str
    results_prefix: str  # of the JSON file's name
    load_generator: str  # "wrk", "client": names its columns and --<it>-cpu
    rate_label: str  # "requests/s"
    op: str  # "req", as in CPU µs/req
    servers: tuple[str, ...]
    tools: tuple[str, ...] = ()  # besides taskset; their `-v` says their version
    shared_servers = False  # one set of servers for every scenario (one app)
    server_options: ClassVar[dict[str, tuple[str, ...]]] = {}  # per server family
    extra_native: ClassVar[dict[str, tuple[str, ...]]] = {}  # per server family, besides NATIVE
    duration = warmup = pause = 1.0  # the defaults of those options

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def select_scenarios(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Scenario]: ...

    def serves(self, server: str, scenario: Scenario) -> bool:
        return True

    def command(self, server: Server, args: argparse.Namespace) -> list[str]:
        return python_server_command(server, args, self.server_options.get(family(server.name), ()))

    def verify(self, server: Server) -> None:
        """Raises RuntimeError (OSError, ValueError) if the server does not answer as it should."""

    def apply_load(self, server: Server, scenario: Scenario, args: argparse.Namespace, duration: float) -> Run: ...

    def method(self, args: argparse.Namespace) -> str: ...  # the load generator and its load, for the report


def python_server_command(server: Server, args: argparse.Namespace, options: tuple[str, ...]) -> list[str]:
    common = ["--host", HOST, "--port", str(server.port), "--no-access-log", "--log-level", "warning"]
    workers = ["--workers", str(args.workers)] if args.workers > 1 else []
    # The app directory holds a link to bench/ and no cppcorn/: it comes first on spawned workers' sys.path, where a
    # cppcorn/ would shadow the installed package.
    app, app_dir, name = server.scenario.app, str(server.rundir.parent), server.name
    if family(name) == "cppcorn":
        python = args.baseline if name == "cppcorn-baseline" else sys.executable
        loop = "uvloop" if name == "cppcorn-uvloop" else "cppcorn"  # named: no fallback
        return [python, "-m", "cppcorn", app, "--app-dir", app_dir, *common, "--loop", loop, *workers,
                *(["--reuse-port"] if name == "cppcorn-reuse-port" else []), *options]
    if name == "uvicorn":  # uvloop and httptools named: no fallback to asyncio and h11
        return [sys.executable, "-m", "uvicorn", app, "--app-dir", app_dir, *common, "--loop", "uvloop",
                "--http", "httptools", *workers, *options]
    if name == "granian":
        return [sys.executable, "-m", "granian", app, "--working-dir", app_dir, "--interface", "asgi",
                "--workers", str(args.workers), "--loop", "uvloop", *common, *options]
    raise ValueError(f"{name} is not a Python server")


# -- A server under test, and its rounds. -------------------------------------


@dataclass
class Server:
    name: str
    scenario: Scenario  # the first it serves: its app
    port: int
    rundir: Path  # its working directory, in the scratch directory
    argv: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    error: str | None = None
    log_excerpt: str = ""  # the end of its log, once stopped
    cppcorn: list[str] = field(default_factory=list)  # the cppcorn packages its processes loaded

    def start(self, bench: Benchmark, args: argparse.Namespace) -> None:
        self.argv = bench.command(self, args)
        log(f"  starting {self.name} on port {self.port}")
        # The working directory has no cppcorn/ either: `python -m` imports from there first.
        with open(self.rundir / "server.log", "wb") as out:
            self.proc = spawn([*pinned_to(args.server_cpu, args), *self.argv], cwd=self.rundir, stdout=out,
                              stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + args.start_timeout
            while True:
                with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), timeout=0.5):
                    break  # it listens
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"not listening (exit code {self.proc.returncode})")
                time.sleep(0.1)
            bench.verify(self)
            libraries = mapped_libraries(self.proc.pid)
            native = NATIVE[self.name] + bench.extra_native.get(family(self.name), ())
            if missing := [m for m in native if not any(f"/{m}/" in lib for lib in libraries)]:
                raise RuntimeError(f"{', '.join(missing)} not loaded in the server's processes")
            # Its modules are compiled: the libraries say where cppcorn came from.
            self.cppcorn = sorted({portable(m[1]) for lib in libraries if (m := re.match(r"(.*/cppcorn)/", lib))})
            if len(self.cppcorn) > 1:
                raise RuntimeError(f"its processes loaded several cppcorn packages: {', '.join(self.cppcorn)}")
            if self.cppcorn:
                log(f"  {self.name}: cppcorn from {self.cppcorn[0]}")
        except (RuntimeError, OSError, ValueError) as exc:
            self.fail(str(exc) or repr(exc))

    def alive(self) -> bool:
        if self.error is None and self.proc is not None and self.proc.poll() is not None:
            self.fail(f"died (exit code {self.proc.returncode})")
        return self.error is None

    def fail(self, reason: str) -> None:
        self.error = reason
        self.stop()  # first, so that the log is complete
        log(f"  {self.name}: FAILED: {reason}\n{self.log_excerpt}".rstrip())

    def stop(self) -> None:
        if self.proc in _started:
            stop(self.proc)
        text = (self.rundir / "server.log").read_text(errors="replace").strip()
        self.log_excerpt = portable("\n".join(text.splitlines()[-15:]), self.rundir.parent)

    def failure(self) -> str:
        """The reason and the last line it logged, for the table."""
        return ": ".join([self.error or "", *self.log_excerpt.splitlines()[-1:]])


@dataclass
class Result:
    """One server's rounds in one scenario."""

    server: Server
    warmup: Run | None = None
    runs: list[Run] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # windows without numbers

    def clean_runs(self) -> list[Run]:
        return [r for r in self.runs if not r.problems]  # the only ones in the medians


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_servers(bench: Benchmark, scenario: Scenario, args: argparse.Namespace, scratch: Path) -> list[Server]:
    servers = []
    for name in [n for n in args.servers if bench.serves(n, scenario)]:
        (rundir := scratch / f"{scenario.name}-{name}".replace(" ", "")).mkdir()
        servers.append(server := Server(name, scenario, free_port(), rundir))
        server.start(bench, args)  # one at a time: start-up CPU would disturb the others
    current = next((s.cppcorn for s in servers if s.name == "cppcorn" and s.error is None), None)
    for server in servers:
        if server.name == "cppcorn-baseline" and server.error is None and server.cppcorn == current:
            server.fail("it loaded the same cppcorn as cppcorn: give --baseline an interpreter with another one")
    return servers


def measure(bench: Benchmark, scenario: Scenario, result: Result, args: argparse.Namespace, round_no: int,
            duration: float) -> Run | None:
    try:
        run = bench.apply_load(result.server, scenario, args, duration)
    except LoadError as exc:
        if result.server.alive():  # a dead server explains itself
            result.notes.append(f"{f'round {round_no}' if round_no else 'warm-up'}: {exc}")
            log(f"  {result.server.name}: {result.notes[-1]}")
        return None
    if not result.server.alive():
        run.problems.append("server died")
    run.round = round_no
    return run


def run_rounds(bench: Benchmark, scenario: Scenario, servers: list[Server], args: argparse.Namespace) -> list[Result]:
    """A warm-up each, then round 1 of every server, round 2..., so that the drift of a shared machine hits every server
    alike."""
    log(f"scenario {scenario.name}: {scenario.title}")
    results = [Result(s) for s in servers]
    ready = [r for r in results if r.server.alive()]
    for result in ready if args.warmup > 0 else []:
        log(f"  warm-up {result.server.name} ({args.warmup:g} s)")
        result.warmup = measure(bench, scenario, result, args, 0, args.warmup)
    for round_no in range(1, args.rounds + 1):
        shift = (round_no - 1) % max(len(ready), 1)  # no server always right after another, or the pause
        for result in ready[shift:] + ready[:shift]:
            if result.server.alive():
                time.sleep(args.pause)
                if run := measure(bench, scenario, result, args, round_no, args.duration):
                    result.runs.append(run)
                    log(f"  round {round_no} {result.server.name:18} {run.rate:>9,.0f} {bench.rate_label}  p99 "
                        f"{format_value(run.p99_ms, '.2f')} ms  {run.cpu_us_per_op:,.1f} µs/{bench.op}  server "
                        f"{run.server_cpu_percent:.0f}%  {bench.load_generator} {run.load_cpu_percent:.0f}%"
                        + (f"  !! {', '.join(run.problems)}" if run.problems else ""))
    return results


def run_scenarios(bench: Benchmark, scenarios: list[Scenario], args: argparse.Namespace,
                  scratch: Path) -> dict[str, list[Result]]:
    results: dict[str, list[Result]] = {}
    servers: list[Server] = []
    for number, scenario in enumerate(scenarios, 1):
        if not (bench.shared_servers and servers):
            servers = start_servers(bench, scenario, args, scratch)
        results[scenario.name] = run_rounds(bench, scenario, servers, args)
        if not bench.shared_servers or number == len(scenarios):
            for server in servers:
                server.stop()
    return results


# -- Report. ------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def format_value(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else format(value, spec) + suffix


def ratio(result: Result, reference: Result, attr: str) -> float | None:
    """The median over the rounds of the ratio to the reference's figure in the same round: two windows measured close
    together, on a machine whose speed drifts between rounds."""
    theirs = {r.round: getattr(r, attr) for r in reference.clean_runs()}
    return median([getattr(r, attr) / theirs[r.round] for r in result.clean_runs() if theirs.get(r.round)])


def summarise(result: Result, results: list[Result]) -> dict[str, Any]:
    clean, others = result.clean_runs(), {r.server.name: r for r in results}
    summary: dict[str, Any] = {
        attr: median([v for r in clean if (v := getattr(r, attr)) is not None])
        for attr in ("rate", "p99_ms", "cpu_us_per_op", "server_cpu_percent", "load_cpu_percent")}
    summary["rate_vs"] = {n: ratio(result, others[n], "rate") for n in RATE_REFERENCES if n in others}
    summary["cpu_vs"] = {n: ratio(result, others[n], "cpu_us_per_op") for n in CPU_REFERENCES if n in others}
    return summary | {"clean_rounds": len(clean)}


def notes(bench: Benchmark, result: Result, summary: dict[str, Any]) -> list[str]:
    found = [f"round {r.round}: {', '.join(r.problems)} (not in the medians)" for r in result.runs if r.problems]
    found += result.notes + [f"round {r.round}: {note}" for r in result.runs for note in r.notes]
    if (summary["load_cpu_percent"] or 0) >= SATURATED_PERCENT:
        found.append(f"**{bench.load_generator} saturated**: compare CPU µs/{bench.op}, not {bench.rate_label}")
    return found + ([f"**failed**: {result.server.failure()}"] if result.server.error else [])


def markdown_table(bench: Benchmark, scenario: Scenario, results: list[Result]) -> str:
    names, op, mb = {r.server.name for r in results}, bench.op, scenario.bytes_per_op
    rate_refs, cpu_refs = [n for n in RATE_REFERENCES if n in names], [n for n in CPU_REFERENCES if n in names]
    header = [bench.rate_label, *(f"vs {n}" for n in rate_refs), *(["MB/s"] if mb else []), "p99 ms", f"CPU µs/{op}",
              *(f"CPU vs {n}" for n in cpu_refs), "server CPU", f"{bench.load_generator} CPU"]
    rows = ["| server | " + " | ".join(header) + f" | {bench.rate_label} per round | p99 ms per round "
            f"| CPU µs/{op} per round | notes |", "|---|" + "--:|" * len(header) + "---|---|---|---|"]
    for result in results:
        if not result.runs:
            failure = result.server.failure() if result.server.error else "; ".join(result.notes)
            rows.append(f"| {result.server.name} |{' — |' * len(header)} | | | **failed**: {failure} |")
            continue
        s = summarise(result, results)
        marked = [(r, "!" if r.problems else "") for r in result.runs]
        cells = [format_value(s["rate"], ",.0f"), *(format_value(s["rate_vs"][n], ".2f", "x") for n in rate_refs),
                 *([format_value(s["rate"] and s["rate"] * mb / 1e6, ",.1f")] if mb else []),
                 format_value(s["p99_ms"], ".2f"), format_value(s["cpu_us_per_op"], ",.1f"),
                 *(format_value(s["cpu_vs"][n], ".2f", "x") for n in cpu_refs),
                 *(format_value(s[k], ".0f", "%") for k in ("server_cpu_percent", "load_cpu_percent")),
                 " / ".join((f"{r.rate / 1e3:.1f}k" if r.rate >= 1000 else f"{r.rate:.0f}") + m for r, m in marked),
                 " / ".join(format_value(r.p99_ms, ".2f") + m for r, m in marked),
                 " / ".join(f"{r.cpu_us_per_op:,.1f}{m}" for r, m in marked), "; ".join(notes(bench, result, s))]
        rows.append(f"| {result.server.name} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def markdown_report(bench: Benchmark, env: dict[str, Any], scenarios: list[Scenario],
                    results: dict[str, list[Result]], args: argparse.Namespace) -> str:
    servers = {r.server.name: r.server for rs in results.values() for r in rs}
    pinning = (f"every server with {args.workers} worker processes; the servers and {bench.method(args)} run "
               f"**unpinned, sharing the CPUs**, so the load generator's CPU use slows the servers too"
               if args.workers > 1 else
               f"server pinned to CPU {args.server_cpu}, {bench.method(args)} pinned to CPU {args.load_cpu}")
    lines = [f"### {bench.title}, {env['date']}", "", f"- command: `{env['command']}` (commit {env['commit']})",
             f"- machine: {env['cpu_model']}, {env['cpus']} CPUs, Linux {env['kernel']}, load average at start "
             f"{' '.join(env['load_average_at_start'])}",
             f"- {env['python']}; " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
             "- cppcorn loaded from: " + "; ".join(f"{n}: {s.cppcorn[0]}" for n, s in servers.items() if s.cppcorn),
             f"- method: {pinning}; {args.warmup:g} s warm-up per server and scenario, then {args.rounds} "
             f"interleaved rounds of {args.duration:g} s; medians over the rounds without errors (rounds marked ! "
             f"had errors); vs X = median over the rounds of the ratio to X's figure in the same round; CPU "
             f"µs/{bench.op} = utime+stime of the server's process tree over the window / completed "
             f"{bench.rate_label.split('/')[0]}; CPU is % of one core."]
    lines += [f"- {n} logged: `{' / '.join(s.log_excerpt.splitlines()[-3:])[:600]}`"
              for n, s in servers.items() if s.error is None and s.log_excerpt]
    for scenario in scenarios:
        lines += ["", f"#### {scenario.name}: {scenario.title}", ""]
        if load := env["scenarios"][scenario.name]["load"]:
            lines += [f"Load: `{load}`", ""]
        lines.append(markdown_table(bench, scenario, results[scenario.name]))
    return "\n".join(lines) + "\n"


def to_json(env: dict[str, Any], results: dict[str, list[Result]]) -> dict[str, Any]:
    def entry(result: Result, results: list[Result]) -> dict[str, Any]:
        s = result.server
        command = [os.path.basename(s.argv[0]), *(portable(a, s.rundir.parent) for a in s.argv[1:])] if s.argv else []
        return {"server": s.name, "command": command, "error": s.error, "log_excerpt": s.log_excerpt,
                "cppcorn": s.cppcorn, "notes": result.notes, "summary": summarise(result, results),
                "warmup": result.warmup and asdict(result.warmup), "runs": [asdict(r) for r in result.runs]}

    return {"environment": env, "scenarios": {name: {**env["scenarios"][name], "results": [entry(r, rs) for r in rs]}
                                              for name, rs in results.items()}}


def environment(bench: Benchmark, scenarios: list[Scenario], args: argparse.Namespace) -> dict[str, Any]:
    def output(*argv: str) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (done.stdout or done.stderr).strip()

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    for tool in bench.tools:
        versions[tool] = output(find_tool(tool), "-v").splitlines()[0].split(" Copyright")[0].split("/")[-1]
    commit = output("git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD") or "unknown"
    if output("git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"):
        commit += " with uncommitted changes"
    return {
        "benchmark": bench.title, "rate_label": bench.rate_label, "op": bench.op,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", os.path.relpath(Path(sys.argv[0]).resolve(), REPO_ROOT), *sys.argv[1:]]),
        "commit": commit,
        "cpu_model": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                           if line.startswith("model name")), "unknown"),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "load_average_at_start": Path("/proc/loadavg").read_text().split()[:3],
        # The interpreter's build (compiler, date) changes Python-level speed too.
        "python": f"{platform.python_implementation()} {platform.python_version()} "
                  f"({platform.python_compiler()}, {platform.python_build()[1]})",
        "versions": versions,
        "settings": {k: v for k, v in vars(args).items() if k != "results_dir"},
        "scenarios": {s.name: {"title": s.title, "load": s.load} for s in scenarios},
    }


# -- Command line. ------------------------------------------------------------


def choose(parser: argparse.ArgumentParser, option: str, value: str, known: tuple[str, ...]) -> list[str]:
    """The names listed, in `known`'s order: a fixed order keeps reports comparable."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names or set(names) - set(known):
        parser.error(f"{option}: choose from {', '.join(known)}")
    return [n for n in known if n in names]


def parse_args(bench: Benchmark) -> tuple[argparse.Namespace, list[Scenario]]:
    parser = argparse.ArgumentParser(description=f"{bench.title}: cppcorn and its peers (bench/README.md).")
    parser.add_argument("--servers", help=f"comma-separated, from: {','.join(bench.servers)} (default: cppcorn, "
                        "uvicorn, granian, and nginx where it runs; with --workers, cppcorn-reuse-port, not nginx)")
    parser.add_argument("--baseline", metavar="PYTHON", help="adds cppcorn-baseline: cppcorn as this interpreter "
                        "imports it (a venv with another build installed), for an A/B in one run")
    bench.add_arguments(parser)
    for option, kind, default, what in (
            ("--duration", float, bench.duration, "seconds per round"),
            ("--rounds", int, 3, "rounds per server and scenario"),
            ("--warmup", float, bench.warmup, "warm-up seconds per server and scenario, 0: none"),
            ("--pause", float, bench.pause, "idle seconds before each round"),
            ("--start-timeout", float, 30, "seconds a server may take to listen"),
            ("--workers", int, 1, "worker processes per server; above 1, nothing is pinned"),
            ("--server-cpu", int, 0, "the servers' CPU"),
            (f"--{bench.load_generator}-cpu", int, 1, f"{bench.load_generator}'s CPU")):
        parser.add_argument(option, type=kind, default=default, help=f"{what} (default: %(default)s)")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results", help="where the JSON goes")
    args = parser.parse_args()
    args.load_cpu = vars(args).pop(f"{bench.load_generator}_cpu")

    cpus = os.sched_getaffinity(0)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0 or args.workers < 1:
        parser.error("--rounds, --duration and --workers must be positive, --warmup not negative")
    if {args.server_cpu, args.load_cpu} - cpus or args.server_cpu == args.load_cpu:
        parser.error(f"--server-cpu and --{bench.load_generator}-cpu must be two different CPUs of {sorted(cpus)}")
    if args.baseline:
        if not (found := shutil.which(args.baseline)):
            parser.error(f"--baseline: no interpreter {args.baseline}")
        args.baseline = os.path.abspath(found)  # servers run elsewhere; not resolved: a venv's python is a link
    wrong = {"nginx", "cppcorn-uvloop"} if args.workers > 1 else {"cppcorn-reuse-port"}
    known = tuple(n for n in bench.servers if n not in wrong and (args.baseline or n != "cppcorn-baseline"))
    default = ",".join(n for n in known if n != "cppcorn-uvloop")
    args.servers = choose(parser, "--servers", (args.servers or default) + ",cppcorn-baseline" * bool(args.baseline),
                          known)
    return args, bench.select_scenarios(args, parser)


def main(bench: Benchmark) -> int:
    """The entry point of load.py and ws.py."""
    args, scenarios = parse_args(bench)
    for tool in ("taskset", *bench.tools):
        find_tool(tool)
    # A socket per connection in the server and in the load generator, and some to spare.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < (needed := max(s.connections for s in scenarios) + 100):
        log(f"warning: open files limited to {hard} (ulimit -Hn), {needed} needed: expect connect errors")
    if args.workers == 1:
        # The harness only waits while the load runs; what it does do (checks, /proc scans) stays off the servers' CPU.
        # (Not with --workers: what it starts would inherit the pinning.)
        os.sched_setaffinity(0, {args.load_cpu})
    env = environment(bench, scenarios, args)
    log(f"servers {', '.join(args.servers)}; {len(scenarios)} scenarios")
    if (results := in_scratch(lambda scratch: run_scenarios(bench, scenarios, args, scratch))) is None:
        return 130
    out = write_json(args, bench.results_prefix, to_json(env, results))
    print(markdown_report(bench, env, scenarios, results, args))
    log(f"raw results: {os.path.relpath(out)}\nchart: " + shlex.join(
        [os.path.relpath(sys.executable), os.path.relpath(BENCH_DIR / "chart.py"), os.path.relpath(out)]))
    return 0 if any(r.runs for rs in results.values() for r in rs) else 1


def in_scratch(work: Callable[[Path], T]) -> T | None:
    """`work(scratch)`: a scratch directory holding a link to bench/, the servers' app directory. Every process started
    is stopped at the end; None if interrupted (Ctrl-C, SIGTERM, SIGHUP)."""
    signal.signal(signal.SIGTERM, exit_on_signal)
    signal.signal(signal.SIGHUP, exit_on_signal)
    try:
        with tempfile.TemporaryDirectory(prefix="cppcorn-bench-") as scratch:
            (Path(scratch) / "bench").symlink_to(BENCH_DIR)
            return work(Path(scratch))
    except KeyboardInterrupt:
        log("interrupted: every process it started is stopped; no report")
        return None
    finally:
        # Ignore further Ctrl-C while cleaning up, or a second press would leave servers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in list(_started):
            stop(proc)


def write_json(args: argparse.Namespace, prefix: str, data: dict[str, Any]) -> Path:
    """The raw results: `<results dir>/<prefix><UTC timestamp>.json`."""
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (out := args.results_dir / f"{prefix}{stamp}.json").write_text(json.dumps(data, indent=2) + "\n")
    return out
