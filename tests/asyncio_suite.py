"""Run CPython's own test_asyncio against an event loop and compare with the stdlib loop.

    python -m tests.asyncio_suite                      # cppcorn.loop, every module
    python -m tests.asyncio_suite --loop uvloop --compare --quick
    python -m tests.asyncio_suite --compare --list-failures test_events -k sock
    python -m tests.asyncio_suite --classification     # print the module classification

How the loop under test is injected
-----------------------------------
* The child process installs the loop's own event loop policy
  (`cppcorn.loop.EventLoopPolicy`, `uvloop.EventLoopPolicy` or asyncio's default
  policy) before each test class, and before and after every test installs it again
  if something replaced or reset it, so that `asyncio.new_event_loop()`,
  `asyncio.run()` and `unittest.IsolatedAsyncioTestCase` make our loop. This matters:
  test modules reset the policy with `asyncio.set_event_loop_policy(None)` (in
  tearDownModule and in some tests), after which later tests would silently fall back
  to the stdlib loop.
* Several modules run the same tests once per stdlib selector, in classes whose loop
  factory is hard-wired (`asyncio.SelectorEventLoop(selectors.EpollSelector())` and so
  on). Those classes test the stdlib selector loops whatever the policy says, so they
  are not run; instead a class built from the same test mixins, whose loop factory is
  `asyncio.new_event_loop()`, runs in their place (see REPLACEMENTS).
* The policy's `new_event_loop` is wrapped to count the loops of the chosen class that
  each test creates. A test that created none did not exercise the loop (it used
  test_utils.TestLoop, a mock, or a loop it built itself) and is "not applicable": it
  is reported but does not count towards the pass percentage.

Two adaptations keep harness problems from being counted as loop failures (neither
changes anything on the stdlib loop):
* test_utils.TestCase.close_loop reads BaseEventLoop's private `_default_executor`; for
  loops that are not BaseEventLoops it uses the public shutdown_default_executor().
* attributes of `asyncio` and `asyncio.events` that a test swapped and did not restore
  (a setUp that fails after patching) are put back after the test.

Each module runs in a child process (`--child`, internal) that streams one JSON object
per line to a results file. A watchdog (faulthandler) ends the child if one test runs
longer than --test-timeout; the parent then records that test as a timeout and starts
a new child that skips the tests already done, so one hang costs one test, not the
module. A module also has a wall-clock limit (--module-timeout) and the whole run a
budget (--total-timeout).

Exit status: 0 if, among the loop-behaviour tests that exercised the loop, the share
of asyncio-passing tests (with --compare; otherwise of tests that were not skipped)
that also pass on the loop is at least --min-pass percent; 1 otherwise; 2 on usage
errors (for instance a loop that cannot be imported).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import faulthandler
import fnmatch
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "test.test_asyncio"

# --------------------------------------------------------------------------------------
# Classification of test_asyncio's modules (the union over Python 3.10 to 3.13).
#
# LOOP:   the module exercises an event loop's own behaviour. Its tests count towards
#         the pass percentage, but only those that created a loop of the chosen class.
# STDLIB: the module tests asyncio's own implementation (selector/proactor internals
#         driven by mocks, abstract base classes, Windows-only code). Run and reported,
#         never counted.
# A module missing here (a newer Python's) is reported as "unclassified", not counted.
# --------------------------------------------------------------------------------------
LOOP = "loop"
STDLIB = "stdlib"
UNCLASSIFIED = "unclassified"

MODULES: dict[str, tuple[str, str]] = {
    "test_events": (LOOP, "the loop API end to end: callbacks, timers, sockets, servers, pipes, subprocesses, signals"),
    "test_base_events": (LOOP, "mostly BaseEventLoop with mocks/TestLoop; only its new_event_loop() tests count"),
    "test_tasks": (LOOP, "tasks, gather, wait, sleep, run_coroutine_threadsafe; TestLoop-based tests do not count"),
    "test_futures2": (LOOP, "future tracebacks and reprs on a real loop (IsolatedAsyncioTestCase)"),
    "test_streams": (LOOP, "StreamReader/StreamWriter over real TCP and Unix sockets"),
    "test_sock_lowlevel": (LOOP, "loop.sock_* coroutines on real sockets (per-selector classes replaced)"),
    "test_server": (LOOP, "Server objects: start_serving, serve_forever, close, Unix socket cleanup"),
    "test_sendfile": (LOOP, "loop.sendfile and loop.sock_sendfile on real sockets (per-selector classes replaced)"),
    "test_subprocess": (LOOP, "asyncio.create_subprocess_* through the loop (per-child-watcher classes replaced)"),
    "test_unix_events": (
        LOOP,
        "Unix sockets, fork and add_reader on a real loop; watcher and pipe-transport mocks do not count",
    ),
    "test_ssl": (LOOP, "TLS over the loop's transports: handshakes, shutdown, timeouts"),
    "test_sslproto": (LOOP, "start_tls on a real loop; SSLProtocol unit tests on TestLoop do not count"),
    "test_buffered_proto": (LOOP, "BufferedProtocol (get_buffer/buffer_updated) over a real connection"),
    "test_taskgroups": (LOOP, "TaskGroup semantics, run on the loop by IsolatedAsyncioTestCase"),
    "test_timeouts": (LOOP, "asyncio.timeout and its rescheduling against the loop's clock"),
    "test_context": (LOOP, "contextvars propagation through callbacks and tasks"),
    "test_locks": (LOOP, "Lock, Event, Condition, Semaphore, Barrier waking waiters through the loop"),
    "test_queues": (LOOP, "Queue variants driven by the loop"),
    "test_waitfor": (LOOP, "asyncio.wait_for timing and cancellation against the loop's clock"),
    "test_eager_task_factory": (LOOP, "eager task factory (3.12+): tasks that start before the loop schedules them"),
    "test_threads": (LOOP, "asyncio.to_thread through the loop's default executor"),
    "test_staggered": (LOOP, "staggered_race (happy eyeballs helper) scheduling on the loop"),
    "test_selector_events": (STDLIB, "BaseSelectorEventLoop and selector transports with mocked sockets and selectors"),
    "test_proactor_events": (STDLIB, "Windows proactor loop internals driven by mocks"),
    "test_windows_events": (STDLIB, "Windows only"),
    "test_windows_utils": (STDLIB, "Windows only"),
    "test_futures": (STDLIB, "Future and its callbacks on test_utils.TestLoop and mocks; no test makes a real loop"),
    "test_runners": (STDLIB, "asyncio.run/Runner logic against a mocked BaseEventLoop from the test's own policy"),
    "test_pep492": (STDLIB, "async/await language integration on a mocked BaseEventLoop"),
    "test_transports": (STDLIB, "abstract Transport base classes, no loop involved"),
    "test_protocols": (STDLIB, "abstract Protocol base classes, no loop involved"),
}

# --quick: the loop-behaviour modules without TLS. On the stdlib loop they take about a
# minute together on a 2-core machine; test_ssl and test_sslproto are left out because
# their handshakes are slow (20 s on the stdlib loop) and a loop with TLS trouble
# spends a --test-timeout on each hung handshake.
QUICK_MODULES = (
    "test_events",
    "test_base_events",
    "test_tasks",
    "test_futures2",
    "test_streams",
    "test_sock_lowlevel",
    "test_server",
    "test_sendfile",
    "test_subprocess",
    "test_unix_events",
    "test_buffered_proto",
    "test_taskgroups",
    "test_timeouts",
    "test_context",
    "test_locks",
    "test_queues",
    "test_waitfor",
    "test_eager_task_factory",
    "test_threads",
    "test_staggered",
)


@dataclass(frozen=True)
class Replacement:
    """Run `bases` + a loop hook instead of the classes in `drop`.

    `bases` are names looked up in the test module (dotted names follow attributes).
    `hook` is the method through which the bases obtain their loop: "create_event_loop"
    and "new_loop" are given `asyncio.new_event_loop`; "setUp" gets a setUp that makes
    `self.loop` that way (for classes whose own setUp hard-wires the loop class).
    """

    name: str
    bases: tuple[str, ...]
    hook: str
    drop: tuple[str, ...]
    why: str


SELECTOR_VARIANTS = (
    "SelectEventLoopTests",
    "PollEventLoopTests",
    "EPollEventLoopTests",
    "KqueueEventLoopTests",
    "ProactorEventLoopTests",
)

REPLACEMENTS: dict[str, Replacement] = {
    "test_events": Replacement(
        "PolicyLoopEventLoopTests",
        ("EventLoopTestsMixin", "SubprocessTestsMixin", "test_utils.TestCase"),
        "create_event_loop",
        SELECTOR_VARIANTS,
        "the variants build asyncio.SelectorEventLoop(selectors.X()); the Unix ones also attach a stdlib "
        "SafeChildWatcher, which is the stdlib's subprocess machinery rather than the loop's",
    ),
    "test_sock_lowlevel": Replacement(
        "PolicyLoopSockTests",
        ("BaseSockTestsMixin", "test_utils.TestCase"),
        "create_event_loop",
        SELECTOR_VARIANTS,
        "the variants build asyncio.SelectorEventLoop(selectors.X())",
    ),
    "test_sendfile": Replacement(
        "PolicyLoopSendfileTests",
        ("SendfileTestsBase", "test_utils.TestCase"),
        "create_event_loop",
        SELECTOR_VARIANTS,
        "the variants build asyncio.SelectorEventLoop(selectors.X())",
    ),
    "test_subprocess": Replacement(
        "PolicyLoopSubprocessTests",
        ("SubprocessMixin", "test_utils.TestCase"),
        "setUp",
        (
            "SubprocessThreadedWatcherTests",
            "SubprocessMultiLoopWatcherTests",
            "SubprocessSafeWatcherTests",
            "SubprocessFastWatcherTests",
            "SubprocessPidfdWatcherTests",
            "SubprocessProactorTests",
        ),
        "the variants install each stdlib child watcher in turn; the loop under test brings its own",
    ),
    # The Selector classes below define extra tests of their own, so the replacement
    # subclasses them instead of rebuilding them from the mixin.
    "test_server": Replacement(
        "PolicyLoopStartServerTests",
        ("SelectorStartServerTests",),
        "new_loop",
        ("SelectorStartServerTests", "ProactorStartServerTests"),
        "the variant's new_loop() returns asyncio.SelectorEventLoop()",
    ),
    "test_sslproto": Replacement(
        "PolicyLoopStartTLSTests",
        ("SelectorStartTLSTests",),
        "new_loop",
        ("SelectorStartTLSTests", "ProactorStartTLSTests"),
        "the variant's new_loop() returns asyncio.SelectorEventLoop()",
    ),
    "test_buffered_proto": Replacement(
        "PolicyLoopBufferedProtocolTests",
        ("BufferedProtocolSelectorTests",),
        "new_loop",
        ("BufferedProtocolSelectorTests", "BufferedProtocolProactorTests"),
        "the variant's new_loop() returns asyncio.SelectorEventLoop()",
    ),
    "test_unix_events": Replacement(
        "PolicyLoopUnixSocketTests",
        ("SelectorEventLoopUnixSocketTests",),
        "setUp",
        ("SelectorEventLoopUnixSocketTests",),
        "its setUp builds asyncio.SelectorEventLoop() for real create_unix_server/connection tests",
    ),
}

# Outcomes recorded per test. "xfail" (expected failure) counts as a pass, "xpass"
# (unexpected success) as a failure, "timeout" and "crash" as errors.
PASSING = ("pass", "xfail")
SEVERITY = {"pass": 0, "xfail": 0, "skip": 1, "xpass": 2, "fail": 3, "error": 4}


# --------------------------------------------------------------------------------------
# The loops
# --------------------------------------------------------------------------------------
LOOP_CHOICES = ("cppcorn", "uvloop", "asyncio")


def load_loop(name: str) -> tuple[type, type]:
    """Return (policy class, loop class) for a --loop choice; imports only that loop."""
    if name == "asyncio":
        return asyncio.DefaultEventLoopPolicy, asyncio.SelectorEventLoop
    if name == "uvloop":
        import uvloop

        return uvloop.EventLoopPolicy, uvloop.Loop
    if name == "cppcorn":
        from cppcorn import loop as cppcorn_loop

        return cppcorn_loop.EventLoopPolicy, cppcorn_loop.Loop
    raise ValueError(f"unknown loop {name!r}")


class LoopCounter:
    """Counts loops of the chosen class made through the policy (from any thread).

    `on_add` is called for each one as it is made, so that the parent learns that a
    test used the loop even if the test then hangs or crashes the process.
    """

    def __init__(self, on_add=None) -> None:
        self._lock = threading.Lock()
        self._on_add = on_add
        self.count = 0

    def add(self) -> None:
        with self._lock:
            self.count += 1
        if self._on_add is not None:
            self._on_add()

    def take(self) -> int:
        with self._lock:
            count, self.count = self.count, 0
            return count


class PolicyInstaller:
    """Installs fresh, counting instances of the loop's own event loop policy."""

    def __init__(self, loop_name: str, counter: LoopCounter) -> None:
        policy_cls, loop_cls = load_loop(loop_name)

        class CountingPolicy(policy_cls):
            def new_event_loop(self):
                loop = super().new_event_loop()
                if isinstance(loop, loop_cls):
                    counter.add()
                return loop

        self._policy_cls = CountingPolicy
        self._installed = None

    def install(self) -> None:
        """Install a fresh instance (no current loop, no child watcher)."""
        self._installed = self._policy_cls()
        asyncio.set_event_loop_policy(self._installed)

    def ensure(self) -> None:
        """Re-install if something replaced or reset the policy since install()."""
        if asyncio.get_event_loop_policy() is not self._installed:
            self.install()


