# The HTTP/1.1 ASGI protocol. See protocol.pxd for the shape.
#
# The path of one request:
#   transport -> feed() (data_received(), or the transport's C-level
#   receiver) -> _parse() -> RequestParser.feed() -> llhttp, whose callbacks
#   stay in C until the header section is complete -> on_head(RequestHead):
#   the scope and the RequestCycle, once -> on_body() / on_message_complete()
#   -> once the bytes at hand are parsed, _start_application(): the
#   connection's RequestRunner steps the application at once when its task
#   is parked between requests (else the task's first step does) ->
#   send() -> RequestCycle.send_message() -> Http11Writer.start()/write():
#   the head is held until the first body message, so that a small response
#   leaves in one write -> Connection.write*() (through the seam) ->
#   on_response_complete() -> _request_finished(): the next request.
#
# A pipelined request's bytes are held until the response before it is
# complete; when that response completes inside _parse() (the application
# answered without waiting) _parse() goes on with them itself, else
# _resume_pipeline() does on the loop's next turn.
import asyncio
import contextvars
import logging

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.contextvars cimport PyContext_CopyCurrent
from cpython.pycapsule cimport PyCapsule_New

from cppcorn.http.connection cimport Connection, RequestLog, ServerState
from cppcorn.http.cycle cimport SEND_DONE, SEND_START, RequestCycle
from cppcorn.http.parser cimport PARSE_ERROR, PARSE_NEED_MORE, ParserCallbacks, ParseResult, RequestHead, RequestParser
from cppcorn.http.response cimport Http11Writer, send_error_response
from cppcorn.http.runner cimport RequestRunner
from cppcorn.http.websocket cimport WebSocketProtocol, WebSocketSettings
from cppcorn.includes.stream_seam cimport CC_RECEIVER_CAPSULE, cc_stream_receiver

cdef object Context = contextvars.Context


cdef class HttpSettings:
    """Settings of the HTTP protocol, resolved once per server from Config."""

    def __init__(
        self,
        *,
        app,
        dict app_state,
        str root_path = "",
        str asgi_version = "3.0",
        limit_concurrency = None,
        double timeout_keep_alive = 5.0,
        double timeout_request_headers = 30.0,
        double timeout_drain = 1.0,
        size_t max_head_size = 65536,
        trusted_hosts = None,
        bint access_log = True,
        bint reset_contextvars = False,
        WebSocketSettings websocket = None,
        logger = None,
        access_logger = None,
    ):
        self.app = app
        self.app_state = app_state
        self.root_path = root_path
        self.root_path_bytes = root_path.encode("utf-8")
        self.asgi = {"version": asgi_version, "spec_version": "2.3"}
        self.websocket_asgi = {"version": asgi_version, "spec_version": "2.4"}
        # Copying this dict and replacing values costs less than inserting
        # 13 keys into a new one (callgrind: 400 fewer instructions per
        # request), and the keys keep this order: Uvicorn's, which shows in
        # the scope an app prints or the trace log dumps.
        self.http_scope = {
            "type": "http",
            "asgi": self.asgi,
            "http_version": None,
            "server": None,
            "client": None,
            "scheme": None,
            "root_path": root_path,
            "headers": None,
            "state": None,
            "method": None,
            "path": None,
            "raw_path": None,
            "query_string": None,
        }
        # None when WebSockets are off (--ws none, or a WSGI application).
        self.websocket = websocket
        self.limit_concurrency = -1 if limit_concurrency is None else limit_concurrency
        self.timeout_keep_alive = timeout_keep_alive
        self.timeout_request_headers = timeout_request_headers
        self.timeout_drain = timeout_drain
        self.max_head_size = max_head_size
        self.trusted_hosts = trusted_hosts
        if logger is None:
            logger = logging.getLogger("uvicorn.error")
        if access_logger is None:
            access_logger = logging.getLogger("uvicorn.access")
        # As Uvicorn: no handlers at startup means no access log at all, and
        # nothing is formatted per request.
        self.log = RequestLog(logger, access_logger if access_log and access_logger.hasHandlers() else None)
        self.reset_contextvars = reset_contextvars


# The parser reports to its protocol through these.

cdef int _on_head(void* protocol, RequestHead head) except -1:
    return (<HttpProtocol>protocol).on_head(head)


cdef int _on_body(void* protocol, const char* data, size_t length) except -1:
    return (<HttpProtocol>protocol).on_body(data, length)


