# Declarations of the POSIX socket API, as far as cppcorn.loop uses it and
# Cython's own libc/posix declarations lack it (iovec and writev() are in
# posix.uio, close() in posix.unistd). One block per system header.

cdef extern from "<errno.h>":
    # Another name for EAGAIN on most systems, not on all.
    int EWOULDBLOCK

cdef extern from "<string.h>" nogil:
    size_t strnlen(const char *s, size_t size)

cdef extern from "<sys/socket.h>":
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    int AF_INET
    int AF_INET6
    int AF_UNIX
    int SHUT_WR

    struct sockaddr:
        sa_family_t sa_family

    # Room for any address (only ever cast to a sockaddr).
    struct sockaddr_storage:
        pass

    ssize_t recv(int fd, void *buf, size_t n, int flags) nogil
    ssize_t send(int fd, const void *buf, size_t n, int flags) nogil
    int getsockname(int fd, sockaddr *addr, socklen_t *length)
    int getpeername(int fd, sockaddr *addr, socklen_t *length)
    int setsockopt(int fd, int level, int name, const void *value, socklen_t size)
    int shutdown(int fd, int how)

cdef extern from "<sys/un.h>":
    struct sockaddr_un:
        char sun_path[1]  # of the platform's size

cdef extern from "<netinet/in.h>":
    int IPPROTO_TCP
    # Room for any address inet_ntop() writes (IPv4 ones included).
    enum: INET6_ADDRSTRLEN

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

cdef extern from "<netinet/tcp.h>":
    int TCP_NODELAY

cdef extern from "<arpa/inet.h>":
    unsigned short ntohs(unsigned short value)
    unsigned int ntohl(unsigned int value)
    const char *inet_ntop(int family, const void *address, char *text, socklen_t size)
