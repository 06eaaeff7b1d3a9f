# Responses. See response.pxd.
import http

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from libc.stdint cimport INT64_MAX, int64_t, uint64_t
from libc.string cimport memchr, memcmp, memmove

from cppcorn.http.connection cimport Connection
from cppcorn.includes.byte_buffer cimport cc_buffer_append, cc_buffer_free, cc_buffer_init, cc_buffer_reserve
from cppcorn.includes.byte_buffer cimport cc_buffer_shrink
from cppcorn.includes.http_bytes cimport cc_copy_field_value, cc_copy_token_lower, cc_equals_lower
from cppcorn.includes.http_bytes cimport cc_parse_content_length, cc_strip_ows, cc_write_hex


cdef enum:
    INITIAL_CAPACITY = 4096
    # A buffer that grew past this for one large response is given back
    # rather than kept for the life of the connection.
    RETAINED_CAPACITY = 65536
    # Bodies up to this size are copied next to the head into one buffer
    # (one write); larger ones go out as separate buffers of one writev().
    BODY_COPY_LIMIT = 16384

cdef bytes CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"
cdef bytes CHUNKED_HEADER = b"transfer-encoding: chunked\r\n"
cdef bytes CLOSE_HEADER = b"connection: close\r\n"
cdef bytes KEEP_ALIVE_HEADER = b"connection: keep-alive\r\n"
cdef bytes CHUNK_END = b"\r\n"
cdef bytes LAST_CHUNK_AFTER_DATA = b"\r\n0\r\n\r\n"
TEXT_PLAIN = [(b"content-type", b"text/plain; charset=utf-8")]

cdef dict ERROR_BODIES = {
    400: b"Invalid HTTP request received.",
    408: b"Request Timeout",
    426: b"Upgrade Required",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
}


def _build_status_lines():
    lines = []
    for code in range(600):
        try:
            phrase = http.HTTPStatus(code).phrase
        except ValueError:
            phrase = ""
        lines.append(f"HTTP/1.1 {code} {phrase}\r\n".encode("latin-1"))
    return tuple(lines)


# Status lines for 0..599; like Uvicorn, an unknown code gets an empty phrase.
cdef tuple STATUS_LINES = _build_status_lines()


cdef class OutputBuffer:
    def __cinit__(self):
        if cc_buffer_init(&self.buf, INITIAL_CAPACITY):
            raise MemoryError()

    def __dealloc__(self):
        cc_buffer_free(&self.buf)

    cdef int reserve(self, size_t extra) except -1:
        if cc_buffer_reserve(&self.buf, extra):
            raise MemoryError()
        return 0

    cdef int append(self, const char* data, size_t length) except -1:
        if cc_buffer_append(&self.buf, data, length):
            raise MemoryError()
        return 0

    cdef int append_bytes(self, bytes data) except -1:
        return self.append(PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data))

    cdef int append_chunk_size(self, size_t size) except -1:
        self.reserve(18)
        self.buf.length += cc_write_hex(self.buf.data + self.buf.length, size)
        self.buf.data[self.buf.length] = b'\r'
        self.buf.data[self.buf.length + 1] = b'\n'
        self.buf.length += 2
        return 0

    cdef bytes take(self):
        """The buffered bytes as one bytes object; the buffer is emptied."""
        cdef bytes result = PyBytes_FromStringAndSize(self.buf.data, self.buf.length)
        self.clear()
        return result

    cdef void clear(self):
        """Empty the buffer, giving back memory a large head took."""
        self.buf.length = 0
        cc_buffer_shrink(&self.buf, RETAINED_CAPACITY, INITIAL_CAPACITY)


cdef int write_status_line(OutputBuffer out, object status) except -1:
    cdef long code
    if type(status) is not int and not isinstance(status, int):
        raise RuntimeError(f"ASGI 'http.response.start' status must be an int, got {status!r}.")
    code = status
    if code < 100 or code > 599:
        raise RuntimeError(f"ASGI 'http.response.start' status {code} is not a valid HTTP status code.")
    out.append_bytes(<bytes>STATUS_LINES[code])
    return 0


