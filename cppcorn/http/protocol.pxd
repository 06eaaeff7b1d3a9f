# The HTTP/1.1 ASGI protocol: one HttpProtocol per connection. It parses
# requests (RequestParser), makes a RequestCycle for each with the
# connection's Http11Writer, runs their applications in a RequestRunner
# (one asyncio Task per connection), and hands WebSocket upgrades over to
# WebSocketProtocol. It speaks asyncio's Protocol interface, so it runs on
# any asyncio loop; feed() is the C-level entry a native transport calls
# with a buffer it owns (csrc/stream_seam.h).
from cppcorn.http.connection cimport Connection, RequestLog, ServerState
from cppcorn.http.cycle cimport RequestCycle
from cppcorn.http.parser cimport RequestHead, RequestParser
from cppcorn.http.response cimport Http11Writer
from cppcorn.http.runner cimport RequestRunner
from cppcorn.http.websocket cimport WebSocketProtocol, WebSocketSettings


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
    # How long an idle connection stays open once the server drains.
    cdef readonly double timeout_drain
    cdef readonly size_t max_head_size
    cdef readonly object trusted_hosts         # TrustedHosts, or None
    cdef readonly RequestLog log               # and its logger, uvicorn.error
    cdef readonly bint reset_contextvars


cdef enum ClientTrust:
    TRUST_UNKNOWN = 0
    TRUST_NO
    TRUST_YES


cdef enum Phase:
    # Between requests, nothing of the next one received yet: the keep-alive
    # deadline runs (on a new connection, the request-header deadline).
    PHASE_IDLE = 0
    # A request head is arriving: the request-header deadline runs.
    PHASE_HEAD
    # The head is in and its application started; its body is arriving.
    PHASE_BODY
    # The whole request is in and its response is not complete: bytes of a
    # next request are held (and reading paused) until it is.
    PHASE_RESPONSE
    # Lost, or handed over to the WebSocket protocol.
    PHASE_CLOSED


cdef class HttpProtocol(Connection):
    cdef HttpSettings settings
    cdef RequestParser parser
    cdef Http11Writer writer
    cdef object context
    cdef readonly tuple client
    cdef readonly tuple server
    cdef str scheme
    # Whether the client is a trusted proxy: decided when first needed.
    cdef ClientTrust client_trust
    cdef Phase phase
    cdef bint input_ended               # the client half-closed (eof)
    cdef bint draining                  # the server is stopping: serve the last
    cdef RequestCycle cycle             # the request being read or answered
    cdef RequestRunner runner
    # Bytes of the next request(s) held while a response is under way.
    cdef bytes pending
    cdef size_t pending_offset
    cdef object resume_handle           # the scheduled _resume_pipeline()
    # A WebSocket upgrade request, handed over once it is parsed to its end.
    cdef WebSocketProtocol upgrade

    cdef int feed(self, const char* data, size_t length, object owner) except -1
    cdef int _parse(self, const char* data, size_t length, object owner) except -1
    cdef int _hold(self, const char* data, size_t length, object owner) except -1
    cdef int _set_phase(self, Phase phase) except -1
    cdef int on_head(self, RequestHead head) except -1
    cdef int on_body(self, const char* data, size_t length) except -1
    cdef int on_message_complete(self) except -1
    cdef int _apply_forwarding(self, dict scope, RequestHead head) except -1
    cdef bint _client_is_trusted(self) except -1
    cdef dict _websocket_scope(self, RequestHead head, str path, bytes raw_path)
    cdef int _start_application(self) except -1
    cdef int _finish_if_answered(self) except -1
    cdef int _arm_drain_deadline(self) except -1
    cdef int _request_finished(self) except -1
    cdef int _start_websocket(self, const char* rest, size_t length) except -1
    cdef int _parse_error(self) except -1
    cdef bint _head_request(self)
