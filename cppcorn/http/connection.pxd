# What every connection of a server shares, whatever its protocol (HTTP/1.1,
# WebSocket): the server's state, the transport and how to write to it
# (through csrc/stream_seam.h when the transport offers it), read pausing,
# write backpressure, a deadline swept by the server's tick instead of a
# timer object per connection, and the request line as logs show it.
from cppcorn.includes.stream_seam cimport cc_stream_sender


cdef class ServerState:
    # State shared by the connections of one server and its supervisor loop.
    cdef public unsigned long long total_requests
    cdef readonly set connections
    cdef readonly set tasks
    # `date` + `server` + --header lines, refreshed once a second.
    cdef public bytes default_headers
    # A coarse clock (time.monotonic), advanced by the server's tick; the
    # connections' deadlines are measured against it.
    cdef public double now

    # A response (the application's, or a refusal) is about to go out whole.
    cdef int count_request(self) except -1


cdef class Connection:
    cdef ServerState state
    cdef object loop
    cdef object transport
    # The transport's C-level write, writelines and is_closing, when it
    # offers them (cppcorn.loop's stream transports).
    cdef const cc_stream_sender *sender
    # When on_deadline() is due, on state.now; 0 means none.
    cdef double deadline
    # Whether the transport's reading is paused by us.
    cdef bint reading_paused
    # Write backpressure: the transport's buffer is over its high-water mark,
    # and the futures of send() calls waiting for it to drain.
    cdef bint writing_paused
    cdef list drain_waiters
    # Closed for the protocol after its last response, the transport still
    # open: the write side is shut and what the client still sends is read
    # and dropped until its EOF or the linger deadline (linger_close()).
    cdef bint lingering
    # What TRACE lines about this connection start with (Uvicorn's "host:port
    # - ", or "" without a client address); None when TRACE is off for its
    # logger, decided once when the connection is made.
    cdef str trace_prefix

    cdef int attach(self, object transport) except -1
    cdef int detach(self) except -1

    # Writing: what the socket does not take at once is queued by the
    # transport. write_from() copies what it queues; write() keeps `data`.
    # is_closing(): the transport is closing, or the connection lingers.
    cdef bint is_closing(self)
    cdef int write(self, bytes data) except -1
    cdef int write_from(self, const char* data, size_t length) except -1
    cdef int write_parts(self, tuple parts) except -1

    # Reading: update_reading() pauses or resumes the transport as
    # wants_reading_paused() (each protocol's own rule) says.
    cdef bint wants_reading_paused(self)
    cdef int update_reading(self) except -1

    # Close after the last response without losing it (see connection.pyx).
    cdef int linger_close(self) except -1

    cdef int arm_deadline(self, double timeout) except -1
    cdef int on_deadline(self, double now) except -1
    # A response written through this connection has gone out whole.
    cdef int on_response_complete(self) except -1

    cdef object drained(self)
    cdef int release_drain_waiters(self) except -1

    # Decide whether this connection traces; trace() logs `message` (with a
    # %s for the prefix): call it only when trace_prefix is not None.
    cdef int decide_trace(self, object logger, tuple client) except -1
    cdef int trace(self, object logger, str message) except -1


cdef class RequestLog:
    # What a server logs about its requests: application errors on its error
    # logger, and Uvicorn's access log line for each response when the
    # access log is on.
    cdef readonly object logger
    cdef object access_logger       # None: no access log

    cdef int access(self, dict scope, int status) except -1


# How logs name a request's client ("host:port", or "") and its target (the
# path quoted, with the query string).
cdef str client_label(dict scope)
cdef str logged_target(dict scope)
