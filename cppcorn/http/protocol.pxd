# The HTTP/1.1 ASGI protocol: one HttpProtocol per connection, one
# RequestCycle per request, and a RequestRunner (one asyncio Task) running
# the application for a connection's requests in turn. It speaks asyncio's
# Protocol interface, so it runs on any asyncio loop; feed() is the C-level
# entry a native transport can call with a buffer it owns.
from cppcorn.http.connection cimport Connection, ServerState
from cppcorn.http.parser cimport RequestParser
from cppcorn.http.response cimport HeadInfo, OutputBuffer
from cppcorn.http.websocket cimport WebSocketSettings
from cppcorn.includes.stream_seam cimport cc_stream_sender


cdef class HttpSettings:
    # What every connection of one server needs, resolved once from Config.
    cdef readonly object app
    cdef readonly dict app_state
    cdef readonly str root_path
    cdef readonly bytes root_path_bytes
    cdef readonly dict asgi
    cdef readonly dict websocket_asgi
    # Every HTTP scope is a copy of this with its per-request values set.
    cdef dict http_scope
    cdef readonly WebSocketSettings websocket
    cdef readonly long limit_concurrency       # < 0: no limit
    cdef readonly double timeout_keep_alive
    cdef readonly double timeout_request_headers
    cdef readonly size_t max_head_size
    cdef readonly object trusted_hosts         # TrustedHosts, or None
    cdef readonly object logger
    cdef readonly object access_logger
    cdef readonly bint access_log
    cdef readonly bint reset_contextvars


cdef class RequestCycle:
    cdef HttpProtocol protocol
    cdef readonly dict scope
    cdef list waiters           # futures of receive() calls that wait

    # Request side
    cdef bint started           # the application was called
    cdef list body_chunks
    cdef size_t body_size
    cdef bint message_complete
    cdef bint body_delivered    # the final http.request went to the app
    cdef bint expect_continue
    cdef bint is_head

    # Response side
    cdef bint keep_alive
    cdef bint http_1_0
    cdef bint response_started
    cdef bint response_complete
    cdef bint disconnected
    cdef bint no_body
    cdef bint chunked
    cdef long long content_remaining    # < 0: no Content-Length

    cdef object _send(self, object message)
    cdef object _receive_now(self)
    cdef int _wake(self) except -1
    cdef int _start_response(self, dict message) except -1
    cdef int _write_body(self, bytes body, bint more_body) except -1
    cdef int _flush_with(self, bytes body, size_t size, bint more_body) except -1
    cdef int _fail_response(self) except -1


cdef enum SendCallState:
    CALL_NEW = 0
    CALL_WAITING
    CALL_DONE


cdef class SendCall:
    # The awaitable send() returns (see protocol.pyx).
    cdef RequestCycle cycle
    cdef object message
    cdef object waiter          # the drain future it waits on
    cdef SendCallState state

    @staticmethod
    cdef SendCall create(RequestCycle cycle, object message)
    cdef object _step(self)


cdef class RequestRunner:
    # The coroutine of one asyncio Task, stepping the application of one
    # request after another (see protocol.pyx).
    cdef HttpProtocol protocol      # None once the task has ended
    cdef readonly object task
    cdef RequestCycle cycle         # the request whose application runs
    cdef object coroutine           # that application's coroutine
    cdef object context             # that request's context
    cdef RequestCycle next_cycle    # the request the next step starts
    cdef object next_context
    cdef object waiter              # what the task waits on between requests
    cdef object handoff             # what an eagerly started application
    cdef bint handed_off            # yielded, for the task to take over
    cdef bint thrown                # an exception went into this request

    @staticmethod
    cdef RequestRunner start(HttpProtocol protocol, RequestCycle cycle, object context)
    cdef bint waiting(self) except -1
    cdef int resume(self, RequestCycle cycle, object context) except -1
    cdef int wake(self) except -1
    cdef int run_eagerly(self, RequestCycle cycle, object context) except -1
    cdef object _step(self, object value, object exc)
    cdef object _step_app(self, object value, object exc)
    cdef int _request_done(self, RequestCycle cycle, object outcome, object error) except -1
    cdef object _between_requests(self)
    cdef int _finish(self) except -1


cdef enum ClientTrust:
    TRUST_UNKNOWN = 0
    TRUST_NO
    TRUST_YES


cdef class HttpProtocol(Connection):
    cdef HttpSettings settings
    cdef RequestParser parser
    cdef OutputBuffer out
    cdef object context
    cdef readonly tuple client
    cdef readonly tuple server
    cdef str scheme
    # Whether the client is a trusted proxy: decided when first needed.
    cdef ClientTrust client_trust
    cdef RequestCycle cycle
    cdef RequestRunner runner
    # The transport's C-level write and is_closing(), when it offers them.
    cdef const cc_stream_sender *sender

    # Reading: paused while bytes of a next request wait for this response
    # (pipelining) or while the app has not taken the buffered body.
    cdef bytes pending            # unparsed bytes after a complete request
    cdef size_t pending_offset
    cdef bint feeding
    cdef bint reading_paused
    cdef bint body_backpressure
    cdef bint eof

    cdef bint idle              # between requests, nothing received yet

    # A WebSocket upgrade request: (scope, key, extensions offer), and the
    # status to refuse it with (0: accept it).
    cdef tuple websocket_request
    cdef int websocket_refusal

    cdef int _feed(self, const char* data, size_t length, object owner) except -1
    cdef int _keep_pending(self, const char* data, size_t length, object owner) except -1
    cdef bint _closing(self)
    cdef int _start_cycle(self) except -1
    cdef int _request_finished(self, bint more_data) except -1
    cdef int _response_complete(self) except -1
    cdef int _update_reading(self) except -1
    cdef int _write(self, bytes data) except -1
    cdef int _write_output(self) except -1
    cdef int _write_many(self, tuple parts) except -1
    cdef bint _client_is_trusted(self) except -1
    cdef int _websocket_request(self, str path, bytes raw_path, bytes query_string, list headers) except -1
    cdef int _start_websocket(self, bytes rest) except -1
    cdef int _send_error_response(self, int status, bytes body, bytes extra_headers=*) except -1
    cdef int _parse_error(self) except -1
    cdef int _app_exception(self, RequestCycle cycle, object exc) except -1
    cdef int _access_log(self, RequestCycle cycle, int status) except -1
    cdef int on_headers_complete(self) except -1
    cdef int on_body(self, const char* data, size_t length) except -1
    cdef int on_message_complete(self) except -1
