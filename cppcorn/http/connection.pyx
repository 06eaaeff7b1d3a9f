# Server state, the connection base class and the request line in logs. See
# connection.pxd.
import logging
import urllib.parse

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid

from cppcorn.includes.stream_seam cimport CC_SENDER_CAPSULE

cdef int INFO = logging.INFO
# Uvicorn's TRACE level (cppcorn.logging.TRACE_LOG_LEVEL).
cdef int TRACE = 5
cdef str ACCESS_LOG_FORMAT = '%s - "%s %s HTTP/%s" %d'
# How long a lingering close waits for the client's EOF. Bytes in flight
# arrive within a round trip, and a client that read its last response closes
# at once; the bound is for those that do neither.
cdef double LINGER_SECONDS = 2.0


cdef class ServerState:
    """Shared by all connections of one server (Uvicorn's ServerState)."""

    def __init__(self):
        self.total_requests = 0
        self.connections = set()
        self.tasks = set()
        self.default_headers = b""
        self.now = 0.0

    cdef int count_request(self) except -1:
        """Counted before the last bytes go out, so that a client holding
        the response never sees a count without it (--limit-max-requests)."""
        self.total_requests += 1
        return 0

    def expire_connections(self, double now):
        """Advance the clock and act on the connections whose deadline passed."""
        cdef Connection connection
        self.now = now
        expired = [connection for connection in self.connections
                   if connection.deadline != 0.0 and connection.deadline <= now]
        for connection in expired:
            connection.deadline = 0.0
            connection.on_deadline(now)


cdef class Connection:
    """A client connection of a server (subclassed per protocol)."""

    def __cinit__(self):
        self.drain_waiters = []

    cdef int attach(self, object transport) except -1:
        """Take `transport` (a new connection's, or one handed over) and
        count the connection as the server's."""
        self.transport = transport
        sender = getattr(type(transport), "__cppcorn_sender__", None)
        if PyCapsule_IsValid(sender, CC_SENDER_CAPSULE):
            self.sender = <const cc_stream_sender *>PyCapsule_GetPointer(sender, CC_SENDER_CAPSULE)
        self.state.connections.add(self)
        return 0

    cdef int detach(self) except -1:
        """The connection is over for this protocol (lost, or handed over)."""
        self.state.connections.discard(self)
        self.deadline = 0.0
        return self.release_drain_waiters()

    # -- writing ---------------------------------------------------------

    cdef bint is_closing(self):
        if self.lingering:
            return True
        if self.sender is not NULL:
            return self.sender.is_closing(self.transport)
        return self.transport.is_closing()

    cdef int write(self, bytes data) except -1:
        if self.sender is not NULL:
            return self.sender.write(self.transport, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), data)
        self.transport.write(data)
        return 0

    cdef int write_from(self, const char* data, size_t length) except -1:
        """Write bytes the caller reuses once this returns: through the seam
        they are copied only if the socket does not take them all."""
        if self.sender is not NULL:
            return self.sender.write(self.transport, data, <Py_ssize_t>length, None)
        self.transport.write(PyBytes_FromStringAndSize(data, length))
        return 0

    cdef int write_parts(self, tuple parts) except -1:
        """Write several bytes objects: one writev() through the seam."""
        if self.sender is not NULL:
            return self.sender.writelines(self.transport, parts)
        # Separate writes, not writelines(): on Python 3.12.0-3.13.1 asyncio's
        # writelines() skips the write-buffer limits (CPython gh-127655).
        for part in parts:
            self.transport.write(part)
        return 0

    # -- reading ---------------------------------------------------------

    cdef bint wants_reading_paused(self):
        return False

    cdef int update_reading(self) except -1:
        cdef bint pause = self.wants_reading_paused()
        if pause == self.reading_paused or self.transport is None or self.is_closing():
            return 0
        self.reading_paused = pause
        if pause:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()
        return 0

    # -- closing ---------------------------------------------------------

    def is_busy(self):
        """Whether the connection has work in progress: a graceful shutdown
        announces that it waits for it."""
        return True

    cdef int linger_close(self) except -1:
        """Close after the connection's last response without losing it, as
        nginx's lingering close does: closing a socket that has unread bytes
        (a pipelined request, one sent as the response went out) makes the
        kernel send a reset, and a reset destroys the response still in the
        client's receive buffer. So shut the write side (the client reads the
        response, then EOF), read and drop what comes until the client's EOF,
        and close then, or at the linger deadline. Transports that cannot
        half-close (TLS) close at once."""
        if self.transport is None or self.is_closing():
            return 0
        if not self.transport.can_write_eof():
            self.transport.close()
            return 0
        self.lingering = True
        try:
            self.transport.write_eof()
        except OSError:
            # The client has reset the connection already (asyncio's
            # transports raise what shutdown() says).
            self.transport.close()
            return 0
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()
        return self.arm_deadline(LINGER_SECONDS)

    # -- deadlines -------------------------------------------------------

    cdef int arm_deadline(self, double timeout) except -1:
        """on_deadline() in `timeout` seconds (on the server's coarse clock)."""
        self.deadline = self.state.now + timeout
        return 0

    cdef int on_deadline(self, double now) except -1:
        return 0

    cdef int on_response_complete(self) except -1:
        return 0

    # -- write backpressure ----------------------------------------------
    # asyncio calls these when the transport's write buffer crosses its
    # high-water mark and falls back below its low-water mark.

    def pause_writing(self):
        self.writing_paused = True

    def resume_writing(self):
        self.writing_paused = False
        self.release_drain_waiters()

    cdef object drained(self):
        """A future that completes once writing may go on. Each caller gets
        its own, so that cancelling one waiter cancels no other."""
        waiter = self.loop.create_future()
        self.drain_waiters.append(waiter)
        return waiter

    cdef int release_drain_waiters(self) except -1:
        cdef list waiters = self.drain_waiters
        if waiters:
            self.drain_waiters = []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        return 0

    # -- TRACE lines ------------------------------------------------------
    # Uvicorn logs a connection's life at TRACE ("HTTP connection made",
    # ...). Whether it does is decided once per connection: when TRACE is off
    # nothing is formatted, and requests pay nothing.

    cdef int decide_trace(self, object logger, tuple client) except -1:
        if logger.isEnabledFor(TRACE):
            self.trace_prefix = "%s:%d - " % client if client else ""
        else:
            self.trace_prefix = None
        return 0

    cdef int trace(self, object logger, str message) except -1:
        logger.log(TRACE, message, self.trace_prefix)
        return 0


cdef class RequestLog:
    """Made once per server; access log records as Uvicorn writes them: the
    five record args (client, method, target, HTTP version, status) that
    formatters read."""

    def __init__(self, logger, access_logger):
        self.logger = logger
        self.access_logger = access_logger

    cdef int access(self, dict scope, int status) except -1:
        if self.access_logger is None or not self.access_logger.isEnabledFor(INFO):
            return 0
        self.access_logger.info(
            ACCESS_LOG_FORMAT, client_label(scope), scope["method"], logged_target(scope),
            scope["http_version"], status)
        return 0


cdef str client_label(dict scope):
    client = scope.get("client")
    return "%s:%d" % (client[0], client[1]) if client else ""


cdef str logged_target(dict scope):
    path = urllib.parse.quote(scope["path"])
    if scope["query_string"]:
        return f"{path}?{scope['query_string'].decode('ascii', 'replace')}"
    return path
