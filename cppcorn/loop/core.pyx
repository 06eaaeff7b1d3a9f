# The compiled core of cppcorn.loop. See core.pxd for the layout.
#
# Semantics follow asyncio.BaseEventLoop._run_once() step for step (cancelled
# timers pruned, then poll, then due timers, then exactly the callbacks that
# were ready when the iteration began), so that programs cannot tell the
# difference except by speed.

import os
import sys

from asyncio import base_events, format_helpers, futures, tasks
from asyncio.log import logger

from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from cpython.mem cimport PyMem_Malloc, PyMem_Realloc, PyMem_Free
from libc.errno cimport EINTR
from libc.math cimport ceil
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from cppcorn.includes.compat cimport CC_TASKS_TAKE_CONTEXT
from cppcorn.includes.io_poller cimport (
    CC_IO_READ, CC_IO_WRITE, CC_POLLER_EPOLL, CC_POLLER_POLL, cc_poller_backend_available, cc_poller_close,
    cc_poller_init, cc_poller_set, cc_poller_wait,
)
from cppcorn.includes.python cimport PyTypeObject, inquiry, traverseproc, visitproc
from cppcorn.loop.errors cimport os_error


# asyncio's limits (base_events): no wait is longer than a day, and the
# timer heap is rebuilt when more than half of its (100+) entries are
# cancelled. Timers due within the clock's resolution (clock_gettime()'s
# nanosecond, as time.get_clock_info("monotonic") says) run now.
cdef enum:
    MIN_SCHEDULED_TIMER_HANDLES = 100
cdef const double MAXIMUM_SELECT_TIMEOUT = 24 * 3600.0
cdef const double CLOCK_RESOLUTION = 1e-09

cdef object Task = tasks.Task
cdef object Future = futures.Future


cdef inline double monotonic():
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef inline int check_schedulable(LoopCore loop, object callback, str method) except -1:
    """asyncio's checks before `method` schedules `callback`. Inline, with
    the checks themselves out of line: an open loop out of debug mode costs
    call_soon() two tests and no call."""
    if loop._closed or loop._debug:
        check_schedulable_fully(loop, callback, method)
    return 0


cdef int check_schedulable_fully(LoopCore loop, object callback, str method) except -1:
    """The loop is not closed and, in debug mode, the caller is the loop's
    thread and the callback a plain callable."""
    loop.check_closed()
    if loop._debug:
        (<object>loop)._check_thread()
        (<object>loop)._check_callback(callback, method)
    return 0


cdef object fileobj_fileno(object fileobj):
    """The descriptor number of an int or of an object with fileno(), with
    the error of selectors (and of asyncio's own checks)."""
    if isinstance(fileobj, int):
        return fileobj
    try:
        return int(fileobj.fileno())
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"Invalid file object: {fileobj!r}") from None


cdef int fileobj_to_fd(object fileobj) except -1:
    """fileobj_fileno(), and a valid descriptor (not negative)."""
    fd = fileobj_fileno(fileobj)
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


# ---------------------------------------------------------------- handles

include "handles.pxi"


# --------------------------------------------------------- I/O watchers

cdef class IOWatcher:
    """Base of whatever the core notifies about one descriptor."""

    cdef int on_ready(self, unsigned events) except -1:
        return 0

    cdef int on_loop_closed(self) except -1:
        return 0

    cdef int on_flush(self) except -1:
        return 0


cdef class ReaderWriter(IOWatcher):
    """loop.add_reader()/add_writer() callbacks: readiness queues them."""

    cdef Handle handle_for(self, unsigned event):
        """The reader (event CC_IO_READ) or the writer (CC_IO_WRITE)."""
        return self.reader if event == CC_IO_READ else self.writer

    cdef Handle swap_handle(self, unsigned event, Handle handle):
        """Make `handle` the reader or the writer; return the one it replaces."""
        cdef Handle previous = self.handle_for(event)
        if event == CC_IO_READ:
            self.reader = handle
        else:
            self.writer = handle
        return previous

    cdef int on_ready(self, unsigned events) except -1:
        if events & CC_IO_READ:
            self.queue_handle(CC_IO_READ)
        if events & CC_IO_WRITE:
            self.queue_handle(CC_IO_WRITE)
        return 0

    cdef int queue_handle(self, unsigned event) except -1:
        """The descriptor is ready for `event`: its callback joins the ready
        queue, or, cancelled, stops being watched for (as asyncio's selector
        loop does in _process_events())."""
        cdef Handle handle = self.handle_for(event)
        if handle is None:
            return 0
        if handle._cancelled:
            self.core.remove_handle_of(self, event)
        else:
            self.core.push_ready(handle)
        return 0

    cdef int on_loop_closed(self) except -1:
        if self.reader is not None:
            self.reader.cancel()
        if self.writer is not None:
            self.writer.cancel()
        return 0


