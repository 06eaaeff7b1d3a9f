# The compiled core of cppcorn.loop: callback handles, the ready queue, the
# timer heap and readiness dispatch over csrc/io_poller.h. The asyncio API
# around it (cppcorn/loop/loop.py) is a subclass of asyncio's own event loop
# that hands these hot paths to this core; transports (stream.pyx) plug into
# the dispatch as IOWatcher subclasses and are called without any Python
# method lookup.

cimport cython

from cppcorn.includes.io_poller cimport cc_io_event, cc_poller


cdef class Handle:
    cdef readonly object _callback
    cdef readonly tuple _args
    cdef readonly object _context
    cdef readonly object _loop
    cdef public bint _cancelled
    cdef public object _source_traceback
    cdef object __weakref__

    cdef int run(self) except -1
    cdef list _repr_info(self)


cdef class TimerHandle(Handle):
    cdef readonly double _when
    # Heap order among timers due at the same instant: first scheduled, first run.
    cdef unsigned long long sequence
    cdef public bint _scheduled


cdef class IOWatcher:
    # Whatever waits on one file descriptor: add_reader/add_writer callbacks
    # (ReaderWriter) or a compiled transport. One watcher per descriptor.
    cdef LoopCore core
    cdef readonly int fd
    # The interest registered with the poller (CC_IO_READ | CC_IO_WRITE).
    cdef unsigned interest

    # Called at the end of the loop iteration in which the watcher asked
    # for it with LoopCore.defer_flush().
    cdef int on_flush(self) except -1
    # Called by the core when the descriptor is ready for `events`
    # (already restricted to the interest).
    cdef int on_ready(self, unsigned events) except -1
    # Called when the core is closed with this watcher still attached.
    cdef int on_loop_closed(self) except -1


@cython.final
cdef class ReaderWriter(IOWatcher):
    # The handles of loop.add_reader() / loop.add_writer() on one descriptor.
    cdef Handle reader
    cdef Handle writer

    cdef Handle handle_for(self, unsigned event)
    cdef Handle swap_handle(self, unsigned event, Handle handle)
    cdef int queue_handle(self, unsigned event) except -1


cdef class LoopCore:
    cdef cc_poller poller
    cdef bint poller_open
    cdef cc_io_event *events
    cdef int events_capacity

    # Watchers by descriptor: an owned reference in each non-NULL slot.
    cdef void **watchers
    cdef int watchers_capacity

    # The ready queue: a ring of owned references to handles (ours, or any
    # object with _run() and _cancelled, such as asyncio.Handle).
    cdef void **ready
    cdef Py_ssize_t ready_capacity
    cdef Py_ssize_t ready_head
    cdef Py_ssize_t ready_count

    # The timer heap, ordered by (when, sequence); cancelled timers stay
    # until they reach the top or are too many (as in asyncio).
    cdef void **timers
    cdef Py_ssize_t timers_capacity
    cdef Py_ssize_t timers_count
    cdef Py_ssize_t timers_cancelled
    cdef unsigned long long timer_sequence

    # Watchers whose writes wait for the end of this iteration, to leave
    # together (defer_flush()); only while an iteration runs.
    cdef list deferred
    cdef bint iterating

    # Attributes that asyncio's BaseEventLoop code reads and writes, kept
    # as C fields for the core: _task_factory is loop.set_task_factory()'s
    # factory, or None.
    cdef public bint _closed
    cdef public bint _stopping
    cdef public bint _debug
    cdef public object _task_factory
    cdef readonly str backend

    cdef int _release_all(self) except -1
    cdef int close_core(self) except -1
    cdef object pop_ready(self)
    cdef TimerHandle timer_at(self, Py_ssize_t i)
    cdef int heap_push(self, TimerHandle timer) except -1
    cdef TimerHandle heap_pop(self)
    cdef void sift_down(self, Py_ssize_t i)
    cdef int prune_cancelled_timers(self) except -1
    cdef ReaderWriter reader_writer(self, object fileobj, bint create)
    cdef Handle add_handle(self, object fd, unsigned event, object callback, tuple args)
    cdef bint remove_handle(self, object fd, unsigned event) except -1
    cdef int remove_handle_of(self, ReaderWriter rw, unsigned event) except -1
    cdef int poll(self, int timeout_ms) except -1
    cdef bint defer_flush(self, IOWatcher watcher) except -1
    cdef int flush_deferred(self) except -1
    cdef int grow_events(self) except -1
    cdef int run_handle_timed(self, object handle) except -1
    cdef int run_handle(self, object handle) except -1
    cdef int push_ready(self, object handle) except -1
    cdef Handle schedule(self, object callback, tuple args, object context)
    cdef TimerHandle schedule_at(self, double when, object callback, tuple args, object context)
    cdef int attach(self, IOWatcher watcher) except -1
    cdef int detach(self, IOWatcher watcher) except -1
    cdef int set_interest(self, IOWatcher watcher, unsigned interest) except -1
    cdef IOWatcher watcher_for(self, int fd)
    cdef int check_closed(self) except -1
