# The ASGI request cycle of one HTTP request: `receive` (the request body,
# then the disconnect) and `send` (the response's messages, validated, in
# order). It is handed what it needs of its connection: the ResponseWriter
# its response goes out through, which also hears when the application has
# taken the buffered body. It knows nothing else of the protocol, so that an
# HTTP/2 stream can be served by the same cycle with a writer of its own.
cimport cython

from cppcorn.http.connection cimport RequestLog
from cppcorn.http.response cimport ResponseWriter


cdef enum SendState:
    SEND_START = 0      # waiting for http.response.start
    SEND_BODY           # the head is started: http.response.body messages
    SEND_DONE           # the response is complete (or refused)


@cython.final
cdef class RequestCycle:
    cdef readonly dict scope
    cdef ResponseWriter writer
    cdef object loop
    cdef RequestLog log
    cdef SendState send_state
    cdef bint app_started       # handed to the application (a runner)
    cdef object context         # the context its application runs in

    # Request side: the body as it arrives, until the application takes it.
    cdef list body_chunks        # None until some arrives
    cdef size_t body_size
    cdef bint message_complete  # the whole body has arrived
    cdef bint body_delivered    # the final http.request went to the app
    cdef bint expect_continue
    cdef bint input_ended       # the client half-closed after its request
    cdef bint disconnected
    cdef list waiters           # futures of receive() calls that wait

    @staticmethod
    cdef RequestCycle create(dict scope, ResponseWriter writer, object loop, RequestLog log,
                             bint expect_continue)

    # What the connection tells the cycle.
    cdef int add_body(self, const char* data, size_t length) except -1
    cdef int end_body(self) except -1
    cdef int end_input(self) except -1
    cdef int disconnect(self) except -1
    cdef int wake(self) except -1
    cdef bint body_backlogged(self)
    cdef int refuse(self, int status) except -1

    # What the runner tells it: the application returned `outcome` or
    # raised `error`.
    cdef int app_finished(self, object outcome, object error) except -1

    # Act on one message of send(); the future to wait on before sending
    # more, or None.
    cdef object send_message(self, object message)
    cdef object _receive_now(self)
    cdef int _response_done(self) except -1


cdef enum SendCallState:
    CALL_NEW = 0
    CALL_WAITING
    CALL_DONE


cdef class SendCall:
    # The awaitable send(message) returns (see cycle.pyx).
    cdef RequestCycle cycle
    cdef object message
    cdef object waiter          # the drain future it waits on
    cdef SendCallState state

    @staticmethod
    cdef SendCall create(RequestCycle cycle, object message)
    cdef object _step(self)