cdef inline int check_header_part(object part) except -1:
    if not PyBytes_Check(part):
        raise RuntimeError(
            f"ASGI response header names and values must be bytes, got {type(part).__name__}: {part!r}.")
    return 0


cdef int write_headers(OutputBuffer out, object headers, HeadInfo* info) except -1:
    """Append the application's headers (names lower-cased, each validated)
    and note what they say about framing, refusing (RuntimeError) headers
    that would frame the response two ways. The server owns the transfer
    framing: the only Transfer-Encoding accepted is one `chunked` field,
    which is noted here and not copied (the writer adds its own where it
    applies), and a Content-Length beside it is dropped, as RFC 9112 6.3
    asks. A Content-Length repeated with the same value goes out once
    (RFC 9110 8.6); different values are refused."""
    cdef object pair
    cdef bytes name, value
    cdef const char* name_data
    cdef const char* value_data
    cdef char* line
    cdef const char* token
    cdef const char* stripped
    cdef const char* comma
    cdef size_t name_length, value_length, line_length, token_length, rest
    cdef uint64_t content_length
    # Where the Content-Length line went, to drop it if chunked comes later.
    cdef size_t length_line_start = 0, length_line_length = 0
    info.content_length = -1
    info.chunked = False
    info.connection_close = False
    info.has_connection = False
    if headers is None:
        return 0
    for pair in headers:
        if type(pair) is tuple and len(<tuple>pair) == 2:
            name = (<tuple>pair)[0] if PyBytes_Check((<tuple>pair)[0]) else None
            value = (<tuple>pair)[1] if PyBytes_Check((<tuple>pair)[1]) else None
            if name is None:
                check_header_part((<tuple>pair)[0])
            if value is None:
                check_header_part((<tuple>pair)[1])
        else:
            try:
                raw_name, raw_value = pair
            except (TypeError, ValueError):
                raise RuntimeError(
                    f"ASGI response headers must be [name, value] pairs, got {pair!r}.") from None
            check_header_part(raw_name)
            check_header_part(raw_value)
            name = raw_name
            value = raw_value
        name_data = PyBytes_AS_STRING(name)
        name_length = <size_t>PyBytes_GET_SIZE(name)
        value_data = PyBytes_AS_STRING(value)
        value_length = <size_t>PyBytes_GET_SIZE(value)
        line_length = name_length + value_length + 4
        # The line is written past the buffer's end first (validated as it
        # is copied) and kept by advancing the length, or dropped by not.
        out.reserve(line_length)
        line = out.buf.data + out.buf.length
        if not cc_copy_token_lower(line, name_data, name_length):
            raise RuntimeError(f"Invalid HTTP header name {name!r}.")
        line[name_length] = b':'
        line[name_length + 1] = b' '
        if not cc_copy_field_value(line + name_length + 2, value_data, value_length):
            raise RuntimeError(f"Invalid HTTP header value {value!r}.")
        line[name_length + 2 + value_length] = b'\r'
        line[name_length + 3 + value_length] = b'\n'

        if name_length == 14 and memcmp(line, b"content-length", 14) == 0:
            if (cc_parse_content_length(value_data, value_length, &content_length) != 0
                    or content_length > <uint64_t>INT64_MAX):
                raise RuntimeError(f"Invalid Content-Length header value {value!r}.")
            if info.content_length >= 0:
                if <uint64_t>info.content_length != content_length:
                    raise RuntimeError("Conflicting Content-Length headers in the response.")
                continue
            info.content_length = <int64_t>content_length
            length_line_start = out.buf.length
            length_line_length = line_length
        elif name_length == 17 and memcmp(line, b"transfer-encoding", 17) == 0:
            if info.chunked:
                raise RuntimeError("More than one Transfer-Encoding header in the response.")
            token_length = value_length
            token = cc_strip_ows(value_data, &token_length)
            if not cc_equals_lower(token, token_length, b"chunked", 7):
                raise RuntimeError(
                    f"Unsupported Transfer-Encoding {value!r} in the response: "
                    "the server frames the body, only 'chunked' is accepted.")
            info.chunked = True
            continue
        elif name_length == 10 and memcmp(line, b"connection", 10) == 0:
            info.has_connection = True
            token = value_data
            rest = value_length
            while True:
                comma = <const char*>memchr(token, b',', rest)
                token_length = (comma - token) if comma != NULL else rest
                # Stripped first: C leaves the order of a call's arguments open.
                stripped = cc_strip_ows(token, &token_length)
                if cc_equals_lower(stripped, token_length, b"close", 5):
                    info.connection_close = True
                if comma == NULL:
                    break
                rest -= <size_t>(comma - token) + 1
                token = comma + 1

        out.buf.length += line_length
    if info.chunked and length_line_length:
        memmove(out.buf.data + length_line_start, out.buf.data + length_line_start + length_line_length,
                out.buf.length - length_line_start - length_line_length)
        out.buf.length -= length_line_length
    if info.chunked:
        info.content_length = -1
    return 0


