"""What bench/load.py and bench/ws.py share: the server under test's life
(start, checks, death, log), the processes they start, the CPU accounting
from /proc, and a few report helpers.

Standard library only. Imported as `bench.common`: both scripts put the repo
root on sys.path first (run as `python bench/<script>.py`, only bench/ is on
it), so that there is one copy of the module, and of its registry of started
processes, whichever script imports it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
HOST = "127.0.0.1"  # the only address the benchmarks ever talk to
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Above this share of the server's core used by other processes during a run,
# the run is noted as disturbed (it still counts: the note says how much).
SHARED_CORE_PERCENT = 5.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Processes: every one we start is in its own process group and registered,
# so that all of them are stopped on any exit (normal, exception, Ctrl-C,
# SIGTERM).
# --------------------------------------------------------------------------

_started: list[subprocess.Popen[bytes]] = []


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, **kwargs)
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `grace` s.

    The whole group, because servers have workers, and a worker can outlive
    its parent.
    """
    signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (proc.poll() is None or _group_alive(proc.pid)):
        time.sleep(0.05)
    signal_group(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        log(f"warning: pid {proc.pid} survived SIGKILL")
    forget(proc)


def forget(proc: subprocess.Popen[bytes]) -> None:
    if proc in _started:
        _started.remove(proc)


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def stop_everything() -> None:
    # Ignore further Ctrl-C while cleaning up, or a second press would leave
    # servers behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for proc in list(_started):
        stop(proc)


def exit_on_signal(signum: int, _frame: Any) -> None:
    # Unwinds like Ctrl-C does, through main()'s finally, which stops everything.
    raise KeyboardInterrupt


# --------------------------------------------------------------------------
# CPU time of a process tree, from /proc.
# --------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 is index 0)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:  # the process is gone
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    return data[data.rindex(b")") + 2:].decode().split()


def tree_pids(root: int) -> list[int]:
    """The root and all its descendants.

    Built from every process's parent pid: /proc/<pid>/task/<tid>/children
    needs CONFIG_PROC_CHILDREN, which some kernels (this VM's among them) lack.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, ()))
    return pids


def tree_cpu_seconds(root: int) -> float:
    """utime+stime of every process in the tree, all threads included.

    cutime+cstime are added too: they hold the CPU of descendants that exited
    and were reaped during the window, which would otherwise vanish.
    """
    ticks = 0
    for pid in tree_pids(root):
        fields = _stat_fields(pid)
        if fields is not None:
            # utime, stime, cutime, cstime are fields 14-17 of the stat line.
            ticks += sum(int(v) for v in fields[11:15])
    return ticks / CLOCK_TICKS


def core_ticks(cpus: list[int]) -> tuple[int, int]:
    """(busy, softirq) clock ticks of these CPUs since boot, from /proc/stat.

    The server's own utime+stime leaves out softirq time, where the kernel
    does much of the loopback TCP work; the core's busy time includes it, so
    "core busy" near 100% says the server's core is saturated even when the
    server's own CPU is well below 100%.
    """
    busy = soft = 0
    found = set()
    with open("/proc/stat") as f:
        for line in f:
            name = line.split(maxsplit=1)[0]
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                user, nice, system, _idle, _iowait, irq, softirq = map(int, line.split()[1:8])
                busy += user + nice + system + irq + softirq
                soft += softirq
                found.add(int(name[3:]))
    if found != set(cpus):
        raise RuntimeError(f"cpu{sorted(set(cpus) - found)} not in /proc/stat")
    return busy, soft


def native_modules_loaded(root: int, modules: tuple[str, ...]) -> dict[str, bool]:
    """Whether each module's extension (.so) is mapped into any process of the tree."""
    found = dict.fromkeys(modules, False)
    for pid in tree_pids(root):
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        for module in modules:
            if re.search(rf"/{re.escape(module)}/\S*\.so\b", maps):
                found[module] = True
    return found



# --------------------------------------------------------------------------
# One server under test: started, checked, watched, stopped, its output kept.
# --------------------------------------------------------------------------


@dataclass
class ServerProcess:
    """A server under test, from start-up to failure or the end of the run.

    Subclasses say how the server is started (`command`), and what proves
    that it works once its port is open (`verify`); `pinning` is the prefix
    it runs under (taskset on the server CPU).
    """

    name: str
    port: int
    rundir: Path
    argv: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    error: str | None = None
    log_excerpt: str = ""  # the end of the server's output, kept when it fails
    native: dict[str, bool] = field(default_factory=dict)

    def command(self, args: argparse.Namespace) -> list[str]:
        raise NotImplementedError

    def verify(self) -> None:
        """Raise RuntimeError (OSError, ValueError) if the started server is not right."""

    def pinning(self, args: argparse.Namespace) -> list[str]:
        return ["taskset", "-c", str(args.server_cpu)]

    @property
    def log_path(self) -> Path:
        return self.rundir / f"{self.name}.log"

    @property
    def ok(self) -> bool:
        return self.error is None

    def fail(self, reason: str) -> None:
        if self.proc is not None:
            stop(self.proc)  # first, so that the log is complete
        self.error = reason
        self.log_excerpt = self.log_tail()
        log(f"  {self.name}: FAILED: {reason}\n{self.log_excerpt}".rstrip())

    def failure_summary(self) -> str:
        """One line for the table: the reason and the last line the server logged."""
        last = self.log_excerpt.strip().splitlines()[-1:] if self.log_excerpt else []
        return without_repo_path(": ".join([self.error or "", *last]))

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def start(self, args: argparse.Namespace) -> None:
        self.argv = self.command(args)
        log(f"  starting {self.name} on port {self.port}")
        with open(self.log_path, "wb") as logfile:
            # Run from the scratch directory, not the repo root: there, `python
            # -m cppcorn` would import the unbuilt source tree instead of the
            # installed, compiled package.
            self.proc = spawn([*self.pinning(args), *self.argv],
                              cwd=self.rundir, stdout=logfile, stderr=subprocess.STDOUT)
        try:
            self._wait_for_port(args.start_timeout)
            self.verify()
        except (RuntimeError, OSError, ValueError) as exc:
            self.fail(str(exc) or repr(exc))

    def check_native(self, modules: tuple[str, ...]) -> list[str]:
        """Records which of these extension modules the server has mapped; returns the missing ones."""
        assert self.proc is not None
        self.native = native_modules_loaded(self.proc.pid, modules)
        return [m for m, loaded in self.native.items() if not loaded]

    def _wait_for_port(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with code {self.proc.returncode} during start-up")
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"port {self.port} not accepting connections after {timeout:g} s")

    def alive(self) -> bool:
        if self.ok and self.proc is not None and self.proc.poll() is not None:
            self.fail(f"died (exit code {self.proc.returncode})")
        return self.ok


# --------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------


def command_line() -> str:
    # Relative to the repo root: the report gets pasted into committed files.
    script = os.path.relpath(Path(sys.argv[0]).resolve(), REPO_ROOT)
    return shlex.join(["python", script, *sys.argv[1:]])


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def format_value(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else format(value, spec) + suffix


def short_number(value: float) -> str:
    return f"{value / 1e3:.1f}k" if value >= 1000 else f"{value:.0f}"


def table_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def portable_argv(argv: list[str]) -> list[str]:
    """The command without this machine's paths: interpreter by name, repo as '.'."""
    if not argv:
        return []
    return [os.path.basename(argv[0]), *(without_repo_path(a) for a in argv[1:])]


def without_repo_path(text: str) -> str:
    # Reports get pasted into committed files: no paths of this machine.
    return text.replace(str(REPO_ROOT) + os.sep, "").replace(str(REPO_ROOT), ".")
