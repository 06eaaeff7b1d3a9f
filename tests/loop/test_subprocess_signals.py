"""Subprocesses (high-level asyncio API and loop.subprocess_exec/_shell with a
SubprocessProtocol) and Unix signal handlers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time

import pytest

from tests.loop.conftest import WAIT, wait_until

pytestmark = pytest.mark.timeout(30)

PY = sys.executable
UPPER = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read().upper())"


# ---------------------------------------------------------------- high-level API


def test_subprocess_exec_communicate(loop, run):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", UPPER, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert proc.pid > 0
        out, err = await proc.communicate(b"hello subprocess")
        return out, err, proc.returncode

    assert run(main()) == (b"HELLO SUBPROCESS", None, 0)


def test_subprocess_large_output(loop, run):
    code = "import sys; sys.stdout.buffer.write(b'x' * (4 * 1024 * 1024)); sys.stderr.buffer.write(b'err')"

    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        return len(out), err, proc.returncode

    assert run(main()) == (4 * 1024 * 1024, b"err", 0)


def test_subprocess_exit_code_and_stderr_to_stdout(loop, run):
    code = "import sys; print('out'); print('err', file=sys.stderr, flush=True); sys.exit(7)"

    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out = await proc.stdout.read()
        return sorted(out.split()), await proc.wait()

    assert run(main()) == ([b"err", b"out"], 7)


def test_subprocess_shell(loop, run):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "echo from shell; echo $CPPCORN_TEST_VAR; exit 3",
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "CPPCORN_TEST_VAR": "env passed"},
        )
        out, _ = await proc.communicate()
        return out, proc.returncode

    assert run(main()) == (b"from shell\nenv passed\n", 3)


def test_subprocess_cwd_and_devnull(loop, run, tmp_path):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY,
            "-c",
            "import os, sys; print(os.getcwd()); print(repr(sys.stdin.read()))",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            cwd=tmp_path,
        )
        out, _ = await proc.communicate()
        return out.decode().split("\n")[:2]

    cwd, stdin = run(main())
    assert os.path.samefile(cwd, tmp_path)
    assert stdin == "''"


@pytest.mark.parametrize(
    ("method", "signum"), [("kill", signal.SIGKILL), ("terminate", signal.SIGTERM), ("send_signal", signal.SIGUSR1)]
)
def test_subprocess_kill_terminate_send_signal(loop, run, method, signum):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys, time; print('ready', flush=True); time.sleep(30)", stdout=asyncio.subprocess.PIPE
        )
        assert await proc.stdout.readline() == b"ready\n"
        if method == "send_signal":
            proc.send_signal(signum)
        else:
            getattr(proc, method)()
        return await proc.wait()

    assert run(main()) == -signum


def test_many_concurrent_subprocesses(loop, run):
    async def one(i):
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", f"import sys; sys.exit({i})", stdout=asyncio.subprocess.DEVNULL
        )
        return await proc.wait()

    async def main():
        return await asyncio.gather(*(one(i) for i in range(10)))

    assert run(main()) == list(range(10))


def test_subprocess_wait_without_pipes_after_exit(loop, run):
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass")
        await asyncio.sleep(0.3)  # it has exited (and was reaped) before wait()
        assert await proc.wait() == 0
        assert await proc.wait() == 0

    run(main())


def test_subprocess_in_a_thread_loop(loop_factory):
    """A loop running in a thread other than the main one can spawn and wait for children."""
    results = []

    def in_thread():
        inner = loop_factory()
        try:

            async def main():
                proc = await asyncio.create_subprocess_exec(
                    PY, "-c", "print('from thread')", stdout=asyncio.subprocess.PIPE
                )
                out, _ = await proc.communicate()
                return out, proc.returncode

            results.append(inner.run_until_complete(asyncio.wait_for(main(), WAIT)))
        except BaseException as exc:  # reported by the test
            results.append(exc)
        finally:
            inner.close()

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(WAIT * 2)
    assert results == [(b"from thread\n", 0)]


# ---------------------------------------------------------------- loop.subprocess_exec with a protocol


class SubprocessRecorder(asyncio.SubprocessProtocol):
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.events: list[object] = []
        self.output: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.exited = self.loop.create_future()
        self.lost = self.loop.create_future()

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport

    def pipe_data_received(self, fd, data):
        self.output[fd] += data

    def pipe_connection_lost(self, fd, exc):
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self):
        self.events.append("exited")
        self.exited.set_result(self.transport.get_returncode())

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(exc)


def test_subprocess_exec_protocol(loop, run):
    code = "import sys; data = sys.stdin.read(); sys.stdout.write(data[::-1]); sys.stderr.write('e'); sys.exit(5)"

    async def main():
        transport, proto = await loop.subprocess_exec(SubprocessRecorder, PY, "-c", code)
        assert isinstance(transport, asyncio.SubprocessTransport)
        assert transport.get_pid() > 0
        assert transport.get_returncode() is None
        stdin = transport.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        assert isinstance(transport.get_pipe_transport(1), asyncio.ReadTransport)
        stdin.write(b"abc")
        stdin.close()
        assert await asyncio.wait_for(proto.exited, WAIT) == 5
        assert await asyncio.wait_for(proto.lost, WAIT) is None
        assert transport.get_returncode() == 5
        assert bytes(proto.output[1]) == b"cba"
        assert bytes(proto.output[2]) == b"e"
        assert proto.events[0] == "made"
        # connection_lost() comes last: after the exit and after every pipe closed
        assert proto.events[-1] == ("lost", None)
        assert sorted(e[1] for e in proto.events if isinstance(e, tuple) and e[0] == "pipe_lost") == [0, 1, 2]
        assert "exited" in proto.events
        transport.close()

    run(main())


def test_subprocess_transport_kill_and_close(loop, run):
    async def main():
        transport, proto = await loop.subprocess_exec(
            SubprocessRecorder, PY, "-c", "import time; time.sleep(30)", stdin=None, stdout=None, stderr=None
        )
        assert transport.get_pipe_transport(0) is None
        transport.kill()
        assert await asyncio.wait_for(proto.exited, WAIT) == -signal.SIGKILL
        await asyncio.wait_for(proto.lost, WAIT)
        transport.close()
        transport.close()

    run(main())


def test_subprocess_shell_protocol(loop, run):
    async def main():
        transport, proto = await loop.subprocess_shell(SubprocessRecorder, "printf shell; exit 4")
        assert await asyncio.wait_for(proto.lost, WAIT) is None
        assert transport.get_returncode() == 4
        assert bytes(proto.output[1]) == b"shell"
        transport.close()

    run(main())


def test_subprocess_argument_errors(loop, run):
    async def main():
        with pytest.raises(ValueError, match="^shell must be False$"):
            await loop.subprocess_exec(SubprocessRecorder, PY, shell=True)
        with pytest.raises(ValueError, match="^universal_newlines must be False$"):
            await loop.subprocess_exec(SubprocessRecorder, PY, universal_newlines=True)
        with pytest.raises(ValueError, match="^bufsize must be 0$"):
            await loop.subprocess_exec(SubprocessRecorder, PY, bufsize=1)
        with pytest.raises(ValueError, match="^text must be False$"):
            await loop.subprocess_exec(SubprocessRecorder, PY, text=True)
        with pytest.raises(ValueError, match="^encoding must be None$"):
            await loop.subprocess_exec(SubprocessRecorder, PY, encoding="utf-8")
        with pytest.raises(ValueError, match="^cmd must be a string$"):
            await loop.subprocess_shell(SubprocessRecorder, ["ls"])
        with pytest.raises(ValueError, match="^shell must be True$"):
            await loop.subprocess_shell(SubprocessRecorder, "ls", shell=False)

    run(main())


def test_subprocess_missing_executable(loop, run, tmp_path):
    with pytest.raises(FileNotFoundError):
        run(loop.subprocess_exec(SubprocessRecorder, str(tmp_path / "no-such-program")))


# ---------------------------------------------------------------- signals


@pytest.fixture
def restore_signals():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_add_signal_handler(loop, run, restore_signals):
    calls = []

    def handler(*args):
        calls.append((args, asyncio.get_running_loop() is loop))

    loop.add_signal_handler(signal.SIGUSR1, handler, "arg1", 2)

    async def main():
        os.kill(os.getpid(), signal.SIGUSR1)
        await wait_until(lambda: calls)
        os.kill(os.getpid(), signal.SIGUSR1)
        await wait_until(lambda: len(calls) == 2)

    run(main())
    assert calls == [(("arg1", 2), True)] * 2
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_wakes_a_blocked_loop(loop, restore_signals):
    calls = []

    def handler():
        calls.append(time.monotonic())
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR2, handler)
    guard = loop.call_later(WAIT * 2, loop.stop)
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR2)).start()
    start = time.monotonic()
    loop.run_forever()
    guard.cancel()
    assert len(calls) == 1
    assert calls[0] - start < 2
    loop.remove_signal_handler(signal.SIGUSR2)


def test_two_signals(loop, run, restore_signals):
    calls = []
    loop.add_signal_handler(signal.SIGUSR1, calls.append, "usr1")
    loop.add_signal_handler(signal.SIGUSR2, calls.append, "usr2")

    async def main():
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)
        await wait_until(lambda: len(calls) == 2)

    run(main())
    assert sorted(calls) == ["usr1", "usr2"]
    loop.remove_signal_handler(signal.SIGUSR1)
    loop.remove_signal_handler(signal.SIGUSR2)


def test_add_signal_handler_replaces(loop, run, restore_signals):
    calls = []
    loop.add_signal_handler(signal.SIGUSR1, calls.append, "old")
    loop.add_signal_handler(signal.SIGUSR1, calls.append, "new")

    async def main():
        os.kill(os.getpid(), signal.SIGUSR1)
        await wait_until(lambda: calls)
        await asyncio.sleep(0.02)

    run(main())
    assert calls == ["new"]
    loop.remove_signal_handler(signal.SIGUSR1)


def test_remove_sigint_handler_restores_default_int_handler(loop, restore_signals):
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert loop.remove_signal_handler(signal.SIGINT) is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_close_removes_signal_handlers(loop_factory, restore_signals):
    loop = loop_factory()
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_handler_errors(loop, restore_signals):
    async def coro_func():
        pass

    with pytest.raises(TypeError, match=r"^coroutines cannot be used with add_signal_handler\(\)$"):
        loop.add_signal_handler(signal.SIGUSR1, coro_func)
    with pytest.raises(TypeError, match="^sig must be an int, not 'x'$"):
        loop.add_signal_handler("x", lambda: None)
    with pytest.raises(ValueError, match="^invalid signal number 4096$"):
        loop.add_signal_handler(4096, lambda: None)
    with pytest.raises(ValueError, match="^invalid signal number 4096$"):
        loop.remove_signal_handler(4096)
    with pytest.raises(RuntimeError, match=f"^sig {int(signal.SIGKILL)} cannot be caught$"):
        loop.add_signal_handler(signal.SIGKILL, lambda: None)
    with pytest.raises(RuntimeError, match=f"^sig {int(signal.SIGSTOP)} cannot be caught$"):
        loop.add_signal_handler(signal.SIGSTOP, lambda: None)
    assert loop.remove_signal_handler(signal.SIGUSR2) is False


def test_add_signal_handler_on_closed_loop(loop, restore_signals):
    loop.close()
    with pytest.raises(RuntimeError, match="^Event loop is closed$"):
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)


def test_add_signal_handler_outside_the_main_thread(loop_factory, restore_signals):
    """asyncio turns set_wakeup_fd()'s ValueError into a RuntimeError."""
    caught = []

    def in_thread():
        inner = loop_factory()
        try:
            inner.add_signal_handler(signal.SIGUSR1, lambda: None)
        except BaseException as exc:  # reported by the test
            caught.append(exc)
        finally:
            inner.close()

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(WAIT)
    assert len(caught) == 1
    assert type(caught[0]) is RuntimeError
    assert "main thread" in str(caught[0])
    assert signal.getsignal(signal.SIGUSR1) != signal.SIG_IGN


def test_keyboard_interrupt_while_blocked(loop, run, restore_signals):
    """SIGINT with Python's default handler interrupts a loop blocked in its poller."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run(asyncio.sleep(WAIT))
    assert time.monotonic() - start < 2
    assert not loop.is_running()
    assert run(asyncio.sleep(0, "usable")) == "usable"


def test_python_signal_handler_runs_while_blocked(loop, run, restore_signals):
    """A plain signal.signal() handler runs promptly while the loop waits for I/O."""
    future = loop.create_future()

    def handler(signum, frame):
        loop.call_soon_threadsafe(future.set_result, signum)

    signal.signal(signal.SIGUSR1, handler)
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1)).start()
    start = time.monotonic()
    assert run(future) == signal.SIGUSR1
    assert time.monotonic() - start < 2
