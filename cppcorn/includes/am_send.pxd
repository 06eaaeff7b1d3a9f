# Declarations of csrc/am_send.h: stepping an extension type's instances as
# coroutines through am_send and tp_iternext, without StopIteration.
from cpython.ref cimport PyObject


cdef extern from "am_send.h":
    # PySendResult, as cc_send_function returns it.
    enum:
        PYGEN_RETURN    # finished: *result is None
        PYGEN_ERROR     # an exception is raised
        PYGEN_NEXT      # *result is what to yield

    ctypedef int (*cc_send_function)(PyObject *self, PyObject *arg, PyObject **result) except -1
    int cc_install_am_send(type extension_type, cc_send_function send) except -1
