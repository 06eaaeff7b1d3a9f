# loop.sock_recv(), sock_recv_into() and sock_sendall() for cppcorn.loop.
#
# The same steps as asyncio's selector loop (try the call at once; if the
# socket is not ready, wait on the descriptor with a reader/writer callback
# that retries, and stop watching when the future is done or cancelled),
# with the calls made on the descriptor in C: a socket that is not ready
# costs a return code, not a raised and caught BlockingIOError.

import ssl

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from libc.errno cimport errno

cimport cython

from cppcorn.includes.socket_calls cimport MSG_NOSIGNAL
from cppcorn.includes.system cimport recv, send
from cppcorn.loop.errors cimport os_error, would_block


# Receives of up to this size go through the stack and are copied out at
# their exact size; larger ones are read into a bytes object of the size
# asked for.
cdef enum:
    SMALL_RECV = 4096

cdef object NOT_READY = object()


cdef int check_socket(loop, sock) except -1:
    # asyncio's checks, in its words.
    if isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")
    if loop.get_debug() and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")
    return 0


cdef object recv_bytes(int fd, Py_ssize_t n):
    """Up to n bytes from fd, b"" at EOF, or NOT_READY."""
    cdef char small[SMALL_RECV]
    cdef ssize_t got
    if n < 0:
        raise ValueError("negative buffersize in recv")
    if n <= SMALL_RECV:
        got = recv(fd, small, <size_t>n, 0)
        if got < 0:
            if would_block(errno):
                return NOT_READY
            raise os_error(errno)
        return PyBytes_FromStringAndSize(small, got)
    data = PyBytes_FromStringAndSize(NULL, n)
    got = recv(fd, PyBytes_AS_STRING(data), <size_t>n, 0)
    if got < 0:
        if would_block(errno):
            return NOT_READY
        raise os_error(errno)
    if got == n:
        return data
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(data), got)


cdef object recv_into(int fd, object buffer):
    """Bytes received into `buffer` (their count), or NOT_READY."""
    cdef Py_buffer view
    cdef ssize_t got
    cdef int error = 0
    PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE)
    got = recv(fd, view.buf, <size_t>view.len, 0)
    if got < 0:
        error = errno
    PyBuffer_Release(&view)
    if got < 0:
        if would_block(error):
            return NOT_READY
        raise os_error(error)
    return got


cdef Py_ssize_t send_from(int fd, object data, Py_ssize_t offset) except -2:
    """Send data[offset:]; the count sent, or -1 if the socket is not ready."""
    cdef Py_buffer view
    cdef ssize_t sent
    cdef int error = 0
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    sent = send(fd, <char *>view.buf + offset, <size_t>(view.len - offset), MSG_NOSIGNAL)
    if sent < 0:
        error = errno
    PyBuffer_Release(&view)
    if sent < 0:
        if would_block(error):
            return -1
        raise os_error(error)
    return sent


@cython.final
cdef class SocketWait:
    """A sock_*() call waiting for its descriptor: called by the loop when
    the descriptor is ready, until the future is done."""

    cdef object loop
    cdef object future
    cdef int fd
    cdef bint writing
    cdef object handle
    # sock_recv: the size; sock_recv_into: the buffer; sock_sendall: the
    # data (buffer), its size and how much of it went out.
    cdef Py_ssize_t size
    cdef object buffer
    cdef Py_ssize_t sent

    def __call__(self):
        if self.future.done():
            return
        try:
            if self.writing:
                result = self.send_more()
            elif self.buffer is not None:
                result = recv_into(self.fd, self.buffer)
            else:
                result = recv_bytes(self.fd, self.size)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.future.set_exception(exc)
            return
        if result is not NOT_READY:
            self.future.set_result(result)

    cdef object send_more(self):
        cdef Py_ssize_t sent = send_from(self.fd, self.buffer, self.sent)
        if sent < 0:
            return NOT_READY
        self.sent += sent
        return None if self.sent == self.size else NOT_READY

    def done(self, future):
        # Stop watching, unless the handle was replaced (and so cancelled) by
        # another reader or writer on this descriptor meanwhile.
        if not self.handle.cancelled():
            if self.writing:
                self.loop.remove_writer(self.fd)
            else:
                self.loop.remove_reader(self.fd)


cdef object wait_for(loop, sock, bint writing, Py_ssize_t size, object buffer, Py_ssize_t sent):
    """Watch sock's descriptor and retry the call (its SocketWait fields:
    size, buffer, sent) each time it is ready; the future of its result."""
    cdef SocketWait wait = SocketWait.__new__(SocketWait)
    wait.loop = loop
    wait.future = loop.create_future()
    wait.fd = sock.fileno()
    wait.writing = writing
    loop._ensure_fd_no_transport(wait.fd)
    wait.size = size
    wait.buffer = buffer
    wait.sent = sent
    if writing:
        wait.handle = loop._add_writer(wait.fd, wait)
    else:
        wait.handle = loop._add_reader(wait.fd, wait)
    wait.future.add_done_callback(wait.done)
    return wait.future


async def sock_recv(self, sock, n):
    """Receive up to n bytes from sock (asyncio's loop.sock_recv)."""
    check_socket(self, sock)
    data = recv_bytes(sock.fileno(), n)
    if data is NOT_READY:
        data = await wait_for(self, sock, False, n, None, 0)
    return data


async def sock_recv_into(self, sock, buf):
    """Receive into buf; the number of bytes (asyncio's loop.sock_recv_into)."""
    check_socket(self, sock)
    count = recv_into(sock.fileno(), buf)
    if count is NOT_READY:
        count = await wait_for(self, sock, False, 0, buf, 0)
    return count


async def sock_sendall(self, sock, data):
    """Send all of data (asyncio's loop.sock_sendall)."""
    check_socket(self, sock)
    # Held for as long as sending goes on: a memoryview keeps the exported
    # buffer (and so a bytearray's size) fixed meanwhile, as asyncio's does.
    view = memoryview(data)
    cdef Py_ssize_t total = view.nbytes
    cdef Py_ssize_t sent = send_from(sock.fileno(), view, 0) if total else 0
    if sent != total:
        await wait_for(self, sock, True, total, view, max(sent, 0))