# --------------------------------------------------------------------------------------
# Child process: run one module, stream results as JSON lines
# --------------------------------------------------------------------------------------
class EventWriter:
    """Appends one JSON object per line to the results file, flushed at once (a test
    may end the process at any moment); usable from any thread."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open until the child exits
        self._lock = threading.Lock()

    def __call__(self, **event) -> None:
        line = json.dumps(event) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()


class JsonLinesResult(unittest.TestResult):
    """A TestResult that writes one JSON object per finished test.

    Events: {"event": "start", "id"} before a test runs, so that the parent knows which
    test was running if the process dies; {"event": "loop"} whenever a loop of the
    chosen class is made (written by the LoopCounter); {"event": "test", "id",
    "outcome", "seconds", "loops", "detail"} when a test ends. Fixture errors
    (setUpClass, setUpModule) arrive as "test" events with the fixture's id.
    """

    # Module namespaces whose attributes a test may swap and fail to put back.
    GUARDED_MODULES = (asyncio, asyncio.events)
    UNGUARDED_NAMES = ("_event_loop_policy",)  # re-installed before every test anyway

    def __init__(
        self,
        write: EventWriter,
        policy: PolicyInstaller,
        counter: LoopCounter,
        test_timeout: float,
        last_of_class: set[str],
    ) -> None:
        super().__init__()
        self._write = write
        self._policy = policy
        self._counter = counter
        self._test_timeout = test_timeout
        self._last_of_class = last_of_class
        self._saved_namespaces: list[dict] = []
        self._current = None
        self._outcome = "pass"
        self._detail = ""
        self._started = 0.0

    def _note(self, outcome: str, detail: str) -> None:
        # A test can report several things (a skip, then an error in a cleanup, or
        # failing subtests); keep the most severe.
        if SEVERITY[outcome] > SEVERITY[self._outcome]:
            self._outcome, self._detail = outcome, detail

    def startTest(self, test) -> None:
        super().startTest(test)
        # Install the policy again if something replaced or reset it (an earlier test).
        # Not a new one regardless: on 3.10 IsolatedAsyncioTestCase has made its loop,
        # through this policy, before startTest.
        self._policy.ensure()
        self._saved_namespaces = [dict(vars(m)) for m in self.GUARDED_MODULES]
        self._current, self._outcome, self._detail = test, "pass", ""
        self._write(event="start", id=test.id())
        self._started = time.monotonic()
        # Watchdog: dump every thread's stack and _exit(1) if this test hangs.
        faulthandler.dump_traceback_later(self._test_timeout, exit=True)

    def stopTest(self, test) -> None:
        faulthandler.cancel_dump_traceback_later()
        # Loops are counted from the end of the previous test, so that a loop made just
        # before startTest (see there) or by the class's setUpClass is counted too.
        self._write(
            event="test",
            id=test.id(),
            outcome=self._outcome,
            seconds=round(time.monotonic() - self._started, 3),
            loops=self._counter.take(),
            detail=self._detail,
        )
        self._current = None
        self._restore_namespaces(test)
        # Prepare the policy for the next test, before its class fixtures run. Within a
        # class the instance is kept, as the global policy is in a plain unittest run
        # (a test may rely on what the one before left in it); each class starts with a
        # new one, so that a class cannot inherit another's child watcher or current
        # loop (the replacement classes run after classes they would not follow in a
        # plain run).
        if test.id() in self._last_of_class:
            self._policy.install()
        else:
            self._policy.ensure()
        super().stopTest(test)

    def _restore_namespaces(self, test) -> None:
        # test_events' GetEventLoopTestsMixin swaps asyncio's running-loop functions for
        # their pure-Python versions in setUp and restores them in tearDown, which does
        # not run when setUp fails (as it does under a policy without child watchers).
        # Every later test would then see "no running event loop"; undo such leaks so
        # that one failure stays one failure.
        for module, saved in zip(self.GUARDED_MODULES, self._saved_namespaces, strict=False):
            namespace = vars(module)
            leaked = [
                name
                for name, value in saved.items()
                if namespace.get(name) is not value and name not in self.UNGUARDED_NAMES
            ]
            for name in leaked:
                namespace[name] = saved[name]
            if leaked:
                print(
                    f"asyncio_suite: {test.id()} left {module.__name__}.{{{', '.join(leaked)}}} changed; restored",
                    file=sys.stderr,
                )

    def _error_outside_test(self, test, outcome: str, err) -> None:
        # setUpClass/setUpModule/tearDown* failures reach the result through a stand-in
        # "test" that was never started.
        self._write(
            event="test",
            id=test.id(),
            outcome=outcome,
            seconds=0.0,
            loops=0,
            detail=self._exc_info_to_string(err, test),
        )

    def addError(self, test, err) -> None:
        super().addError(test, err)
        if test is self._current:
            self._note("error", self._exc_info_to_string(err, test))
        else:
            self._error_outside_test(test, "error", err)

    def addFailure(self, test, err) -> None:
        super().addFailure(test, err)
        self._note("fail", self._exc_info_to_string(err, test))

    def addSubTest(self, test, subtest, err) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            outcome = "fail" if issubclass(err[0], test.failureException) else "error"
            self._note(outcome, f"{subtest.id()}\n{self._exc_info_to_string(err, test)}")

    def addSkip(self, test, reason) -> None:
        super().addSkip(test, reason)
        if test is self._current:  # a skipped subtest does not skip the test
            self._note("skip", reason)
        elif not hasattr(test, "_subDescription"):
            self._write(event="test", id=test.id(), outcome="skip", seconds=0.0, loops=0, detail=reason)

    def addExpectedFailure(self, test, err) -> None:
        super().addExpectedFailure(test, err)
        self._note("xfail", "")

    def addUnexpectedSuccess(self, test) -> None:
        super().addUnexpectedSuccess(test)
        self._note("xpass", "unexpected success")


def iter_tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iter_tests(item)
        else:
            yield item


def lookup(module, dotted: str):
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def replacement_class(module, spec: Replacement) -> type:
    """Build the class that runs a module's loop tests on the policy's loop."""
    bases = tuple(lookup(module, name) for name in spec.bases)
    if spec.hook == "setUp":
        test_utils = importlib.import_module(f"{PACKAGE}.utils")

        def setUp(self):
            # test_utils.TestCase.setUp only records threads; the replaced setUp did
            # that, then built its loop class directly.
            test_utils.TestCase.setUp(self)
            self.loop = asyncio.new_event_loop()
            self.set_event_loop(self.loop)

        namespace = {"setUp": setUp}
    else:
        namespace = {spec.hook: lambda self: asyncio.new_event_loop()}
    namespace.update(__module__=module.__name__, __qualname__=spec.name)
    return type(spec.name, bases, namespace)


def id_matches(test_id: str, patterns: list[str]) -> bool:
    """unittest's -k rule: a pattern without '*' matches as a substring."""
    return any(fnmatch.fnmatchcase(test_id, p if "*" in p else f"*{p}*") for p in patterns)


