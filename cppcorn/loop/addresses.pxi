# Socket addresses as Python objects, made in C from the sockaddr the
# kernel gives (accept4(), getpeername(), getsockname()), as CPython's socket
# module makes them. Included in stream.pyx.

from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_FromString

from cppcorn.includes.python cimport PyUnicode_DecodeFSDefaultAndSize
from cppcorn.includes.socket_calls cimport CC_ABSTRACT_UNIX_NAMES, CC_SUN_PATH_OFFSET
from cppcorn.includes.system cimport (
    AF_INET, AF_INET6, AF_UNIX, INET6_ADDRSTRLEN, inet_ntop, ntohl, ntohs, sockaddr_in, sockaddr_in6, sockaddr_un,
    strnlen,
)

cdef object _sock_call(sock, str method):
    if sock is None:
        return None
    try:
        return getattr(sock, method)()
    except OSError:
        return None


# Given with the type, this flag tells a socket object made over an accepted
# descriptor that it is non-blocking (accept4() made it so), which
# setblocking(False) would tell it with an ioctl. macOS has no such flag.
cdef int NONBLOCK_TYPE_FLAG = getattr(socket, "SOCK_NONBLOCK", 0)

# What sockaddr_object() gives for an address family it does not read: the
# socket object's own method answers for those.
cdef object UNKNOWN_FAMILY = object()


cdef size_t format_ipv4(const unsigned char *octets, char *text) noexcept:
    """Write the address in dotted decimal, as inet_ntop() does, and return
    its length. glibc's inet_ntop() formats with sprintf(): 1,700
    instructions, twice per accepted connection (peer and local address)."""
    cdef size_t length = 0
    cdef unsigned int octet
    cdef int i
    for i in range(4):
        octet = octets[i]
        if octet >= 100:
            text[length] = <char>(48 + octet // 100)
            length += 1
        if octet >= 10:
            text[length] = <char>(48 + octet // 10 % 10)
            length += 1
        text[length] = <char>(48 + octet % 10)
        length += 1
        if i < 3:
            text[length] = b'.'
            length += 1
    return length


cdef object sockaddr_object(const sockaddr *addr, socklen_t length):
    """The object CPython's socket module makes of this address (in
    accept(), getpeername(), getsockname()): (host, port) for AF_INET;
    (host, port, flowinfo, scope_id) for AF_INET6, the host as inet_ntop()
    writes it (no %scope suffix, '::ffff:1.2.3.4' for a v4-mapped address);
    for AF_UNIX the path decoded as os.fsdecode() does, '' for an unnamed
    socket, bytes for a name in Linux's abstract namespace. None for an
    empty address, UNKNOWN_FAMILY for any other family."""
    cdef char host[INET6_ADDRSTRLEN]
    cdef const sockaddr_in *in4
    cdef const sockaddr_in6 *in6
    cdef const char *path
    cdef size_t size
    if length == 0:
        return None
    if addr.sa_family == AF_INET:
        in4 = <const sockaddr_in *>addr
        size = format_ipv4(<const unsigned char *>&in4.sin_addr, host)
        return (PyUnicode_DecodeASCII(host, <Py_ssize_t>size, NULL), ntohs(in4.sin_port))
    if addr.sa_family == AF_INET6:
        in6 = <const sockaddr_in6 *>addr
        if inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof(host)) is NULL:
            raise os_error(errno)
        return (PyUnicode_FromString(host), ntohs(in6.sin6_port), ntohl(in6.sin6_flowinfo), in6.sin6_scope_id)
    if addr.sa_family == AF_UNIX:
        path = <const char *>(<const sockaddr_un *>addr).sun_path
        size = length - CC_SUN_PATH_OFFSET if length > CC_SUN_PATH_OFFSET else 0
        if CC_ABSTRACT_UNIX_NAMES and size and path[0] == 0:
            return PyBytes_FromStringAndSize(path, <Py_ssize_t>size)
        # A path runs to its NUL, if the kernel counted one.
        return PyUnicode_DecodeFSDefaultAndSize(path, <Py_ssize_t>strnlen(path, size))
    return UNKNOWN_FAMILY
