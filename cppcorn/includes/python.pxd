# CPython C-API calls cppcorn uses that Cython's own cpython/*.pxd do not
# declare (Python.h).
from cpython.ref cimport PyObject


cdef extern from "Python.h":
    # What PyIter_Send() and am_send return.
    ctypedef enum PySendResult:
        PYGEN_RETURN    # finished: *presult is the return value
        PYGEN_ERROR     # an exception is raised
        PYGEN_NEXT      # *presult is the value yielded

    int PyIter_Send(object iterator, object arg, PyObject **presult) except -1
    bint PyCoro_CheckExact(object obj)

    # A file system path from bytes, decoded as os.fsdecode() does.
    object PyUnicode_DecodeFSDefaultAndSize(const char *s, Py_ssize_t size)
    # A C library message (strerror()), decoded as os.strerror() does.
    object PyUnicode_DecodeLocale(const char *s, const char *errors)

    # The garbage collector's slots of a type, the only ones cppcorn sets.
    # Cython's cpython/object.pxd declares these callbacks `except -1`;
    # here they are what CPython calls them as, C functions that raise
    # nothing.
    ctypedef int (*visitproc)(PyObject *, void *)
    ctypedef int (*traverseproc)(PyObject *, visitproc, void *)
    ctypedef int (*inquiry)(PyObject *)
    ctypedef struct PyTypeObject:
        traverseproc tp_traverse
        inquiry tp_clear
