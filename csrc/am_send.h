/* How the interpreter and asyncio step an awaitable that is not a native
 * coroutine, and how it can finish without raising StopIteration:
 *
 * - am_send (Python 3.10+): what PyIter_Send() calls, as asyncio's Task
 *   does, and `await`/`yield from` up to Python 3.11. It finishes by
 *   returning its value.
 * - tp_iternext: what `await` calls instead from Python 3.12 on (the SEND
 *   instruction, when it sends None). It may finish by returning NULL with
 *   no exception set, which the interpreter takes as a return of None.
 *
 * Cython can declare neither as such, and raising StopIteration from Cython
 * code builds a traceback entry (a frame object) each time, so a module
 * installs both on its extension type when it is imported: the type's send
 * function as am_send, and tp_iternext through it. */
#ifndef CC_AM_SEND_H
#define CC_AM_SEND_H

#include <Python.h>

/* Returns PYGEN_NEXT (1) with *result set to what to yield, PYGEN_RETURN (0)
 * with *result set to None (the awaitables that use this return nothing),
 * or PYGEN_ERROR (-1) with an exception raised. */
typedef int (*cc_send_function)(PyObject *self, PyObject *arg, PyObject **result);

static PyObject *cc_iternext_through_am_send(PyObject *self)
{
    PyObject *result = NULL;
    switch (Py_TYPE(self)->tp_as_async->am_send(self, Py_None, &result)) {
    case PYGEN_NEXT:
        return result;
    case PYGEN_RETURN:
        Py_DECREF(result);  /* None */
        return NULL;
    default:
        return NULL;
    }
}

static int cc_install_am_send(PyTypeObject *type, cc_send_function send)
{
    if (type->tp_as_async == NULL || type->tp_as_async->am_await == NULL || type->tp_iternext == NULL) {
        PyErr_Format(PyExc_TypeError, "%s has no __await__ or no __next__", type->tp_name);
        return -1;
    }
    type->tp_as_async->am_send = (sendfunc)send;
    type->tp_iternext = cc_iternext_through_am_send;
    PyType_Modified(type);
    return 0;
}

#endif
