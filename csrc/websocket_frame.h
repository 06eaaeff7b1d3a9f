/* WebSocket (RFC 6455) frame codec helpers for cppcorn, in plain C:
 * reading a frame header, unmasking a payload, writing a server frame header,
 * and validating UTF-8 incrementally (text messages may arrive in fragments
 * that split a character). Nothing here knows about Python. */
#ifndef CPPCORN_WEBSOCKET_FRAME_H
#define CPPCORN_WEBSOCKET_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    CC_WS_CONTINUATION = 0x0,
    CC_WS_TEXT = 0x1,
    CC_WS_BINARY = 0x2,
    CC_WS_CLOSE = 0x8,
    CC_WS_PING = 0x9,
    CC_WS_PONG = 0xA,
};

typedef struct {
    uint8_t fin;
    uint8_t rsv1;
    uint8_t rsv2;
    uint8_t rsv3;
    uint8_t opcode;
    uint8_t masked;
    uint8_t mask[4];
    uint64_t payload_length;
    size_t header_length;
} cc_ws_frame;

/* Read the frame header at p[0:n]. Returns the header's length once it is
 * all there, 0 if more bytes are needed, and -1 if the 64-bit length has its
 * most significant bit set (forbidden by RFC 6455 5.2). */
static inline long cc_ws_parse_header(const uint8_t *p, size_t n, cc_ws_frame *frame) {
    size_t needed = 2;
    uint64_t length;
    if (n < 2) return 0;
    frame->fin = (p[0] >> 7) & 1;
    frame->rsv1 = (p[0] >> 6) & 1;
    frame->rsv2 = (p[0] >> 5) & 1;
    frame->rsv3 = (p[0] >> 4) & 1;
    frame->opcode = p[0] & 0x0f;
    frame->masked = (p[1] >> 7) & 1;
    length = p[1] & 0x7f;
    if (length == 126) needed += 2;
    else if (length == 127) needed += 8;
    if (frame->masked) needed += 4;
    if (n < needed) return 0;
    if (length == 126) {
        length = ((uint64_t)p[2] << 8) | p[3];
    } else if (length == 127) {
        length = 0;
        for (int i = 0; i < 8; i++) length = (length << 8) | p[2 + i];
        if (length >> 63) return -1;
    }
    frame->payload_length = length;
    if (frame->masked) memcpy(frame->mask, p + needed - 4, 4);
    frame->header_length = needed;
    return (long)needed;
}

/* dst[i] = src[i] ^ mask[(offset + i) % 4]: unmask a payload (or a piece of
 * it starting `offset` bytes into the frame). dst may equal src. */
static inline void cc_ws_unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4], size_t offset) {
    uint8_t key[8];
    uint64_t key64, word;
    size_t i = 0;
    for (int k = 0; k < 8; k++) key[k] = mask[(offset + k) & 3];
    memcpy(&key64, key, 8);
    for (; i + 8 <= n; i += 8) {
        memcpy(&word, src + i, 8);
        word ^= key64;
        memcpy(dst + i, &word, 8);
    }
    for (; i < n; i++) dst[i] = src[i] ^ key[i & 7];
}

/* Write the header of an unmasked (server) frame into out, which has room
 * for 10 bytes; returns its length. */
static inline size_t cc_ws_write_header(uint8_t *out, int fin, int rsv1, int opcode, uint64_t length) {
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
    if (length < 126) {
        out[1] = (uint8_t)length;
        return 2;
    }
    if (length <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(length >> 8);
        out[3] = (uint8_t)length;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(length >> (56 - 8 * i));
    return 10;
}

/* Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, at
 * most U+10FFFF). `remaining` continuation bytes are still expected, the
 * next of which must lie in [lower, upper]. */
typedef struct {
    uint8_t remaining;
    uint8_t lower;
    uint8_t upper;
} cc_utf8_state;

static inline void cc_utf8_init(cc_utf8_state *state) {
    state->remaining = 0;
    state->lower = 0x80;
    state->upper = 0xbf;
}

/* Feed bytes; returns 0 while the text is valid so far, -1 once it is not.
 * The text is complete and valid when this returned 0 and remaining == 0. */
static inline int cc_utf8_feed(cc_utf8_state *state, const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t byte = p[i];
        if (state->remaining == 0) {
            /* ASCII runs, eight bytes at a time. */
            if (i + 8 <= n) {
                uint64_t word;
                memcpy(&word, p + i, 8);
                if ((word & 0x8080808080808080ULL) == 0) {
                    i += 8;
                    continue;
                }
            }
            i++;
            if (byte < 0x80) continue;
            state->lower = 0x80;
            state->upper = 0xbf;
            if (byte >= 0xc2 && byte <= 0xdf) {
                state->remaining = 1;
            } else if (byte == 0xe0) {
                state->remaining = 2;
                state->lower = 0xa0;
            } else if ((byte >= 0xe1 && byte <= 0xec) || byte == 0xee || byte == 0xef) {
                state->remaining = 2;
            } else if (byte == 0xed) {
                state->remaining = 2;
                state->upper = 0x9f;
            } else if (byte == 0xf0) {
                state->remaining = 3;
                state->lower = 0x90;
            } else if (byte >= 0xf1 && byte <= 0xf3) {
                state->remaining = 3;
            } else if (byte == 0xf4) {
                state->remaining = 3;
                state->upper = 0x8f;
            } else {
                return -1;
            }
        } else {
            i++;
            if (byte < state->lower || byte > state->upper) return -1;
            state->remaining--;
            state->lower = 0x80;
            state->upper = 0xbf;
        }
    }
    return 0;
}

/* cc_utf8_feed() on bytes still masked: n bytes of a frame's payload that
 * start `offset` bytes into it, as they sit in the read buffer. They are
 * unmasked a block at a time on the stack, so that the text of a frame that
 * has not arrived whole can be checked as it comes (RFC 6455 8.1: fail as
 * soon as it cannot be valid) and the buffer is left as it was. */
static inline int cc_utf8_feed_masked(cc_utf8_state *state, const uint8_t *src, size_t n, const uint8_t mask[4],
                                      size_t offset) {
    uint8_t block[512];
    while (n > 0) {
        size_t size = n < sizeof(block) ? n : sizeof(block);
        cc_ws_unmask(block, src, size, mask, offset);
        if (cc_utf8_feed(state, block, size)) return -1;
        src += size;
        offset += size;
        n -= size;
    }
    return 0;
}

#endif /* CPPCORN_WEBSOCKET_FRAME_H */
