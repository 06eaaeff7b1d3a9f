# The task that runs a connection's applications. See runner.pxd.
import asyncio
import collections.abc

from cpython.contextvars cimport PyContext_Enter, PyContext_Exit
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject, Py_XDECREF

from cppcorn.http.awaitables cimport STEP_DONE, step_result, thrown, to_wait_on, yielded_or_stop
from cppcorn.http.cycle cimport RequestCycle
from cppcorn.includes.am_send cimport cc_install_am_send
from cppcorn.includes.compat cimport CC_CURRENT_TASK_IN_THREAD_STATE, CC_TASKS_COUNT_CANCELS
from cppcorn.includes.python cimport PYGEN_NEXT, PyCoro_CheckExact, PyIter_Send

# Which task runs on which loop, as asyncio.current_task() reads it. A
# Task's step sets it around its coroutine's step, and so does
# RequestRunner.run_eagerly(): up to Python 3.13 in the dict
# asyncio.tasks._current_tasks, directly (a fifth of _enter_task()'s cost);
# from 3.14 in the thread state, through _swap_current_task().
cdef dict current_tasks = getattr(asyncio.tasks, "_current_tasks", None)
cdef object swap_current_task = getattr(asyncio.tasks, "_swap_current_task", None)

# What _step_app() returns once the application has returned.
cdef object APP_RETURNED = object()


async def _awaited(awaitable):
    """An application's awaitable that is not a native coroutine, as one (the
    same errors as `await` for what cannot be awaited)."""
    return await awaitable


