# The calls cppcorn.loop makes on socket descriptors, and how their
# failures read: shared by stream.pyx (transports) and sockets.pyx (sock_*).
# Declarations and inline functions only; there is no module behind it.

from libc.errno cimport EAGAIN, EINTR
from libc.string cimport strerror

cdef extern from *:
    """
    #include <errno.h>
    #include <sys/types.h>
    #include <sys/socket.h>
    #include <sys/uio.h>
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0
    #endif
    """
    int EWOULDBLOCK
    # send() on a connection the peer reset fails with EPIPE instead of
    # raising SIGPIPE (where the platform has the flag).
    int MSG_NOSIGNAL

    struct iovec:
        void *iov_base
        size_t iov_len

    ssize_t recv(int fd, void *buf, size_t n, int flags) nogil
    ssize_t send(int fd, const void *buf, size_t n, int flags) nogil
    ssize_t writev(int fd, const iovec *iov, int iovcnt) nogil


cdef inline bint would_block(int error) noexcept:
    """The socket is not ready: wait for it, this is no failure."""
    return error == EAGAIN or error == EWOULDBLOCK or error == EINTR


cdef inline object os_error(int error):
    """The OSError (subclass) Python raises for this errno."""
    return OSError(error, (<bytes>strerror(error)).decode())
