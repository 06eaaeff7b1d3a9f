# Response serialisation. See response.pxd.
import http

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memchr, memcmp, memmove

from cppcorn.includes.byte_buffer cimport (
    cc_buffer_append,
    cc_buffer_free,
    cc_buffer_init,
    cc_buffer_reserve,
    cc_buffer_shrink,
)
from cppcorn.includes.http_bytes cimport (
    cc_copy_field_value,
    cc_copy_token_lower,
    cc_equals_lower,
    cc_parse_content_length,
    cc_strip_ows,
    cc_write_hex,
)

DEF INITIAL_CAPACITY = 4096
# A buffer that grew past this for one large response is given back rather
# than kept for the life of the connection.
DEF RETAINED_CAPACITY = 65536


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


cdef bytes status_line(int status):
    return <bytes>STATUS_LINES[status]


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
    and note what they say about framing. A Content-Length beside
    Transfer-Encoding: chunked is dropped, as RFC 9112 6.3 asks."""
    cdef object pair
    cdef bytes name, value
    cdef const char* name_data
    cdef const char* value_data
    cdef char* line
    cdef const char* token
    cdef const char* comma
    cdef size_t name_length, value_length, token_length, rest
    cdef uint64_t content_length
    cdef size_t length_line_start = 0, length_line_end = 0
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
        # The line is written past the buffer's end first (validated as it
        # is copied) and kept by advancing the length, or dropped by not.
        out.reserve(name_length + value_length + 4)
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
            if cc_parse_content_length(value_data, value_length, &content_length) != 0:
                raise RuntimeError(f"Invalid Content-Length header value {value!r}.")
            if info.content_length >= 0 and <uint64_t>info.content_length != content_length:
                raise RuntimeError("Conflicting Content-Length headers in the response.")
            if info.chunked:
                continue
            info.content_length = <int64_t>content_length
            length_line_start = out.buf.length
        elif name_length == 17 and memcmp(line, b"transfer-encoding", 17) == 0:
            token_length = value_length
            token = cc_strip_ows(value_data, &token_length)
            # The final coding decides the framing.
            comma = token
            rest = token_length
            while True:
                comma = <const char*>memchr(token, b',', rest)
                if comma == NULL:
                    break
                rest -= <size_t>(comma - token) + 1
                token = comma + 1
            token_length = rest
            token = cc_strip_ows(token, &token_length)
            if cc_equals_lower(token, token_length, b"chunked", 7):
                info.chunked = True
                if length_line_end > length_line_start:
                    # Drop the Content-Length line written earlier (this
                    # line, not yet kept, moves with the bytes after it).
                    memmove(out.buf.data + length_line_start, out.buf.data + length_line_end,
                            out.buf.length + name_length + value_length + 4 - length_line_end)
                    out.buf.length -= length_line_end - length_line_start
                    length_line_end = length_line_start
        elif name_length == 10 and memcmp(line, b"connection", 10) == 0:
            info.has_connection = True
            token = value_data
            rest = value_length
            while True:
                comma = <const char*>memchr(token, b',', rest)
                token_length = (comma - token) if comma != NULL else rest
                if cc_equals_lower(cc_strip_ows(token, &token_length), token_length, b"close", 5):
                    info.connection_close = True
                if comma == NULL:
                    break
                rest -= <size_t>(comma - token) + 1
                token = comma + 1

        out.buf.length += name_length + value_length + 4
        if length_line_start and length_line_end < length_line_start:
            length_line_end = out.buf.length
    return 0