cdef int send_plain_response(Connection connection, int status, list headers, bytes body,
                             bint head_only=False) except -1:
    cdef OutputBuffer out
    cdef HeadInfo info
    if connection.transport is None or connection.is_closing():
        return 0
    out = OutputBuffer()
    write_status_line(out, status)
    out.append_bytes(connection.state.default_headers)
    write_headers(out, headers, &info)
    if info.content_length < 0:
        out.append_bytes(b"content-length: %d\r\n" % len(body))
    out.append_bytes(b"connection: close\r\n\r\n")
    if not head_only:
        out.append_bytes(body)
    connection.write_from(out.buf.data, out.buf.length)
    return connection.linger_close()


cdef int send_error_response(Connection connection, int status, list extra_headers=None,
                             bint head_only=False) except -1:
    return send_plain_response(
        connection, status, TEXT_PLAIN if extra_headers is None else TEXT_PLAIN + extra_headers,
        ERROR_BODIES.get(status, ERROR_BODIES[400]), head_only)


cdef class ResponseWriter:
    """The connection side of one request's response (see response.pxd);
    each protocol subclasses it."""

    cdef int start(self, object status, object headers) except -1:
        raise NotImplementedError

    cdef object write(self, bytes body, bint more_body):
        raise NotImplementedError

    cdef int write_continue(self) except -1:
        raise NotImplementedError

    cdef int refuse(self, int status) except -1:
        raise NotImplementedError

    cdef int abandon(self) except -1:
        raise NotImplementedError

    cdef int body_taken(self) except -1:
        raise NotImplementedError

    cdef bint reusable(self):
        return False


