# Responses: serialisation (status lines, header validation, chunk framing)
# into a reusable output buffer, the ResponseWriter a request cycle sends
# its response through, and HTTP/1.1's writer.
from libc.stdint cimport int64_t

from cppcorn.http.connection cimport Connection
from cppcorn.includes.byte_buffer cimport cc_buffer


cdef class OutputBuffer:
    # The bytes of the next write, in a C buffer owned by one connection and
    # reused across its requests.
    cdef cc_buffer buf

    cdef int reserve(self, size_t extra) except -1
    cdef int append(self, const char* data, size_t length) except -1
    cdef int append_bytes(self, bytes data) except -1
    cdef int append_chunk_size(self, size_t size) except -1
    cdef bytes take(self)
    cdef void clear(self)


cdef struct HeadInfo:
    # What the application's own headers say about framing.
    int64_t content_length      # -1 when the application gave none (or chunked)
    bint chunked                # Transfer-Encoding: chunked (its line not copied)
    bint connection_close       # Connection: close
    bint has_connection         # any Connection header


cdef int write_status_line(OutputBuffer out, object status) except -1
cdef int write_headers(OutputBuffer out, object headers, HeadInfo* info) except -1


cdef list TEXT_PLAIN     # the content-type of plain responses

# A plain response (a refusal, an error, a WebSocket handshake denied)
# written whole, after which the connection closes: `headers` are ASGI
# header pairs; content-length is added unless they have one. `head_only`
# for a HEAD request: the same head, without the body.
cdef int send_plain_response(Connection connection, int status, list headers, bytes body,
                             bint head_only=*) except -1
# The same with the short text/plain body cppcorn answers `status` with.
cdef int send_error_response(Connection connection, int status, list extra_headers=*,
                             bint head_only=*) except -1


cdef class ResponseWriter:
    # What a RequestCycle holds of its connection: the way its response
    # goes out (framing, flushing, write backpressure) and the flow of its
    # request body. HTTP/1.1's is Http11Writer; an HTTP/2 stream brings its
    # own. Each method is one step of the cycle's send state machine, which
    # has validated the message already.

    # The head: `status` as the application gave it (checked here);
    # returns the status code.
    cdef int start(self, object status, object headers) except -1
    # One body message; the last one completes the response. Returns the
    # future to wait on before sending more (write backpressure), or None.
    cdef object write(self, bytes body, bint more_body)
    # 100 Continue, for a client that waits for it before sending its body.
    cdef int write_continue(self) except -1
    # Answer `status` with a plain error instead of the application.
    cdef int refuse(self, int status) except -1
    # The response cannot be completed: the client must not take what was
    # sent for a whole response (HTTP/1.1: the connection closes).
    cdef int abandon(self) except -1
    # The application took the request body buffered for it: reading may
    # go on.
    cdef int body_taken(self) except -1
    # Whether the connection may bring another request once this response
    # is complete.
    cdef bint reusable(self)


cdef class Http11Writer(ResponseWriter):
    # One per HTTP/1.1 connection, reset for each request by begin().
    cdef Connection connection
    cdef OutputBuffer out
    cdef bint keep_alive
    cdef bint http_1_0
    cdef bint is_head
    # The current response's framing, decided by start().
    cdef bint no_body
    cdef bint chunked
    cdef long long content_remaining    # < 0: no Content-Length

    cdef int begin(self, bint keep_alive, bint http_1_0, bint is_head) except -1
    cdef int _flush_with(self, bytes body, size_t size, bint more_body) except -1
    cdef int _complete(self) except -1
