# Declarations of the parts of the vendored llhttp C API that cppcorn uses
# (vendor/llhttp/include/llhttp.h).
from libc.stdint cimport uint8_t, uint16_t, uint64_t


cdef extern from "llhttp.h":
    enum:
        LLHTTP_VERSION_MAJOR
        LLHTTP_VERSION_MINOR
        LLHTTP_VERSION_PATCH

    ctypedef struct llhttp_t:
        uint64_t content_length
        uint8_t method
        uint8_t http_major
        uint8_t http_minor
        uint8_t upgrade
        uint16_t flags
        void* data

    ctypedef int (*llhttp_data_cb)(llhttp_t*, const char* at, size_t length) noexcept
    ctypedef int (*llhttp_cb)(llhttp_t*) noexcept

    ctypedef struct llhttp_settings_t:
        llhttp_cb on_message_begin
        llhttp_data_cb on_url
        llhttp_data_cb on_version
        llhttp_data_cb on_header_field
        llhttp_data_cb on_header_value
        llhttp_cb on_headers_complete
        llhttp_data_cb on_body
        llhttp_cb on_message_complete

    ctypedef enum llhttp_errno_t:
        HPE_OK
        HPE_PAUSED
        HPE_PAUSED_UPGRADE
        HPE_PAUSED_H2_UPGRADE

    ctypedef enum llhttp_type_t:
        HTTP_REQUEST

    enum:
        F_CONNECTION_KEEP_ALIVE
        F_CONNECTION_CLOSE
        F_CHUNKED
        F_TRAILING
        F_TRANSFER_ENCODING

    enum:
        HTTP_HEAD
        HTTP_CONNECT

    void llhttp_init(llhttp_t* parser, llhttp_type_t type, const llhttp_settings_t* settings)
    void llhttp_settings_init(llhttp_settings_t* settings)
    llhttp_errno_t llhttp_execute(llhttp_t* parser, const char* data, size_t length)
    void llhttp_set_lenient_version(llhttp_t* parser, int enabled)
    void llhttp_resume(llhttp_t* parser)
    void llhttp_resume_after_upgrade(llhttp_t* parser)
    llhttp_errno_t llhttp_get_errno(const llhttp_t* parser)
    const char* llhttp_get_error_reason(const llhttp_t* parser)
    const char* llhttp_get_error_pos(const llhttp_t* parser)
    const char* llhttp_method_name(uint8_t method)
