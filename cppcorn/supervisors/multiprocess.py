"""`--workers N`: the parent process that runs N worker processes, keeps them
healthy, and restarts, adds or removes them on signals.

Health. Every 0.5 s the parent pings each worker through a pipe; a thread in
the worker answers with the state of its server: starting, serving, or
stopping (its listeners closed). A worker that died or left a ping unanswered
for `timeout_worker_healthcheck` seconds (a C call holding the GIL, say) is
killed and replaced; one that could not start (exit status 3, or any error
exit before it served) stops the parent, with status 3, since its
replacements would fail the same way. A
worker that stops serving by itself (`--limit-max-requests`) is replaced at
once and left to finish its in-flight requests.

Sockets. By default every worker inherits the listening socket the parent
bound: connections wait in its one accept queue, so a worker that exits loses
none of them. With `--reuse-port` (an empty `sockets`), the parent binds one
SO_REUSEPORT listener per worker *slot* and the kernel spreads connections
across the slots; each worker, and every worker that later takes its place,
inherits its slot's listener. The parent keeps every listener open, so a
worker that dies, retires or is restarted never takes its accept queue with
it: on Linux, closing a SO_REUSEPORT listener drops the connections queued on
it unless `net.ipv4.tcp_migrate_req` is 1, which is not the default. Only
SIGTTOU closes a listener (the slot goes away), and may drop what is queued
on it at that moment.

Signals are recorded by the handler and acted on in the main loop:
SIGINT/SIGTERM stop every worker gracefully, SIGHUP replaces them one at a
time (the new one serving before the old one is told to stop), SIGTTIN adds
a worker and SIGTTOU removes one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Generator
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import Any

import click

from cppcorn._signals import handling_signals
from cppcorn._subprocess import get_subprocess
from cppcorn.config import STARTUP_FAILURE, Config
from cppcorn.server import Server

__all__ = ["Multiprocess"]

logger = logging.getLogger("uvicorn.error")

CHECK_INTERVAL = 0.5  # seconds between two health checks of a worker
READY_POLL_INTERVAL = 0.1  # while waiting for a new worker to serve

# The signals the parent handles, those this platform has (Windows has no
# HUP, TTIN or TTOU).
SIGNALS = {
    getattr(signal, f"SIG{name}"): name
    for name in ("INT", "TERM", "BREAK", "HUP", "QUIT", "TTIN", "TTOU", "USR1", "USR2", "WINCH")
    if hasattr(signal, f"SIG{name}")
}
STOP_SIGNALS = {"INT", "TERM", "BREAK"}

# A worker's answer to a health check.
STARTING = "starting"
SERVING = "serving"
STOPPING = "stopping"


def server_status(server: Server) -> str:
    """STARTING until the server listens, SERVING while it accepts
    connections, STOPPING once it has closed its listeners."""
    if not server.started:
        return STARTING
    if all(listener.is_serving() for listener in server.servers):
        return SERVING
    return STOPPING


class WorkerTarget:
    """What a worker process runs: its copy of the server, and beside it a
    thread answering the parent's health checks. Pickled to the worker."""

    def __init__(self, server: Server, conn: Connection) -> None:
        self.server = server
        self.conn = conn

    def __call__(self, sockets: list[socket.socket]) -> None:
        thread = threading.Thread(target=self.answer_health_checks, name="cppcorn-healthcheck", daemon=True)
        thread.start()
        self.server.run(sockets=sockets)

    def answer_health_checks(self) -> None:
        while True:
            try:
                self.conn.recv()
                self.conn.send(server_status(self.server))
            except (EOFError, OSError):
                # The parent is gone (killed): stop, rather than keep the port
                # busy with a worker nobody supervises.
                logger.warning("Parent process is gone; shutting down.")
                self.server.should_exit = True
                return


class Worker:
    """The parent's handle on one worker process and its health-check pipe."""

    def __init__(self, config: Config, server: Server, sockets: list[socket.socket]) -> None:
        self.conn, child_conn = Pipe()
        self.process = get_subprocess(config, WorkerTarget(server, child_conn), sockets)
        self.process.start()
        # The worker has its own copy now; with ours closed, the pipe breaks
        # as soon as the worker dies.
        child_conn.close()
        self.status = STARTING
        self.ping_sent_at: float | None = None

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def is_alive(self) -> bool:
        return self.process.is_alive()

    def ping(self) -> None:
        """Send a health check, unless the last one is still unanswered."""
        if self.ping_sent_at is not None:
            return
        try:
            self.conn.send(b"ping")
        except OSError:  # the worker died: is_alive() says so
            return
        self.ping_sent_at = time.monotonic()

    def read_answers(self) -> None:
        try:
            while self.conn.poll():
                self.status = self.conn.recv()
                self.ping_sent_at = None
        except (EOFError, OSError):  # the worker died: is_alive() says so
            pass

    def is_unresponsive(self, timeout: float) -> bool:
        return self.ping_sent_at is not None and time.monotonic() - self.ping_sent_at > timeout

    def terminate(self) -> None:
        """Ask the worker to shut down gracefully."""
        if self.process.exitcode is not None:
            return
        if sys.platform == "win32":
            # No SIGTERM on Windows; the worker's server handles SIGBREAK.
            os.kill(self.pid, signal.CTRL_BREAK_EVENT)
        else:
            self.process.terminate()
        logger.info("Terminated child process [%d]", self.pid)

    def kill(self) -> None:
        self.process.kill()

    def join(self) -> None:
        logger.info("Waiting for child process [%d]", self.pid)
        self.reap()

    def reap(self) -> None:
        self.process.join()
        self.conn.close()


