"""Futures and tasks, the exception handler API, async generators, executors,
and the ways to run a loop: asyncio.run/Runner with loop_factory,
cppcorn.loop.run() and EventLoopPolicy."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import re
import sys
import threading
import warnings

import pytest

from tests.loop.conftest import WAIT, ErrorRecorder, collect

pytestmark = pytest.mark.timeout(30)

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="default")


# ---------------------------------------------------------------- futures


def test_create_future(loop, run):
    future = loop.create_future()
    assert asyncio.isfuture(future)
    assert future.get_loop() is loop
    assert not future.done()
    loop.call_later(0.01, future.set_result, "value")
    assert run(future) == "value"


def test_future_callbacks_are_scheduled_not_called(loop, run):
    future = loop.create_future()
    calls = []
    future.add_done_callback(lambda f: calls.append(f.result()))
    future.set_result(1)
    assert calls == []
    run(asyncio.sleep(0))
    assert calls == [1]


def test_future_exception_and_cancel(loop, run):
    failed = loop.create_future()
    failed.set_exception(OSError("nope"))
    with pytest.raises(OSError, match="nope"):
        run(failed)
    cancelled = loop.create_future()
    assert cancelled.cancel()
    assert cancelled.cancelled()
    with pytest.raises(asyncio.CancelledError):
        run(cancelled)


def test_wrap_concurrent_future(loop, run):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        wrapped = asyncio.wrap_future(pool.submit(lambda: "from pool"), loop=loop)
        assert run(wrapped) == "from pool"


# ---------------------------------------------------------------- tasks


def test_create_task(loop, run):
    async def coro(x):
        await asyncio.sleep(0)
        return x + 1

    task = loop.create_task(coro(1))
    assert isinstance(task, asyncio.Task)
    assert task.get_loop() is loop
    assert run(task) == 2
    assert task.done()


def test_create_task_name(loop, run):
    named = loop.create_task(asyncio.sleep(0), name="my-task")
    unnamed = loop.create_task(asyncio.sleep(0))
    assert named.get_name() == "my-task"
    assert unnamed.get_name().startswith("Task-")
    run(asyncio.gather(named, unnamed))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="create_task(context=) is new in Python 3.11")
def test_create_task_context(loop, run):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "from ctx")

    async def coro():
        value = var.get()
        var.set("changed")
        return value

    assert run(loop.create_task(coro(), context=ctx)) == "from ctx"
    assert ctx[var] == "changed"
    assert var.get() == "default"


def test_create_task_names_and_closed_loop(loop, run):
    async def coro():
        return "done"

    named = loop.create_task(coro(), name="request")
    unnamed = loop.create_task(coro())
    assert named.get_name() == "request"
    assert re.fullmatch(r"Task-\d+", unnamed.get_name())
    assert run(asyncio.gather(named, unnamed)) == ["done", "done"]
    loop.close()
    never_run = coro()
    with pytest.raises(RuntimeError, match="^Event loop is closed$"):
        loop.create_task(never_run)
    never_run.close()


@pytest.mark.skipif(sys.version_info >= (3, 11), reason="create_task(context=) exists from Python 3.11")
def test_create_task_context_is_a_type_error_before_3_11(loop):
    async def coro():
        pass

    never_run = coro()
    with pytest.raises(TypeError, match="context"):
        loop.create_task(never_run, context=contextvars.copy_context())
    never_run.close()


def test_create_task_source_traceback_ends_at_the_caller(loop, run):
    """In debug mode a task records where it was created: the caller of
    create_task(), not create_task() itself."""

    async def coro():
        pass

    loop.set_debug(True)
    task = loop.create_task(coro())
    assert task._source_traceback[-1].name == "test_create_task_source_traceback_ends_at_the_caller"
    run(task)


def test_task_copies_the_current_context(loop, run):
    async def child():
        seen = var.get()
        var.set("child")
        return seen

    async def main():
        var.set("parent")
        seen = await loop.create_task(child())
        return seen, var.get()

    assert run(main()) == ("parent", "parent")
    assert var.get() == "default"


def test_task_factory(loop, run):
    created = []

    def factory(loop_arg, coro, **kwargs):
        assert loop_arg is loop
        task = asyncio.Task(coro, loop=loop_arg, **kwargs)
        created.append(task)
        return task

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def inner():
        return "inner"

    async def main():
        return await asyncio.create_task(inner())

    task = loop.create_task(asyncio.sleep(0, "x"), name="named")
    assert created == [task]
    assert task.get_name() == "named"
    assert loop.run_until_complete(task) == "x"
    del created[:]
    assert loop.run_until_complete(main()) == "inner"
    # run_until_complete() wrapped main() with loop.create_task(), main() created inner()
    assert [t.get_coro().__name__ for t in created] == ["main", "inner"]
    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    with pytest.raises(TypeError, match="^task factory must be a callable or None$"):
        loop.set_task_factory(1)


def test_task_cancellation(loop, run):
    seen = []

    async def sleeper():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError as exc:
            seen.append(exc.args)
            raise

    async def main():
        task = loop.create_task(sleeper())
        await asyncio.sleep(0.01)
        assert task.cancel("bye")
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)  # bounded: a timeout is not a CancelledError
        assert task.cancelled()
        assert not task.cancel()  # already done

    run(main())
    assert seen == [("bye",)]


def test_cancelled_sleep_releases_its_timer(loop, run):
    async def main():
        tasks = [loop.create_task(asyncio.sleep(3600)) for _ in range(100)]
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return all(task.cancelled() for task in tasks)

    assert run(main())


def test_gather_wait_for_shield(loop, run):
    async def value(x, delay):
        await asyncio.sleep(delay)
        return x

    async def main():
        assert await asyncio.gather(value(1, 0.02), value(2, 0.01), value(3, 0)) == [1, 2, 3]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(value(0, 10), 0.01)
        inner = loop.create_task(value("shielded", 0.02))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(inner), 0.001)
        assert await inner == "shielded"
        done, pending = await asyncio.wait([loop.create_task(value(i, i / 100)) for i in range(3)], timeout=WAIT)
        assert len(done) == 3 and not pending

    run(main())


def test_tasks_interleave_on_sleep_zero(loop, run):
    order = []

    async def worker(name):
        for i in range(3):
            order.append((name, i))
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(worker("a"), worker("b"))

    run(main())
    assert order == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_asyncio_queue_and_event(loop, run):
    async def main():
        queue: asyncio.Queue[int] = asyncio.Queue()
        event = asyncio.Event()

        async def producer():
            for i in range(100):
                await queue.put(i)
            event.set()

        results = []

        async def consumer():
            await event.wait()
            while not queue.empty():
                results.append(await queue.get())

        await asyncio.gather(producer(), consumer())
        return results

    assert run(main()) == list(range(100))


# ---------------------------------------------------------------- exception handler API


def test_exception_handler_get_set(loop_factory):
    loop = loop_factory()
    assert loop.get_exception_handler() is None

    def handler(loop, context):
        pass

    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None
    with pytest.raises(TypeError, match=r"^A callable object or None is expected, got 'not callable'$"):
        loop.set_exception_handler("not callable")


def test_call_exception_handler_calls_the_handler(loop, errors: ErrorRecorder):
    calls = []
    loop.set_exception_handler(lambda lp, ctx: calls.append((lp, ctx)))
    context = {"message": "hello", "exception": ValueError("x"), "custom": 1}
    loop.call_exception_handler(context)
    assert len(calls) == 1
    assert calls[0][0] is loop
    assert calls[0][1] == context


def test_default_exception_handler_logs(loop_factory, caplog):
    loop = loop_factory()
    caplog.set_level(logging.ERROR, logger="asyncio")
    exc = ValueError("the cause")
    loop.call_exception_handler({"message": "something failed", "exception": exc})
    loop.default_exception_handler({"message": "logged directly"})
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert [r.levelno for r in records] == [logging.ERROR, logging.ERROR]
    assert records[0].getMessage().startswith("something failed")
    assert records[0].exc_info and records[0].exc_info[1] is exc
    assert records[1].getMessage().startswith("logged directly")


def test_failing_exception_handler_is_logged(loop_factory, caplog):
    loop = loop_factory()
    caplog.set_level(logging.ERROR, logger="asyncio")

    def handler(loop, context):
        raise RuntimeError("handler bug")

    loop.set_exception_handler(handler)
    loop.call_exception_handler({"message": "original"})
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    assert records[0].getMessage().startswith("Unhandled error in exception handler")
    assert isinstance(records[0].exc_info[1], RuntimeError)


def test_handler_may_delegate_to_default(loop_factory, caplog):
    loop = loop_factory()
    caplog.set_level(logging.ERROR, logger="asyncio")
    loop.set_exception_handler(lambda lp, ctx: lp.default_exception_handler(ctx))
    loop.call_exception_handler({"message": "delegated"})
    assert [r.getMessage().split("\n")[0] for r in caplog.records if r.name == "asyncio"] == ["delegated"]


def test_unretrieved_task_exception_reaches_handler(loop, errors: ErrorRecorder):
    exc = LookupError("never retrieved")

    async def fail():
        raise exc

    task = loop.create_task(fail())
    loop.run_until_complete(asyncio.sleep(0.01))
    assert task.done()
    del task
    collect()
    assert len(errors.contexts) == 1
    context = errors.contexts[0]
    assert context["message"] == "Task exception was never retrieved"
    assert context["exception"] is exc
    assert isinstance(context["future"], asyncio.Task)


def test_callback_exception_handler_runs_in_handle_context(loop, errors: ErrorRecorder):
    if sys.version_info < (3, 12):
        pytest.skip("the handler runs in the failing callback's context since Python 3.12")
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(var.get()))
    ctx = contextvars.copy_context()
    ctx.run(var.set, "callback context")
    loop.call_soon(lambda: 1 / 0, context=ctx)
    loop.run_until_complete(asyncio.sleep(0.01))
    assert seen == ["callback context"]


# ---------------------------------------------------------------- async generators


def test_shutdown_asyncgens(loop, run):
    finalized = []

    async def agen():
        try:
            for i in range(10):
                yield i
        finally:
            finalized.append(asyncio.get_running_loop())

    async def main():
        gen = agen()
        assert await gen.__anext__() == 0
        await loop.shutdown_asyncgens()
        return gen

    gen = run(main())
    assert finalized == [loop]
    del gen


def test_asyncgen_warning_after_shutdown(loop, run):
    async def agen():
        yield 1

    async def main():
        await loop.shutdown_asyncgens()
        gen = agen()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            await gen.__anext__()
        await gen.aclose()
        return caught

    caught = run(main())
    assert [w.category for w in caught] == [ResourceWarning]
    assert "was scheduled after loop.shutdown_asyncgens() call" in str(caught[0].message)


def test_abandoned_asyncgen_is_finalized_on_the_loop(loop, run):
    finalized = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            finalized.append(asyncio.get_running_loop())

    async def main():
        gen = agen()
        await gen.__anext__()
        del gen
        collect()
        for _ in range(10):
            await asyncio.sleep(0)
            if finalized:
                break

    run(main())
    assert finalized == [loop]


def test_asyncgen_hooks_are_restored(loop, run):
    before = sys.get_asyncgen_hooks()
    inside = []

    async def main():
        inside.append(sys.get_asyncgen_hooks())

    run(main())
    assert sys.get_asyncgen_hooks() == before
    assert inside[0].firstiter is not None and inside[0].finalizer is not None


# ---------------------------------------------------------------- executors


def test_run_in_executor(loop, run):
    main_thread = threading.get_ident()

    def work(a, b):
        return a + b, threading.get_ident()

    result, thread_id = run(loop.run_in_executor(None, work, 1, 2))
    assert result == 3
    assert thread_id != main_thread


def test_run_in_executor_exception(loop, run):
    def fail():
        raise KeyError("in thread")

    with pytest.raises(KeyError, match="in thread"):
        run(loop.run_in_executor(None, fail))


def test_run_in_explicit_executor(loop, run):
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="explicit") as pool:
        name = run(loop.run_in_executor(pool, lambda: threading.current_thread().name))
    assert name.startswith("explicit")


def test_set_default_executor(loop, run):
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="custom-default")
    loop.set_default_executor(pool)
    name = run(loop.run_in_executor(None, lambda: threading.current_thread().name))
    assert name.startswith("custom-default")
    run(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError):  # the custom executor was shut down
        pool.submit(lambda: None)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="only a DeprecationWarning before Python 3.11")
def test_set_default_executor_requires_thread_pool(loop):
    with pytest.raises(TypeError, match="^executor must be ThreadPoolExecutor instance$"):
        loop.set_default_executor(object())


def test_shutdown_default_executor(loop, run):
    thread = run(loop.run_in_executor(None, threading.current_thread))
    assert thread.is_alive()
    run(loop.shutdown_default_executor())
    assert not thread.is_alive()
    with pytest.raises(RuntimeError, match="^Executor shutdown has been called$"):
        loop.run_in_executor(None, lambda: None)
    # an explicit executor still works
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert run(loop.run_in_executor(pool, lambda: "ok")) == "ok"


def test_shutdown_default_executor_unused(loop, run):
    assert run(loop.shutdown_default_executor()) is None


@pytest.mark.skipif(sys.version_info < (3, 12), reason="the timeout parameter is new in Python 3.12")
def test_shutdown_default_executor_timeout(loop, run):
    run(loop.run_in_executor(None, lambda: None))
    assert run(loop.shutdown_default_executor(timeout=WAIT)) is None


# ---------------------------------------------------------------- running a loop


async def _main_info(result="done"):
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0)
    return loop, loop.get_debug(), result


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is new in Python 3.12")
def test_asyncio_run_loop_factory(loop_impl, loop_factory):
    used, debug, result = asyncio.run(_main_info(), loop_factory=loop_factory)
    assert isinstance(used, loop_impl.loop_class)
    assert used.is_closed()
    assert result == "done"
    used, debug, _ = asyncio.run(_main_info(), loop_factory=loop_factory, debug=True)
    assert debug is True


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is new in Python 3.11")
def test_asyncio_runner_loop_factory(loop_impl, loop_factory):
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, loop_impl.loop_class)
        first = runner.run(_main_info(1))
        second = runner.run(_main_info(2))
        assert first[0] is second[0] is loop
        assert (first[2], second[2]) == (1, 2)
        assert not loop.is_closed()
    assert loop.is_closed()
    with asyncio.Runner(loop_factory=loop_factory, debug=True) as runner:
        assert runner.run(_main_info())[1] is True


def test_run_function(loop_impl):
    """cppcorn.loop.run() (asyncio.run() for the reference)."""
    used, _, result = loop_impl.run(_main_info("ran"))
    assert isinstance(used, loop_impl.loop_class)
    assert used.is_closed()
    assert result == "ran"
    assert loop_impl.run(_main_info(), debug=True)[1] is True
    assert loop_impl.run(_main_info(), debug=False)[1] is False
    assert asyncio._get_running_loop() is None


def test_run_function_propagates_and_cleans_up(loop_impl):
    state = {}

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            state["agen"] = "finalized"

    async def main():
        state["loop"] = asyncio.get_running_loop()
        gen = agen()
        await gen.__anext__()
        state["gen"] = gen
        state["pending"] = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
        raise ValueError("from main")

    with pytest.raises(ValueError, match="from main"):
        loop_impl.run(main())
    assert state["loop"].is_closed()
    assert state["agen"] == "finalized"
    assert state["pending"].cancelled()


def test_run_function_inside_running_loop(loop_impl, loop, run):
    async def main():
        coro = asyncio.sleep(0)
        try:
            with pytest.raises(RuntimeError, match="cannot be called from a running event loop"):
                loop_impl.run(coro)
        finally:
            coro.close()

    run(main())


def test_event_loop_policy(loop_impl):
    policy = loop_impl.policy_class()
    assert isinstance(policy, asyncio.AbstractEventLoopPolicy)
    new_loop = policy.new_event_loop()
    try:
        assert isinstance(new_loop, loop_impl.loop_class)
    finally:
        new_loop.close()

    old_policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(policy)
    try:
        assert asyncio.get_event_loop_policy() is policy
        from_asyncio = asyncio.new_event_loop()
        try:
            assert isinstance(from_asyncio, loop_impl.loop_class)
        finally:
            from_asyncio.close()
        used, _, _ = asyncio.run(_main_info())
        assert isinstance(used, loop_impl.loop_class)
    finally:
        asyncio.set_event_loop_policy(old_policy)
        asyncio.set_event_loop(None)


def test_loop_subclass_of_abstract_event_loop(loop):
    assert isinstance(loop, asyncio.AbstractEventLoop)
    assert "running=False" in repr(loop) and "closed=False" in repr(loop)
