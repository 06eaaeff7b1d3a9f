# Stream transports of cppcorn.loop. See stream.pxd.
#
# Behaviour (callback order, error messages, flow control, what close() and
# abort() do with buffered data) follows asyncio's _SelectorSocketTransport;
# the differences are mechanical: reads land in one per-process buffer and
# become a bytes object of exactly the received size (or, for a protocol
# offering a receiver, csrc/stream_seam.h, are parsed in place), writes go out with
# send()/writev() straight from the caller's bytes objects, and readiness
# arrives as a C call from the core instead of a queued handle.
#
# A server's plain connections are accepted here too (accept_connections()):
# accept4() hands over a non-blocking descriptor and the peer's address, and
# the transport is made from the descriptor alone. Its socket object, which
# costs an allocation and a getsockname(), is made only if someone asks.

import socket
import warnings

from asyncio import constants, protocols, trsock
from asyncio.log import logger

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid, PyCapsule_New
from libc.errno cimport ECONNABORTED, errno
from posix.uio cimport iovec, writev
from posix.unistd cimport close

from cppcorn.includes.compat cimport CC_SERVER_ATTACH_TAKES_TRANSPORT
from cppcorn.includes.io_poller cimport CC_IO_READ, CC_IO_WRITE
from cppcorn.includes.socket_calls cimport MSG_NOSIGNAL, cc_accept
from cppcorn.includes.stream_seam cimport CC_RECEIVER_CAPSULE, CC_SENDER_CAPSULE, cc_stream_receiver, cc_stream_sender
from cppcorn.includes.system cimport (
    IPPROTO_TCP, SHUT_WR, TCP_NODELAY, getpeername, getsockname, recv, send, setsockopt, shutdown, sockaddr,
    sockaddr_storage, socklen_t,
)
from cppcorn.loop.errors cimport os_error, would_block


# asyncio's sizes: reads of up to 256 KiB, write buffer limits 64 KiB/16 KiB,
# and a warning once writes keep coming to a lost connection.
cdef enum:
    READ_SIZE = 262144
    WRITEV_MAX = 64
    # Writes up to this size (and the high-water mark: waiting never pauses
    # the protocol) into an empty queue wait for the end of the loop's
    # iteration (StreamTransport.defer_write()); larger ones go at once.
    DEFER_LIMIT = 16384
cdef int LOG_THRESHOLD_FOR_CONNLOST_WRITES = constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES

# Reads land here, and are copied into a bytes object of the size received
# or parsed in place by a protocol's receiver. One buffer serves every loop:
# it is only used with the GIL held, from the recv() until the protocol's
# call returns (nothing in that call reads a stream transport).
cdef char read_buffer[READ_SIZE]


# The transport's side of csrc/stream_seam.h, offered to compiled protocols
# as StreamTransport.__cppcorn_sender__.

cdef int _seam_write(object transport, const char *data, Py_ssize_t size, object owner) except -1:
    return (<StreamTransport>transport).write_bytes(data, size, owner)


cdef int _seam_writelines(object transport, tuple chunks) except -1:
    return (<StreamTransport>transport).write_chunks(chunks)


cdef bint _seam_is_closing(object transport) noexcept:
    return (<StreamTransport>transport).closing


cdef cc_stream_sender SENDER = cc_stream_sender(_seam_write, _seam_writelines, _seam_is_closing)