def select_tests(module, module_name: str, patterns: list[str], exclude: set[str]) -> list[unittest.TestCase]:
    """The module's tests in unittest's order, replacements applied, filtered."""
    loader = unittest.TestLoader()
    tests = list(iter_tests(loader.loadTestsFromModule(module)))
    spec = REPLACEMENTS.get(module_name)
    if spec is not None:
        tests = [t for t in tests if type(t).__name__ not in spec.drop]
        tests += list(iter_tests(loader.loadTestsFromTestCase(replacement_class(module, spec))))
    if patterns:
        tests = [t for t in tests if id_matches(t.id(), patterns)]
    return [t for t in tests if t.id() not in exclude]


def adapt_close_loop() -> None:
    """Let test_utils.TestCase.close_loop close loops that are not BaseEventLoops.

    close_loop (the cleanup of every test_utils.TestCase loop) reads BaseEventLoop's
    private `_default_executor`, so on a loop that does not inherit BaseEventLoop
    (uvloop) every such test would error in its cleanup. For those loops only, shut the
    default executor down through the public API instead. Loops that are BaseEventLoops
    (asyncio's, cppcorn's) keep the original code path unchanged.
    """
    from asyncio import base_events

    test_utils = importlib.import_module(f"{PACKAGE}.utils")
    original = test_utils.TestCase.close_loop

    def close_loop(loop):
        if isinstance(loop, base_events.BaseEventLoop):
            return original(loop)
        if not loop.is_closed():
            loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()

    test_utils.TestCase.close_loop = staticmethod(close_loop)


