# The WebSocket protocol and the ASGI websocket interface. See websocket.pxd.
#
# Frames are read straight from the bytes each read brings (a partial frame
# waits in a C buffer), unmasked in C into the bytes object the application
# gets, and written with their header in one buffer. A message's text is
# validated by Python's UTF-8 decoder; fragments, and a text frame that has
# not arrived whole, are validated as they come (RFC 6455 8.1: fail fast), by
# a small incremental validator in C.
import asyncio
import base64
import binascii
import collections
import contextvars
import hashlib
import os
import zlib
from http import HTTPStatus

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t
from libc.string cimport memcpy, memmove

from cppcorn.http.connection cimport Connection, ServerState, client_label, logged_target
from cppcorn.http.parser cimport RequestHead
from cppcorn.http.response cimport TEXT_PLAIN, HeadInfo, OutputBuffer, send_error_response, send_plain_response
from cppcorn.http.response cimport write_headers, write_status_line
from cppcorn.includes.byte_buffer cimport cc_buffer_append, cc_buffer_free, cc_buffer_init
from cppcorn.includes.compat cimport CC_TASKS_TAKE_CONTEXT
from cppcorn.includes.websocket_frame cimport CC_WS_BINARY, CC_WS_CLOSE, CC_WS_CONTINUATION, CC_WS_PING, CC_WS_PONG
from cppcorn.includes.websocket_frame cimport CC_WS_TEXT, cc_utf8_feed, cc_utf8_init, cc_ws_frame, cc_ws_parse_header
from cppcorn.includes.websocket_frame cimport cc_utf8_feed_masked, cc_ws_unmask, cc_ws_write_header

cdef enum:
    # Frames up to this size are written as one bytes object with their
    # header.
    FRAME_COPY_LIMIT = 16384

# After sending a close frame, wait this long for the peer's before dropping
# the connection (Uvicorn's close_timeout).
cdef double CLOSE_TIMEOUT = 10.0
# After a protocol error, how long the application has to answer the messages
# that came before it (see _fail()).
cdef double FAIL_GRACE = 1.0

cdef object Context = contextvars.Context

cdef bytes ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
cdef bytes DEFLATE_TAIL = b"\x00\x00\xff\xff"
cdef bytes EMPTY = b""
cdef dict CONNECT = {"type": "websocket.connect"}


class ClientDisconnected(OSError):
    """send() after the client went away (ASGI spec 2.4: an OSError)."""


cdef class WebSocketSettings:
    """The WebSocket options of one server."""

    def __init__(
        self,
        *,
        app,
        logger,
        size_t max_size = 16 * 1024 * 1024,
        size_t max_queue = 32,
        ping_interval = 20.0,
        ping_timeout = 20.0,
        bint per_message_deflate = True,
        bint reset_contextvars = False,
    ):
        self.app = app
        self.logger = logger
        self.max_size = max_size
        self.max_queue = max(max_queue, 1)
        self.ping_interval = ping_interval or 0.0
        self.ping_timeout = ping_timeout or 0.0
        self.per_message_deflate = per_message_deflate
        self.reset_contextvars = reset_contextvars


cdef object start_app_task(object loop, object coroutine, object context):
    """A WebSocket connection's application task; `context` None means a
    copy of the current one. Its first step goes through the ready queue,
    never eagerly (Task(eager_start=True)): with many connections every read
    of a poll is parsed first and every application then runs, where eager
    steps interleave recv, parse, app and send per connection (eager
    measured 26.4 against 19.5 CPU µs per hello request on 3.13 when HTTP
    requests ran in a task each)."""
    if context is None:
        return loop.create_task(coroutine)
    if CC_TASKS_TAKE_CONTEXT:
        return loop.create_task(coroutine, context=context)
    # Python 3.10: a task copies the context it is created in.
    return context.run(loop.create_task, coroutine)


def accept_key(bytes key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + ACCEPT_GUID).digest())


cdef str header_problem(str name, bytes value, str cause=None):
    """How websockets (which Uvicorn's default WebSocket implementation
    runs) names a bad handshake header, in the body of the refusal."""
    if value is None:
        return f"missing {name} header"
    if not value:
        return f"empty {name} header"
    problem = f"invalid {name} header: {value.decode('latin-1')}"
    return problem if cause is None else f"{problem}; {cause}"


