# How the failures of cppcorn.loop's system calls read: shared by core.pyx
# (the poller), stream.pyx (transports) and sockets.pyx (sock_*). Inline
# functions only; there is no module behind it.

from libc.errno cimport EAGAIN, EINTR
from libc.string cimport strerror

from cppcorn.includes.python cimport PyUnicode_DecodeLocale
from cppcorn.includes.system cimport EWOULDBLOCK


cdef inline bint would_block(int error) noexcept:
    """The socket is not ready: wait for it, this is no failure."""
    return error == EAGAIN or error == EWOULDBLOCK or error == EINTR


cdef inline object os_error(int error):
    """The OSError (subclass) Python raises for this errno, its message as
    os.strerror() gives it."""
    return OSError(error, PyUnicode_DecodeLocale(strerror(error), "surrogateescape"))