def child_main(args: argparse.Namespace) -> None:
    write = EventWriter(args.results)
    counter = LoopCounter(on_add=lambda: write(event="loop"))
    policy = PolicyInstaller(args.loop, counter)
    exclude = set(Path(args.exclude_file).read_text().split()) if args.exclude_file else set()
    faulthandler.enable()  # a segfault in the loop leaves a traceback in the log
    # Tests (test_runners) interrupt themselves with _thread.interrupt_main() and expect
    # Python's usual KeyboardInterrupt; a runner started in the background by a shell
    # inherits SIGINT ignored, and those tests would then wait forever.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    policy.install()
    try:
        adapt_close_loop()
        module = importlib.import_module(f"{PACKAGE}.{args.child}")
    except unittest.SkipTest as exc:
        write(event="module_skip", detail=str(exc))
    except Exception:  # any import failure is reported, not raised
        write(event="import_error", detail=traceback.format_exc())
    else:
        tests = select_tests(module, args.child, args.k or [], exclude)
        # The last test of each class: after it, the next class gets a new policy.
        followers = [*tests[1:], None]
        last_of_class = {t.id() for t, after in zip(tests, followers, strict=True) if type(after) is not type(t)}
        unittest.TestSuite(tests).run(JsonLinesResult(write, policy, counter, args.test_timeout, last_of_class))
    write(event="done")
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: threads that a test left behind must not hang the child.
    os._exit(0)


