# Declarations of csrc/byte_buffer.h: a growable C byte buffer.

cdef extern from "byte_buffer.h" nogil:
    ctypedef struct cc_buffer:
        char* data
        size_t length
        size_t capacity

    int cc_buffer_init(cc_buffer* buffer, size_t capacity)
    void cc_buffer_free(cc_buffer* buffer)
    int cc_buffer_reserve(cc_buffer* buffer, size_t extra)
    int cc_buffer_append(cc_buffer* buffer, const char* data, size_t length)
    void cc_buffer_shrink(cc_buffer* buffer, size_t limit, size_t capacity)