cdef class RequestRunner:
    """The coroutine of the asyncio Task that runs a connection's requests'
    applications, one request after another.

    A Task per request was the largest single cost of serving a small one:
    its init (a "Task-N" name, a call_soon), its registration in asyncio's
    WeakSet of tasks and its removal from it took a fifth of the server's
    user-space instructions per hello-world request (callgrind, 3.11: 26.6k
    with a Task per request, 21.3k with this). A connection's requests come
    one after another, so one Task serves them all and waits on a future in
    between.

    The Task steps this object as its coroutine. Each step enters the
    request's own context (a fresh copy per request, as a Task of its own
    would have) and steps the application's coroutine in it: what that
    yields (futures) goes to the Task, what the Task throws (cancellation)
    goes to the application. An application sees what it would see in a
    task of its own, except the task's identity: asyncio.current_task() is
    the connection's task, the same object for each of its requests.

    An application may go on running after its response is complete. A
    request that arrives meanwhile gets a new runner, and this one is
    retired: it ends with its application.

    While the task is parked between requests, the next request's
    application is stepped at once by run_eagerly(), with the task set as
    the loop's current one: most applications answer without waiting, and
    then the task never wakes (callgrind, 3.11: 19.6k user-space
    instructions per keep-alive hello request through the task, 14.6k so).

    The task steps it through am_send (csrc/am_send.h), which lets it end
    without raising StopIteration: with Connection: close that is once per
    request.
    """

    @staticmethod
    cdef RequestRunner start(object loop, object app, set tasks, RequestCycle cycle):
        """A runner whose task's first step starts `cycle`."""
        cdef RequestRunner runner = RequestRunner.__new__(RequestRunner)
        runner.loop = loop
        runner.app = app
        runner.tasks = tasks
        runner.next_cycle = cycle
        runner.task = loop.create_task(runner)
        # Counted as running while a request's application runs in it
        # (--limit-concurrency, graceful shutdown): until _request_done().
        tasks.add(runner.task)
        return runner

    cdef bint waiting(self) except -1:
        """Parked between requests: run_eagerly() may hand it the next one."""
        return self.waiter is not None and not self.waiter.done()

    cdef int retire(self) except -1:
        """No more requests come to this runner: it ends once its current
        application has (at once, when it is parked)."""
        self.retired = True
        return self._wake()

    cdef int _resume(self, RequestCycle cycle) except -1:
        self.next_cycle = cycle
        self.waiter.set_result(None)
        return 0

    cdef int _wake(self) except -1:
        """Wake the task if it is parked on its waiter: to take over an
        application that run_eagerly() handed over, or else to end."""
        if self.waiting():
            self.waiter.set_result(None)
        return 0

    # -- the coroutine protocol, as asyncio's Task drives it ------------

    @property
    def __qualname__(self):
        return "RequestRunner"

    def __await__(self):
        return self

    def __next__(self):
        return yielded_or_stop(self._step(None, None))

    def send(self, value):
        return yielded_or_stop(self._step(value, None))

    def throw(self, typ, val=None, tb=None):
        return yielded_or_stop(self._step(None, thrown(typ, val, tb)))

    def close(self):
        coroutine = self.coroutine
        if coroutine is not None:
            self.coroutine = None
            context = self.cycle.context
            PyContext_Enter(context)
            try:
                coroutine.close()
            finally:
                PyContext_Exit(context)
        if self.cycle is not None:
            self.tasks.discard(self.task)
        self._finish()

    cdef int run_eagerly(self, RequestCycle cycle) except -1:
        """Start `cycle`'s application at once, inside the callback that
        brought its request, as the task's own step would have: an
        application that never waits is done without a trip through the
        loop's ready queue. The task stays parked on its waiter meanwhile;
        whatever the application waits on first, the task takes over."""
        cdef object loop = self.loop
        cdef object yielded
        self.tasks.add(self.task)
        if CC_CURRENT_TASK_IN_THREAD_STATE:
            try:
                previous = swap_current_task(loop, self.task)
            except RuntimeError:
                # The loop is not running (a protocol driven by hand).
                return self._resume(cycle)
            if previous is not None:
                # Inside another task's step, not a loop callback: asyncio.
                # current_task() could not be this task, so its own step
                # runs it.
                swap_current_task(loop, previous)
                return self._resume(cycle)
        elif PyDict_GetItem(current_tasks, loop) is not NULL:
            return self._resume(cycle)
        else:
            current_tasks[loop] = self.task
        self.cycle = cycle
        try:
            yielded = self._step_app(None, None)
        finally:
            if CC_CURRENT_TASK_IN_THREAD_STATE:
                swap_current_task(loop, None)
            else:
                del current_tasks[loop]
        if yielded is not APP_RETURNED:
            self.handoff = yielded
            self.handed_off = True
            # A cancel() of the task (by the application) has woken it
            # already: then _wake() leaves it, and the task throws that in.
            self._wake()
        return 0

    cdef object _step(self, object value, object exc):
        """One step of the task: the application's next step, or the start
        of the next request, or the wait for it. Returns what the task is to
        wait on, or STEP_DONE when the task is to end."""
        cdef RequestCycle cycle
        cdef object yielded
        if self.handed_off:
            # run_eagerly() started the application, which yielded `handoff`.
            self.handed_off = False
            self.waiter = None
            yielded = self.handoff
            self.handoff = None
            if exc is not None:
                # A cancel() since: as a task would, cancel what the
                # application waits on; the exception goes to it below.
                if getattr(yielded, "_asyncio_future_blocking", None) is not None:
                    yielded.cancel()
            elif yielded is not None:
                return yielded
            # A bare yield (asyncio.sleep(0)): the wake-up was its turn.
        elif self.cycle is None:
            # The first step, or woken between requests.
            self.waiter = None
            cycle = self.next_cycle
            if exc is not None:
                # Cancelled between requests (the loop shutting down, or a
                # cancel() that came after its request had ended). A request
                # handed over meanwhile is dropped with its connection, as
                # a task cancelled before its first step never runs.
                if cycle is not None:
                    self.tasks.discard(self.task)
                    cycle.writer.abandon()
                self._finish()
                raise exc
            if cycle is None:
                self._finish()
                return STEP_DONE
            self.next_cycle = None
            self.cycle = cycle
        cycle = self.cycle
        yielded = self._step_app(value, exc)
        if yielded is not APP_RETURNED:
            return yielded
        return self._between_requests(cycle)

    cdef object _step_app(self, object value, object exc):
        """Step the current request's application in its context: returns
        what it yielded, or APP_RETURNED once it has returned or raised (and
        its request is done)."""
        cdef RequestCycle cycle = self.cycle
        cdef PyObject *result = NULL
        cdef object outcome
        cdef object context = cycle.context
        PyContext_Enter(context)
        try:
            try:
                if self.coroutine is None:
                    awaitable = self.app(cycle.scope, cycle.receive, cycle.send)
                    self.coroutine = awaitable if PyCoro_CheckExact(awaitable) else _awaited(awaitable)
                if exc is None:
                    status = PyIter_Send(self.coroutine, value, &result)
                    outcome = <object>result
                    Py_XDECREF(result)
                    if status == PYGEN_NEXT:
                        return outcome
                else:
                    self.thrown = True
                    try:
                        return self.coroutine.throw(exc)
                    except StopIteration as stop:
                        outcome = stop.value
            except BaseException as error:
                self._request_done(cycle, None, error)
            else:
                self._request_done(cycle, outcome, None)
        finally:
            PyContext_Exit(context)
        return APP_RETURNED

    cdef int _request_done(self, RequestCycle cycle, object outcome, object error) except -1:
        """The application of `cycle` has returned `outcome` or raised
        `error` (run in the request's context: log filters may read it)."""
        self.coroutine = None
        self.cycle = None
        try:
            cycle.app_finished(outcome, error)
        finally:
            self.tasks.discard(self.task)
        return 0

    cdef object _between_requests(self, RequestCycle cycle):
        """The future to wait on for the connection's next request, or
        STEP_DONE."""
        if self.retired or not cycle.writer.reusable():
            self._finish()
            return STEP_DONE
        if self.thrown:
            # A cancellation the application absorbed is not carried into
            # the next request, which a task of its own would start without.
            self.thrown = False
            if CC_TASKS_COUNT_CANCELS:
                while self.task.uncancel():
                    pass
        self.waiter = self.loop.create_future()
        return to_wait_on(self.waiter)

    cdef int _finish(self) except -1:
        self.retired = True
        self.next_cycle = None
        self.waiter = None
        self.handoff = None
        return 0


cdef int _runner_am_send(PyObject *runner, PyObject *arg, PyObject **result) except -1:
    return step_result((<RequestRunner>runner)._step(<object>arg, None), result)


cc_install_am_send(RequestRunner, _runner_am_send)
# Task() takes a coroutine: asyncio.iscoroutine() asks collections.abc.
collections.abc.Coroutine.register(RequestRunner)