# ------------------------------------------------------------- the core

cdef class LoopCore:
    """The hot half of cppcorn.loop.Loop (the asyncio half is loop.py)."""

    def __cinit__(self, *args, **kwargs):
        backend = os.environ.get("CPPCORN_LOOP_BACKEND") or ("epoll" if sys.platform == "linux" else "poll")
        if backend == "epoll":
            kind = CC_POLLER_EPOLL
        elif backend == "poll":
            kind = CC_POLLER_POLL
        else:
            raise ValueError(f"CPPCORN_LOOP_BACKEND must be 'epoll' or 'poll', not {backend!r}")
        if not cc_poller_backend_available(kind):
            raise ValueError(f"the {backend} backend is not available on {sys.platform}")
        rc = cc_poller_init(&self.poller, kind)
        if rc < 0:
            raise os_error(-rc)
        self.poller_open = True
        self.backend = backend
        self.events_capacity = 64
        self.events = <cc_io_event *>PyMem_Malloc(sizeof(cc_io_event) * self.events_capacity)
        self.ready_capacity = 256
        self.ready = <void **>PyMem_Malloc(sizeof(void *) * self.ready_capacity)
        self.timers_capacity = 64
        self.timers = <void **>PyMem_Malloc(sizeof(void *) * self.timers_capacity)
        if self.events is NULL or self.ready is NULL or self.timers is NULL:
            raise MemoryError()
        self.deferred = []

    def __dealloc__(self):
        self.close_core()
        PyMem_Free(self.events)
        PyMem_Free(self.ready)
        PyMem_Free(self.timers)
        PyMem_Free(self.watchers)
        self.events = NULL
        self.ready = NULL
        self.timers = NULL
        self.watchers = NULL

    cdef int _release_all(self) except -1:
        """Drop every queued handle, timer and watcher (on close)."""
        cdef Py_ssize_t i
        cdef IOWatcher watcher
        while self.ready_count:
            self.pop_ready()
        for i in range(self.timers_count):
            (<TimerHandle>self.timers[i])._scheduled = False
            Py_DECREF(<object>self.timers[i])
        self.timers_count = 0
        self.timers_cancelled = 0
        for i in range(self.watchers_capacity):
            if self.watchers[i] is not NULL:
                watcher = <IOWatcher>self.watchers[i]
                self.watchers[i] = NULL
                watcher.interest = 0
                watcher.on_loop_closed()
                Py_DECREF(watcher)
        return 0

    def get_debug(self):
        # asyncio's is Python, and every future and task asks it when made.
        return self._debug

    def create_future(self):
        # asyncio's is a Python frame around this: a server makes futures
        # per request (a connection's task waits on one between requests).
        return Future(loop=self)

    def create_task(self, coro, *, name=None, context=None, eager_start=None):
        """asyncio's create_task(), with its usual case in C: no task factory,
        where asyncio's does nothing but make the Task. A server makes one
        per request, and asyncio's Python frame around the Task cost about a
        third as much as the Task itself. (Having no frame, this one has
        none to trim from a debug-mode task's creation traceback.)"""
        if (self._task_factory is not None or eager_start is not None
                or (context is not None and not CC_TASKS_TAKE_CONTEXT)):
            # asyncio's own: the factory's calling conventions, 3.10's error
            # for context=, and eager_start=, which 3.14 passes on to the
            # Task (asyncio.create_task(), TaskGroup) and earlier versions
            # refuse. Only the arguments given, as asyncio's callers pass.
            arguments = {}
            if name is not None:
                arguments["name"] = name
            if context is not None:
                arguments["context"] = context
            if eager_start is not None:
                arguments["eager_start"] = eager_start
            return base_events.BaseEventLoop.create_task(self, coro, **arguments)
        self.check_closed()
        if context is None:
            return Task(coro, loop=self, name=name)
        return Task(coro, loop=self, name=name, context=context)

    # ------------------------------------------------------------ time

    def time(self):
        return monotonic()

    # ---------------------------------------------------- ready queue

    cdef int check_closed(self) except -1:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        return 0

    cdef int push_ready(self, object handle) except -1:
        cdef Py_ssize_t capacity = self.ready_capacity
        cdef void **ring
        cdef Py_ssize_t i
        if self.ready_count == capacity:
            ring = <void **>PyMem_Malloc(sizeof(void *) * capacity * 2)
            if ring is NULL:
                raise MemoryError()
            for i in range(self.ready_count):
                ring[i] = self.ready[(self.ready_head + i) & (capacity - 1)]
            PyMem_Free(self.ready)
            self.ready = ring
            self.ready_head = 0
            self.ready_capacity = capacity * 2
        Py_INCREF(handle)
        self.ready[(self.ready_head + self.ready_count) & (self.ready_capacity - 1)] = <void *>handle
        self.ready_count += 1
        return 0

    cdef object pop_ready(self):
        cdef object handle = <object>self.ready[self.ready_head]
        Py_DECREF(handle)
        self.ready_head = (self.ready_head + 1) & (self.ready_capacity - 1)
        self.ready_count -= 1
        return handle

    cdef Handle schedule(self, object callback, tuple args, object context):
        cdef Handle handle = Handle.__new__(Handle)
        init_handle(handle, self, callback, args, context)
        if self._debug:
            handle._source_traceback = format_helpers.extract_stack(sys._getframe(0))
        self.push_ready(handle)
        return handle

    def call_soon(self, callback, *args, context=None):
        check_schedulable(self, callback, "call_soon")
        return self.schedule(callback, args, context)

    def call_soon_threadsafe(self, callback, *args, context=None):
        """asyncio's (3.10-3.13), on this core's ready queue: 3.14's appends
        a handle to asyncio's own ready deque, which this core never runs.
        No lock is needed: the queue is only touched with the GIL held and
        without calling back into Python in between."""
        self.check_closed()
        if self._debug:
            (<object>self)._check_callback(callback, "call_soon_threadsafe")
        handle = self.schedule(callback, args, context)
        (<object>self)._write_to_self()
        return handle

    def _add_callback(self, handle):
        if not handle._cancelled:
            self.push_ready(handle)

    # ---------------------------------------------------------- timers

    cdef TimerHandle timer_at(self, Py_ssize_t i):
        return <TimerHandle>self.timers[i]

    cdef TimerHandle schedule_at(self, double when, object callback, tuple args, object context):
        cdef TimerHandle timer = TimerHandle.__new__(TimerHandle)
        init_handle(timer, self, callback, args, context)
        timer._when = when
        timer.sequence = self.timer_sequence
        self.timer_sequence += 1
        if self._debug:
            timer._source_traceback = format_helpers.extract_stack(sys._getframe(0))
        self.heap_push(timer)
        timer._scheduled = True
        return timer

    def call_at(self, when, callback, *args, context=None):
        if when is None:
            raise TypeError("when cannot be None")
        check_schedulable(self, callback, "call_at")
        return self.schedule_at(when, callback, args, context)

    def call_later(self, delay, callback, *args, context=None):
        if delay is None:
            raise TypeError("delay must not be None")
        check_schedulable(self, callback, "call_later")
        return self.schedule_at(monotonic() + delay, callback, args, context)

    def _timer_handle_cancelled(self, handle):
        if handle._scheduled:
            self.timers_cancelled += 1

    cdef int heap_push(self, TimerHandle timer) except -1:
        cdef void **grown
        cdef Py_ssize_t i, parent
        if self.timers_count == self.timers_capacity:
            grown = <void **>PyMem_Realloc(self.timers, sizeof(void *) * self.timers_capacity * 2)
            if grown is NULL:
                raise MemoryError()
            self.timers = grown
            self.timers_capacity *= 2
        Py_INCREF(timer)
        i = self.timers_count
        self.timers_count += 1
        while i > 0:
            parent = (i - 1) >> 1
            if not timer_before(timer, self.timer_at(parent)):
                break
            self.timers[i] = self.timers[parent]
            i = parent
        self.timers[i] = <void *>timer
        return 0

    cdef TimerHandle heap_pop(self):
        """Remove the earliest timer and return it (the heap's reference)."""
        cdef TimerHandle top = self.timer_at(0)
        cdef void *last
        self.timers_count -= 1
        if self.timers_count:
            last = self.timers[self.timers_count]
            self.timers[0] = last
            self.sift_down(0)
        Py_DECREF(top)
        top._scheduled = False
        return top

    cdef void sift_down(self, Py_ssize_t i):
        cdef Py_ssize_t n = self.timers_count, child
        cdef void *item = self.timers[i]
        while True:
            child = 2 * i + 1
            if child >= n:
                break
            if child + 1 < n and timer_before(self.timer_at(child + 1), self.timer_at(child)):
                child += 1
            if not timer_before(self.timer_at(child), <TimerHandle>item):
                break
            self.timers[i] = self.timers[child]
            i = child
        self.timers[i] = item

    cdef int prune_cancelled_timers(self) except -1:
        cdef Py_ssize_t i, kept = 0
        cdef TimerHandle timer
        if (self.timers_count > MIN_SCHEDULED_TIMER_HANDLES
                and self.timers_cancelled * 2 > self.timers_count):
            for i in range(self.timers_count):
                timer = self.timer_at(i)
                if timer._cancelled:
                    timer._scheduled = False
                    Py_DECREF(timer)
                else:
                    self.timers[kept] = self.timers[i]
                    kept += 1
            self.timers_count = kept
            self.timers_cancelled = 0
            i = kept // 2 - 1
            while i >= 0:
                self.sift_down(i)
                i -= 1
        else:
            while self.timers_count and self.timer_at(0)._cancelled:
                self.timers_cancelled -= 1
                self.heap_pop()
        return 0

    # ----------------------------------------------------------- I/O

    cdef IOWatcher watcher_for(self, int fd):
        if fd < self.watchers_capacity and self.watchers[fd] is not NULL:
            return <IOWatcher>self.watchers[fd]
        return None

    cdef int attach(self, IOWatcher watcher) except -1:
        """Make `watcher` the one notified about its descriptor. A watcher
        left behind on a number that was closed and reused loses its place."""
        cdef int fd = watcher.fd
        cdef int capacity
        cdef void **grown
        cdef IOWatcher previous
        if fd >= self.watchers_capacity:
            capacity = self.watchers_capacity or 64
            while capacity <= fd:
                capacity *= 2
            grown = <void **>PyMem_Realloc(self.watchers, sizeof(void *) * capacity)
            if grown is NULL:
                raise MemoryError()
            for i in range(self.watchers_capacity, capacity):
                grown[i] = NULL
            self.watchers = grown
            self.watchers_capacity = capacity
        if self.watchers[fd] is <void *>watcher:
            return 0
        if self.watchers[fd] is not NULL:
            previous = <IOWatcher>self.watchers[fd]
            self.watchers[fd] = NULL
            # The poller still has the old interest for this number.
            watcher.interest = previous.interest
            previous.interest = 0
            previous.on_loop_closed()
            Py_DECREF(previous)
        Py_INCREF(watcher)
        self.watchers[fd] = <void *>watcher
        watcher.core = self
        return 0

    cdef int detach(self, IOWatcher watcher) except -1:
        cdef int fd = watcher.fd
        if fd < 0 or fd >= self.watchers_capacity or self.watchers[fd] is not <void *>watcher:
            return 0
        if watcher.interest and self.poller_open:
            # Errors do not matter here: the descriptor may be closed already.
            cc_poller_set(&self.poller, fd, watcher.interest, 0)
        watcher.interest = 0
        self.watchers[fd] = NULL
        Py_DECREF(watcher)
        return 0

    cdef int set_interest(self, IOWatcher watcher, unsigned interest) except -1:
        cdef int rc
        if interest == watcher.interest:
            return 0
        rc = cc_poller_set(&self.poller, watcher.fd, watcher.interest, interest)
        if rc < 0:
            # epoll refuses regular files with EPERM: PermissionError, as
            # the selectors module raises.
            raise os_error(-rc)
        watcher.interest = interest
        return 0

    cdef ReaderWriter reader_writer(self, object fileobj, bint create):
        cdef int fd = fileobj_to_fd(fileobj)
        cdef IOWatcher watcher = self.watcher_for(fd)
        cdef ReaderWriter rw
        if type(watcher) is ReaderWriter:
            return <ReaderWriter>watcher
        if not create:
            return None
        rw = ReaderWriter.__new__(ReaderWriter)
        rw.fd = fd
        self.attach(rw)
        return rw

    cdef Handle add_handle(self, object fd, unsigned event, object callback, tuple args):
        """loop.add_reader() (event CC_IO_READ) or add_writer() (CC_IO_WRITE):
        the new handle replaces (and cancels) the one watching before."""
        self.check_closed()
        cdef Handle handle = Handle.__new__(Handle)
        init_handle(handle, self, callback, args, None)
        cdef ReaderWriter rw = self.reader_writer(fd, True)
        self.set_interest(rw, rw.interest | event)
        previous = rw.swap_handle(event, handle)
        if previous is not None:
            previous.cancel()
        return handle

    cdef bint remove_handle(self, object fd, unsigned event) except -1:
        """loop.remove_reader() or remove_writer(): whether one was removed."""
        if self._closed:
            return False
        cdef ReaderWriter rw = self.reader_writer(fd, False)
        if rw is None or rw.handle_for(event) is None:
            return False
        self.remove_handle_of(rw, event)
        return True

    cdef int remove_handle_of(self, ReaderWriter rw, unsigned event) except -1:
        """Stop watching for `event` and cancel its handle; a watcher left
        with no handle is detached."""
        cdef unsigned other = (CC_IO_READ | CC_IO_WRITE) ^ event
        handle = rw.swap_handle(event, None)
        if rw.handle_for(other) is None:
            self.detach(rw)
        else:
            self.set_interest(rw, other)
        if handle is not None:
            handle.cancel()
        return 0

    def _add_reader(self, fd, callback, *args):
        return self.add_handle(fd, CC_IO_READ, callback, args)

    def _add_writer(self, fd, callback, *args):
        return self.add_handle(fd, CC_IO_WRITE, callback, args)

    def _remove_reader(self, fd):
        return self.remove_handle(fd, CC_IO_READ)

    def _remove_writer(self, fd):
        return self.remove_handle(fd, CC_IO_WRITE)

    def _io_registration(self, fd):
        """(events, reader, writer) for an add_reader/add_writer descriptor,
        None otherwise: what the selector view shows to asyncio's reprs."""
        cdef ReaderWriter rw = self.reader_writer(fd, False)
        if rw is None:
            return None
        return rw.interest, rw.reader, rw.writer

    def _io_descriptors(self):
        return [i for i in range(self.watchers_capacity)
                if self.watchers[i] is not NULL and type(<object>self.watchers[i]) is ReaderWriter]

    def _ensure_fd_no_transport(self, fd):
        """asyncio's check before add_reader()/sock_*() on a descriptor: it
        must not belong to a transport, ours (in the core) or asyncio's."""
        fileno = fileobj_fileno(fd)
        transport = self.watcher_for(fileno) if fileno >= 0 else None
        if transport is None or type(transport) is ReaderWriter:
            transport = (<object>self)._transports.get(fileno)
        if transport and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    # ------------------------------------------------------- iteration

    cdef int poll(self, int timeout_ms) except -1:
        cdef int n, i
        cdef unsigned ready
        cdef cc_io_event event
        cdef IOWatcher watcher
        with nogil:
            n = cc_poller_wait(&self.poller, self.events, self.events_capacity, timeout_ms)
        if n < 0:
            if n == -EINTR:
                return 0
            raise os_error(-n)
        for i in range(n):
            event = self.events[i]
            if event.fd >= self.watchers_capacity or self.watchers[event.fd] is NULL:
                continue
            watcher = <IOWatcher>self.watchers[event.fd]
            ready = event.events & watcher.interest
            if ready:
                watcher.on_ready(ready)
        if n == self.events_capacity and n < 4096:
            self.grow_events()
        return 0

    cdef int grow_events(self) except -1:
        cdef cc_io_event *grown = <cc_io_event *>PyMem_Realloc(
            self.events, sizeof(cc_io_event) * self.events_capacity * 2)
        if grown is NULL:
            raise MemoryError()
        self.events = grown
        self.events_capacity *= 2
        return 0

    def _run_once(self):
        cdef double timeout, end_time
        cdef int timeout_ms
        cdef Py_ssize_t ntodo
        cdef object handle
        self.prune_cancelled_timers()
        if self.ready_count or self._stopping:
            timeout_ms = 0
        elif self.timers_count:
            timeout = self.timer_at(0)._when - monotonic()
            if timeout > MAXIMUM_SELECT_TIMEOUT:
                timeout = MAXIMUM_SELECT_TIMEOUT
            elif timeout < 0:
                timeout = 0
            timeout_ms = <int>ceil(timeout * 1e3)
        else:
            timeout_ms = -1
        self.iterating = True
        try:
            self.poll(timeout_ms)

            end_time = monotonic() + CLOCK_RESOLUTION
            while self.timers_count and self.timer_at(0)._when < end_time:
                self.push_ready(self.heap_pop())

            # Only what was ready now runs in this iteration; callbacks they
            # schedule wait for the next one, after another poll.
            ntodo = self.ready_count
            while ntodo > 0 and self.ready_count:
                ntodo -= 1
                handle = self.pop_ready()
                if self._debug:
                    self.run_handle_timed(handle)
                else:
                    self.run_handle(handle)
            handle = None
        finally:
            self.iterating = False
            if self.deferred:
                self.flush_deferred()

    cdef bint defer_flush(self, IOWatcher watcher) except -1:
        """Call `watcher`.on_flush() at the end of this iteration; False
        (and nothing done) when no iteration runs.

        A transport's small writes wait for it, so that the responses to
        the requests one poll brought leave together rather than one by
        one between the others' work. A reader on another CPU (a client, a
        proxy) is then woken about once per batch, not once per response,
        and each wake-up (an inter-processor interrupt) is paid by the
        writer's CPU: hello world under wrk -c64, perf's sched_waking
        counts 0.49 wake-ups per request without this, 0.02 with it (see
        bench/RESULTS.md)."""
        if not self.iterating:
            return False
        self.deferred.append(watcher)
        return True

    cdef int flush_deferred(self) except -1:
        cdef list watchers = self.deferred
        self.deferred = []
        for watcher in watchers:
            (<IOWatcher>watcher).on_flush()
        return 0

    cdef int run_handle_timed(self, object handle) except -1:
        """Debug mode: run it as asyncio does, logging a slow callback."""
        cdef object loop = self
        cdef double started, elapsed
        if handle._cancelled:
            return 0
        loop._current_handle = handle
        try:
            started = monotonic()
            self.run_handle(handle)
            elapsed = monotonic() - started
            if elapsed >= loop.slow_callback_duration:
                logger.warning("Executing %s took %.3f seconds", _format_handle(handle), elapsed)
        finally:
            loop._current_handle = None
        return 0

    cdef int run_handle(self, object handle) except -1:
        if type(handle) is Handle or type(handle) is TimerHandle:
            if not (<Handle>handle)._cancelled:
                (<Handle>handle).run()
        elif not handle._cancelled:
            handle._run()
        return 0

    def _close_core(self):
        """Release the poller and everything queued (after asyncio's close())."""
        self.close_core()

    cdef int close_core(self) except -1:
        self._release_all()
        if self.poller_open:
            cc_poller_close(&self.poller)
            self.poller_open = False
        return 0