cdef class Http11Writer(ResponseWriter):
    """HTTP/1.1 framing: the head is held in the output buffer until the
    first body message, so that a small response leaves in one write;
    Content-Length is enforced, chunked encoding added where the length is
    unknown, HEAD/204/304 responses carry no body (a 1xx is refused); and the keep-alive
    decision: the request's, the application's `Connection: close`, and
    HTTP/1.0's rules."""

    def __init__(self, Connection connection not None):
        self.connection = connection
        self.out = OutputBuffer()

    cdef int begin(self, bint keep_alive, bint http_1_0, bint is_head) except -1:
        self.keep_alive = keep_alive
        self.http_1_0 = http_1_0
        self.is_head = is_head
        return 0

    cdef int start(self, object status, object headers) except -1:
        cdef OutputBuffer out = self.out
        cdef HeadInfo info
        cdef int code
        out.buf.length = 0
        write_status_line(out, status)
        code = status
        if code < 200:
            # ASGI has no informational responses here; sent as the final
            # one, the client would take the next response for this one's.
            raise RuntimeError(
                f"ASGI 'http.response.start' status {code} is informational, not a final response.")
        out.append_bytes(self.connection.state.default_headers)
        write_headers(out, headers, &info)
        self.no_body = self.is_head or code == 204 or code == 304
        self.chunked = False
        self.content_remaining = -1
        if info.connection_close:
            self.keep_alive = False
        if info.content_length >= 0:
            if not self.no_body:
                self.content_remaining = info.content_length
        elif not self.no_body:
            # The length is unknown (or the app asked for chunked).
            if self.http_1_0:
                # An HTTP/1.0 client cannot read chunked (RFC 9112 6.1: no
                # Transfer-Encoding for it): the end of the body is the end
                # of the connection.
                self.keep_alive = False
            else:
                self.chunked = True
                out.append_bytes(CHUNKED_HEADER)
        elif info.chunked and not self.http_1_0 and code != 204:
            # A HEAD or 304 response keeps the framing the app gave (RFC
            # 9112 6.1: never in a 204).
            out.append_bytes(CHUNKED_HEADER)
        if not self.keep_alive:
            if not info.connection_close:
                out.append_bytes(CLOSE_HEADER)
        elif self.http_1_0 and not info.has_connection:
            out.append_bytes(KEEP_ALIVE_HEADER)
        out.append(b"\r\n", 2)
        return code

    cdef object write(self, bytes body, bint more_body):
        cdef OutputBuffer out = self.out
        cdef size_t size = <size_t>PyBytes_GET_SIZE(body)
        if self.no_body:
            size = 0
        elif self.content_remaining >= 0:
            # A response that ends at another length than it announced
            # cannot be completed: the connection closes.
            if <long long>size > self.content_remaining:
                if not more_body:
                    self.abandon()
                raise RuntimeError("Response content longer than Content-Length")
            self.content_remaining -= size
            if not more_body and self.content_remaining != 0:
                # Send what there is first.
                if out.buf.length or size:
                    self._flush_with(body, size, False)
                self.abandon()
                raise RuntimeError("Response content shorter than Content-Length")
        if not more_body:
            self.connection.state.count_request()
        if size or out.buf.length or (self.chunked and not more_body):
            self._flush_with(body, size, more_body)
        if not more_body:
            self._complete()
        if self.connection.writing_paused:
            # The client reads slower than the application writes: wait until
            # the transport's buffer drains below its low-water mark.
            return self.connection.drained()
        return None

    cdef int _flush_with(self, bytes body, size_t size, bint more_body) except -1:
        """Write the held head (if any) and one body message, framed."""
        cdef OutputBuffer out = self.out
        cdef bint last_chunk = self.chunked and not more_body
        cdef bytes head
        if self.chunked and size:
            out.append_chunk_size(size)
        if size <= BODY_COPY_LIMIT:
            if size:
                out.append(PyBytes_AS_STRING(body), size)
                if self.chunked:
                    out.append(b"\r\n", 2)
            if last_chunk:
                out.append(b"0\r\n\r\n", 5)
            self.connection.write_from(out.buf.data, out.buf.length)
            out.clear()
        else:
            head = out.take()
            if self.chunked:
                self.connection.write_parts((head, body, LAST_CHUNK_AFTER_DATA if last_chunk else CHUNK_END))
            elif head:
                self.connection.write_parts((head, body))
            else:
                self.connection.write(body)
        return 0

    cdef int _complete(self) except -1:
        if not self.keep_alive:
            self.connection.linger_close()
        return self.connection.on_response_complete()

    cdef int write_continue(self) except -1:
        return self.connection.write(CONTINUE_RESPONSE)

    cdef int refuse(self, int status) except -1:
        self.keep_alive = False
        self.connection.state.count_request()
        return send_error_response(self.connection, status, None, self.is_head)

    cdef int abandon(self) except -1:
        self.keep_alive = False
        if self.connection.transport is not None:
            self.connection.transport.close()
        return 0

    cdef int body_taken(self) except -1:
        return self.connection.update_reading()

    cdef bint reusable(self):
        return self.keep_alive and self.connection.transport is not None and not self.connection.is_closing()