# --------------------------------------------------------------------------------------
# Parent: run modules in children, with timeouts and resumption
# --------------------------------------------------------------------------------------
@dataclass
class TestRecord:
    outcome: str  # pass fail error skip xfail xpass timeout crash
    seconds: float = 0.0
    loops: int = 0  # loops of the chosen class the test created through the policy
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome in PASSING

    @property
    def kind(self) -> str:
        """The column a test is counted in: pass, fail, error or skip."""
        if self.outcome in PASSING:
            return "pass"
        if self.outcome in ("fail", "xpass"):
            return "fail"
        return self.outcome if self.outcome == "skip" else "error"


@dataclass
class ModuleRun:
    loop: str
    module: str
    tests: dict[str, TestRecord] = field(default_factory=dict)
    seconds: float = 0.0
    status: str = "ok"  # ok, skipped (module-level SkipTest), import error, timeout, crash, not run
    note: str = ""
    restarts: int = 0


def read_events(path: Path, offset: int) -> list[dict]:
    events = []
    with open(path, encoding="utf-8") as f:
        f.seek(offset)
        for line in f:
            if line.endswith("\n"):  # a line cut short by a kill is dropped
                events.append(json.loads(line))
    return events


def tail(path: Path, offset: int, limit: int = 4000) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        f.seek(offset)
        return f.read()[-limit:]


# What faulthandler.dump_traceback_later prints when the per-test watchdog fires.
WATCHDOG_MESSAGE = re.compile(r"^Timeout \([0-9:.]+\)!$", re.MULTILINE)

# Set when the runner is interrupted (Ctrl-C): running children are ended, no more start.
STOPPING = threading.Event()


