# Response serialisation: status lines, header validation and framing, into
# a reusable output buffer that becomes one bytes object per write.
from libc.stdint cimport int64_t

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
    int64_t content_length      # -1 when the application gave none
    bint chunked                # Transfer-Encoding: chunked
    bint connection_close       # Connection: close
    bint has_connection         # any Connection header


cdef int write_status_line(OutputBuffer out, object status) except -1
cdef int write_headers(OutputBuffer out, object headers, HeadInfo* info) except -1
cdef bytes status_line(int status)
