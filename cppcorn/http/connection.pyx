# Server state and the connection base class. See connection.pxd.

cdef class ServerState:
    """Shared by all connections of one server (Uvicorn's ServerState)."""

    def __init__(self):
        self.total_requests = 0
        self.connections = set()
        self.tasks = set()
        self.default_headers = b""
        self.now = 0.0

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

    cdef int on_deadline(self, double now) except -1:
        return 0
