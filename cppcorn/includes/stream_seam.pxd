# Declarations of csrc/stream_seam.h: the C-level seam between cppcorn.loop's
# stream transports and the compiled HTTP protocol. Only extern declarations:
# cimporting this imports nothing at run time.

cdef extern from "stream_seam.h":
    const char *CC_RECEIVER_CAPSULE
    const char *CC_SENDER_CAPSULE

    ctypedef struct cc_stream_receiver:
        int (*data_received)(object protocol, const char *data, size_t size) except -1

    ctypedef struct cc_stream_sender:
        int (*write)(object transport, const char *data, Py_ssize_t size, object owner) except -1
        int (*writelines)(object transport, tuple chunks) except -1
        bint (*is_closing)(object transport) noexcept
