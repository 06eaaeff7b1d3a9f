# Declarations of csrc/websocket_frame.h: the WebSocket frame codec in C.
from libc.stdint cimport uint8_t, uint64_t


cdef extern from "websocket_frame.h" nogil:
    enum:
        CC_WS_CONTINUATION
        CC_WS_TEXT
        CC_WS_BINARY
        CC_WS_CLOSE
        CC_WS_PING
        CC_WS_PONG

    ctypedef struct cc_ws_frame:
        uint8_t fin
        uint8_t rsv1
        uint8_t rsv2
        uint8_t rsv3
        uint8_t opcode
        uint8_t masked
        uint8_t mask[4]
        uint64_t payload_length
        size_t header_length

    long cc_ws_parse_header(const uint8_t* p, size_t n, cc_ws_frame* frame)
    void cc_ws_unmask(uint8_t* dst, const uint8_t* src, size_t n, const uint8_t* mask, size_t offset)
    size_t cc_ws_write_header(uint8_t* out, int fin, int rsv1, int opcode, uint64_t length)

    ctypedef struct cc_utf8_state:
        uint8_t remaining

    void cc_utf8_init(cc_utf8_state* state)
    int cc_utf8_feed(cc_utf8_state* state, const uint8_t* p, size_t n)
    int cc_utf8_feed_masked(cc_utf8_state* state, const uint8_t* src, size_t n, const uint8_t* mask, size_t offset)
