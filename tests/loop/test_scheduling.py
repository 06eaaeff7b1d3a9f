"""Callback scheduling, the loop's clock, run/stop/close and debug mode."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import re
import sys
import threading
import time

import pytest

from tests.loop.conftest import TIMEOUT, WAIT, ErrorRecorder, fd_kinds

pytestmark = pytest.mark.timeout(30)

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="default")


def guard(loop: asyncio.AbstractEventLoop) -> asyncio.TimerHandle:
    """Stop a run_forever() that would otherwise never end."""
    return loop.call_later(TIMEOUT, loop.stop)


# ---------------------------------------------------------------- call_soon


def test_call_soon_runs_in_order_with_args(loop):
    calls = []
    loop.call_soon(calls.append, 1)
    loop.call_soon(lambda *args: calls.append(args), 2, "x", None)
    loop.call_soon(calls.append, 3)
    loop.call_soon(loop.stop)
    guard(loop)
    loop.run_forever()
    assert calls == [1, (2, "x", None), 3]


def test_call_soon_returns_cancellable_handle(loop):
    calls = []
    handle = loop.call_soon(calls.append, "cancelled")
    other = loop.call_soon(calls.append, "kept")
    assert not handle.cancelled()
    handle.cancel()
    assert handle.cancelled()
    handle.cancel()  # idempotent
    assert handle.cancelled()
    loop.call_soon(loop.stop)
    guard(loop)
    loop.run_forever()
    assert calls == ["kept"]
    assert not other.cancelled()


HANDLE_METHODS = ("cancel", "cancelled") + (("get_context",) if sys.version_info >= (3, 12) else ())


def test_handles_have_asyncio_handle_interface(loop):
    """call_soon() returns a handle, call_later()/call_at() a timer handle:
    asyncio's own classes on its loop; on cppcorn's, compiled classes with
    the same methods (not subclasses: a documented difference, as uvloop)."""
    handles = [loop.call_soon(lambda: None), loop.call_soon_threadsafe(lambda: None)]
    timers = [loop.call_later(1, lambda: None), loop.call_at(loop.time() + 1, lambda: None)]
    for handle in handles + timers:
        for method in HANDLE_METHODS:
            assert callable(getattr(handle, method))
    for timer in timers:
        assert timer.when() > loop.time()
        assert not hasattr(handles[0], "when")
    if type(loop).__module__.startswith("asyncio"):
        assert all(isinstance(handle, asyncio.Handle) for handle in handles + timers)
        assert all(isinstance(timer, asyncio.TimerHandle) for timer in timers)
        assert not any(isinstance(handle, asyncio.TimerHandle) for handle in handles)
    for handle in handles + timers:
        handle.cancel()
        assert handle.cancelled()


def test_call_soon_from_callback_runs_on_next_iteration(loop):
    calls = []

    def first():
        calls.append("first")
        loop.call_soon(calls.append, "nested")

    loop.call_soon(first)
    loop.call_soon(calls.append, "second")
    loop.call_soon(loop.call_soon, loop.stop)
    guard(loop)
    loop.run_forever()
    assert calls == ["first", "second", "nested"]


def test_many_callbacks(loop):
    calls = []
    for i in range(10_000):
        loop.call_soon(calls.append, i)
    loop.call_soon(loop.stop)
    guard(loop)
    loop.run_forever()
    assert calls == list(range(10_000))


def test_callback_context_argument(loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")
    seen = []

    def callback():
        seen.append(var.get())
        var.set("changed by callback")

    loop.call_soon(callback, context=ctx)
    loop.call_later(0.001, callback, context=ctx)
    loop.call_at(loop.time() + 0.002, callback, context=ctx)
    loop.call_soon_threadsafe(callback, context=ctx)
    loop.run_until_complete(asyncio.sleep(0.05))
    assert seen == ["in ctx", "changed by callback", "changed by callback", "changed by callback"]
    assert ctx[var] == "changed by callback"
    assert var.get() == "default"


def test_callback_runs_in_a_copy_of_the_current_context(loop):
    seen = []

    def callback():
        seen.append(var.get())
        var.set("leaked?")

    token = var.set("caller")
    try:
        loop.call_soon(callback)
        loop.call_later(0.001, callback)
        loop.call_soon_threadsafe(callback)
    finally:
        var.reset(token)
    loop.run_until_complete(asyncio.sleep(0.02))
    assert seen == ["caller", "caller", "caller"]
    assert var.get() == "default"


def test_handle_get_context(loop):
    if sys.version_info < (3, 12):
        pytest.skip("Handle.get_context() is new in Python 3.12")
    ctx = contextvars.copy_context()
    assert loop.call_soon(lambda: None, context=ctx).get_context() is ctx
    assert loop.call_later(1, lambda: None, context=ctx).get_context() is ctx


# ---------------------------------------------------------------- timers


def test_call_later_order(loop):
    calls = []
    loop.call_later(0.03, calls.append, "c")
    loop.call_later(0.01, calls.append, "a")
    loop.call_later(0.02, calls.append, "b")
    loop.call_later(0.04, loop.stop)
    guard(loop)
    loop.run_forever()
    assert calls == ["a", "b", "c"]


def test_timers_fire_in_deadline_order(loop):
    import random

    rng = random.Random(1234)
    delays = [i * 0.001 for i in range(60)]
    rng.shuffle(delays)
    calls = []
    for delay in delays:
        loop.call_later(delay, calls.append, delay)
    loop.call_later(0.1, loop.stop)
    guard(loop)
    loop.run_forever()
    assert calls == sorted(delays)


def test_call_later_when(loop):
    before = loop.time()
    handle = loop.call_later(0.5, lambda: None)
    after = loop.time()
    assert before + 0.5 <= handle.when() <= after + 0.5
    handle.cancel()


def test_call_at_when_is_exact_and_not_early(loop):
    fired = []
    when = loop.time() + 0.05
    handle = loop.call_at(when, lambda: fired.append(loop.time()))
    assert handle.when() == when
    loop.run_until_complete(asyncio.sleep(0.1))
    assert len(fired) == 1
    assert fired[0] >= when - 0.001


def test_call_later_zero_and_negative_delay(loop):
    calls = []
    loop.call_later(0, calls.append, "zero")
    loop.call_later(-5, calls.append, "negative")
    loop.call_at(loop.time() - 100, calls.append, "past")
    loop.run_until_complete(asyncio.sleep(0.01))
    assert sorted(calls) == ["negative", "past", "zero"]
    # the earliest deadline first
    assert calls[0] == "past"


def test_timer_cancel(loop):
    calls = []
    handle = loop.call_later(0.01, calls.append, "cancelled")
    loop.call_later(0.01, calls.append, "kept")
    assert not handle.cancelled()
    handle.cancel()
    assert handle.cancelled()
    loop.run_until_complete(asyncio.sleep(0.05))
    assert calls == ["kept"]


def test_timer_cancelled_by_earlier_callback_in_same_iteration(loop):
    calls = []
    late = loop.call_later(0.02, calls.append, "late")
    loop.call_later(0.01, late.cancel)
    time.sleep(0.03)  # both due by the time the loop runs
    loop.run_until_complete(asyncio.sleep(0.05))
    assert calls == []


def test_timer_cancel_after_it_ran(loop):
    calls = []
    handle = loop.call_later(0, calls.append, "ran")
    loop.run_until_complete(asyncio.sleep(0.01))
    handle.cancel()
    assert calls == ["ran"]


def test_many_cancelled_timers_do_not_delay_the_loop(loop):
    handles = [loop.call_later(3600 + i, lambda: None) for i in range(5_000)]
    for handle in handles:
        handle.cancel()
    start = time.monotonic()
    loop.run_until_complete(asyncio.sleep(0.01))
    assert time.monotonic() - start < 2


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the None checks are new in Python 3.11")
def test_call_later_call_at_reject_none(loop):
    with pytest.raises(TypeError, match="^delay must not be None$"):
        loop.call_later(None, lambda: None)
    with pytest.raises(TypeError, match="^when cannot be None$"):
        loop.call_at(None, lambda: None)


def test_time_is_monotonic_and_tracks_sleeps(loop):
    t0 = loop.time()
    m0 = time.monotonic()
    assert isinstance(t0, float)
    values = [loop.time() for _ in range(1000)]
    assert values == sorted(values)
    loop.run_until_complete(asyncio.sleep(0.1))
    t1 = loop.time()
    m1 = time.monotonic()
    assert 0.09 <= t1 - t0 <= (m1 - m0) + 0.01
    assert m1 - m0 >= 0.099  # sleep() did not return early


def test_sleep_durations(loop):
    async def main():
        start = time.monotonic()
        await asyncio.sleep(0.05)
        mid = time.monotonic()
        await asyncio.sleep(0)
        await asyncio.sleep(0.15)
        end = time.monotonic()
        return mid - start, end - mid

    first, second = loop.run_until_complete(main())
    assert 0.049 <= first < 1.0
    assert 0.149 <= second < 1.0


def test_short_sleeps_are_not_stretched(loop):
    async def main():
        start = time.monotonic()
        for _ in range(100):
            await asyncio.sleep(0.001)
        return time.monotonic() - start

    elapsed = loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT))
    assert 0.1 <= elapsed < 2


def test_loop_sleeps_instead_of_spinning(loop):
    cpu_before = time.process_time()
    loop.run_until_complete(asyncio.sleep(0.3))
    assert time.process_time() - cpu_before < 0.2


# ---------------------------------------------------------------- threads


def test_call_soon_threadsafe_wakes_a_blocked_loop(loop):
    calls = []

    def from_thread():
        time.sleep(0.1)
        loop.call_soon_threadsafe(calls.append, "woken")
        loop.call_soon_threadsafe(loop.stop)

    guard(loop)
    thread = threading.Thread(target=from_thread)
    start = time.monotonic()
    thread.start()
    loop.run_forever()
    elapsed = time.monotonic() - start
    thread.join(WAIT)
    assert calls == ["woken"]
    assert elapsed < 2


def test_call_soon_threadsafe_from_many_threads(loop):
    per_thread = 500
    calls: list[tuple[int, int]] = []

    def producer(n):
        for i in range(per_thread):
            loop.call_soon_threadsafe(calls.append, (n, i))

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()

    async def main():
        while len(calls) < 4 * per_thread:
            await asyncio.sleep(0.01)

    loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT))
    for thread in threads:
        thread.join(WAIT)
    assert len(calls) == 4 * per_thread
    for n in range(4):
        assert [i for (m, i) in calls if m == n] == list(range(per_thread))


def test_call_soon_threadsafe_handle_can_be_cancelled(loop):
    calls = []
    handle = loop.call_soon_threadsafe(calls.append, "x")
    handle.cancel()
    loop.run_until_complete(asyncio.sleep(0.01))
    assert calls == []


def test_run_coroutine_threadsafe(loop):
    async def work(x):
        await asyncio.sleep(0.01)
        return x * 2

    results = []

    def from_thread():
        future = asyncio.run_coroutine_threadsafe(work(21), loop)
        results.append(future.result(WAIT))

    async def main():
        thread = threading.Thread(target=from_thread)
        thread.start()
        await loop.run_in_executor(None, thread.join, WAIT)

    loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT))
    assert results == [42]


# ---------------------------------------------------------------- run / stop


def test_stop_before_run_forever_runs_one_iteration(loop):
    calls = []
    loop.stop()
    loop.call_soon(calls.append, "ran")
    loop.run_forever()
    assert calls == ["ran"]
    assert not loop.is_running()


def test_stop_finishes_the_current_iteration_only(loop):
    calls = []

    def first():
        calls.append("first")
        loop.stop()
        loop.call_soon(calls.append, "next iteration")

    loop.call_soon(first)
    loop.call_soon(calls.append, "same iteration")
    guard(loop)
    loop.run_forever()
    assert calls == ["first", "same iteration"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == ["first", "same iteration", "next iteration"]


def test_run_forever_can_be_restarted(loop):
    calls = []
    for i in range(3):
        loop.call_later(0.005, calls.append, i)
        loop.call_later(0.01, loop.stop)
        loop.run_forever()
    assert calls == [0, 1, 2]


def test_stop_from_timer(loop):
    loop.call_later(0.02, loop.stop)
    start = time.monotonic()
    loop.run_forever()
    assert 0.015 <= time.monotonic() - start < 2


def test_run_until_complete_returns_result_or_raises(loop):
    async def ok():
        await asyncio.sleep(0)
        return "result"

    async def fail():
        await asyncio.sleep(0)
        raise ValueError("boom")

    assert loop.run_until_complete(ok()) == "result"
    with pytest.raises(ValueError, match="boom"):
        loop.run_until_complete(fail())
    future = loop.create_future()
    loop.call_soon(future.set_result, 7)
    assert loop.run_until_complete(future) == 7


def test_run_until_complete_accepts_awaitables(loop):
    class Awaitable:
        def __await__(self):
            yield from asyncio.sleep(0).__await__()
            return "awaited"

    assert loop.run_until_complete(Awaitable()) == "awaited"


def test_run_until_complete_rejects_non_futures(loop):
    with pytest.raises(TypeError, match="^An asyncio.Future, a coroutine or an awaitable is required$"):
        loop.run_until_complete(42)
    assert not loop.is_running()


def test_run_until_complete_future_of_another_loop(loop, loop_factory):
    other = loop_factory()
    future = other.create_future()
    with pytest.raises(
        ValueError, match="^The future belongs to a different loop than the one specified as the loop argument$"
    ):
        loop.run_until_complete(future)
    other.close()


def test_run_until_complete_stopped_early(loop):
    future = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match="^Event loop stopped before Future completed.$"):
        loop.run_until_complete(future)
    assert not future.done()


def test_is_running_and_is_closed(loop):
    seen = []
    assert not loop.is_running()
    assert not loop.is_closed()
    loop.call_soon(lambda: seen.append(loop.is_running()))
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == [True]
    assert not loop.is_running()
    loop.close()
    assert loop.is_closed()
    assert not loop.is_running()


def test_running_loop_is_visible_to_asyncio(loop):
    seen = []

    def callback():
        seen.append(asyncio.get_running_loop())
        seen.append(asyncio.get_event_loop())

    async def main():
        callback()
        loop.call_soon(callback)
        await asyncio.sleep(0)

    assert asyncio._get_running_loop() is None
    loop.run_until_complete(main())
    assert seen == [loop] * 4
    assert asyncio._get_running_loop() is None


def test_close_while_running(loop):
    async def main():
        with pytest.raises(RuntimeError, match="^Cannot close a running event loop$"):
            loop.close()

    loop.run_until_complete(main())
    assert not loop.is_closed()


def test_close_is_idempotent(loop):
    loop.close()
    loop.close()
    assert loop.is_closed()


def test_closed_loop_raises(loop):
    loop.close()
    message = "^Event loop is closed$"

    with pytest.raises(RuntimeError, match=message):
        loop.call_soon(lambda: None)
    with pytest.raises(RuntimeError, match=message):
        loop.call_later(1, lambda: None)
    with pytest.raises(RuntimeError, match=message):
        loop.call_at(loop.time() + 1, lambda: None)
    with pytest.raises(RuntimeError, match=message):
        loop.call_soon_threadsafe(lambda: None)
    with pytest.raises(RuntimeError, match=message):
        loop.run_forever()
    with pytest.raises(RuntimeError, match=message):
        loop.run_in_executor(None, lambda: None)

    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match=message):
        loop.run_until_complete(coro)
    coro.close()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match=message):
        loop.create_task(coro)
    coro.close()


def test_closed_loop_fd_callbacks(loop):
    import socket

    a, b = socket.socketpair()
    try:
        loop.close()
        with pytest.raises(RuntimeError, match="^Event loop is closed$"):
            loop.add_reader(a.fileno(), lambda: None)
        with pytest.raises(RuntimeError, match="^Event loop is closed$"):
            loop.add_writer(a.fileno(), lambda: None)
        # asyncio: removing from a closed loop is not an error, it removed nothing
        assert loop.remove_reader(a.fileno()) is False
        assert loop.remove_writer(a.fileno()) is False
    finally:
        a.close()
        b.close()


# A failed nested run_forever() is always the last thing these tests do inside the
# outer loop: on CPython 3.12/3.13 (python/cpython#130145) its cleanup also runs
# when the check fails, and resets the *outer* loop's running state.


def test_nested_run_until_complete_raises(loop):
    async def main():
        future = loop.create_future()
        with pytest.raises(RuntimeError, match="^This event loop is already running$"):
            loop.run_until_complete(future)
        # the failed call left the running loop alone
        assert loop.is_running()
        assert asyncio.get_running_loop() is loop
        await asyncio.sleep(0)
        return "still fine"

    assert loop.run_until_complete(main()) == "still fine"
    assert not loop.is_running()


def test_nested_run_forever_raises(loop):
    async def main():
        with pytest.raises(RuntimeError, match="^This event loop is already running$"):
            loop.run_forever()

    loop.run_until_complete(main())
    assert not loop.is_running()
    assert loop.run_until_complete(asyncio.sleep(0, "usable")) == "usable"


@pytest.mark.parametrize("inner_kind", ["same implementation", "stdlib loop"])
def test_running_a_second_loop_inside_raises(loop, loop_factory, inner_kind):
    inner = loop_factory() if inner_kind == "same implementation" else asyncio.SelectorEventLoop()
    message = "^Cannot run the event loop while another loop is running$"

    async def check_run_until_complete():
        with pytest.raises(RuntimeError, match=message):
            inner.run_until_complete(inner.create_future())
        assert asyncio.get_running_loop() is loop

    async def check_run_forever():
        with pytest.raises(RuntimeError, match=message):
            inner.run_forever()

    try:
        loop.run_until_complete(check_run_until_complete())
        loop.run_until_complete(check_run_forever())
        # both still usable afterwards
        assert inner.run_until_complete(asyncio.sleep(0, "inner")) == "inner"
        assert loop.run_until_complete(asyncio.sleep(0, "loop")) == "loop"
    finally:
        inner.close()


def test_loops_in_threads_are_independent(loop, loop_factory):
    results = []

    def in_thread():
        inner = loop_factory()
        try:
            results.append(inner.run_until_complete(asyncio.sleep(0.02, "thread")))
        finally:
            inner.close()

    async def main():
        thread = threading.Thread(target=in_thread)
        thread.start()
        await asyncio.sleep(0.05)
        await loop.run_in_executor(None, thread.join, WAIT)
        return "main"

    assert loop.run_until_complete(main()) == "main"
    assert results == ["thread"]


# ---------------------------------------------------------------- exceptions in callbacks


def test_callback_exception_goes_to_handler(loop, errors: ErrorRecorder):
    exc = ZeroDivisionError("in callback")
    calls = []

    def bad():
        raise exc

    handle = loop.call_soon(bad)
    loop.call_soon(calls.append, "loop kept running")
    timer = loop.call_later(0.001, bad)
    loop.run_until_complete(asyncio.sleep(0.02))
    assert calls == ["loop kept running"]
    assert len(errors.contexts) == 2
    first, second = errors.contexts
    assert first["message"].startswith("Exception in callback ")
    assert first["exception"] is exc
    assert first["handle"] is handle
    assert second["message"].startswith("Exception in callback ")
    assert second["handle"] is timer


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exceptions_in_callbacks_propagate(loop, exc_type):
    def bad():
        raise exc_type()

    loop.call_soon(bad)
    guard(loop)
    with pytest.raises(exc_type):
        loop.run_forever()
    assert not loop.is_running()
    assert asyncio._get_running_loop() is None
    assert loop.run_until_complete(asyncio.sleep(0, "usable")) == "usable"


def test_keyboard_interrupt_in_task_propagates(loop):
    async def main():
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(main())
    assert not loop.is_running()


# ---------------------------------------------------------------- debug mode


def test_debug_default_follows_environment(loop_factory, monkeypatch):
    monkeypatch.delenv("PYTHONASYNCIODEBUG", raising=False)
    loop = loop_factory()
    assert loop.get_debug() is bool(sys.flags.dev_mode)
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    if not sys.flags.ignore_environment:
        assert loop_factory().get_debug() is True


def test_set_debug(loop):
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


def test_slow_callback_duration_default(loop):
    assert loop.slow_callback_duration == 0.1
    loop.slow_callback_duration = 0.25
    assert loop.slow_callback_duration == 0.25


def test_slow_callback_warning_in_debug_mode(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.05
    caplog.set_level(logging.WARNING, logger="asyncio")
    loop.call_soon(time.sleep, 0.1)
    loop.call_soon(lambda: None)  # fast: not reported
    loop.run_until_complete(asyncio.sleep(0.01))
    slow = [r for r in caplog.records if r.name == "asyncio" and r.levelno == logging.WARNING]
    assert len(slow) == 1, [r.getMessage() for r in slow]
    assert re.fullmatch(r"Executing .+ took \d+\.\d{3} seconds", slow[0].getMessage()), slow[0].getMessage()
    assert "sleep" in slow[0].getMessage()


def test_no_slow_callback_warning_without_debug(loop, caplog):
    loop.set_debug(False)
    loop.slow_callback_duration = 0.01
    caplog.set_level(logging.WARNING, logger="asyncio")
    loop.call_soon(time.sleep, 0.05)
    loop.run_until_complete(asyncio.sleep(0.01))
    assert [r for r in caplog.records if r.name == "asyncio"] == []


def test_debug_mode_rejects_calls_from_other_threads(loop):
    loop.set_debug(True)
    caught = []

    def from_thread():
        for method in (loop.call_soon, lambda cb: loop.call_later(0, cb), lambda cb: loop.call_at(0, cb)):
            try:
                method(lambda: None)
            except RuntimeError as exc:
                caught.append(str(exc))

    async def main():
        thread = threading.Thread(target=from_thread)
        thread.start()
        await loop.run_in_executor(None, thread.join, WAIT)

    loop.run_until_complete(main())
    assert caught == ["Non-thread-safe operation invoked on an event loop other than the current one"] * 3


def test_debug_mode_checks_callbacks(loop):
    loop.set_debug(True)

    async def coro_func():
        pass

    with pytest.raises(TypeError, match=r"^coroutines cannot be used with call_soon\(\)$"):
        loop.call_soon(coro_func)
    with pytest.raises(TypeError, match=r"^coroutines cannot be used with call_(later|at)\(\)$"):
        loop.call_later(1, coro_func)
    with pytest.raises(TypeError, match=r"^a callable object was expected by call_soon\(\), got 1$"):
        loop.call_soon(1)
    with pytest.raises(TypeError, match=r"^a callable object was expected by call_soon_threadsafe\(\), got 1$"):
        loop.call_soon_threadsafe(1)


def test_run_in_executor_rejects_coroutine_functions_in_debug(loop):
    loop.set_debug(True)

    async def coro_func():
        pass

    with pytest.raises(TypeError, match=r"^coroutines cannot be used with run_in_executor\(\)$"):
        loop.run_in_executor(None, coro_func)


# ---------------------------------------------------------------- backend selection


def test_backend_selection(loop_impl, loop_factory):
    """CPPCORN_LOOP_BACKEND=poll gives a loop without an epoll descriptor."""

    def epoll_count() -> int:
        return sum(1 for kind in fd_kinds() if "eventpoll" in kind)

    before = epoll_count()
    new_loop = loop_factory()
    new_loop.run_until_complete(asyncio.sleep(0))
    during = epoll_count()
    new_loop.close()
    after = epoll_count()
    assert during - before == (1 if loop_impl.uses_epoll else 0)
    assert after == before
    if not loop_impl.is_reference:
        assert isinstance(new_loop, loop_impl.loop_class)
    assert os.environ.get("CPPCORN_LOOP_BACKEND") == loop_impl.env.get("CPPCORN_LOOP_BACKEND")
