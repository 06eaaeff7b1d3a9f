# The calls cppcorn.loop makes on socket descriptors, and how their
# failures read: shared by stream.pyx (transports) and sockets.pyx (sock_*).
# Declarations and inline functions only; there is no module behind it.

from libc.errno cimport EAGAIN, EINTR
from libc.string cimport strerror

cdef extern from *:
    """
    #include <errno.h>
    #include <fcntl.h>
    #include <stddef.h>
    #include <unistd.h>
    #include <sys/types.h>
    #include <sys/socket.h>
    #include <sys/uio.h>
    #include <sys/un.h>
    #include <netinet/in.h>
    #include <arpa/inet.h>
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0
    #endif

    /* accept() of a non-blocking, close-on-exec connection: one accept4()
       where the platform has it (Linux, the BSDs), else (macOS) accept()
       and two fcntl() calls. */
    static inline int cc_accept(int fd, struct sockaddr *addr, socklen_t *length)
    {
    #if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
        return accept4(fd, addr, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    #else
        int conn = accept(fd, addr, length);
        int flags, error;
        if (conn < 0)
            return -1;
        flags = fcntl(conn, F_GETFL);
        if (flags < 0 || fcntl(conn, F_SETFL, flags | O_NONBLOCK) < 0
                || fcntl(conn, F_SETFD, FD_CLOEXEC) < 0) {
            error = errno;
            close(conn);
            errno = error;
            return -1;
        }
        return conn;
    #endif
    }

    /* Where a Unix socket address's path starts, and whether a leading NUL
       in it names Linux's abstract namespace (elsewhere it is the empty
       path of an unnamed socket). */
    #define CC_SUN_PATH_OFFSET offsetof(struct sockaddr_un, sun_path)
    #ifdef __linux__
    #define CC_ABSTRACT_UNIX_NAMES 1
    #else
    #define CC_ABSTRACT_UNIX_NAMES 0
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

    # Socket addresses: the fields cppcorn.loop reads (the structures are
    # the platform's).
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    int AF_INET
    int AF_INET6
    int AF_UNIX
    # Room for any address inet_ntop() writes (IPv4 ones included).
    enum: INET6_ADDRSTRLEN

    struct sockaddr:
        sa_family_t sa_family

    # Room for any address (only ever cast to a sockaddr).
    struct sockaddr_storage:
        pass

    struct in_addr:
        pass

    struct in6_addr:
        pass

    struct sockaddr_in:
        unsigned short sin_port
        in_addr sin_addr

    struct sockaddr_in6:
        unsigned short sin6_port
        unsigned int sin6_flowinfo
        in6_addr sin6_addr
        unsigned int sin6_scope_id

    struct sockaddr_un:
        char sun_path[1]  # of the platform's size

    size_t CC_SUN_PATH_OFFSET
    bint CC_ABSTRACT_UNIX_NAMES

    unsigned short ntohs(unsigned short value)
    unsigned int ntohl(unsigned int value)
    const char *inet_ntop(int family, const void *address, char *text, socklen_t size)

    int SHUT_WR
    int cc_accept(int fd, sockaddr *addr, socklen_t *length)
    int getsockname(int fd, sockaddr *addr, socklen_t *length)
    int getpeername(int fd, sockaddr *addr, socklen_t *length)
    int shutdown(int fd, int how)
    int close(int fd)


cdef inline bint would_block(int error) noexcept:
    """The socket is not ready: wait for it, this is no failure."""
    return error == EAGAIN or error == EWOULDBLOCK or error == EINTR


cdef inline object os_error(int error):
    """The OSError (subclass) Python raises for this errno."""
    return OSError(error, (<bytes>strerror(error)).decode())