cdef str key_problem(list keys):
    """What is wrong with the Sec-WebSocket-Key headers, or None: there must
    be one, the base64 of 16 bytes."""
    if len(keys) > 1:
        return header_problem("Sec-WebSocket-Key", b"multiple values")
    key = keys[0] if keys else None
    if key is None:
        return header_problem("Sec-WebSocket-Key", None)
    try:
        raw = base64.b64decode(key, validate=True)
    except binascii.Error as error:
        return header_problem("Sec-WebSocket-Key", key, str(error))
    return None if len(raw) == 16 else header_problem("Sec-WebSocket-Key", key)


cdef str version_problem(list versions):
    if len(versions) > 1:
        return header_problem("Sec-WebSocket-Version", b"multiple values")
    version = versions[0] if versions else None
    return None if version == b"13" else header_problem("Sec-WebSocket-Version", version)


cdef str status_phrase(int status):
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


cdef bint valid_close_code(int code):
    # RFC 6455 7.4 and the IANA registry: what a peer may send.
    return (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999)


cdef class Deflate:
    """permessage-deflate with the parameters one handshake agreed."""

    cdef bytes compress(self, bytes payload):
        if self.server_no_context_takeover or self.compressor is None:
            self.compressor = zlib.compressobj(6, zlib.DEFLATED, -self.server_window_bits, 5)
        data = self.compressor.compress(payload) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        # The sync flush ends with 00 00 ff ff, which the message leaves out.
        return data[:len(data) - 4] if data.endswith(DEFLATE_TAIL) else data

    cdef bytes decompress(self, bytes payload, size_t max_size):
        cdef bytes data, unused, rest
        if not payload:
            # An empty message (a compressor's output minus the 00 00 ff ff
            # it ends with). The tail alone would open a stored block that
            # the next message's bytes would be read into.
            return EMPTY
        if self.client_no_context_takeover or self.decompressor is None:
            self.decompressor = self._new_decompressor()
        # Bounded: a small message must not inflate past the size limit.
        data = self.decompressor.decompress(payload + DEFLATE_TAIL, max_size + 1)
        while self.decompressor.eof:
            # The message ended its DEFLATE stream with a final block (BFINAL
            # set, RFC 7692 7.2.3.3): nothing can follow it in that stream,
            # so the peer compresses what comes next in a new one, without
            # the old window, and a new decompressor reads it. What followed
            # the final block in this message (before the tail added above)
            # is the start of that new stream.
            unused = self.decompressor.unused_data
            rest = unused[:len(unused) - 4] if len(unused) > 4 else EMPTY
            self.decompressor = self._new_decompressor()
            if not rest or <size_t>len(data) > max_size:
                break
            data += self.decompressor.decompress(rest + DEFLATE_TAIL, max_size + 1 - len(data))
        if <size_t>len(data) > max_size or self.decompressor.unconsumed_tail:
            raise OverflowError()
        return data

    cdef object _new_decompressor(self):
        return zlib.decompressobj(-self.client_window_bits)


def _parse_extension_offers(bytes header):
    """[(name, [(param, value or None), ...]), ...] from Sec-WebSocket-Extensions."""
    offers = []
    for offer in header.decode("latin-1").split(","):
        parts = [part.strip() for part in offer.split(";")]
        if not parts[0]:
            continue
        params = []
        for part in parts[1:]:
            name, _, value = part.partition("=")
            value = value.strip().strip('"') if value else None
            params.append((name.strip().lower(), value))
        offers.append((parts[0].lower(), params))
    return offers


cdef Deflate negotiate_deflate(object header):
    """Accept the first permessage-deflate offer whose parameters are valid
    (RFC 7692 7.1), with Uvicorn's choice of 12-bit windows; None if none."""
    cdef Deflate deflate
    if header is None:
        return None
    for name, params in _parse_extension_offers(header):
        if name != "permessage-deflate":
            continue
        seen = set()
        server_bits = None
        client_bits = None
        client_bits_offered = False
        server_no_takeover = False
        client_no_takeover = False
        valid = True
        for param, value in params:
            if param in seen:
                valid = False
                break
            seen.add(param)
            if param == "server_no_context_takeover" and value is None:
                server_no_takeover = True
            elif param == "client_no_context_takeover" and value is None:
                client_no_takeover = True
            elif param == "server_max_window_bits" and value is not None and value.isdigit() \
                    and 8 <= int(value) <= 15:
                server_bits = int(value)
            elif param == "client_max_window_bits" and (
                    value is None or (value.isdigit() and 8 <= int(value) <= 15)):
                client_bits_offered = True
                client_bits = int(value) if value is not None else None
            else:
                valid = False
                break
        if not valid:
            continue
        if server_bits == 8:
            # zlib cannot compress with an 8-bit window: decline this offer.
            continue
        deflate = Deflate.__new__(Deflate)
        deflate.server_window_bits = min(server_bits or 12, 12)
        deflate.client_window_bits = 15
        response = ["permessage-deflate"]
        if server_no_takeover:
            response.append("server_no_context_takeover")
        if client_no_takeover:
            response.append("client_no_context_takeover")
        response.append(f"server_max_window_bits={deflate.server_window_bits}")
        if client_bits_offered:
            deflate.client_window_bits = min(client_bits or 12, 12)
            response.append(f"client_max_window_bits={deflate.client_window_bits}")
        deflate.server_no_context_takeover = server_no_takeover
        deflate.client_no_context_takeover = client_no_takeover
        deflate.response_header = "; ".join(response).encode("latin-1")
        return deflate
    return None


