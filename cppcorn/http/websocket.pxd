# The WebSocket protocol (RFC 6455, with permessage-deflate from RFC 7692)
# and the ASGI websocket interface. The HTTP/1.1 protocol recognises the
# upgrade request, builds the scope, makes the protocol with for_request()
# and hands the transport over with start().
from cppcorn.http.connection cimport Connection, ServerState
from cppcorn.http.parser cimport RequestHead
from cppcorn.includes.byte_buffer cimport cc_buffer
from cppcorn.includes.websocket_frame cimport cc_utf8_state


cdef class WebSocketSettings:
    # The --ws-* options, resolved once per server.
    cdef readonly object app
    cdef readonly object logger
    cdef readonly size_t max_size
    cdef readonly size_t max_queue
    cdef readonly double ping_interval     # 0: no keepalive pings
    cdef readonly double ping_timeout
    cdef readonly bint per_message_deflate
    cdef readonly bint reset_contextvars


cdef class Deflate:
    # permessage-deflate parameters agreed in the handshake, and the zlib
    # streams that apply them.
    cdef bytes response_header          # the Sec-WebSocket-Extensions value
    cdef int server_window_bits
    cdef int client_window_bits
    cdef bint server_no_context_takeover
    cdef bint client_no_context_takeover
    cdef object compressor
    cdef object decompressor

    cdef bytes compress(self, bytes payload)
    cdef bytes decompress(self, bytes payload, size_t max_size)
    cdef object _new_decompressor(self)


cdef enum WebSocketPhase:
    # In this order: from FAILING on, no more frames are read.
    CONNECTING = 0      # the handshake waits for the application
    OPEN
    CLOSING             # our close frame is sent, the peer's awaited
    # The peer broke the protocol after messages the application has not
    # answered yet: no more is read, the application may still send, and the
    # connection fails once it asks for the next message.
    FAILING
    CLOSED


cdef class WebSocketProtocol(Connection):
    cdef WebSocketSettings settings
    cdef readonly dict scope
    cdef bytes key
    cdef object extensions_offer      # Sec-WebSocket-Extensions, or None
    # The status to refuse the handshake with at once (400, 405), or 0, and
    # the problem its body names.
    cdef int refusal
    cdef str refusal_problem
    cdef bint refusal_head_only  # refusing a HEAD request: no body
    cdef Deflate deflate
    cdef object task
    cdef WebSocketPhase phase

    # Incoming: a partial frame, the message being reassembled, the queue.
    cdef cc_buffer inbuf
    cdef int message_opcode           # 0: no message in progress
    cdef bint message_compressed
    cdef list message_chunks
    cdef size_t message_size
    cdef cc_utf8_state utf8
    # How much of the payload of the incomplete text frame at the start of
    # the unparsed bytes has been validated as UTF-8 already.
    cdef size_t frame_checked
    cdef object events                # collections.deque of ASGI messages
    cdef list waiters
    cdef bint connect_delivered
    cdef dict disconnect_message
    # A message was delivered that the application has not answered yet: it
    # has not asked for the next one since.
    cdef bint message_unanswered
    # FAILING: the close code and reason the connection fails with.
    cdef int failure_code
    cdef str failure_reason

    # Outgoing
    cdef bint close_sent
    cdef object http_response         # websocket.http.response: [status, headers, body parts]

    # Keepalive
    cdef bytes ping_payload           # the ping awaiting its pong, or None

    @staticmethod
    cdef WebSocketProtocol for_request(WebSocketSettings settings, ServerState state, object loop,
                                       dict scope, RequestHead head)
    cdef int start(self, Connection http, bytes rest) except -1
    cdef size_t _parse(self, const unsigned char* data, size_t length) except? 0
    cdef int _on_frame(self, int opcode, bint fin, bint rsv1, bytes payload, size_t checked) except -1
    cdef int _on_message(self, int opcode, bytes payload, bint compressed) except -1
    cdef int _on_close_frame(self, bytes payload) except -1
    cdef int _deliver(self, dict message) except -1
    cdef int _disconnected(self, int code, str reason) except -1
    cdef int _fail(self, int code, str reason) except -1
    cdef int _close_failed(self, int code, str reason) except -1
    cdef int _write_frame(self, int opcode, bytes payload, bint compress) except -1
    cdef int _send_close(self, int code, str reason) except -1
    cdef bint wants_reading_paused(self)
    cdef int _accept(self, dict message) except -1
    cdef int _refuse_handshake(self) except -1
    cdef int _reject(self, int status, list headers, bytes body) except -1
    cdef int _rejected(self, int status) except -1
    cdef int _http_response(self, dict message) except -1
    cdef int _app_finished(self, object exc) except -1
    cdef _log_handshake(self, str outcome)
