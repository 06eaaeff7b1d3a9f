# The HTTP/1.1 request parser over llhttp. See parser.pxd for the shape.
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint16_t
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcmp, memcpy

from cppcorn.includes cimport llhttp
from cppcorn.includes.byte_buffer cimport cc_buffer_free, cc_buffer_init, cc_buffer_reserve
from cppcorn.includes.http_bytes cimport cc_equals_lower, cc_lower_copy, cc_percent_decode, cc_strip_ows

LLHTTP_VERSION = f"{llhttp.LLHTTP_VERSION_MAJOR}.{llhttp.LLHTTP_VERSION_MINOR}.{llhttp.LLHTTP_VERSION_PATCH}"

cdef enum:
    INITIAL_HEAD_CAPACITY = 1024
    INITIAL_SPAN_CAPACITY = 32

# Method names by llhttp's method number (0..46), made once.
cdef list METHODS = [
    (<bytes>llhttp.llhttp_method_name(<uint8_t>number)).decode("ascii")
    for number in range(47)
]

cdef str HTTP_1_1 = "1.1"
cdef str HTTP_1_0 = "1.0"
cdef str ROOT_PATH_STR = "/"
cdef bytes ROOT_PATH_BYTES = b"/"
cdef bytes EMPTY_BYTES = b""
cdef bytes FORWARDED_FOR_SEPARATOR = b", "

# Header names seen in most requests, kept as shared bytes objects so that the
# scope's header list does not allocate a new name for each of them. Indexed
# by length; each entry is a tuple of candidates of that length.
cdef tuple COMMON_NAMES_BY_LENGTH
cdef object _build_common_names():
    names = (
        b"host", b"connection", b"user-agent", b"accept", b"accept-encoding",
        b"accept-language", b"content-type", b"content-length", b"cookie",
        b"referer", b"origin", b"cache-control", b"upgrade", b"authorization",
        b"pragma", b"x-forwarded-for", b"x-forwarded-proto", b"x-real-ip",
        b"x-request-id", b"if-none-match", b"if-modified-since", b"range",
        b"sec-fetch-site", b"sec-fetch-mode", b"sec-fetch-dest",
        b"sec-fetch-user", b"upgrade-insecure-requests", b"dnt", b"te",
        b"transfer-encoding", b"expect", b"forwarded", b"priority",
    )
    by_length = [[] for _ in range(32)]
    for name in names:
        by_length[len(name)].append(name)
    return tuple(tuple(candidates) for candidates in by_length)
COMMON_NAMES_BY_LENGTH = _build_common_names()


cdef inline bytes header_name(const char* data, size_t length):
    cdef bytes candidate
    if length < 32:
        for candidate in <tuple>COMMON_NAMES_BY_LENGTH[length]:
            if memcmp(PyBytes_AS_STRING(candidate), data, length) == 0:
                return candidate
    return PyBytes_FromStringAndSize(data, length)


# llhttp callbacks. They run inside llhttp_execute(), which feed() calls with
# the GIL held, and all go through _dispatch(). A method returning 1 has
# refused the request (error_status is set); a Python exception is kept on
# the parser and raised again by feed(). Either way the callback returns -1
# so that llhttp stops with an error.

cdef enum ParserEvent:
    EVENT_MESSAGE_BEGIN
    EVENT_TARGET
    EVENT_FIELD_NAME
    EVENT_FIELD_VALUE
    EVENT_HEADERS_COMPLETE
    EVENT_BODY
    EVENT_MESSAGE_COMPLETE


