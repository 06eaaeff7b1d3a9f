# Callback handles: Handle and TimerHandle, asyncio's Handle and TimerHandle
# interfaces over C fields. Included in core.pyx: the loop core makes, queues
# and runs them without a call between modules.

cimport cython
from cpython.contextvars cimport PyContext_CopyCurrent, PyContext_Enter, PyContext_Exit


@cython.freelist(256)
cdef class Handle:
    """A callback scheduled on the loop (asyncio.Handle's interface)."""

    def __init__(self):
        raise TypeError("cppcorn.loop handles are created by the loop")

    cdef int run(self) except -1:
        cdef object callback = self._callback
        cdef object context = self._context
        try:
            PyContext_Enter(context)
            try:
                callback(*self._args)
            finally:
                PyContext_Exit(context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            source = format_helpers._format_callback_source(callback, self._args)
            details = {"message": f"Exception in callback {source}", "exception": exc, "handle": self}
            if self._source_traceback:
                details["source_traceback"] = self._source_traceback
            self._loop.call_exception_handler(details)
        return 0

    def _run(self):
        self.run()

    def cancel(self):
        if not self._cancelled:
            self._cancelled = True
            # Drop the references, as asyncio does: a cancelled callback
            # must not keep its arguments alive until its turn comes.
            self._callback = None
            self._args = None

    def cancelled(self):
        return self._cancelled

    def get_context(self):
        return self._context

    cdef list _repr_info(self):
        info = [type(self).__name__]
        if self._cancelled:
            info.append("cancelled")
        if self._callback is not None:
            info.append(format_helpers._format_callback_source(self._callback, self._args))
        if self._source_traceback:
            frame = self._source_traceback[len(self._source_traceback) - 1]
            info.append(f"created at {frame[0]}:{frame[1]}")
        return info

    def __repr__(self):
        return "<{}>".format(" ".join(self._repr_info()))


cdef class TimerHandle(Handle):
    """A callback scheduled for a time (asyncio.TimerHandle's interface)."""

    def when(self):
        return self._when

    def cancel(self):
        if not self._cancelled and self._scheduled:
            (<LoopCore>self._loop).timers_cancelled += 1
        Handle.cancel(self)

    cdef list _repr_info(self):
        info = Handle._repr_info(self)
        info.insert(2 if self._cancelled else 1, f"when={self._when}")
        return info

    def __lt__(self, TimerHandle other):
        return self._when < other._when

    def __le__(self, TimerHandle other):
        return self._when <= other._when

    def __gt__(self, TimerHandle other):
        return self._when > other._when

    def __ge__(self, TimerHandle other):
        return self._when >= other._when


cdef inline int init_handle(Handle handle, LoopCore loop, object callback, tuple args, object context) except -1:
    """Fill in a new handle: callback(*args), to run on `loop` in `context`
    (a copy of the current one when None)."""
    handle._callback = callback
    handle._args = args
    handle._context = PyContext_CopyCurrent() if context is None else context
    handle._loop = loop
    return 0


cdef inline bint timer_before(TimerHandle a, TimerHandle b):
    return a._when < b._when or (a._when == b._when and a.sequence < b.sequence)
