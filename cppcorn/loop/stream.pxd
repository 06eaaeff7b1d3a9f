# Stream transports of cppcorn.loop (TCP and Unix sockets): readiness from
# the core straight into recv()/writev(), with asyncio's transport interface
# on top. Compiled protocols talk to it through csrc/stream_seam.h: the
# transport hands them its read buffer and offers write_bytes() as their write.

from cppcorn.loop.core cimport IOWatcher, LoopCore
from cppcorn.includes.stream_seam cimport cc_stream_receiver


cdef class StreamTransport(IOWatcher):
    # _loop, _protocol and _protocol_paused are named and readable as in
    # asyncio's selector transports, whose attributes asyncio's own code
    # reads (loop.sendfile()'s fallback: _loop, _protocol_paused).
    cdef readonly object _loop
    # The transport owns its descriptor (self.fd) until it closes it: when
    # the connection is lost, or when it is collected unclosed.
    cdef bint fd_open
    # The socket object over the descriptor: the one the transport was made
    # with, else made on first use (an accepted connection has none), with
    # this protocol number (its listener's, as socket.accept() gives it).
    cdef object sock
    cdef int proto
    cdef readonly object _protocol
    cdef bint buffered_protocol
    # The protocol's C-level data_received(), when it offers one.
    cdef const cc_stream_receiver *receiver
    cdef object server
    cdef dict extra
    # asyncio.Server (3.13) keeps its transports in a WeakSet.
    cdef object __weakref__

    cdef bint closing
    cdef bint reading_paused
    cdef bint eof_received
    cdef bint eof_written
    cdef readonly bint _protocol_paused
    cdef int conn_lost

    # Bytes waiting for the socket: immutable objects, the first one
    # already sent up to write_offset.
    cdef list write_queue
    cdef Py_ssize_t write_offset
    cdef Py_ssize_t write_size
    # The queue waits for the end of the loop's iteration (defer_flush()).
    cdef bint write_deferred
    cdef Py_ssize_t high_water
    cdef Py_ssize_t low_water
    # loop.sendfile(): waits until the queue is empty (native), or until it
    # is back at the low-water mark (fallback: read, write, repeat).
    cdef object empty_waiter
    cdef object flow_waiter

    cdef int setup(self, object loop, int fd, object protocol, object waiter, dict extra, object server) except -1
    cdef object socket_object(self)
    cdef object address(self, bint peer)
    cdef int shutdown_write(self) except -1
    cdef int close_descriptor(self) except -1
    cdef int write_bytes(self, const char *data, Py_ssize_t size, object owner) except -1
    cdef int write_chunks(self, object chunks) except -1
    cdef int drop_lost_write(self) except -1
    cdef int queue(self, object data, Py_ssize_t offset) except -1
    cdef int update_interest(self) except -1
    cdef int read_ready(self) except -1
    cdef int read_ready_buffered(self) except -1
    cdef int read_nothing(self, ssize_t n, int error) except -1
    cdef int read_eof(self) except -1
    cdef int write_ready(self) except -1
    cdef bint defer_write(self, Py_ssize_t size) except -1
    cdef int on_flush(self) except -1
    cdef int fatal_error(self, object exc, str message) except -1
    cdef int force_close(self, object exc) except -1
    cdef int maybe_pause_protocol(self) except -1
    cdef int maybe_resume_protocol(self) except -1
    cdef int set_protocol_paused(self, bint paused) except -1
    cdef int set_reading_paused(self, bint paused) except -1
    cdef int report(self, str message, object exc) except -1
    cdef int release_flow_waiter(self, object exc) except -1
