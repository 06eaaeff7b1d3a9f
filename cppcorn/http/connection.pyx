# Server state, the connection base class and application tasks. See
# connection.pxd.
import sys

cdef bint CREATE_TASK_TAKES_CONTEXT = sys.version_info >= (3, 11)


cdef object start_app_task(object loop, object coroutine, object context):
    """A WebSocket connection's application task (HTTP requests run in
    protocol.pyx's RequestRunner, one task per connection). Its first step
    goes through the ready queue, never eagerly (Task(eager_start=True)), as
    HTTP's does: with many connections every read of a poll is parsed first
    and every application then runs, where eager steps interleave recv,
    parse, app and send per connection. Eager measured 26.4 against 19.5 CPU
    µs per hello request on 3.13 and 22.9 against 19.9 on 3.11 (wrk -c64;
    bench/RESULTS.md)."""
    if context is None:
        return loop.create_task(coroutine)
    if CREATE_TASK_TAKES_CONTEXT:
        return loop.create_task(coroutine, context=context)
    # Python 3.10: a task copies the context it is created in.
    return context.run(loop.create_task, coroutine)


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

    def __cinit__(self):
        self.drain_waiters = []

    cdef int on_deadline(self, double now) except -1:
        return 0

    # asyncio calls these when the transport's write buffer crosses its
    # high-water mark and falls back below its low-water mark.

    def pause_writing(self):
        self.writing_paused = True

    def resume_writing(self):
        self.writing_paused = False
        self._release_drain_waiters()

    cdef object drained(self):
        """A future that completes once writing may go on. Each caller gets
        its own, so that cancelling one waiter cancels no other."""
        waiter = self.loop.create_future()
        self.drain_waiters.append(waiter)
        return waiter

    cdef int _release_drain_waiters(self) except -1:
        cdef list waiters = self.drain_waiters
        if waiters:
            self.drain_waiters = []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        return 0