cdef inline int _dispatch(llhttp.llhttp_t* p, ParserEvent event, const char* at, size_t length) noexcept:
    cdef RequestParser self = <RequestParser>p.data
    try:
        if event == EVENT_TARGET:
            return -self._append_target(at, length)
        if event == EVENT_FIELD_NAME or event == EVENT_FIELD_VALUE:
            return -self._append_field(at, length, event == EVENT_FIELD_VALUE)
        if event == EVENT_BODY:
            self._callbacks.on_body(self._owner, at, length)
            return 0
        if event == EVENT_MESSAGE_BEGIN:
            return -self._begin_message()
        if event == EVENT_HEADERS_COMPLETE:
            return -self._headers_complete()
        self._callbacks.on_message_complete(self._owner)
        # Stop at every message boundary: the protocol handles one request
        # at a time and decides when to parse the next (pipelined) one.
        return llhttp.HPE_PAUSED
    except BaseException as exc:
        self._callback_exception = exc
        return -1


cdef int _on_message_begin(llhttp.llhttp_t* p) noexcept:
    return _dispatch(p, EVENT_MESSAGE_BEGIN, NULL, 0)


cdef int _on_url(llhttp.llhttp_t* p, const char* at, size_t length) noexcept:
    return _dispatch(p, EVENT_TARGET, at, length)


cdef int _on_version(llhttp.llhttp_t* p, const char* at, size_t length) noexcept:
    # llhttp takes a request line without a version for HTTP/0.9: this tells
    # that from an explicit "HTTP/0.9".
    (<RequestParser>p.data)._has_version = True
    return 0


cdef int _on_header_field(llhttp.llhttp_t* p, const char* at, size_t length) noexcept:
    return _dispatch(p, EVENT_FIELD_NAME, at, length)


cdef int _on_header_value(llhttp.llhttp_t* p, const char* at, size_t length) noexcept:
    return _dispatch(p, EVENT_FIELD_VALUE, at, length)


cdef int _on_headers_complete(llhttp.llhttp_t* p) noexcept:
    return _dispatch(p, EVENT_HEADERS_COMPLETE, NULL, 0)


cdef int _on_body(llhttp.llhttp_t* p, const char* at, size_t length) noexcept:
    return _dispatch(p, EVENT_BODY, at, length)


cdef int _on_message_complete(llhttp.llhttp_t* p) noexcept:
    return _dispatch(p, EVENT_MESSAGE_COMPLETE, NULL, 0)


cdef llhttp.llhttp_settings_t SETTINGS
llhttp.llhttp_settings_init(&SETTINGS)
SETTINGS.on_message_begin = _on_message_begin
SETTINGS.on_url = _on_url
SETTINGS.on_version = _on_version
SETTINGS.on_header_field = _on_header_field
SETTINGS.on_header_value = _on_header_value
SETTINGS.on_headers_complete = _on_headers_complete
SETTINGS.on_body = _on_body
SETTINGS.on_message_complete = _on_message_complete


# The events of a parser made from Python, for its protocol object.

cdef int _python_head(void* parser, RequestHead head) except -1:
    (<RequestParser>parser)._protocol.on_head(head)
    return 0


cdef int _python_body(void* parser, const char* data, size_t length) except -1:
    (<RequestParser>parser)._protocol.on_body(PyBytes_FromStringAndSize(data, length))
    return 0


cdef int _python_message_complete(void* parser) except -1:
    (<RequestParser>parser)._protocol.on_message_complete()
    return 0


cdef ParserCallbacks PYTHON_CALLBACKS = ParserCallbacks(_python_head, _python_body, _python_message_complete)


class HttpParserError(Exception):
    """A request the parser refuses: `status` is the HTTP status to answer
    with (400, 431, 501, 505), `reason` says why."""

    def __init__(self, int status, str reason):
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


cdef class RequestHead:
    """A request head, as RequestParser hands it over (see parser.pxd)."""


