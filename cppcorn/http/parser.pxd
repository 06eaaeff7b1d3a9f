# The HTTP/1.1 request parser: llhttp with its callbacks kept in C.
#
# llhttp reports spans of the caller's buffer; the parser copies the request
# target and header fields into one growing C buffer (names lower-cased on the
# way in) and builds Python objects once, when the header section is
# complete: the RequestHead it hands its owner in one call. Events go to the
# owner (the HTTP protocol) through C function pointers, so that the owner's
# class is free to derive from what it likes; from Python, a parser made with
# RequestParser(protocol) calls the protocol's methods instead.
from cppcorn.includes cimport llhttp
from cppcorn.includes.byte_buffer cimport cc_buffer


cdef struct HeaderSpan:
    size_t name_start
    size_t name_length
    size_t value_start
    size_t value_length


cdef class RequestHead:
    # A request's head as the ASGI scope wants it, and the facts of it the
    # server acts on. The parser reuses one per connection: it is valid
    # until the next request head begins.
    cdef readonly str method
    cdef readonly str http_version
    cdef readonly str path              # percent-decoded
    cdef readonly bytes raw_path
    cdef readonly bytes query_string
    cdef readonly list headers          # [(lower-cased name, value)], in order
    cdef readonly bint http_1_0
    cdef readonly bint is_head          # a HEAD request: no response body
    # The connection stays open after this request: the client's Connection
    # tokens and version allow it, and its framing is not suspect.
    cdef readonly bint keep_alive
    cdef readonly bint expect_continue  # Expect: 100-continue
    # The Upgrade header's value when the request asks to switch protocols
    # (Connection: upgrade), else None.
    cdef readonly object upgrade
    # X-Forwarded-For (several fields joined) and X-Forwarded-Proto, or None.
    cdef readonly object forwarded_for
    cdef readonly object forwarded_proto


# What the parser tells its owner; `owner` is the pointer given to the parser.
ctypedef int (*HeadCallback)(void* owner, RequestHead head) except -1
ctypedef int (*BodyCallback)(void* owner, const char* data, size_t length) except -1
ctypedef int (*MessageCompleteCallback)(void* owner) except -1

cdef struct ParserCallbacks:
    HeadCallback on_head
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
    # A parser made from Python: the protocol object its events go to.
    cdef object _protocol

    cdef RequestHead _request_head      # reused for every request
    # Request target and header fields of the current message.
    cdef cc_buffer _head
    cdef size_t _target_length
    cdef cc_buffer _spans       # HeaderSpan records, one per field
    cdef size_t _span_count
    cdef bint _in_value
    cdef bint _in_head
    cdef bint _has_version      # the request line had an HTTP version
    # Raw bytes of a header section spread over several reads, then of the
    # trailer section: both bounded by _max_head_size.
    cdef size_t _raw_head_bytes
    cdef size_t _max_head_size

    cdef readonly int error_status
    cdef readonly str error_reason

    @staticmethod
    cdef RequestParser create(void* owner, ParserCallbacks callbacks, size_t max_head_size)
    cdef ParseResult feed(self, const char* data, size_t length, size_t* consumed) except? PARSE_ERROR
    # The head being read is a HEAD request's (its method is read): an
    # error response to it gets no body.
    cdef bint reading_head_request(self)

    # Callback bodies (the llhttp callbacks are module-level C functions).
    # Each returns 0 to go on, or 1 after _refuse() to stop with an error.
    cdef int _begin_message(self) except -1
    cdef int _append_target(self, const char* at, size_t length) except -1
    cdef int _append_field(self, const char* at, size_t length, bint is_value) except -1
    cdef int _check_headers(self) except -1
    cdef int _headers_complete(self) except -1
    cdef int _append_head(self, const char* at, size_t length, bint lower) except -1
    cdef int _refuse(self, int status, str reason) except -1
    cdef HeaderSpan* _span(self, size_t index)
    cdef str _method(self)
    cdef str _http_version(self)
    cdef int _build_headers(self, RequestHead head) except -1
    cdef int _build_target(self, RequestHead head) except -1