cdef class StreamTransport(IOWatcher):
    """asyncio's transport interface for a connected TCP or Unix socket."""

    # For loop.sendfile() and loop.start_tls(), which look for these.
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE
    _start_tls_compatible = True
    __cppcorn_sender__ = PyCapsule_New(&SENDER, CC_SENDER_CAPSULE, NULL)

    def __init__(self, loop, sock, protocol, waiter=None, extra=None, server=None):
        self.sock = sock
        self.setup(loop, sock.fileno(), protocol, waiter, dict(extra) if extra else {}, server)

    cdef int setup(self, object loop, int fd, object protocol, object waiter, dict extra, object server) except -1:
        """Take charge of the connected descriptor `fd` (from here on the
        transport closes it) and start: connection_made() comes next."""
        self._loop = loop
        self.fd = fd
        self.fd_open = True
        self.extra = extra
        self.write_queue = []
        self.high_water = 64 * 1024
        self.low_water = 16 * 1024
        # No Nagle delay on TCP, as asyncio does. Set on the descriptor
        # directly: asking the socket object its family and type builds enum
        # members, which costs more than the call, and on a Unix socket the
        # call merely fails.
        cdef int one = 1
        setsockopt(self.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
        self.set_protocol(protocol)
        self.server = server
        if server is not None:
            tell_server(server, self, True)
        (<LoopCore>loop).attach(self)
        loop.call_soon(self._start, waiter)

    def _start(self, waiter):
        try:
            self._protocol.connection_made(self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": f"Exception in callback {self._protocol!r}.connection_made()",
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })
        self.update_interest()
        if waiter is not None and not waiter.cancelled():
            waiter.set_result(None)

    # ----------------------------------------------------- readiness

    cdef int update_interest(self) except -1:
        """Poll for what the transport needs now: reading unless paused,
        closing or at EOF; writing while bytes wait."""
        cdef unsigned interest = 0
        if not self.fd_open or self.core is None:
            return 0
        if not self.closing and not self.reading_paused and not self.eof_received:
            interest |= CC_IO_READ
        if self.write_size and not self.write_deferred:
            interest |= CC_IO_WRITE
        self.core.set_interest(self, interest)
        return 0

    cdef int on_ready(self, unsigned events) except -1:
        if events & CC_IO_READ:
            if self.buffered_protocol:
                self.read_ready_buffered()
            else:
                self.read_ready()
        if events & CC_IO_WRITE and self.write_size and self.fd_open:
            self.write_ready()
        return 0

    cdef int on_loop_closed(self) except -1:
        # The loop is gone: nothing will call connection_lost() any more.
        self.core = None
        return 0

    cdef int read_ready(self) except -1:
        cdef ssize_t n
        # Non-blocking calls: holding the GIL through them is cheaper than
        # letting go of it and taking it back.
        n = recv(self.fd, read_buffer, READ_SIZE, 0)
        if n <= 0:
            return self.read_nothing(n, errno)
        try:
            if self.receiver is not NULL:
                self.receiver.data_received(self._protocol, read_buffer, <size_t>n)
            else:
                self._protocol.data_received(PyBytes_FromStringAndSize(read_buffer, n))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
        return 0

    cdef int read_ready_buffered(self) except -1:
        cdef Py_buffer view
        cdef ssize_t n
        cdef int error = 0
        try:
            buffer = self._protocol.get_buffer(-1)
            if not len(buffer):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return 0
        PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE)
        n = recv(self.fd, view.buf, <size_t>view.len, 0)
        if n < 0:
            error = errno
        PyBuffer_Release(&view)
        if n <= 0:
            return self.read_nothing(n, error)
        try:
            self._protocol.buffer_updated(n)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")
        return 0

    cdef int read_nothing(self, ssize_t n, int error) except -1:
        """recv() returned `n` <= 0: the end of the stream (0), or a failure
        with errno `error`, which is none if the socket was merely not ready."""
        if n == 0:
            return self.read_eof()
        if not would_block(error):
            self.fatal_error(os_error(error), "Fatal read error on socket transport")
        return 0

    cdef int read_eof(self) except -1:
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return 0
        if keep_open:
            # Half-closed: the peer sends nothing more, writing goes on.
            self.eof_received = True
            self.update_interest()
        else:
            self.close()
        return 0

    # --------------------------------------------------------- writing

    def write(self, data):
        cdef Py_buffer view
        if type(data) is bytes:
            self.write_bytes(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), data)
            return
        if not isinstance(data, (bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            # A mutable buffer is copied if it has to wait.
            self.write_bytes(<const char *>view.buf, view.len, None)
        finally:
            PyBuffer_Release(&view)

    cdef int write_bytes(self, const char *data, Py_ssize_t size, object owner) except -1:
        """Send `size` bytes at `data` now, queueing what the socket does not
        take. `owner` is an immutable bytes object holding them, or None if
        they must be copied to wait."""
        cdef ssize_t sent
        if self.eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self.empty_waiter is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if size == 0:
            return 0
        if self.conn_lost:
            return self.drop_lost_write()
        if self.write_size == 0 and self.defer_write(size):
            if owner is None:
                owner = PyBytes_FromStringAndSize(data, size)
            self.queue(owner, 0)
        elif self.write_size == 0:
            sent = send(self.fd, data, <size_t>size, MSG_NOSIGNAL)
            if sent < 0:
                if not would_block(errno):
                    self.fatal_error(os_error(errno), "Fatal write error on socket transport")
                    return 0
                sent = 0
            if sent == size:
                return 0
            if owner is None:
                owner = PyBytes_FromStringAndSize(data + sent, size - sent)
                sent = 0
            self.queue(owner, sent)
            self.update_interest()
        else:
            if owner is None:
                owner = PyBytes_FromStringAndSize(data, size)
            self.queue(owner, 0)
        self.maybe_pause_protocol()
        return 0

    cdef int drop_lost_write(self) except -1:
        """A write once the connection is lost goes nowhere; as asyncio does,
        say so once such writes keep coming."""
        if self.conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
            logger.warning("socket.send() raised exception.")
        self.conn_lost += 1
        return 0

    cdef int queue(self, object data, Py_ssize_t offset) except -1:
        if not self.write_queue:
            self.write_offset = offset
        self.write_queue.append(data)
        self.write_size += PyBytes_GET_SIZE(data) - offset
        return 0

    def writelines(self, list_of_data):
        chunks = []
        for data in list_of_data:
            if type(data) is not bytes:
                if not isinstance(data, (bytearray, memoryview)):
                    raise TypeError(
                        f"data argument must be a bytes-like object, not {type(data).__name__!r}")
                data = bytes(data)
            if data:
                chunks.append(data)
        if chunks:
            self.write_chunks(chunks)

    cdef int write_chunks(self, object chunks) except -1:
        """writelines() of a sequence of bytes objects: all of them in one
        writev(); what the socket does not take waits for writability."""
        cdef bint was_idle
        if self.eof_written:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if self.empty_waiter is not None:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        if self.conn_lost:
            return self.drop_lost_write()
        was_idle = self.write_size == 0
        for data in chunks:
            if PyBytes_GET_SIZE(data):
                self.queue(data, 0)
        if was_idle and self.write_size and not self.defer_write(self.write_size):
            self.write_ready()
        self.maybe_pause_protocol()
        return 0

    cdef int write_ready(self) except -1:
        cdef iovec iov[WRITEV_MAX]
        cdef int count = 0, i
        cdef ssize_t sent
        cdef Py_ssize_t offset = self.write_offset, length
        cdef list queue = self.write_queue
        for data in queue:
            if count == WRITEV_MAX:
                break
            iov[count].iov_base = <void *>(PyBytes_AS_STRING(data) + offset)
            iov[count].iov_len = <size_t>(PyBytes_GET_SIZE(data) - offset)
            offset = 0
            count += 1
        sent = writev(self.fd, iov, count)
        if sent < 0:
            if would_block(errno):
                self.update_interest()
                return 0
            error = os_error(errno)
            del queue[:]
            self.write_size = 0
            self.update_interest()
            self.fatal_error(error, "Fatal write error on socket transport")
            return 0
        self.write_size -= sent
        # Drop what went out, keep the offset into the first remaining chunk.
        i = 0
        sent += self.write_offset
        while i < count:
            length = PyBytes_GET_SIZE(queue[i])
            if sent < length:
                break
            sent -= length
            i += 1
        del queue[:i]
        self.write_offset = sent
        self.maybe_resume_protocol()
        if self.flow_waiter is not None and self.write_size <= self.low_water:
            self.release_flow_waiter(None)
        if self.write_size:
            self.update_interest()
            return 0
        self.write_offset = 0
        self.update_interest()
        if self.empty_waiter is not None:
            self.empty_waiter.set_result(None)
        if self.closing:
            self._call_connection_lost(None)
        elif self.eof_written:
            self.shutdown_write()
        return 0

    cdef bint defer_write(self, Py_ssize_t size) except -1:
        """Whether `size` bytes, the whole queue once queued, are to wait
        for on_flush() at the end of the loop's iteration: False for more
        than DEFER_LIMIT or the high-water mark, or when no iteration runs
        (then write now)."""
        if size > DEFER_LIMIT or size > self.high_water:
            return False
        if self.core is None or not self.core.defer_flush(self):
            return False
        self.write_deferred = True
        return True

    cdef int on_flush(self) except -1:
        if self.write_deferred:
            self.write_deferred = False
            if self.write_size and self.fd_open:
                self.write_ready()
        return 0

    cdef int shutdown_write(self) except -1:
        # On the descriptor, whether or not a socket object was made for it.
        # It fails when the peer has reset the connection meanwhile (ENOTCONN):
        # a fatal error of the connection, as a failed write is (and as uvloop
        # reports it), not an exception out of write_eof() or the loop's flush.
        if shutdown(self.fd, SHUT_WR) < 0:
            self.fatal_error(os_error(errno), "Fatal error on socket transport shutdown")
        return 0

    def can_write_eof(self):
        return True

    def write_eof(self):
        if self.closing or self.eof_written:
            return
        self.eof_written = True
        if not self.write_size:
            self.shutdown_write()

    # ------------------------------------------------------ flow control

    def set_write_buffer_limits(self, high=None, low=None):
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self.high_water = high
        self.low_water = low
        self.maybe_pause_protocol()

    def get_write_buffer_limits(self):
        return (self.low_water, self.high_water)

    def get_write_buffer_size(self):
        return self.write_size

    cdef int maybe_pause_protocol(self) except -1:
        if self.write_size > self.high_water and not self._protocol_paused:
            self.set_protocol_paused(True)
        return 0

    cdef int maybe_resume_protocol(self) except -1:
        if self._protocol_paused and self.write_size <= self.low_water:
            self.set_protocol_paused(False)
        return 0

    cdef int set_protocol_paused(self, bint paused) except -1:
        """Tell the protocol to pause or to resume writing; its failure is
        reported, not raised (as asyncio's transports do)."""
        self._protocol_paused = paused
        try:
            if paused:
                self._protocol.pause_writing()
            else:
                self._protocol.resume_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.report("protocol.pause_writing() failed" if paused else "protocol.resume_writing() failed", exc)
        return 0

    def pause_reading(self):
        self.set_reading_paused(True)

    def resume_reading(self):
        self.set_reading_paused(False)

    cdef int set_reading_paused(self, bint paused) except -1:
        """pause_reading() and resume_reading(): nothing to do once closing
        or already so."""
        if self.closing or self.reading_paused == paused:
            return 0
        self.reading_paused = paused
        self.update_interest()
        if self._loop.get_debug():
            logger.debug("%r pauses reading" if paused else "%r resumes reading", self)
        return 0

    def is_reading(self):
        return not self.reading_paused and not self.closing

    # ---------------------------------------------------------- closing

    def is_closing(self):
        return self.closing

    def close(self):
        if self.closing:
            return
        self.closing = True
        self.update_interest()
        if not self.write_size:
            self.conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self):
        self.force_close(None)

    def _force_close(self, exc):
        # asyncio's sslproto closes its transport this way on TLS errors.
        self.force_close(exc)

    cdef int fatal_error(self, object exc, str message) except -1:
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self.report(message, exc)
        self.force_close(exc)
        return 0

    cdef int force_close(self, object exc) except -1:
        if self.conn_lost:
            return 0
        if self.write_deferred:
            # What this iteration wrote goes out first, as it would have
            # without the wait (abort() drops only what the socket refuses).
            self.on_flush()
            if self.conn_lost:
                return 0
        if self.write_size:
            del self.write_queue[:]
            self.write_size = 0
            self.write_offset = 0
        self.closing = True
        self.update_interest()
        self.conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)
        return 0

    def _call_connection_lost(self, exc):
        if self._protocol is None:
            return
        # From here on writes are dropped (with asyncio's warning), never
        # sent to a descriptor number that may already be reused.
        self.conn_lost = max(self.conn_lost, 1)
        if self.flow_waiter is not None:
            self.release_flow_waiter(exc if exc is not None else ConnectionError("Connection is closed by peer"))
        try:
            self._protocol.connection_lost(exc)
        finally:
            if self.core is not None:
                self.core.detach(self)
            self.close_descriptor()
            self._protocol = None
            server = self.server
            if server is not None:
                self.server = None
                tell_server(server, self, False)

    cdef int report(self, str message, object exc) except -1:
        self._loop.call_exception_handler({
            "message": message,
            "exception": exc,
            "transport": self,
            "protocol": self._protocol,
        })
        return 0

    def __del__(self):
        if self.fd_open:
            warnings.warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self.close_descriptor()

    cdef int close_descriptor(self) except -1:
        if not self.fd_open:
            return 0
        self.fd_open = False
        sock = self.sock
        if sock is None:
            # Nothing to report: the number is released whatever close() says.
            close(self.fd)
        else:
            # Through the object, which would otherwise close the number
            # again (perhaps reused by then) when it is collected.
            self.sock = None
            sock.close()
        return 0

    # ------------------------------------------------------ the rest

    def get_extra_info(self, name, default=None):
        if name in self.extra:
            return self.extra[name]
        # Computed on first use rather than for every connection.
        if name == "socket":
            sock = self.socket_object()
            value = trsock.TransportSocket(sock) if sock is not None else None
        elif name == "sockname":
            value = self.address(False)
        elif name == "peername":
            value = self.address(True)
        else:
            return default
        self.extra[name] = value
        return value

    cdef object socket_object(self):
        """The socket object over the descriptor, made on first use; None
        once the descriptor is closed."""
        if self.sock is None and self.fd_open:
            # The family is left for the constructor to find out: it asks
            # getsockname() to validate the descriptor anyway.
            sock = socket.socket(-1, socket.SOCK_STREAM | NONBLOCK_TYPE_FLAG, self.proto, self.fd)
            if not NONBLOCK_TYPE_FLAG:
                sock.setblocking(False)
            self.sock = sock
        return self.sock

    cdef object address(self, bint peer):
        """What socket.getpeername() (peer) or getsockname() gives for the
        descriptor, None if it fails (the connection is gone)."""
        cdef sockaddr_storage storage
        cdef socklen_t length = sizeof(storage)
        cdef int rc
        if not self.fd_open:
            return None
        if peer:
            rc = getpeername(self.fd, <sockaddr *>&storage, &length)
        else:
            rc = getsockname(self.fd, <sockaddr *>&storage, &length)
        if rc < 0:
            return None
        value = sockaddr_object(<sockaddr *>&storage, length)
        if value is UNKNOWN_FAMILY:
            value = _sock_call(self.socket_object(), "getpeername" if peer else "getsockname")
        return value

    def set_protocol(self, protocol):
        self._protocol = protocol
        self.buffered_protocol = isinstance(protocol, protocols.BufferedProtocol)
        receiver = getattr(type(protocol), "__cppcorn_receiver__", None)
        if PyCapsule_IsValid(receiver, CC_RECEIVER_CAPSULE):
            self.receiver = <const cc_stream_receiver *>PyCapsule_GetPointer(receiver, CC_RECEIVER_CAPSULE)
        else:
            self.receiver = NULL

    def get_protocol(self):
        return self._protocol

    def __repr__(self):
        info = [type(self).__name__]
        if not self.fd_open:
            info.append("closed")
        elif self.closing:
            info.append("closing")
        info.append(f"fd={self.fd}")
        if self.fd_open:
            info.append("read=" + ("polling" if self.interest & CC_IO_READ else "idle"))
            state = "polling" if self.interest & CC_IO_WRITE else "idle"
            info.append(f"write=<{state}, bufsize={self.write_size}>")
        return "<{}>".format(" ".join(info))

    # What asyncio's own code (sendfile, start_tls) expects of a transport,
    # besides the _loop, _protocol and _protocol_paused fields.

    @property
    def _sock(self):
        return self.socket_object()

    @property
    def _sock_fd(self):
        return self.fd

    def _make_empty_waiter(self):
        if self.empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        self.empty_waiter = self._loop.create_future()
        if not self.write_size:
            self.empty_waiter.set_result(None)
        return self.empty_waiter

    def _reset_empty_waiter(self):
        self.empty_waiter = None

    async def _wait_flow(self):
        """For loop.sendfile()'s fallback: return at once while the write
        buffer is not above its high-water mark, else once it is back down
        to the low one."""
        if self.closing:
            raise ConnectionError("Connection closed by peer")
        if self.write_size <= self.high_water:
            return
        self.flow_waiter = self._loop.create_future()
        await self.flow_waiter

    cdef int release_flow_waiter(self, object exc) except -1:
        waiter = self.flow_waiter
        self.flow_waiter = None
        if waiter is None or waiter.done():
            return 0
        if exc is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)
        return 0

    def _lend_descriptor(self):
        """Stop watching the socket so that sock_* calls may use it (sendfile)."""
        if self.core is not None:
            self.core.detach(self)

    def _reclaim_descriptor(self):
        if self.core is not None and self.fd_open:
            self.core.attach(self)
            self.update_interest()


