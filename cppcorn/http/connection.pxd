# What every connection of a server shares, whatever its protocol (HTTP/1.1,
# WebSocket): the server's state, a deadline swept by the server's tick
# instead of a timer object per connection, and how a WebSocket
# application's coroutine becomes a task.


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


cdef class Connection:
    cdef ServerState state
    cdef object loop
    cdef object transport
    # When on_deadline() is due, on state.now; 0 means none.
    cdef double deadline
    # Write backpressure: the transport's buffer is over its high-water mark,
    # and the futures of send() calls waiting for it to drain.
    cdef bint writing_paused
    cdef list drain_waiters

    cdef int on_deadline(self, double now) except -1
    cdef object drained(self)
    cdef int _release_drain_waiters(self) except -1


# The task running a WebSocket application's coroutine; `context` None means
# a copy of the current one.
cdef object start_app_task(object loop, object coroutine, object context)
