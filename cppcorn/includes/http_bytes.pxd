# Declarations of csrc/http_bytes.h: byte-level helpers in plain C.
from libc.stdint cimport uint64_t


cdef extern from "http_bytes.h" nogil:
    void cc_lower_copy(char* dst, const char* src, size_t n)
    bint cc_equals_lower(const char* s, size_t n, const char* lit, size_t lit_n)
    bint cc_copy_token_lower(char* dst, const char* src, size_t n)
    bint cc_copy_field_value(char* dst, const char* src, size_t n)
    const char* cc_strip_ows(const char* s, size_t* n)
    size_t cc_percent_decode(char* dst, const char* src, size_t n)
    int cc_parse_content_length(const char* s, size_t n, uint64_t* out)
    size_t cc_write_hex(char* dst, uint64_t v)