include "addresses.pxi"


def accept_connections(loop, listener, protocol_factory, server, int backlog):
    """Accept up to `backlog` connections waiting on the listening socket,
    each with a protocol from `protocol_factory` and a StreamTransport made
    from the descriptor (loop._accept_connection() without TLS). Returns
    once none is waiting; raises the OSError of a failed accept()."""
    cdef int listener_fd = listener.fileno()
    # An accepted socket object takes its listener's protocol number.
    cdef int proto = listener.proto
    cdef int fd
    cdef sockaddr_storage storage
    cdef socklen_t length
    cdef StreamTransport transport
    for _ in range(backlog):
        length = sizeof(storage)
        fd = cc_accept(listener_fd, <sockaddr *>&storage, &length)
        if fd < 0:
            if would_block(errno) or errno == ECONNABORTED:
                return
            raise os_error(errno)
        transport = None
        try:
            peername = sockaddr_object(<sockaddr *>&storage, length)
            # Another family's peer address is asked of the socket object
            # if anyone wants it.
            extra = {} if peername is UNKNOWN_FAMILY else {"peername": peername}
            transport = StreamTransport.__new__(StreamTransport)
            transport.proto = proto
            transport.setup(loop, fd, protocol_factory(), None, extra, server)
        except BaseException as exc:
            # Closed once: by the transport if it took charge of it already.
            if transport is not None and transport.fd_open:
                transport.close_descriptor()
            else:
                close(fd)
            if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                raise
            loop.call_exception_handler(
                {"message": "Error on transport creation for incoming connection", "exception": exc}
            )


cdef int tell_server(object server, StreamTransport transport, bint attached) except -1:
    """asyncio.Server counts its transports (wait_closed() waits for them):
    say that `transport` came or went. From 3.13 on the server keeps them
    too, and takes the transport along."""
    count = server._attach if attached else server._detach
    if CC_SERVER_ATTACH_TAKES_TRANSPORT:
        count(transport)
    else:
        count()
    return 0