class Multiprocess:
    """Run `target` (`server.run` of a Server not yet started) in
    `config.workers` processes. `sockets` are the listeners every worker
    shares; empty, each worker slot gets its own SO_REUSEPORT listener."""

    def __init__(self, config: Config, target: Callable[..., None], sockets: list[socket.socket]) -> None:
        # Each worker runs a copy of the server, whose state its health
        # checks report: the target must be a Server's method.
        server = getattr(target, "__self__", None)
        if not isinstance(server, Server):
            raise TypeError("Multiprocess needs the run method of a Server as its target")
        self.config = config
        self.server = server
        self.sockets = sockets
        self.reuse_port = not sockets
        self.listeners: list[socket.socket] = []  # with reuse_port: one per slot
        self.workers: list[Worker] = []  # the serving workers, by slot
        self.retiring: list[Worker] = []  # stopping gracefully; reaped once they exit
        self.pending_signals: list[int] = []
        self.wakeup: socket.socket | None = None
        self.should_exit = False
        self.exit_status = 0

    def run(self) -> None:
        try:
            with self.capture_signals():
                if self.reuse_port:
                    for _ in range(self.config.workers):
                        self.listeners.append(self.bind_reuse_port())
                _log_highlighted("Started parent process [{}]", os.getpid())
                self.workers = [self.spawn(slot) for slot in range(self.config.workers)]
                while not self.should_exit:
                    # A worker's exit cuts the wait short, as a signal does.
                    self.wait_for_events(CHECK_INTERVAL, [worker.process.sentinel for worker in self.workers])
                    self.handle_signals()
                    self.check_workers()
        finally:
            self.stop_workers()
            for listener in self.listeners:
                listener.close()
        _log_highlighted("Stopping parent process [{}]", os.getpid())
        if self.exit_status:
            sys.exit(self.exit_status)

    # ------------------------------------------------------------ workers

    def spawn(self, slot: int) -> Worker:
        sockets = [self.listeners[slot]] if self.reuse_port else self.sockets
        return Worker(self.config, self.server, sockets)

    def add_worker(self) -> None:
        if self.reuse_port:
            self.listeners.append(self.bind_reuse_port())
        self.workers.append(self.spawn(len(self.workers)))

    def retire(self, worker: Worker) -> None:
        """Stop a worker gracefully (it finishes its in-flight requests) and
        wait for it, as Uvicorn does, so that its shutdown lines come before
        the next step of a restart. The other workers are still checked
        meanwhile, and a stop signal ends the wait: the worker is then
        waited for with the others."""
        worker.terminate()
        logger.info("Waiting for child process [%d]", worker.pid)
        self.retiring.append(worker)
        while worker in self.retiring and not self.stop_requested():
            self.wait_for_events(CHECK_INTERVAL, [worker.process.sentinel])
            self.check_workers()

    def check_workers(self) -> None:
        for worker in [w for w in self.retiring if not w.is_alive()]:
            worker.reap()
            self.retiring.remove(worker)
        for slot, worker in enumerate(self.workers):
            if self.should_exit:
                return
            worker.read_answers()
            if not worker.is_alive() or worker.is_unresponsive(self.config.timeout_worker_healthcheck):
                self.replace_failed(slot, worker)
            elif worker.status == STOPPING:
                # It stopped accepting by itself (--limit-max-requests): its
                # replacement starts now rather than once it has finished.
                logger.info("Child process [%d] stopped serving; starting its replacement.", worker.pid)
                self.retiring.append(worker)
                self.workers[slot] = self.spawn(slot)
            else:
                worker.ping()

    def replace_failed(self, slot: int, worker: Worker) -> None:
        if worker.is_alive():
            logger.warning(
                "Child process [%d] did not answer the health check within %s s; killing it.",
                worker.pid,
                self.config.timeout_worker_healthcheck,
            )
        worker.kill()
        worker.join()
        exitcode = worker.process.exitcode
        # Status 3 is a startup failure: the application, TLS or socket setup
        # is broken. So is any error exit before serving (an exception while
        # importing the application exits with 1). Every replacement would
        # fail the same way.
        if exitcode == STARTUP_FAILURE or (exitcode is not None and exitcode > 0 and worker.status == STARTING):
            logger.error("Child process [%d] failed to start, stopping the parent process.", worker.pid)
            self.exit_status = STARTUP_FAILURE
            self.should_exit = True
            return
        logger.info("Child process [%d] died", worker.pid)
        self.workers[slot] = self.spawn(slot)

    def restart_all(self) -> None:
        """Replace the workers one at a time: each new worker must be serving
        before the one it replaces is told to stop."""
        for slot, old in enumerate(self.workers):
            if self.stop_requested():
                return
            new = self.spawn(slot)
            if not self.wait_until_serving(new):
                new.kill()
                new.join()
                if not self.stop_requested():
                    logger.error(
                        "New child process [%d] was not ready in time; keeping worker [%d] and aborting the restart.",
                        new.pid,
                        old.pid,
                    )
                return
            self.workers[slot] = new
            self.retire(old)

    def wait_until_serving(self, worker: Worker) -> bool:
        deadline = time.monotonic() + self.config.timeout_worker_healthcheck
        while not self.stop_requested():
            worker.read_answers()
            if worker.status == SERVING:
                return True
            if not worker.is_alive() or time.monotonic() > deadline:
                return False
            worker.ping()
            self.wait_for_events(READY_POLL_INTERVAL, [worker.process.sentinel])
        return False

    def stop_workers(self) -> None:
        everyone = self.workers + self.retiring
        for worker in everyone:
            worker.terminate()
        for worker in everyone:
            worker.join()
        self.workers, self.retiring = [], []

    def bind_reuse_port(self) -> socket.socket:
        """A listener for a new worker slot, on the same address as the
        others: port 0 is resolved by the first one."""
        port = self.listeners[0].getsockname()[1] if self.listeners else self.config.port
        sock = self.config.bind_tcp_socket(port, reuse_port=True, announce=not self.listeners)
        sock.set_inheritable(True)
        # Listening from now on: connections the kernel gives this slot
        # before its worker is up wait in the queue.
        sock.listen(self.config.backlog)
        return sock

    # ------------------------------------------------------------ signals

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Record signals for the main loop, which a byte on the wakeup
        socket wakes up at once."""
        self.wakeup, wakeup_writer = socket.socketpair()
        self.wakeup.setblocking(False)
        wakeup_writer.setblocking(False)
        previous_wakeup_fd = signal.set_wakeup_fd(wakeup_writer.fileno())
        try:
            with handling_signals(SIGNALS, self.record_signal):
                yield
        finally:
            signal.set_wakeup_fd(previous_wakeup_fd)
            self.wakeup.close()
            wakeup_writer.close()

    def record_signal(self, sig: int, frame: FrameType | None) -> None:
        self.pending_signals.append(sig)

    def stop_requested(self) -> bool:
        return self.should_exit or any(SIGNALS[sig] in STOP_SIGNALS for sig in self.pending_signals)

    def wait_for_events(self, timeout: float, sentinels: list[Any]) -> None:
        """Sleep up to `timeout` seconds; a signal or the exit of a process
        (`sentinels`) ends it."""
        assert self.wakeup is not None
        wait([self.wakeup, *sentinels], timeout)
        with contextlib.suppress(BlockingIOError):
            while self.wakeup.recv(4096):
                pass

    def handle_signals(self) -> None:
        while self.pending_signals and not self.should_exit:
            name = SIGNALS[self.pending_signals.pop(0)]
            handler = getattr(self, f"handle_{name.lower()}", None)
            if handler is None:
                logger.debug("Received signal SIG%s, but no handler is defined for it.", name)
            else:
                handler()

    def handle_int(self) -> None:
        logger.info("Received SIGINT, exiting.")
        self.should_exit = True

    def handle_term(self) -> None:
        logger.info("Received SIGTERM, exiting.")
        self.should_exit = True

    def handle_break(self) -> None:
        logger.info("Received SIGBREAK, exiting.")
        self.should_exit = True

    def handle_hup(self) -> None:
        logger.info("Received SIGHUP, restarting processes.")
        self.restart_all()

    def handle_ttin(self) -> None:
        logger.info("Received SIGTTIN, increasing the number of processes.")
        self.add_worker()

    def handle_ttou(self) -> None:
        logger.info("Received SIGTTOU, decreasing number of processes.")
        if len(self.workers) <= 1:
            logger.info("Already reached one process, cannot decrease the number of processes anymore.")
            return
        self.retire(self.workers.pop())
        if self.reuse_port:
            # The slot goes away: its listener closes once the worker, which
            # holds the last copy, has closed it.
            self.listeners.pop().close()


def _log_highlighted(template: str, *values: object) -> None:
    """An INFO line whose values (a PID) are in colour when the log format
    uses colours."""
    coloured = template.format(*(click.style(str(value), fg="cyan", bold=True) for value in values))
    logger.info(template.format(*values), extra={"color_message": coloured})
