# The HTTP/1.1 request parser: llhttp with its callbacks kept in C.
#
# llhttp reports spans of the caller's buffer; the parser copies the request
# target and header fields into one growing C buffer (names lower-cased on the
# way in) and only builds Python objects once the header section is complete.
# Events go to the parser's owner (the HTTP protocol) through C function
# pointers, so that the owner's class is free to derive from what it likes.
from cppcorn.includes cimport llhttp
from cppcorn.includes.byte_buffer cimport cc_buffer


cdef struct HeaderSpan:
    size_t name_start
    size_t name_length
    size_t value_start
    size_t value_length


# What the parser tells its owner; `owner` is the pointer given to the parser.
ctypedef int (*HeadersCompleteCallback)(void* owner) except -1
ctypedef int (*BodyCallback)(void* owner, const char* data, size_t length) except -1
ctypedef int (*MessageCompleteCallback)(void* owner) except -1

cdef struct ParserCallbacks:
    HeadersCompleteCallback on_headers_complete
    BodyCallback on_body
    MessageCompleteCallback on_message_complete


cdef enum ParseResult:
    # Every byte given was consumed; the current message is not complete.
    PARSE_NEED_MORE = 0
    # Parsing stopped right after a complete message; the rest of the buffer
    # (from *consumed on) belongs to the next one. Call feed() again to go on.
    PARSE_MESSAGE_END = 1
    # The request is malformed or refused: error_status and error_reason say
    # why. The parser stays in this state.
    PARSE_ERROR = 2


cdef class RequestParser:
    cdef llhttp.llhttp_t _parser
    # Borrowed: the owner owns this parser and outlives it, and a reference
    # back would make every connection a garbage cycle.
    cdef void* _owner
    cdef ParserCallbacks _callbacks
    cdef object _callback_exception

    # Request target and header fields of the current message.
    cdef cc_buffer _head
    cdef size_t _target_length
    cdef cc_buffer _spans       # HeaderSpan records, one per field
    cdef size_t _span_count
    cdef bint _in_value
    cdef bint _in_head
    # Raw bytes of a header section spread over several reads, then of the
    # trailer section: both bounded by _max_head_size.
    cdef size_t _raw_head_bytes
    cdef size_t _max_head_size

    # Set by build_headers() from the header fields it walks.
    cdef readonly bint expect_continue
    cdef readonly object forwarded_for
    cdef readonly object forwarded_proto
    cdef readonly object upgrade

    cdef readonly int error_status
    cdef readonly str error_reason

    @staticmethod
    cdef RequestParser create(void* owner, ParserCallbacks callbacks, size_t max_head_size)
    cdef ParseResult feed(self, const char* data, size_t length, size_t* consumed) except? PARSE_ERROR
    cdef str method(self)
    cdef str http_version(self)
    cdef bint should_keep_alive(self)
    cdef bint is_head(self)
    cdef list build_headers(self)
    cdef tuple build_target(self)

    # Callback bodies (the llhttp callbacks are module-level C functions).
    # Each returns 0 to go on, or 1 after _refuse() to stop with an error.
    cdef int _begin_message(self) except -1
    cdef int _append_target(self, const char* at, size_t length) except -1
    cdef int _append_field(self, const char* at, size_t length, bint is_value) except -1
    cdef int _check_headers(self) except -1
    cdef int _append_head(self, const char* at, size_t length, bint lower) except -1
    cdef int _refuse(self, int status, str reason) except -1
    cdef HeaderSpan* _span(self, size_t index)