cdef class WebSocketProtocol(Connection):
    """One WebSocket connection: frames in and out, and the ASGI app."""

    @staticmethod
    cdef WebSocketProtocol for_request(WebSocketSettings settings, ServerState state, object loop,
                                       dict scope, RequestHead head):
        """The protocol for an upgrade request whose scope (all but the
        subprotocols) the HTTP protocol has built; `refusal` says if the
        handshake is refused at once (405: not a GET; 400: not a valid
        handshake), with the problem as Uvicorn's websockets names it."""
        cdef WebSocketProtocol websocket
        extensions = None
        keys = []
        versions = []
        subprotocols = []
        for name, value in head.headers:
            if name == b"sec-websocket-key":
                keys.append(value)
            elif name == b"sec-websocket-version":
                versions.append(value)
            elif name == b"sec-websocket-protocol":
                subprotocols.extend(
                    item.strip() for item in value.decode("latin-1").split(",") if item.strip())
            elif name == b"sec-websocket-extensions":
                extensions = value if extensions is None else extensions + b", " + value
        scope["subprotocols"] = subprotocols
        websocket = WebSocketProtocol(settings, state, scope, keys[len(keys) - 1] if keys else None, extensions, loop)
        # Checked in websockets' order; the first problem is the one named.
        if head.method != "GET":
            websocket.refusal = 405
            websocket.refusal_problem = f"unsupported HTTP method: {head.method}"
            websocket.refusal_head_only = head.is_head
            return websocket
        problem = key_problem(keys)
        if problem is None:
            problem = version_problem(versions)
        if problem is not None:
            websocket.refusal = 400
            websocket.refusal_problem = problem
        return websocket

    cdef int _refuse_handshake(self) except -1:
        """Answer an invalid handshake request as Uvicorn's default
        implementation does: the problem in a plain-text body."""
        cdef list headers = TEXT_PLAIN
        if self.refusal == 405:
            headers = TEXT_PLAIN + [(b"allow", b"GET")]
        elif "Sec-WebSocket-Version" in self.refusal_problem:
            # RFC 6455 4.4: say which version this server speaks.
            headers = TEXT_PLAIN + [(b"sec-websocket-version", b"13")]
        send_plain_response(self, self.refusal, headers,
                            f"Failed to open a WebSocket connection: {self.refusal_problem}.\n".encode("utf-8"),
                            self.refusal_head_only)
        self._rejected(self.refusal)
        return 0

    def __cinit__(self):
        if cc_buffer_init(&self.inbuf, 4096):
            raise MemoryError()

    def __dealloc__(self):
        cc_buffer_free(&self.inbuf)

    def __init__(self, WebSocketSettings settings not None, ServerState state not None, dict scope,
                 bytes key, extensions_offer, loop=None):
        self.settings = settings
        self.state = state
        self.scope = scope
        self.key = key
        self.extensions_offer = extensions_offer
        self.loop = asyncio.get_running_loop() if loop is None else loop
        self.events = collections.deque()
        self.waiters = []
        self.message_chunks = []

    cdef int start(self, Connection http, bytes rest) except -1:
        """Take over the HTTP connection's transport, its reading paused or
        not and its writes backed up or not, and run the app (or refuse an
        invalid handshake); `rest` holds bytes that arrived after the
        upgrade request."""
        cdef WebSocketSettings settings = self.settings
        transport = http.transport
        self.attach(transport)
        self.reading_paused = http.reading_paused
        self.writing_paused = http.writing_paused
        self.trace_prefix = http.trace_prefix
        transport.set_protocol(self)
        if self.trace_prefix is not None:
            self.trace(settings.logger, "%sWebSocket connection made")
        if self.refusal:
            return self._refuse_handshake()
        coroutine = self.run_asgi()
        context = Context() if settings.reset_contextvars else None
        task = start_app_task(self.loop, coroutine, context)
        if not task.done():
            self.task = task
            self.state.tasks.add(task)
        if rest:
            self.data_received(rest)
        return 0

    async def run_asgi(self):
        exc = None
        try:
            result = await self.settings.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            # send() after the client left, not handled by the app: the
            # connection is over either way, and that is no app error.
            result = None
        except BaseException as error:
            exc = error
            result = None
        try:
            if result is not None:
                self.settings.logger.error("ASGI callable should return None, but returned '%s'.", result)
            self._app_finished(exc)
        finally:
            if self.task is not None:
                self.state.tasks.discard(self.task)
                self.task = None

    cdef int _app_finished(self, object exc) except -1:
        logger = self.settings.logger
        if exc is not None:
            logger.error("Exception in ASGI application\n", exc_info=exc)
        if self.phase == CONNECTING and self.http_response is None:
            if exc is None:
                logger.error("ASGI callable returned without completing handshake.")
            self._reject(500, None, None)
        elif self.phase == CONNECTING:
            # A denial response the application did not finish.
            self.transport.close()
        elif self.phase == OPEN:
            # 1011 for a failure, a normal close for an app that just returned.
            self._send_close(1011 if exc is not None else 1000, "")
        elif self.phase == FAILING:
            self._close_failed(self.failure_code, self.failure_reason)
        return 0

    # -- asyncio.Protocol ------------------------------------------------

    def connection_made(self, transport):
        # Never called: start() takes the transport over from HTTP.
        self.transport = transport

    def data_received(self, data):
        cdef const unsigned char* pointer
        cdef size_t length, consumed
        if type(data) is not bytes:
            data = bytes(data)
        if self.phase >= FAILING:
            return
        pointer = <const unsigned char*>PyBytes_AS_STRING(data)
        length = <size_t>PyBytes_GET_SIZE(data)
        if self.phase == CONNECTING:
            # The client should wait for our 101 before sending frames. Keep
            # what it sent for after the handshake, and read no more until
            # then, so that this stays one read's worth.
            if cc_buffer_append(&self.inbuf, <const char*>pointer, length):
                raise MemoryError()
            self.update_reading()
            return
        if self.inbuf.length == 0:
            consumed = self._parse(pointer, length)
            if consumed < length and self.phase < FAILING:
                if cc_buffer_append(&self.inbuf, <const char*>(pointer + consumed), length - consumed):
                    raise MemoryError()
            return
        if cc_buffer_append(&self.inbuf, <const char*>pointer, length):
            raise MemoryError()
        consumed = self._parse(<const unsigned char*>self.inbuf.data, self.inbuf.length)
        if self.phase >= FAILING:
            self.inbuf.length = 0
        else:
            memmove(self.inbuf.data, self.inbuf.data + consumed, self.inbuf.length - consumed)
            self.inbuf.length -= consumed

    def eof_received(self):
        return None  # the transport closes; connection_lost() follows

    def connection_lost(self, exc):
        self.detach()
        if self.trace_prefix is not None:
            self.trace(self.settings.logger, "%sWebSocket connection lost")
        if self.phase == FAILING:
            # Gone before the application answered: it hears of the failure.
            self._disconnected(self.failure_code, self.failure_reason)
            self.phase = CLOSED
        elif self.phase != CLOSED:
            # Gone without a close frame. As Uvicorn: 1005 once the handshake
            # is done (RFC 6455 7.1.5 would say 1006), 1006 before it.
            self._disconnected(1006 if self.phase == CONNECTING else 1005, None)
            self.phase = CLOSED

    # -- reading frames --------------------------------------------------

    cdef size_t _parse(self, const unsigned char* data, size_t length) except? 0:
        """Handle every complete frame in data[0:length]; returns how many
        bytes were consumed (the rest is an incomplete frame)."""
        cdef size_t position = 0
        cdef long header_length
        cdef cc_ws_frame frame
        cdef bytes payload
        cdef size_t size, available, checked
        cdef size_t max_size = self.settings.max_size
        while position < length and self.phase < FAILING:
            header_length = cc_ws_parse_header(data + position, length - position, &frame)
            if header_length == 0:
                break
            if header_length < 0:
                self._fail(1002, "invalid frame length")
                break
            if not frame.masked:
                self._fail(1002, "incorrect masking")
                break
            if frame.rsv2 or frame.rsv3:
                self._fail(1002, "reserved bits must be 0")
                break
            if frame.opcode >= 8:
                if frame.opcode != CC_WS_CLOSE and frame.opcode != CC_WS_PING and frame.opcode != CC_WS_PONG:
                    self._fail(1002, "invalid opcode")
                    break
                if frame.payload_length > 125:
                    self._fail(1002, "control frame too long")
                    break
                if not frame.fin:
                    self._fail(1002, "fragmented control frame")
                    break
                if frame.rsv1:
                    self._fail(1002, "reserved bits must be 0")
                    break
            elif frame.opcode == CC_WS_TEXT or frame.opcode == CC_WS_BINARY:
                if self.message_opcode:
                    self._fail(1002, "expected a continuation frame")
                    break
                if frame.rsv1 and self.deflate is None:
                    self._fail(1002, "reserved bits must be 0")
                    break
            elif frame.opcode == CC_WS_CONTINUATION:
                if not self.message_opcode:
                    self._fail(1002, "unexpected continuation frame")
                    break
                if frame.rsv1:
                    self._fail(1002, "reserved bits must be 0" if self.deflate is None
                               else "RSV1 bit set in continuation frame")
                    break
            else:
                self._fail(1002, "invalid opcode")
                break
            if frame.opcode < 8 and frame.payload_length + self.message_size > max_size:
                # Control frames may come between fragments and do not count.
                self._fail(1009, f"frame with {frame.payload_length} bytes exceeds limit of {max_size} bytes"
                           if not self.message_opcode else
                           f"frame with {frame.payload_length} bytes after reading {self.message_size} bytes "
                           f"exceeds limit of {max_size} bytes")
                break
            size = <size_t>frame.payload_length
            available = length - position - <size_t>header_length
            if available < size:
                # Wait for the rest of the frame. Text is checked as it comes
                # (RFC 6455 8.1), not only once the frame is whole.
                if available > self.frame_checked and not frame.rsv1 and (
                        frame.opcode == CC_WS_TEXT or (
                            frame.opcode == CC_WS_CONTINUATION and self.message_opcode == CC_WS_TEXT
                            and not self.message_compressed)):
                    if self.frame_checked == 0 and frame.opcode == CC_WS_TEXT:
                        cc_utf8_init(&self.utf8)
                    if cc_utf8_feed_masked(&self.utf8, data + position + header_length + self.frame_checked,
                                           available - self.frame_checked, frame.mask, self.frame_checked):
                        self._fail(1007, "")
                        break
                    self.frame_checked = available
                break
            payload = PyBytes_FromStringAndSize(NULL, size)
            cc_ws_unmask(<uint8_t*>PyBytes_AS_STRING(payload), data + position + header_length, size, frame.mask, 0)
            position += <size_t>header_length + size
            checked = self.frame_checked
            self.frame_checked = 0
            self._on_frame(frame.opcode, frame.fin, frame.rsv1, payload, checked)
        return position

    cdef int _on_frame(self, int opcode, bint fin, bint rsv1, bytes payload, size_t checked) except -1:
        """One whole frame; the first `checked` bytes of a text payload were
        validated while the frame was arriving."""
        cdef size_t size = <size_t>PyBytes_GET_SIZE(payload)
        if opcode == CC_WS_PING:
            if self.phase == OPEN:
                self._write_frame(CC_WS_PONG, payload, False)
            return 0
        if opcode == CC_WS_PONG:
            if self.ping_payload is not None and payload == self.ping_payload:
                self.ping_payload = None
                self.deadline = self.state.now + self.settings.ping_interval if self.settings.ping_interval else 0.0
            return 0
        if opcode == CC_WS_CLOSE:
            return self._on_close_frame(payload)
        if opcode != CC_WS_CONTINUATION:
            if fin:
                # The common case: a whole message in one frame.
                return self._on_message(opcode, payload, rsv1)
            self.message_opcode = opcode
            self.message_compressed = rsv1
            self.message_chunks = [payload]
            self.message_size = size
            if opcode == CC_WS_TEXT and not rsv1:
                if not checked:
                    cc_utf8_init(&self.utf8)
                if cc_utf8_feed(&self.utf8, <uint8_t*>PyBytes_AS_STRING(payload) + checked, size - checked):
                    return self._fail(1007, "")
            return 0
        self.message_chunks.append(payload)
        self.message_size += size
        if self.message_opcode == CC_WS_TEXT and not self.message_compressed:
            if cc_utf8_feed(&self.utf8, <uint8_t*>PyBytes_AS_STRING(payload) + checked, size - checked):
                return self._fail(1007, "")
        if not fin:
            return 0
        opcode = self.message_opcode
        payload = EMPTY.join(self.message_chunks)
        self.message_opcode = 0
        self.message_chunks = []
        self.message_size = 0
        return self._on_message(opcode, payload, self.message_compressed)

    cdef int _on_message(self, int opcode, bytes payload, bint compressed) except -1:
        cdef str text
        if self.close_sent:
            # As Uvicorn: once the application has closed, messages still in
            # flight are dropped; its next receive() is the disconnect.
            return 0
        if compressed:
            try:
                payload = self.deflate.decompress(payload, self.settings.max_size)
            except OverflowError:
                return self._fail(1009, f"frame exceeds limit of {self.settings.max_size} bytes")
            except zlib.error:
                return self._fail(1002, "decompression failed")
        if opcode == CC_WS_TEXT:
            try:
                text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload), NULL)
            except UnicodeDecodeError:
                # Uvicorn's close for this carries no reason.
                return self._fail(1007, "")
            return self._deliver({"type": "websocket.receive", "text": text})
        return self._deliver({"type": "websocket.receive", "bytes": payload})

    cdef int _on_close_frame(self, bytes payload) except -1:
        cdef size_t size = <size_t>PyBytes_GET_SIZE(payload)
        cdef int code = 1005
        cdef str reason = ""
        if size == 1:
            return self._fail(1002, "close frame too short")
        if size >= 2:
            code = (<uint8_t>payload[0] << 8) | <uint8_t>payload[1]
            try:
                reason = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(payload) + 2, size - 2, NULL)
            except UnicodeDecodeError as error:
                return self._fail(1007, f"{error.reason} at position {error.start}")
            if not valid_close_code(code):
                return self._fail(1002, "invalid status code")
        if not self.close_sent:
            # Echo the close frame as it came, code and reason (RFC 6455
            # 5.5.1; as Uvicorn's websockets does), then the connection ends.
            self.close_sent = True
            self._write_frame(CC_WS_CLOSE, payload, False)
        self.phase = CLOSED
        self.transport.close()
        return self._disconnected(code, reason)

    cdef int _fail(self, int code, str reason) except -1:
        """Fail the connection for a protocol error (RFC 6455 7.1.7). Messages
        that came before the error (in the same read, or queued) and that the
        application has not answered are answered first: it gets them, its
        replies go out before the close frame, and the connection fails once
        it asks for its next message (or returns, or after FAIL_GRACE)."""
        if self.phase >= FAILING:
            return 0
        if self.phase == OPEN and self.message_unanswered:
            self.phase = FAILING
            self.failure_code = code
            self.failure_reason = reason
            self.deadline = self.state.now + FAIL_GRACE
            return self.update_reading()
        return self._close_failed(code, reason)

    cdef int _close_failed(self, int code, str reason) except -1:
        # Uvicorn logs nothing above DEBUG for a client's protocol error.
        self.settings.logger.debug("WebSocket connection failed with %d %r.", code, reason)
        if not self.close_sent:
            self._send_close(code, reason)
        self.phase = CLOSED
        self.transport.close()
        return self._disconnected(code, reason)

    # -- receive ---------------------------------------------------------

    cdef int _deliver(self, dict message) except -1:
        cdef object waiter
        self.message_unanswered = True
        while self.waiters:
            waiter = self.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(message)
                return 0
        self.events.append(message)
        self.update_reading()
        return 0

    cdef int _disconnected(self, int code, str reason) except -1:
        """The connection is over: every present and future receive() gets
        websocket.disconnect with this code, and this reason unless it is
        None (the keys Uvicorn gives for the same event)."""
        if self.disconnect_message is not None:
            return 0
        self.deadline = 0.0
        if reason is None:
            self.disconnect_message = {"type": "websocket.disconnect", "code": code}
        else:
            self.disconnect_message = {"type": "websocket.disconnect", "code": code, "reason": reason}
        waiters = self.waiters
        self.waiters = []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(self.disconnect_message)
        return 0

    cdef bint wants_reading_paused(self):
        """Before the handshake, what the client sent early waits and no
        more is read; once open, the incoming queue is bounded
        (--ws-max-queue): no reading while the application is that many
        messages behind."""
        if self.phase == CONNECTING:
            return self.inbuf.length > 0
        if self.phase == FAILING:
            return True
        return <size_t>len(self.events) >= self.settings.max_queue and self.phase == OPEN

    async def receive(self):
        if not self.connect_delivered:
            self.connect_delivered = True
            return CONNECT
        if self.events:
            message = self.events.popleft()
            if self.reading_paused:
                self.update_reading()
            return message
        # The application has dealt with every message it was given.
        self.message_unanswered = False
        if self.phase == FAILING:
            self._close_failed(self.failure_code, self.failure_reason)
        if self.disconnect_message is not None:
            return self.disconnect_message
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        return await waiter

    # -- send ------------------------------------------------------------

    async def send(self, message):
        if type(message) is not dict and not isinstance(message, dict):
            raise RuntimeError(f"ASGI message must be a dict, got {type(message).__name__}.")
        message_type = message.get("type")
        if self.phase == CONNECTING:
            if self.http_response is not None:
                if message_type != "websocket.http.response.body":
                    raise RuntimeError(
                        f"Expected ASGI message 'websocket.http.response.body', but got '{message_type}'.")
                self._http_response(message)
            elif message_type == "websocket.accept":
                self._accept(message)
            elif message_type == "websocket.close":
                self._log_handshake("403")
                self._reject(403, TEXT_PLAIN, EMPTY)
            elif message_type == "websocket.http.response.start":
                self._http_response(message)
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start', but got '{message_type}'.")
            return
        if (self.phase != OPEN and self.phase != FAILING) or self.close_sent:
            raise ClientDisconnected("The WebSocket connection is closed.")
        if message_type == "websocket.send":
            data = message.get("bytes")
            text = message.get("text")
            if data is not None and text is None:
                if type(data) is not bytes:
                    if not isinstance(data, (bytes, bytearray, memoryview)):
                        raise RuntimeError(f"'websocket.send' bytes must be bytes, got {type(data).__name__}.")
                    data = bytes(data)
                self._write_frame(CC_WS_BINARY, data, True)
            elif text is not None and data is None:
                if type(text) is not str:
                    raise RuntimeError(f"'websocket.send' text must be str, got {type(text).__name__}.")
                self._write_frame(CC_WS_TEXT, (<str>text).encode("utf-8"), True)
            else:
                raise RuntimeError("'websocket.send' needs exactly one of 'bytes' and 'text'.")
            if self.writing_paused and (self.phase == OPEN or self.phase == FAILING):
                # The client reads slower than the application writes.
                await self.drained()
        elif message_type == "websocket.close":
            code = message.get("code", 1000)
            reason = message.get("reason") or ""
            self._send_close(code, reason)
            # As Uvicorn: the application's next receive() is the disconnect,
            # with its own code and reason, whatever the peer answers.
            self._disconnected(code, reason)
            if self.phase == FAILING:
                # No answer is awaited from a peer that broke the protocol.
                self._close_failed(self.failure_code, self.failure_reason)
        else:
            raise RuntimeError(
                f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{message_type}'.")

    cdef _log_handshake(self, str outcome):
        self.settings.logger.info(
            '%s - "WebSocket %s" %s', client_label(self.scope), logged_target(self.scope), outcome)

    cdef int _accept(self, dict message) except -1:
        cdef OutputBuffer out = OutputBuffer()
        cdef HeadInfo info
        subprotocol = message.get("subprotocol")
        if self.settings.per_message_deflate:
            self.deflate = negotiate_deflate(self.extensions_offer)
        write_status_line(out, 101)
        out.append_bytes(self.state.default_headers)
        out.append_bytes(b"upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ")
        out.append_bytes(accept_key(self.key))
        out.append(b"\r\n", 2)
        if subprotocol is not None:
            if not isinstance(subprotocol, str):
                raise RuntimeError(f"'websocket.accept' subprotocol must be a str, got {subprotocol!r}.")
            out.append_bytes(b"sec-websocket-protocol: " + subprotocol.encode("latin-1") + b"\r\n")
        if self.deflate is not None:
            out.append_bytes(b"sec-websocket-extensions: " + self.deflate.response_header + b"\r\n")
        write_headers(out, message.get("headers"), &info)
        out.append(b"\r\n", 2)
        self.write_from(out.buf.data, out.buf.length)
        self.phase = OPEN
        self._log_handshake("[accepted]")
        self.settings.logger.info("connection open")
        if self.settings.ping_interval:
            self.deadline = self.state.now + self.settings.ping_interval
        if self.inbuf.length:
            # Frames the client sent before our 101.
            pending = PyBytes_FromStringAndSize(self.inbuf.data, self.inbuf.length)
            self.inbuf.length = 0
            self.data_received(pending)
        self.update_reading()
        return 0

    cdef int _reject(self, int status, list headers, bytes body) except -1:
        """Answer the handshake with a plain HTTP response and close;
        `headers` None: cppcorn's own error response for `status`."""
        if headers is None:
            send_error_response(self, status)
        else:
            # 204 and 304 have no body (RFC 9110 15.3.5, 15.4.5).
            send_plain_response(self, status, headers, body, status == 204 or status == 304)
        return self._rejected(status)

    cdef int _rejected(self, int status) except -1:
        """The handshake is answered with `status` and the connection closing."""
        # Uvicorn's websockets logs this for every handshake it refuses.
        self.settings.logger.info("connection rejected (%d %s)", status, status_phrase(status))
        self.phase = CLOSED
        return self._disconnected(1006, None)

    cdef int _http_response(self, dict message) except -1:
        """The websocket.http.response extension: a custom HTTP response
        instead of the handshake. The body is gathered, then sent whole."""
        if self.http_response is None:
            status = message.get("status")
            # The connection closes after it: a final response (a 1xx
            # would leave the client waiting for one).
            if type(status) is not int or not 200 <= status <= 599:
                raise RuntimeError(
                    f"'websocket.http.response.start' status must be an int in 200..599, got {status!r}.")
            self.http_response = [status, list(message.get("headers") or []), []]
            self._log_handshake(str(status))
            return 0
        body = message.get("body", EMPTY)
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise RuntimeError(f"'websocket.http.response.body' body must be bytes, got {type(body).__name__}.")
        self.http_response[2].append(bytes(body))
        if not message.get("more_body", False):
            status, headers, parts = self.http_response
            self._reject(status, headers, EMPTY.join(parts))
        return 0

    cdef int _write_frame(self, int opcode, bytes payload, bint compress) except -1:
        cdef uint8_t header[10]
        cdef size_t header_length, size
        cdef bint rsv1 = False
        cdef bytes frame
        if compress and self.deflate is not None:
            payload = self.deflate.compress(payload)
            rsv1 = True
        size = <size_t>PyBytes_GET_SIZE(payload)
        header_length = cc_ws_write_header(header, 1, rsv1, opcode, size)
        if size <= FRAME_COPY_LIMIT:
            frame = PyBytes_FromStringAndSize(NULL, header_length + size)
            memcpy(PyBytes_AS_STRING(frame), header, header_length)
            memcpy(PyBytes_AS_STRING(frame) + header_length, PyBytes_AS_STRING(payload), size)
            return self.write(frame)
        return self.write_parts((PyBytes_FromStringAndSize(<char*>header, header_length), payload))

    cdef int _send_close(self, int code, str reason) except -1:
        cdef bytes encoded = reason.encode("utf-8")
        if self.close_sent:
            return 0
        if len(encoded) > 123:
            # A control frame carries at most 125 bytes: cut the reason at a
            # character boundary so that it stays valid UTF-8.
            encoded = encoded[:123].decode("utf-8", "ignore").encode("utf-8")
        self.close_sent = True
        self._write_frame(CC_WS_CLOSE, bytes([code >> 8, code & 0xff]) + encoded, False)
        if self.phase == OPEN:
            # Wait for the peer's close frame, but not forever.
            self.phase = CLOSING
            self.deadline = self.state.now + CLOSE_TIMEOUT
        return 0

    # -- lifecycle -------------------------------------------------------

    cdef int on_deadline(self, double now) except -1:
        if self.phase == FAILING:
            # The application has not asked for its next message in time.
            return self._close_failed(self.failure_code, self.failure_reason)
        if self.phase == CLOSING:
            # The application has had its disconnect since its close.
            self.phase = CLOSED
            self.transport.abort()
            return 0
        if self.phase != OPEN:
            return 0
        if self.ping_payload is not None:
            # No pong in time: the peer is gone or stuck. As Uvicorn: a 1011
            # close, then the connection is dropped, which the application
            # hears of as a connection lost (1005).
            if self.trace_prefix is not None:
                self.trace(self.settings.logger, "%sWebSocket keepalive ping timeout")
            self._send_close(1011, "keepalive ping timeout")
            self.phase = CLOSED
            self.transport.close()
            return self._disconnected(1005, None)
        payload = os.urandom(4)
        self._write_frame(CC_WS_PING, payload, False)
        if self.settings.ping_timeout:
            self.ping_payload = payload
            self.deadline = now + self.settings.ping_timeout
        else:
            # No timeout: keep pinging (keeps proxies from idling us out).
            self.deadline = now + self.settings.ping_interval
        return 0

    def shutdown(self):
        """Graceful shutdown: 1012 (service restart) to open connections."""
        if self.phase == OPEN:
            # As Uvicorn: the close frame, then the connection ends without
            # waiting for the client's answer.
            self._send_close(1012, "")
            self.phase = CLOSED
            self.transport.close()
            self._disconnected(1012, None)
        elif self.phase == FAILING:
            self._close_failed(self.failure_code, self.failure_reason)
        elif self.phase == CONNECTING:
            self._reject(500, None, None)

    def abort(self):
        if self.transport is not None:
            self.transport.abort()
