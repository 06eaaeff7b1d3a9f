# Declarations of csrc/socket_calls.h: the socket calls of cppcorn.loop that
# differ between POSIX systems.
from cppcorn.includes.system cimport sockaddr, socklen_t


cdef extern from "socket_calls.h":
    # A flag for send(): fail with EPIPE rather than raise SIGPIPE on a reset
    # connection (0 where the platform has no such flag).
    int MSG_NOSIGNAL

    # accept() of a non-blocking, close-on-exec connection.
    int cc_accept(int fd, sockaddr *addr, socklen_t *length)

    # Where sockaddr_un.sun_path starts; whether a leading NUL in it names
    # Linux's abstract namespace.
    size_t CC_SUN_PATH_OFFSET
    bint CC_ABSTRACT_UNIX_NAMES
