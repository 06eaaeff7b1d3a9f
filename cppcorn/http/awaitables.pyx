# Awaitables written by hand. See awaitables.pxd.
#
# csrc/am_send.h lets such an object return without raising StopIteration
# in the two slots the interpreter steps it through (am_send, and
# tp_iternext for `await` on 3.12+); the Python-level __next__(), send() and
# throw() raise it as coroutines do.
import collections.abc

cimport cython
from cpython.ref cimport Py_INCREF

from cppcorn.includes.am_send cimport PYGEN_NEXT, PYGEN_RETURN, cc_install_am_send

STEP_DONE = object()


cdef int step_result(object step, PyObject **result) except -1:
    if step is STEP_DONE:
        Py_INCREF(None)
        result[0] = <PyObject *>None
        return PYGEN_RETURN
    Py_INCREF(step)
    result[0] = <PyObject *>step
    return PYGEN_NEXT


cdef object yielded_or_stop(object step):
    if step is STEP_DONE:
        raise StopIteration
    return step


cdef object to_wait_on(object future):
    future._asyncio_future_blocking = True
    return future


cdef object thrown(object typ, object val, object tb):
    if val is None:
        val = typ if isinstance(typ, BaseException) else typ()
    if tb is not None:
        val = val.with_traceback(tb)
    return val


cdef class SendTarget:
    cdef object send_message(self, object message):
        raise NotImplementedError


@cython.freelist(16)
cdef class SendCall:
    """What send(message) returns: a coroutine in all but type (asyncio
    takes it as one, see the registration below) that acts on the message
    when first stepped, as `async def send()` would. A Cython coroutine cost
    about 600 instructions per send() in its making, stepping and freeing
    (callgrind, 3.11); a hello-world response makes two.

    Nothing happens at call time: run_coroutine_threadsafe(send(message),
    loop) from another thread must leave the work to the loop's thread.
    The interpreter and asyncio's Task step it through am_send and
    tp_iternext (without them, the StopIteration that ended each send()
    made a frame object for its traceback: callgrind, 3.13, 29.5k
    instructions per hello request, 3.11 took am_send and 14.6k);
    __next__, send() and throw() are the same steps for everyone else.
    """

    @staticmethod
    cdef SendCall create(SendTarget target, object message):
        cdef SendCall call = SendCall.__new__(SendCall)
        call.target = target
        call.message = message
        return call

    def __await__(self):
        return self

    def __iter__(self):
        # What __await__() returns is iterated by `yield from`.
        return self

    def __next__(self):
        return yielded_or_stop(self._step())

    def send(self, value):
        return yielded_or_stop(self._step())

    def throw(self, typ, val=None, tb=None):
        # Into the wait for the drain (a cancellation) or before the start:
        # either way it ends the call, as it would a coroutine.
        self.close()
        raise thrown(typ, val, tb)

    def close(self):
        self.target = None
        self.message = None
        self.waiter = None
        self.state = CALL_DONE

    cdef object _step(self):
        """The future to wait on (the transport's buffer is full), or
        STEP_DONE."""
        cdef object waiter
        if self.state == CALL_NEW:
            self.state = CALL_DONE
            waiter = self.target.send_message(self.message)
            self.target = None
            self.message = None
            if waiter is None:
                return STEP_DONE
            self.waiter = waiter
            self.state = CALL_WAITING
            return to_wait_on(waiter)
        if self.state == CALL_WAITING:
            waiter = self.waiter
            self.waiter = None
            self.state = CALL_DONE
            waiter.result()
            return STEP_DONE
        raise RuntimeError("cannot reuse already awaited coroutine")


cdef int _send_call_am_send(PyObject *call, PyObject *arg, PyObject **result) except -1:
    return step_result((<SendCall>call)._step(), result)


cc_install_am_send(SendCall, _send_call_am_send)
collections.abc.Coroutine.register(SendCall)
