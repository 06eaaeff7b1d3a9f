# Awaitables written by hand: objects that asyncio and the interpreter step
# as coroutines, without a Cython coroutine's frame or StopIteration. Each
# has one _step() that returns what to yield, or STEP_DONE once finished;
# the helpers below turn that into the coroutine protocol's results.
from cpython.ref cimport PyObject


# What a _step() returns once the awaitable has finished (an application's
# coroutine may yield None, a bare yield, so None cannot say it).
cdef object STEP_DONE

# am_send's result for what a _step() returned (csrc/am_send.h).
cdef int step_result(object step, PyObject **result) except -1
# __next__()/send()'s result: the value yielded, or StopIteration raised.
cdef object yielded_or_stop(object step)
# `future` as `await future` hands it to the task, which checks the flag to
# tell a wait from a stray yield.
cdef object to_wait_on(object future)
# The exception of a coroutine's throw(typ[, val[, tb]]).
cdef object thrown(object typ, object val, object tb)
