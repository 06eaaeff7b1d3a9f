# CPython C-API calls cppcorn uses that Cython's own cpython/*.pxd do not
# declare (Python.h).
from cpython.ref cimport PyObject


cdef extern from "Python.h":
    # PySendResult: PYGEN_RETURN 0, PYGEN_ERROR -1 (raised), PYGEN_NEXT 1.
    int PyIter_Send(object iterator, object arg, PyObject **presult) except -1
    bint PyCoro_CheckExact(object obj)