def wait_unreaped(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for a child to exit, without reaping it; True if it did."""
    deadline = time.monotonic() + timeout
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        if time.monotonic() >= deadline or STOPPING.is_set():
            return False
        time.sleep(0.05)
    return True


def kill_group(pgid: int) -> None:
    # The child leads its own process group; this ends it and anything its tests spawned.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run_module(
    label: str, loop: str, module: str, opts: argparse.Namespace, deadline: float, workdir: Path
) -> ModuleRun:
    """Run one module on one loop, restarting the child after a hung or crashed test.

    `label` names the run in the report and its files in `workdir` (the reference run
    of `--loop asyncio --compare` is labelled "stdlib" so that the two runs differ).
    """
    run = ModuleRun(label, module)
    started = time.monotonic()
    stem = f"{label}.{module}"
    results, log, exclude_file = (workdir / f"{stem}.jsonl"), (workdir / f"{stem}.log"), (workdir / f"{stem}.exclude")
    results.write_text("")
    log.write_text("")
    cwd = workdir / f"{stem}.cwd"  # tests write scratch files (os_helper.TESTFN) into the cwd
    cwd.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))

    while True:
        budget = min(opts.module_timeout - (time.monotonic() - started), deadline - time.monotonic())
        if budget <= 1:
            run.status, run.note = "timeout", "module or total time budget used up"
            break
        exclude_file.write_text("\n".join(run.tests))
        cmd = [
            sys.executable,
            "-m",
            "tests.asyncio_suite",
            "--child",
            module,
            "--loop",
            loop,
            "--results",
            str(results),
            "--exclude-file",
            str(exclude_file),
            "--test-timeout",
            str(opts.test_timeout),
        ]
        for pattern in opts.k or []:
            cmd += ["-k", pattern]
        results_offset, log_offset = results.stat().st_size, log.stat().st_size
        with open(log, "a") as log_file:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                timed_out = not wait_unreaped(proc.pid, budget)
            finally:
                # Until it is reaped the child holds its pid, so the group id is still
                # ours: end whatever its tests left running (or the child itself, on a
                # timeout or when the runner is interrupted).
                kill_group(proc.pid)
                proc.wait()
        if STOPPING.is_set():
            run.status, run.note = "not run", "interrupted"
            break

        current, current_loops, done = None, 0, False
        for event in read_events(results, results_offset):
            kind = event["event"]
            if kind == "start":
                current, current_loops = event["id"], 0
            elif kind == "loop":
                current_loops += 1
            elif kind == "test":
                run.tests[event["id"]] = TestRecord(event["outcome"], event["seconds"], event["loops"], event["detail"])
                current = None
            elif kind == "module_skip":
                run.status, run.note = "skipped", event["detail"]
            elif kind == "import_error":
                run.status, run.note = "import error", event["detail"].strip().splitlines()[-1]
            elif kind == "done":
                done = True
        if done:
            break

        # The child died or was killed: blame the test it was running and go on after it.
        output = tail(log, log_offset)
        if timed_out:
            outcome, why = "timeout", "module time limit or total time budget reached"
        elif WATCHDOG_MESSAGE.search(output):
            outcome, why = "timeout", f"test ran longer than {opts.test_timeout:.0f}s"
        else:
            outcome, why = "crash", f"child exited with status {proc.returncode}"
        if current is not None:
            run.tests[current] = TestRecord(outcome, loops=current_loops, detail=f"{why}\n{output}")
        if timed_out or current is None or run.restarts >= opts.max_restarts:
            run.status, run.note = ("timeout" if outcome == "timeout" else "crash"), why
            break
        run.restarts += 1

    run.seconds = time.monotonic() - started
    return run


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------
def category(module: str) -> str:
    return MODULES.get(module, (UNCLASSIFIED, ""))[0]


def counts(run: ModuleRun | None) -> dict[str, int]:
    result = {"pass": 0, "fail": 0, "error": 0, "skip": 0}
    for record in run.tests.values() if run else ():
        result[record.kind] += 1
    return result


def pfes(c: dict[str, int]) -> str:
    return f"{c['pass']}/{c['fail']}/{c['error']}/{c['skip']}"


def progress_line(run: ModuleRun) -> str:
    status = "" if run.status == "ok" else f"  [{run.status}: {run.note}]"
    if run.restarts:
        status += f"  [{run.restarts} restart(s)]"
    used = sum(1 for r in run.tests.values() if r.loops)
    return (
        f"[{run.loop:>7}] {run.module:<26} {len(run.tests):>4} tests  pass/fail/err/skip {pfes(counts(run)):<15}"
        f" used loop {used:>4}  {run.seconds:6.1f}s{status}"
    )


@dataclass
class Comparison:
    """Per module: the tests that fail only on the loop, and the percentage's counts."""

    module: str
    tests: int = 0
    used_loop: int = 0  # tests that made a loop of the chosen class (loop run)
    only_loop: list[str] = field(default_factory=list)  # pass on the reference run, not on the loop
    counted: int = 0  # loop-behaviour tests in the percentage's denominator
    counted_pass: int = 0


def compare_module(module: str, loop_run: ModuleRun, ref_run: ModuleRun | None) -> Comparison:
    ids = sorted(set(loop_run.tests) | set(ref_run.tests if ref_run else ()))
    cmp = Comparison(module, tests=len(ids))
    for test_id in ids:
        mine = loop_run.tests.get(test_id)
        ref = ref_run.tests.get(test_id) if ref_run else None
        mine_pass = bool(mine and mine.passed)
        cmp.used_loop += bool(mine and mine.loops)
        if ref is not None and ref.passed and not mine_pass:
            cmp.only_loop.append(test_id)
        # A test counts if its module is about loop behaviour and it made a loop of the
        # chosen class in either run (a test that dies before making one on the loop
        # under test still made one on the reference run).
        used = bool(mine and mine.loops) or bool(ref and ref.loops)
        if category(module) != LOOP or not used:
            continue
        # With a reference run the denominator is what passes there; without one,
        # every test that ran on the loop and was not skipped.
        eligible = bool(ref and ref.passed) if ref_run is not None else mine is not None and mine.kind != "skip"
        cmp.counted += eligible
        cmp.counted_pass += eligible and mine_pass
    return cmp


def print_classification() -> None:
    print("test_asyncio module classification")
    for cat in (LOOP, STDLIB):
        print(f"\n{cat}:")
        for module, (c, why) in MODULES.items():
            if c == cat:
                quick = "quick" if module in QUICK_MODULES else ""
                print(f"  {module:<24} {quick:<6} {why}")
    print("\nreplaced loop-specific classes:")
    for module, spec in REPLACEMENTS.items():
        print(f"  {module:<24} {spec.name} ({' + '.join(spec.bases)}) instead of {', '.join(spec.drop)}:")
        print(f"  {'':<24} {spec.why}")


def summary(record: TestRecord) -> str:
    """One line about why a test did not pass: the exception line of its traceback, or
    for a timeout or crash the runner's explanation (the rest is a stack dump)."""
    lines = [line.strip() for line in record.detail.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return (lines[0] if record.outcome in ("timeout", "crash") else lines[-1])[:160]


def report(opts, modules: list[str], runs: dict[tuple[str, str], ModuleRun], ref_name: str | None) -> float | None:
    """Print the per-module table and the failures; return the pass percentage."""
    loop = opts.loop
    columns = [("module", 24, "<"), ("category", 8, "<"), ("tests", 5, ">"), ("used loop", 9, ">")]
    if ref_name:
        columns.append((f"{ref_name} p/f/e/s", 16, ">"))
    columns += [(f"{loop} p/f/e/s", 16, ">")]
    if ref_name:
        columns.append(("fail only on loop", 17, ">"))
    columns += [("counted", 7, ">"), ("counted pass", 12, ">"), ("seconds", 13, ">")]

    def row(values) -> str:
        return " ".join(f"{v!s:{align}{width}}" for v, (_, width, align) in zip(values, columns, strict=False)).rstrip()

    header = row([name for name, _, _ in columns])
    print()
    print(header)
    print("-" * len(header))
    comparisons = []
    total = {
        "tests": 0,
        "used": 0,
        "only": 0,
        "counted": 0,
        "counted_pass": 0,
        "t_ref": 0.0,
        "t_mine": 0.0,
        "ref": counts(None),
        "mine": counts(None),
    }
    for module in modules:
        mine = runs[(loop, module)]
        ref = runs.get((ref_name, module)) if ref_name else None
        cmp = compare_module(module, mine, ref)
        comparisons.append(cmp)
        c_mine, c_ref = counts(mine), counts(ref)
        for key in c_mine:
            total["mine"][key] += c_mine[key]
            total["ref"][key] += c_ref[key]
        total["tests"] += cmp.tests
        total["used"] += cmp.used_loop
        total["only"] += len(cmp.only_loop)
        total["counted"] += cmp.counted
        total["counted_pass"] += cmp.counted_pass
        total["t_mine"] += mine.seconds
        total["t_ref"] += ref.seconds if ref else 0.0
        values = [module, category(module), cmp.tests, cmp.used_loop]
        if ref:
            values.append(pfes(c_ref))
        values.append(pfes(c_mine))
        if ref:
            values.append(len(cmp.only_loop))
        seconds = f"{ref.seconds:.1f}/{mine.seconds:.1f}" if ref else f"{mine.seconds:.1f}"
        values += [cmp.counted, cmp.counted_pass, seconds]
        status = [f"{r.loop}: {r.status}" for r in (ref, mine) if r and r.status != "ok"]
        print(row(values) + (f"  ({'; '.join(status)})" if status else ""))
    print("-" * len(header))
    values = ["total", "", total["tests"], total["used"]]
    if ref_name:
        values.append(pfes(total["ref"]))
    values.append(pfes(total["mine"]))
    if ref_name:
        values.append(total["only"])
    seconds = f"{total['t_ref']:.1f}/{total['t_mine']:.1f}" if ref_name else f"{total['t_mine']:.1f}"
    values += [total["counted"], total["counted_pass"], seconds]
    print(row(values))
    print(
        "p/f/e/s: passed/failed/errors (timeouts and crashes included)/skipped. "
        f"used loop: tests that made a loop of the {loop} class through the policy."
    )
    basis = f"passing on {ref_name}" if ref_name else "not skipped"
    print(
        f"counted: tests of 'loop' modules that used the loop (in either run) and are {basis}; "
        f"counted pass: of those, passing on {loop}."
    )

    if opts.list_failures:
        if ref_name:
            print(
                f"\nTests that pass on {ref_name} but not on {loop} "
                "([not counted]: stdlib module, or the test made no loop through the policy):"
            )
        else:
            print(f"\nTests that fail on {loop} (no --compare, so no reference run):")
        for cmp in comparisons:
            mine_run = runs[(loop, cmp.module)]
            if ref_name:
                failing = cmp.only_loop
            else:
                failing = [tid for tid, rec in mine_run.tests.items() if rec.kind in ("fail", "error")]
            for test_id in failing:
                mine = mine_run.tests.get(test_id)
                ref = runs[(ref_name, cmp.module)].tests.get(test_id) if ref_name else None
                used = bool(mine and mine.loops) or bool(ref and ref.loops)
                tag = "" if category(cmp.module) == LOOP and used else " [not counted]"
                outcome = f"{mine.outcome}: {summary(mine)}" if mine else "not run"
                print(f"  {test_id}{tag}: {outcome}")

    unused = [
        c.module
        for c in comparisons
        if category(c.module) == LOOP and c.tests and not c.used_loop and runs[(loop, c.module)].status == "ok"
    ]
    if unused:
        print(
            f"\nwarning: no test of these loop-behaviour modules made a loop of the {loop} class: {', '.join(unused)}"
        )

    if total["counted"] == 0:
        return None
    rate = 100.0 * total["counted_pass"] / total["counted"]
    print(
        f"\nLoop-behaviour tests that used the {loop} loop and are {basis}: {total['counted']}; "
        f"pass on {loop}: {total['counted_pass']} ({rate:.1f}%)"
    )
    return rate


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def installed_modules() -> list[str]:
    package = importlib.import_module(PACKAGE)
    directory = Path(package.__file__).parent
    return sorted(p.stem for p in directory.glob("test_*.py"))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.asyncio_suite",
        description="Run CPython's test_asyncio on an event loop and compare it with the stdlib loop.",
    )
    parser.add_argument("modules", nargs="*", help="test modules to run (test_events or events); default: all")
    parser.add_argument("--loop", choices=LOOP_CHOICES, default="cppcorn", help="loop under test (default cppcorn)")
    parser.add_argument("--compare", action="store_true", help="also run the stdlib loop and compare per module")
    parser.add_argument("--quick", action="store_true", help="only the modules that finish in a few minutes (CI)")
    parser.add_argument(
        "-k",
        action="append",
        metavar="PATTERN",
        help="only tests whose id matches (substring, or fnmatch with '*'); repeatable",
    )
    parser.add_argument(
        "--list-failures", action="store_true", help="print the ids of tests that pass on asyncio but fail on the loop"
    )
    parser.add_argument(
        "--min-pass", type=float, default=95.0, help="exit 0 only if at least this percent pass (default 95)"
    )
    parser.add_argument("--classification", action="store_true", help="print the module classification and exit")
    parser.add_argument("--test-timeout", type=float, default=60.0, help="seconds one test may take (default 60)")
    parser.add_argument(
        "--module-timeout", type=float, default=600.0, help="seconds one module may take in one run (default 600)"
    )
    parser.add_argument(
        "--total-timeout",
        type=float,
        default=3600.0,
        help="seconds for the whole run; modules not started by then are not run (default 3600)",
    )
    parser.add_argument(
        "--max-restarts",
        type=int,
        default=10,
        help="times a module's child may be restarted after a hung or crashed test (default 10)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        help="modules run at once (default 1: timing-sensitive tests are steadier alone)",
    )
    parser.add_argument("--log-dir", help="where children's logs and results go (default: a new temp dir)")
    parser.add_argument("--json", metavar="PATH", help="also write every test's outcome to this JSON file")
    # Internal: the per-module child process.
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--results", help=argparse.SUPPRESS)
    parser.add_argument("--exclude-file", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def check_injection(loop_name: str) -> str:
    """Fail early, with a clear message, if the policy does not make the chosen loop."""
    counter = LoopCounter()
    try:
        PolicyInstaller(loop_name, counter).install()
        loop = asyncio.new_event_loop()
    finally:
        asyncio.set_event_loop_policy(None)
    loop.close()
    if counter.take() != 1:
        raise RuntimeError(f"the {loop_name} policy made a {type(loop).__module__}.{type(loop).__qualname__}")
    return f"{type(loop).__module__}.{type(loop).__qualname__}"


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if opts.child:
        child_main(opts)  # does not return
    if opts.classification:
        print_classification()
        return 0

    available = installed_modules()
    if opts.modules:
        wanted = [m if m.startswith("test_") else f"test_{m}" for m in opts.modules]
        unknown = [m for m in wanted if m not in available]
        if unknown:
            print(f"not in this Python's test_asyncio: {', '.join(unknown)}", file=sys.stderr)
            return 2
        modules = wanted
    elif opts.quick:
        modules = [m for m in available if m in QUICK_MODULES]
    else:
        modules = available

    loops = [opts.loop]
    if opts.compare:
        loops = ["asyncio", opts.loop]  # with --loop asyncio, the stdlib loop is run twice
    for name in dict.fromkeys(loops):
        try:
            made = check_injection(name)
        except Exception as exc:  # any import or construction problem is reported the same way
            print(f"cannot use the {name} loop: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        print(f"{name}: asyncio.new_event_loop() under its policy makes {made}")

    workdir = Path(opts.log_dir or tempfile.mkdtemp(prefix="asyncio_suite-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"Python {sys.version.split()[0]}, {len(modules)} modules, logs in {workdir}")
    started = time.monotonic()
    deadline = started + opts.total_timeout

    # Runs are keyed by (label, module); the reference run of --loop asyncio --compare
    # needs its own label so that it does not overwrite the run under test.
    ref_name = "stdlib" if opts.compare and opts.loop == "asyncio" else ("asyncio" if opts.compare else None)
    jobs = [
        (label, name, module)
        for module in modules
        for label, name in ([(ref_name, "asyncio")] if ref_name else []) + [(opts.loop, opts.loop)]
    ]

    def work(job) -> ModuleRun:
        label, name, module = job
        if STOPPING.is_set():
            return ModuleRun(label, module, status="not run", note="interrupted")
        if time.monotonic() >= deadline:
            run = ModuleRun(label, module, status="not run", note="total time budget used up")
        else:
            run = run_module(label, name, module, opts, deadline, workdir)
        print(progress_line(run), flush=True)
        return run

    runs: dict[tuple[str, str], ModuleRun] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        futures = [pool.submit(work, job) for job in jobs]
        try:
            for (label, _, module), future in zip(jobs, futures, strict=True):
                runs[(label, module)] = future.result()
        except KeyboardInterrupt:
            STOPPING.set()  # the workers end their children and return at once
            print("interrupted", file=sys.stderr)
            return 130

    rate = report(opts, modules, runs, ref_name)
    print(f"wall time {time.monotonic() - started:.1f}s")
    if opts.json:
        data = {
            f"{label}:{module}": {
                "status": run.status,
                "note": run.note,
                "seconds": round(run.seconds, 2),
                "tests": {tid: vars(rec) for tid, rec in run.tests.items()},
            }
            for (label, module), run in runs.items()
        }
        Path(opts.json).write_text(json.dumps(data, indent=1))
    if rate is None:
        print("FAIL: no loop-behaviour test exercised the loop (is the policy injected?)")
        return 1
    verdict = "OK" if rate >= opts.min_pass else "FAIL"
    print(f"{verdict}: {rate:.1f}% (threshold {opts.min_pass:g}%)")
    return 0 if rate >= opts.min_pass else 1


if __name__ == "__main__":
    sys.exit(main())
