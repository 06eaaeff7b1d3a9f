/* am_send (Python 3.10+): the slot through which the interpreter (`await`,
 * `yield from`) and asyncio's Task step an awaitable, and through which the
 * awaitable can finish by returning its value instead of raising
 * StopIteration. Cython cannot declare the slot, and raising StopIteration
 * from Cython code builds a traceback entry each time, so a module installs
 * the slot on its extension type when it is imported. */
#ifndef CC_AM_SEND_H
#define CC_AM_SEND_H

#include <Python.h>

/* Returns PYGEN_RETURN (0) or PYGEN_NEXT (1) with *result set, or
 * PYGEN_ERROR (-1) with an exception raised. */
typedef int (*cc_send_function)(PyObject *self, PyObject *arg, PyObject **result);

static int cc_install_am_send(PyTypeObject *type, cc_send_function send)
{
    if (type->tp_as_async == NULL || type->tp_as_async->am_await == NULL) {
        PyErr_Format(PyExc_TypeError, "%s has no __await__", type->tp_name);
        return -1;
    }
    type->tp_as_async->am_send = (sendfunc)send;
    return 0;
}

#endif
