# Declarations of csrc/am_send.h: stepping an extension type's instances as
# coroutines through am_send and tp_iternext, without StopIteration.
from cpython.ref cimport PyObject


cdef extern from "am_send.h":
    # Returns a PySendResult (cppcorn.includes.python); PYGEN_RETURN with
    # *result None.
    ctypedef int (*cc_send_function)(PyObject *self, PyObject *arg, PyObject **result) except -1
    int cc_install_am_send(type extension_type, cc_send_function send) except -1
