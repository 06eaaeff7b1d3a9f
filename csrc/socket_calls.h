/* Socket calls of cppcorn.loop that differ between POSIX systems, written
 * once here so that the Cython code calls the same names everywhere. */
#ifndef CC_SOCKET_CALLS_H
#define CC_SOCKET_CALLS_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

/* send() on a connection the peer reset fails with EPIPE instead of
 * raising SIGPIPE, where the platform has the flag. */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* accept() of a non-blocking, close-on-exec connection: one accept4()
 * where the platform has it (Linux, the BSDs), else (macOS) accept() and
 * two fcntl() calls. */
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

/* Where a Unix socket address's path starts, and whether a leading NUL in
 * it names Linux's abstract namespace (elsewhere it is the empty path of an
 * unnamed socket). */
#define CC_SUN_PATH_OFFSET offsetof(struct sockaddr_un, sun_path)
#ifdef __linux__
#define CC_ABSTRACT_UNIX_NAMES 1
#else
#define CC_ABSTRACT_UNIX_NAMES 0
#endif

#endif