cdef int _on_message_complete(void* protocol) except -1:
    return (<HttpProtocol>protocol).on_message_complete()


cdef ParserCallbacks PARSER_CALLBACKS = ParserCallbacks(_on_head, _on_body, _on_message_complete)


# The protocol's side of csrc/stream_seam.h: cppcorn.loop's transports hand
# their read buffer to feed() through this.

cdef int _seam_data_received(object protocol, const char* data, size_t length) except -1:
    return (<HttpProtocol>protocol).feed(data, length, None)


cdef cc_stream_receiver RECEIVER = cc_stream_receiver(_seam_data_received)


cdef class HttpProtocol(Connection):
    """asyncio Protocol for one HTTP/1.1 connection."""

    __cppcorn_receiver__ = PyCapsule_New(&RECEIVER, CC_RECEIVER_CAPSULE, NULL)

    def __init__(self, HttpSettings settings not None, ServerState state not None, loop=None):
        self.settings = settings
        self.state = state
        self.loop = asyncio.get_running_loop() if loop is None else loop
        self.parser = RequestParser.create(<void*>self, PARSER_CALLBACKS, settings.max_head_size)
        self.writer = Http11Writer(self)

    # -- asyncio.Protocol ------------------------------------------------

    def connection_made(self, transport):
        cdef object peer, local
        self.attach(transport)
        # Work started from this connection's own callbacks (not from inside
        # an application's task) runs in this context, so that context
        # variables an application sets never leak into the next request.
        self.context = contextvars.copy_context()
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        if isinstance(local, tuple) and len(local) >= 2:
            self.server = (str(local[0]), int(local[1]))
        elif isinstance(local, str) and local:
            # Unix domain socket: (path, None), as Uvicorn.
            self.server = (local, None)
        self.scheme = "https" if transport.get_extra_info("sslcontext") is not None else "http"
        self.decide_trace(self.settings.log.logger, self.client)
        if self.trace_prefix is not None:
            self.trace(self.settings.log.logger, "%sHTTP connection made")
        # A new connection has to send its first request as promptly as a
        # request head has to arrive.
        self.phase = PHASE_IDLE
        self.arm_deadline(self.settings.timeout_request_headers)

    def connection_lost(self, exc):
        cdef RequestCycle cycle = self.cycle
        if self.trace_prefix is not None:
            self.trace(self.settings.log.logger, "%sHTTP connection lost")
        self.detach()
        self.phase = PHASE_CLOSED
        self.pending = None
        self.cycle = None
        # The writer refers back to this protocol: let go of it.
        self.writer = None
        if cycle is not None:
            cycle.disconnect()
        if self.runner is not None:
            self.runner.retire()

    def eof_received(self):
        if self.lingering:
            return None  # the client has read the last response: close
        self.input_ended = True
        if self.cycle is not None:
            # An application waiting for the disconnect gets it.
            self.cycle.end_input()
        if self.pending is not None or self.phase == PHASE_RESPONSE:
            # The client has sent its requests and half-closed: keep the
            # connection open long enough to answer them, then close.
            if self.pending is None:
                # This response is the last.
                self.writer.keep_alive = False
            return True
        return None

    def data_received(self, data):
        if type(data) is not bytes:
            data = bytes(data)
        self.feed(PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data), data)

    # -- reading ---------------------------------------------------------

    cdef int feed(self, const char* data, size_t length, object owner) except -1:
        """Take `length` bytes at `data`. `owner` is the bytes object they
        are in, or None when they are the transport's buffer (see
        csrc/stream_seam.h): then only bytes held for later are copied."""
        if self.phase == PHASE_CLOSED or self.is_closing():
            return 0
        if self.pending is not None or self.phase == PHASE_RESPONSE:
            # A request is still being answered: hold the bytes for later.
            # Reading pauses, so at most one more read arrives meanwhile.
            self._hold(data, length, owner)
        else:
            self._parse(data, length, owner)
        return self.update_reading()

    cdef int _parse(self, const char* data, size_t length, object owner) except -1:
        """Parse requests from the bytes at hand, one message at a time: each
        message's application starts once it is parsed, and the next one is
        parsed only when the response before it is complete."""
        cdef size_t offset = 0
        cdef size_t consumed
        cdef ParseResult result
        if self.phase == PHASE_IDLE:
            self._set_phase(PHASE_HEAD)
        while True:
            result = self.parser.feed(data + offset, length - offset, &consumed)
            offset += consumed
            if result == PARSE_ERROR:
                return self._parse_error()
            if result == PARSE_NEED_MORE:
                return self._start_application()
            # A message ended; what follows belongs to the next request.
            if self.upgrade is not None:
                return self._start_websocket(data + offset, length - offset)
            if offset < length:
                self._hold(data + offset, length - offset, owner)
            self._start_application()
            self._finish_if_answered()
            if self.phase != PHASE_HEAD or self.pending is None or self.is_closing():
                return 0
            # Answered already: go on with the next request.
            owner = self.pending
            data = PyBytes_AS_STRING(owner) + self.pending_offset
            length = <size_t>PyBytes_GET_SIZE(owner) - self.pending_offset
            offset = 0
            self.pending = None

    cdef int _hold(self, const char* data, size_t length, object owner) except -1:
        """Hold bytes of the next request(s) until the response before them
        is complete; the transport's buffer is copied, a bytes object kept."""
        if self.pending is not None:
            self.pending = self.pending[self.pending_offset:] + PyBytes_FromStringAndSize(data, length)
            self.pending_offset = 0
        elif owner is None:
            self.pending = PyBytes_FromStringAndSize(data, length)
            self.pending_offset = 0
        else:
            self.pending = owner
            self.pending_offset = <size_t>(data - PyBytes_AS_STRING(owner))
        return 0

    def _resume_pipeline(self):
        """Parse the held bytes of the next request, on a loop turn of its
        own (not inside the previous application's send())."""
        pending = self.pending
        self.resume_handle = None
        if pending is None or self.cycle is not None or self.phase == PHASE_CLOSED or self.is_closing():
            return
        self.pending = None
        self._parse(PyBytes_AS_STRING(pending) + self.pending_offset,
                    <size_t>PyBytes_GET_SIZE(pending) - self.pending_offset, pending)
        self.update_reading()

    cdef bint wants_reading_paused(self):
        """Reading pauses while bytes of a next request are held, and while
        the application has not taken the body buffered for it."""
        return self.pending is not None or (self.cycle is not None and self.cycle.body_backlogged())

    cdef int _set_phase(self, Phase phase) except -1:
        """Enter `phase`, with the deadline it has."""
        self.phase = phase
        if phase == PHASE_IDLE:
            return self.arm_deadline(self.settings.timeout_keep_alive)
        if phase == PHASE_HEAD:
            return self.arm_deadline(self.settings.timeout_request_headers)
        self.deadline = 0.0
        return 0

    # -- parser events ---------------------------------------------------

    cdef int on_head(self, RequestHead head) except -1:
        """The header section is in: build the scope and the cycle."""
        cdef HttpSettings settings = self.settings
        cdef str path = head.path
        cdef bytes raw_path = head.raw_path
        cdef dict scope
        if settings.root_path_bytes:
            path = settings.root_path + path
            raw_path = settings.root_path_bytes + raw_path
        self._set_phase(PHASE_BODY)
        if head.upgrade is not None:
            if settings.websocket is not None and head.upgrade.lower() == b"websocket":
                self.upgrade = WebSocketProtocol.for_request(
                    settings.websocket, self.state, self.loop, self._websocket_scope(head, path, raw_path), head)
                return 0
            self._warn_upgrade(head.upgrade)
        scope = settings.http_scope.copy()
        scope["http_version"] = head.http_version
        scope["server"] = self.server
        scope["client"] = self.client
        scope["scheme"] = self.scheme
        scope["method"] = head.method
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = head.query_string
        scope["headers"] = head.headers
        scope["state"] = settings.app_state.copy()
        self._apply_forwarding(scope, head)
        # While draining, every response is the connection's last.
        self.writer.begin(head.keep_alive and not self.draining, head.http_1_0, head.is_head)
        # No 100 (Continue) for HTTP/1.0 clients (RFC 9110 10.1.1).
        self.cycle = RequestCycle.create(
            scope, self.writer, self.loop, settings.log, head.expect_continue and not head.http_1_0)
        if self.input_ended:
            self.cycle.input_ended = True
        return 0

    cdef int on_body(self, const char* data, size_t length) except -1:
        if self.cycle is not None:
            self.cycle.add_body(data, length)
        if self.deadline != 0.0:
            # Armed in this phase only once the response is out (see
            # on_response_complete()): the client is idle only when it
            # stops sending the rest of the body.
            self.arm_deadline(self.settings.timeout_keep_alive)
        return 0

    cdef int on_message_complete(self) except -1:
        if self.cycle is not None:
            self.cycle.end_body()
            self.phase = PHASE_RESPONSE
        return 0

    cdef int _apply_forwarding(self, dict scope, RequestHead head) except -1:
        """Proxy headers (X-Forwarded-For/-Proto), from a trusted proxy."""
        if (head.forwarded_for is not None or head.forwarded_proto is not None) and self._client_is_trusted():
            self.settings.trusted_hosts.apply(scope, head.forwarded_proto, head.forwarded_for)
        return 0

    cdef bint _client_is_trusted(self) except -1:
        """Whether this client is a proxy whose forwarding headers count:
        decided on the first request that has such headers, not for every
        connection (most never send them)."""
        if self.client_trust == TRUST_UNKNOWN:
            trusted_hosts = self.settings.trusted_hosts
            if trusted_hosts is not None and (self.client[0] if self.client is not None else None) in trusted_hosts:
                self.client_trust = TRUST_YES
            else:
                self.client_trust = TRUST_NO
        return self.client_trust == TRUST_YES

    cdef dict _websocket_scope(self, RequestHead head, str path, bytes raw_path):
        cdef HttpSettings settings = self.settings
        # Uvicorn's key order; the WebSocket protocol fills in the subprotocols.
        cdef dict scope = {
            "type": "websocket",
            "asgi": settings.websocket_asgi,
            "http_version": head.http_version,
            "scheme": "wss" if self.scheme == "https" else "ws",
            "server": self.server,
            "client": self.client,
            "root_path": settings.root_path,
            "path": path,
            "raw_path": raw_path,
            "query_string": head.query_string,
            "headers": head.headers,
            "subprotocols": None,
            "state": settings.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        self._apply_forwarding(scope, head)
        return scope

    def _warn_upgrade(self, bytes upgrade):
        self.settings.log.logger.warning("Unsupported upgrade request.")
        if upgrade.lower() == b"websocket":
            self.settings.log.logger.warning(
                "WebSockets are off (--ws none, or a WSGI application): "
                "the upgrade request is served as plain HTTP.")

    # -- requests --------------------------------------------------------

    cdef int _start_application(self) except -1:
        """Everything at hand is parsed: wake an application waiting for the
        body this read brought, or start the request's application (with the
        whole request in, or its body still arriving)."""
        cdef RequestCycle cycle = self.cycle
        cdef HttpSettings settings = self.settings
        cdef long limit = settings.limit_concurrency
        cdef RequestRunner runner
        if cycle is None:
            return 0
        if cycle.app_started:
            return cycle.wake()
        cycle.app_started = True
        if limit >= 0 and (len(self.state.connections) > limit or len(self.state.tasks) >= limit):
            settings.log.logger.warning("Exceeded concurrency limit.")
            return cycle.refuse(503)
        # The context the request's own task would have had.
        cycle.context = Context() if settings.reset_contextvars else PyContext_CopyCurrent()
        runner = self.runner
        if runner is not None and runner.waiting():
            return runner.run_eagerly(cycle)
        if runner is not None:
            # Its application still runs, after its response: it ends with it.
            runner.retire()
        self.runner = RequestRunner.start(self.loop, settings.app, self.state.tasks, cycle)
        return 0

    cdef int on_response_complete(self) except -1:
        """The writer has sent the current response's last byte."""
        if self.phase == PHASE_RESPONSE:
            return self._request_finished()
        # The rest of the request body is still to be read, and dropped. A
        # client that stops sending it holds the connection as an idle one
        # does: the keep-alive deadline applies (Uvicorn's keep-alive timer
        # starts at the response's end too). A last response lingers instead.
        if not self.is_closing():
            self.arm_deadline(self.settings.timeout_keep_alive)
        return self.update_reading()

    cdef int _finish_if_answered(self) except -1:
        """A message ended: its request is finished if its response is."""
        if self.phase == PHASE_RESPONSE and self.cycle.send_state == SEND_DONE:
            return self._request_finished()
        return 0

    cdef int _request_finished(self) except -1:
        """The request is fully read and its response fully sent."""
        self.cycle = None
        if self.is_closing():
            return 0  # the response closed the connection
        if self.pending is not None:
            # The next request has started arriving; it is parsed by
            # _parse() when that is on the stack, else on the next turn.
            self._set_phase(PHASE_HEAD)
            if self.resume_handle is None:
                self.resume_handle = self.loop.call_soon(self._resume_pipeline, context=self.context)
            return 0
        if self.input_ended:
            # The client half-closed and every request it sent is answered.
            self.transport.close()
            return 0
        # Reading is not paused here: nothing is held, and the body (all
        # read) no longer holds it.
        self._set_phase(PHASE_IDLE)
        if self.draining:
            # Its response went out before the drain began, keeping the
            # connection: the drain window applies, as to any idle one.
            return self._arm_drain_deadline()
        return 0

    cdef int _start_websocket(self, const char* rest, size_t length) except -1:
        """The upgrade request is parsed: hand the connection over to the
        WebSocket protocol, with the bytes that came after the request."""
        cdef WebSocketProtocol websocket = self.upgrade
        self.upgrade = None
        if self.trace_prefix is not None:
            self.trace(self.settings.log.logger, "%sUpgrading to WebSocket")
        if self.runner is not None:
            self.runner.retire()
        # What waits on this connection's writes is released, as when a
        # connection is lost.
        self.detach()
        self.phase = PHASE_CLOSED
        self.writer = None
        websocket.start(self, PyBytes_FromStringAndSize(rest, length))
        self.transport = None
        return 0

    cdef int _parse_error(self) except -1:
        cdef RequestParser parser = self.parser
        cdef RequestCycle cycle = self.cycle
        cdef int status = parser.error_status
        if status == 400:
            self.settings.log.logger.warning("Invalid HTTP request received.")
        else:
            self.settings.log.logger.warning("Request refused with %d: %s.", status, parser.error_reason)
        self.settings.log.logger.debug("Invalid request detail: %s", parser.error_reason)
        if cycle is not None and cycle.app_started:
            # Broken body framing while the application runs: it sees a
            # disconnect; a response already under way cannot be replaced.
            cycle.disconnect()
            if cycle.send_state != SEND_START:
                self.transport.close()
                return 0
        return send_error_response(self, status, None, self._head_request())

    cdef bint _head_request(self):
        """Whether the request a server error answers is a HEAD request (the
        error gets no body): the current request's, once its head is in,
        else the one being read."""
        if self.cycle is not None:
            return self.writer.is_head
        return self.parser.reading_head_request()

    # -- lifecycle -------------------------------------------------------

    cdef int on_deadline(self, double now) except -1:
        """Close the connection: idle keep-alive connections (and draining
        ones) quietly, and those whose client stopped sending a body after
        its response; a request head that is too slow with 408; one that
        lingers after its last response for good."""
        if self.lingering:
            self.transport.close()
        elif self.phase == PHASE_IDLE or self.phase == PHASE_BODY:
            self.transport.close()
        elif self.phase == PHASE_HEAD:
            send_error_response(self, 408, None, self._head_request())
        return 0

    def shutdown(self):
        """Graceful shutdown, without losing a request the client has sent:
        the response under way (or the next, if a request is arriving) is
        the last, with `Connection: close`. A connection between requests
        stays open for the drain window: a client using it sends its next
        request within microseconds of a response, and that request may be
        on its way already; closing would answer it with a reset. It is
        served, as the last; a connection silent through the window closes."""
        if self.phase == PHASE_CLOSED or self.is_closing() or self.draining:
            return
        self.draining = True
        if self.cycle is not None and self.cycle.send_state != SEND_DONE:
            self.writer.keep_alive = False
        elif self.phase == PHASE_IDLE:
            self._arm_drain_deadline()

    cdef int _arm_drain_deadline(self) except -1:
        """Close an idle draining connection at the end of the drain window,
        or at its keep-alive deadline if that comes first."""
        cdef double end = self.state.now + self.settings.timeout_drain
        if self.deadline == 0.0 or end < self.deadline:
            self.deadline = end
        return 0

    def is_busy(self):
        """Between requests (waiting out the drain window) or lingering after
        its last response, a connection closes by itself, soon."""
        return not (self.phase == PHASE_IDLE or self.lingering)

    def abort(self):
        """Drop the connection now (graceful shutdown timed out)."""
        if self.transport is not None:
            self.transport.abort()