# ------------------------------------------------ garbage collection
#
# The ready queue, the timer heap and the watcher table hold references in C
# arrays, out of the garbage collector's sight. A loop dropped without
# close() sits in cycles through them (its self-pipe reader is a bound
# method of the loop, tasks refer to their loop): the collector must see
# those references to find the cycle, run asyncio's __del__ (which warns
# "unclosed event loop" and closes it) and free it. So the type's traverse
# and clear functions are extended to cover the arrays.

cdef traverseproc generated_traverse = (<PyTypeObject *>LoopCore).tp_traverse
cdef inquiry generated_clear = (<PyTypeObject *>LoopCore).tp_clear


cdef int traverse_core(PyObject *obj, visitproc visit, void *arg) noexcept:
    cdef LoopCore core = <LoopCore><void *>obj
    cdef Py_ssize_t i
    cdef int rc
    if generated_traverse is not NULL:
        rc = generated_traverse(obj, visit, arg)
        if rc:
            return rc
    for i in range(core.ready_count):
        rc = visit(<PyObject *>core.ready[(core.ready_head + i) & (core.ready_capacity - 1)], arg)
        if rc:
            return rc
    for i in range(core.timers_count):
        rc = visit(<PyObject *>core.timers[i], arg)
        if rc:
            return rc
    for i in range(core.watchers_capacity):
        if core.watchers[i] is not NULL:
            rc = visit(<PyObject *>core.watchers[i], arg)
            if rc:
                return rc
    return 0


cdef int clear_core(PyObject *obj) noexcept:
    cdef LoopCore core = <LoopCore><void *>obj
    try:
        core._release_all()
    except BaseException:
        pass
    if generated_clear is not NULL:
        return generated_clear(obj)
    return 0


(<PyTypeObject *>LoopCore).tp_traverse = traverse_core
(<PyTypeObject *>LoopCore).tp_clear = clear_core


cdef str _format_handle(handle):
    # As asyncio's debug log names a slow callback: by the task it steps.
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if isinstance(task, tasks.Task):
        return repr(task)
    return str(handle)
