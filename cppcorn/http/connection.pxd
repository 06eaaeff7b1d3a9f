# What every connection of a server shares, whatever its protocol (HTTP/1.1,
# WebSocket): the server's state, and a deadline swept by the server's tick
# instead of a timer object per connection.


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
    # When on_deadline() is due, on state.now; 0 means none.
    cdef double deadline

    cdef int on_deadline(self, double now) except -1
