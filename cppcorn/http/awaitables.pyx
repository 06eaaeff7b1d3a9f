# Awaitables written by hand (SendCall in cycle.pyx, RequestRunner in
# runner.pyx). See awaitables.pxd.
#
# csrc/am_send.h lets such an object return without raising StopIteration
# in the two slots the interpreter steps it through (am_send, and
# tp_iternext for `await` on 3.12+); the Python-level __next__(), send() and
# throw() raise it as coroutines do.
from cpython.ref cimport Py_INCREF

from cppcorn.includes.python cimport PYGEN_NEXT, PYGEN_RETURN

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