cdef class RequestParser:
    """Parses a stream of HTTP/1.1 requests, one message at a time.

    `max_head_size` bounds the request line plus header section (and the
    trailer section of a chunked body); past it the request is refused with
    431.

    From Python, `RequestParser(protocol)` calls `protocol.on_head(head)`,
    `protocol.on_body(data)` and `protocol.on_message_complete()`, and
    parse(data) feeds it bytes; the compiled protocol makes its parser with
    create() and C callbacks.
    """

    def __cinit__(self):
        if (cc_buffer_init(&self._head, INITIAL_HEAD_CAPACITY)
                or cc_buffer_init(&self._spans, INITIAL_SPAN_CAPACITY * sizeof(HeaderSpan))):
            raise MemoryError()
        llhttp.llhttp_init(&self._parser, llhttp.HTTP_REQUEST, &SETTINGS)
        # Any one-digit major.minor version gets through llhttp, so that
        # _check_headers() answers 505 for HTTP/3.0 and serves HTTP/1.2 as
        # 1.1 (RFC 9110 2.5), where llhttp would refuse both with 400.
        llhttp.llhttp_set_lenient_version(&self._parser, 1)
        self._parser.data = <void*>self
        self._request_head = RequestHead.__new__(RequestHead)

    def __init__(self, protocol, *, size_t max_head_size=65536):
        self._protocol = protocol
        self._owner = <void*>self
        self._callbacks = PYTHON_CALLBACKS
        self._max_head_size = max_head_size

    @staticmethod
    cdef RequestParser create(void* owner, ParserCallbacks callbacks, size_t max_head_size):
        cdef RequestParser parser = RequestParser.__new__(RequestParser)
        parser._owner = owner
        parser._callbacks = callbacks
        parser._max_head_size = max_head_size
        return parser

    def parse(self, data):
        """Parse from `data` (bytes-like); return how many bytes were
        consumed: all of them, or those up to the end of a complete request
        (call again with the rest). Raises HttpParserError for a request
        that is refused."""
        cdef const unsigned char[:] view = memoryview(data).cast("B")
        cdef size_t consumed = 0
        if view.shape[0] == 0:
            return 0
        if self.feed(<const char*>&view[0], <size_t>view.shape[0], &consumed) == PARSE_ERROR:
            raise HttpParserError(self.error_status, self.error_reason)
        return consumed

    def __dealloc__(self):
        cc_buffer_free(&self._head)
        cc_buffer_free(&self._spans)

    cdef ParseResult feed(self, const char* data, size_t length, size_t* consumed) except? PARSE_ERROR:
        cdef llhttp.llhttp_errno_t err
        cdef size_t offset = 0
        # Inside a trailer section from the first byte on: every byte of this
        # read is a trailer byte.
        cdef bint all_trailer = self._parser.flags & llhttp.F_TRAILING
        cdef size_t trailer_bytes = self._raw_head_bytes
        if self.error_status != 0:
            # Refused already (llhttp itself may not know, as for a 431 from
            # the raw byte count below): nothing more is parsed.
            consumed[0] = length
            return PARSE_ERROR
        if llhttp.llhttp_get_errno(&self._parser) == llhttp.HPE_PAUSED:
            llhttp.llhttp_resume(&self._parser)
        while True:
            err = llhttp.llhttp_execute(&self._parser, data + offset, length - offset)
            if err == llhttp.HPE_OK:
                consumed[0] = length
                if self._in_head:
                    # A header section spread over several reads: count the
                    # raw bytes too, so that padding llhttp skips is bounded.
                    self._raw_head_bytes += length - offset
                    if self._raw_head_bytes > self._max_head_size:
                        self._refuse(431, "Request header section too large")
                        return PARSE_ERROR
                elif all_trailer:
                    # The same for a trailer section, whose fields
                    # _append_field() counted: the raw bytes replace them.
                    self._raw_head_bytes = trailer_bytes + length - offset
                    if self._raw_head_bytes > self._max_head_size:
                        self._refuse(431, "Request trailer section too large")
                        return PARSE_ERROR
                return PARSE_NEED_MORE
            if err == llhttp.HPE_PAUSED:
                consumed[0] = <size_t>(llhttp.llhttp_get_error_pos(&self._parser) - data)
                return PARSE_MESSAGE_END
            if err == llhttp.HPE_PAUSED_UPGRADE:
                # An Upgrade request we serve as plain HTTP (the message is
                # already complete): carry on parsing HTTP after it. (Never
                # a CONNECT: _headers_complete() frames that as any request.)
                offset = <size_t>(llhttp.llhttp_get_error_pos(&self._parser) - data)
                llhttp.llhttp_resume_after_upgrade(&self._parser)
                all_trailer = False
                continue
            if err == llhttp.HPE_PAUSED_H2_UPGRADE:
                # The HTTP/2 connection preface ("PRI * HTTP/2.0").
                self._refuse(505, "HTTP version not supported")
            break
        if self._callback_exception is not None:
            exc = self._callback_exception
            self._callback_exception = None
            raise exc
        if self.error_status == 0:
            self.error_status = 400
            self.error_reason = (<bytes>llhttp.llhttp_get_error_reason(&self._parser)).decode("latin-1")
        consumed[0] = length
        return PARSE_ERROR

    cdef bint reading_head_request(self):
        # llhttp keeps the previous message's method until it reads this
        # one's, which it has once the request target begins.
        return self._in_head and self._target_length != 0 and self._parser.method == llhttp.HTTP_HEAD

    cdef HeaderSpan* _span(self, size_t index):
        return &(<HeaderSpan*>self._spans.data)[index]

    cdef int _refuse(self, int status, str reason) except -1:
        self.error_status = status
        self.error_reason = reason
        return 1

    cdef int _begin_message(self) except -1:
        self._head.length = 0
        self._target_length = 0
        self._span_count = 0
        self._spans.length = 0
        self._in_value = True  # so that the first field name opens a span
        self._in_head = True
        self._has_version = False
        self._raw_head_bytes = 0
        return 0

    cdef int _append_head(self, const char* at, size_t length, bint lower) except -1:
        if self._head.length + length > self._max_head_size:
            return self._refuse(431, "Request header section too large")
        if cc_buffer_reserve(&self._head, length):
            raise MemoryError()
        if lower:
            cc_lower_copy(self._head.data + self._head.length, at, length)
        else:
            memcpy(self._head.data + self._head.length, at, length)
        self._head.length += length
        return 0

    cdef int _append_target(self, const char* at, size_t length) except -1:
        if self._append_head(at, length, False):
            return 1
        self._target_length += length
        return 0

    cdef int _append_field(self, const char* at, size_t length, bint is_value) except -1:
        cdef HeaderSpan* span
        if not self._in_head:
            # Trailer fields of a chunked body: tolerated and dropped, but
            # bounded like the header section.
            self._raw_head_bytes += length
            if self._raw_head_bytes > self._max_head_size:
                return self._refuse(431, "Request trailer section too large")
            return 0
        if not is_value and self._in_value:
            # A new field starts.
            if cc_buffer_reserve(&self._spans, sizeof(HeaderSpan)):
                raise MemoryError()
            span = self._span(self._span_count)
            self._spans.length += sizeof(HeaderSpan)
            self._span_count += 1
            span.name_start = self._head.length
            span.name_length = 0
            span.value_start = self._head.length
            span.value_length = 0
            self._in_value = False
        span = self._span(self._span_count - 1)
        if is_value and not self._in_value:
            span.value_start = self._head.length
            self._in_value = True
        if self._append_head(at, length, not is_value):
            return 1
        if is_value:
            span.value_length += length
        else:
            span.name_length += length
        return 0

    cdef int _check_headers(self) except -1:
        """Refuse what the server cannot serve, once the header section is in."""
        cdef size_t i, value_length
        cdef const char* value
        cdef const char* token
        cdef const char* comma
        cdef size_t token_length
        cdef HeaderSpan* span
        if self._parser.http_major != 1:
            if not self._has_version:
                # "GET /": HTTP/0.9's simple request, no valid request-line
                # today (RFC 9112 3).
                return self._refuse(400, "Request line without an HTTP version")
            return self._refuse(505, "HTTP version not supported")
        # The head on the wire: "METHOD target HTTP/1.1\r\n", each field
        # as "name: value\r\n", and the blank line.
        if (self._head.length + 4 * self._span_count + len(self._method()) + 14
                > self._max_head_size):
            return self._refuse(431, "Request header section too large")
        if not (self._parser.flags & llhttp.F_TRANSFER_ENCODING):
            return 0
        if not (self._parser.flags & llhttp.F_CHUNKED):
            # The final coding is not chunked: the body length cannot be
            # determined (RFC 9112 6.3), a malformed request.
            return self._refuse(400, "Transfer-Encoding without a final chunked coding")
        # Any coding before the final chunked is one the server cannot
        # decode: 501 (RFC 9112 6.1).
        for i in range(self._span_count):
            span = self._span(i)
            if not (span.name_length == 17 and memcmp(
                    self._head.data + span.name_start, b"transfer-encoding", 17) == 0):
                continue
            value = self._head.data + span.value_start
            value_length = span.value_length
            while True:
                comma = <const char*>memchr(value, b',', value_length)
                token_length = (comma - value) if comma != NULL else value_length
                token = cc_strip_ows(value, &token_length)
                if token_length and not cc_equals_lower(token, token_length, b"chunked", 7):
                    return self._refuse(501, "Unsupported Transfer-Encoding")
                if comma == NULL:
                    break
                value_length -= <size_t>(comma - value) + 1
                value = comma + 1
        return 0

    cdef int _headers_complete(self) except -1:
        """The header section is in: hand the owner the request head."""
        cdef RequestHead head = self._request_head
        cdef uint16_t flags = self._parser.flags
        if self._check_headers():
            return 1
        head.method = self._method()
        head.http_version = self._http_version()
        head.http_1_0 = self._parser.http_minor == 0
        head.is_head = self._parser.method == llhttp.HTTP_HEAD
        # The keep-alive decision is ours (llhttp_should_keep_alive() lets
        # HTTP/1.0's keep-alive win over close): llhttp's flags say which
        # Connection tokens came, in any order, in any number of fields.
        if flags & llhttp.F_CONNECTION_CLOSE:
            head.keep_alive = False  # close wins (RFC 9112 9.6)
        elif head.http_1_0:
            # Transfer-Encoding in HTTP/1.0 is faulty framing: answered, and
            # the connection closed after it (RFC 9112 6.1).
            head.keep_alive = (flags & llhttp.F_CONNECTION_KEEP_ALIVE) and not (flags & llhttp.F_TRANSFER_ENCODING)
        else:
            head.keep_alive = True
        if self._parser.method == llhttp.HTTP_CONNECT:
            # ASGI has no tunnel. llhttp would end a CONNECT at its head and
            # leave what follows to another protocol; the server would then
            # read a body sent with it as the next request. Framed like any
            # request (its body reaches the application, as h11 frames
            # it), and the connection's last: no byte after it is parsed.
            self._parser.upgrade = 0
            head.keep_alive = False
        if self._build_headers(head):
            return 1
        self._build_target(head)
        if not self._parser.upgrade:
            head.upgrade = None
        # Still in the head while it can be refused (reading_head_request()).
        self._in_head = False
        self._raw_head_bytes = 0
        self._callbacks.on_head(self._owner, head)
        return 0

    cdef str _method(self):
        cdef uint8_t number = self._parser.method
        if number < 47:
            return <str>METHODS[number]
        return ""

    cdef str _http_version(self):
        # HTTP/1.2 and later minors are served as 1.1, the highest this
        # server implements (RFC 9110 2.5); _check_headers() refused other
        # majors.
        if self._parser.http_minor == 0:
            return HTTP_1_0
        return HTTP_1_1

    cdef int _build_headers(self, RequestHead head) except -1:
        """The header fields as the ASGI scope wants them: a list of
        (lower-cased name, value) bytes pairs in arrival order; and the few
        fields the server itself acts on. Refuses a request without exactly
        one Host (RFC 9112 3.2: HTTP/1.0 may omit it)."""
        cdef size_t i, value_length
        cdef size_t host_fields = 0
        cdef const char* name
        cdef const char* value
        cdef HeaderSpan* span
        cdef list headers = []
        cdef bytes name_obj, value_obj
        cdef list forwarded_for = None
        head.expect_continue = False
        head.forwarded_for = None
        head.forwarded_proto = None
        head.upgrade = None
        for i in range(self._span_count):
            span = self._span(i)
            name = self._head.data + span.name_start
            value_length = span.value_length
            value = cc_strip_ows(self._head.data + span.value_start, &value_length)
            name_obj = header_name(name, span.name_length)
            value_obj = PyBytes_FromStringAndSize(value, value_length)
            headers.append((name_obj, value_obj))
            if span.name_length == 4 and memcmp(name, b"host", 4) == 0:
                host_fields += 1
            elif span.name_length == 6 and memcmp(name, b"expect", 6) == 0:
                head.expect_continue = cc_equals_lower(value, value_length, b"100-continue", 12)
            elif span.name_length == 7 and memcmp(name, b"upgrade", 7) == 0:
                head.upgrade = value_obj
            elif span.name_length == 15 and memcmp(name, b"x-forwarded-for", 15) == 0:
                if forwarded_for is None:
                    forwarded_for = [value_obj]
                else:
                    forwarded_for.append(value_obj)
            elif span.name_length == 17 and memcmp(name, b"x-forwarded-proto", 17) == 0:
                head.forwarded_proto = value_obj
        if host_fields > 1:
            return self._refuse(400, "More than one Host header field")
        if host_fields == 0 and not head.http_1_0:
            return self._refuse(400, "HTTP/1.1 request without a Host header field")
        if forwarded_for is not None:
            head.forwarded_for = FORWARDED_FOR_SEPARATOR.join(forwarded_for)
        head.headers = headers
        return 0

    cdef int _build_target(self, RequestHead head) except -1:
        """Path, raw path and query string of the request target: origin form
        `/p?q`; absolute form `http://host/p?q`, reduced to `/p`; asterisk
        (`*`) and authority (`host:port`) forms, kept whole as the path."""
        cdef const char* target = self._head.data
        cdef size_t length = self._target_length
        cdef const char* cut
        cdef size_t skip = 0, i
        cdef bytes query_string = EMPTY_BYTES
        # A fragment is not part of the target (clients should not send one).
        cut = <const char*>memchr(target, b'#', length)
        if cut != NULL:
            length = <size_t>(cut - target)
        if length and target[0] != b'/':
            if length >= 7 and cc_equals_lower(target, 7, b"http://", 7):
                skip = 7
            elif length >= 8 and cc_equals_lower(target, 8, b"https://", 8):
                skip = 8
            if skip:
                # Skip the authority: the path starts at the first '/' or '?'.
                i = skip
                while i < length and target[i] != b'/' and target[i] != b'?':
                    i += 1
                target += i
                length -= i
                if length == 0 or target[0] == b'?':
                    if length:
                        query_string = PyBytes_FromStringAndSize(target + 1, length - 1)
                    length = 1
                    target = b"/"
        cut = <const char*>memchr(target, b'?', length)
        if cut != NULL:
            query_string = PyBytes_FromStringAndSize(cut + 1, length - <size_t>(cut - target) - 1)
            length = <size_t>(cut - target)
        head.query_string = query_string
        if length == 1 and target[0] == b'/':
            head.path = ROOT_PATH_STR
            head.raw_path = ROOT_PATH_BYTES
        else:
            head.path = decode_path(target, length)
            head.raw_path = PyBytes_FromStringAndSize(target, length)
        return 0


cdef str decode_path(const char* raw, size_t length):
    """The percent-decoded, UTF-8 decoded path (invalid UTF-8 replaced, as
    urllib.parse.unquote does)."""
    cdef char* decoded
    if memchr(raw, b'%', length) == NULL:
        return PyUnicode_DecodeUTF8(raw, length, "replace")
    decoded = <char*>malloc(length)
    if decoded == NULL:
        raise MemoryError()
    try:
        return PyUnicode_DecodeUTF8(decoded, cc_percent_decode(decoded, raw, length), "replace")
    finally:
        free(decoded)
