/* A growable byte buffer: the request head the parser accumulates, and the
 * response bytes a connection serialises before each write. Plain C; the
 * functions returning int give 0 on success and -1 when memory runs out. */
#ifndef CPPCORN_BYTE_BUFFER_H
#define CPPCORN_BYTE_BUFFER_H

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t length;
    size_t capacity;
} cc_buffer;

static inline int cc_buffer_init(cc_buffer *buffer, size_t capacity) {
    buffer->data = (char *)malloc(capacity);
    buffer->length = 0;
    buffer->capacity = buffer->data ? capacity : 0;
    return buffer->data ? 0 : -1;
}

static inline void cc_buffer_free(cc_buffer *buffer) {
    free(buffer->data);
    buffer->data = NULL;
    buffer->length = buffer->capacity = 0;
}

/* Make room for `extra` more bytes, doubling the capacity as needed. */
static inline int cc_buffer_reserve(cc_buffer *buffer, size_t extra) {
    size_t needed = buffer->length + extra;
    size_t capacity = buffer->capacity ? buffer->capacity : 64;
    char *grown;
    if (needed <= buffer->capacity) return 0;
    while (capacity < needed) capacity *= 2;
    grown = (char *)realloc(buffer->data, capacity);
    if (!grown) return -1;
    buffer->data = grown;
    buffer->capacity = capacity;
    return 0;
}

static inline int cc_buffer_append(cc_buffer *buffer, const char *data, size_t length) {
    if (cc_buffer_reserve(buffer, length)) return -1;
    memcpy(buffer->data + buffer->length, data, length);
    buffer->length += length;
    return 0;
}

/* Give memory back after one large use: an empty buffer whose capacity grew
 * past `limit` shrinks to `capacity`. */
static inline void cc_buffer_shrink(cc_buffer *buffer, size_t limit, size_t capacity) {
    char *smaller;
    if (buffer->length || buffer->capacity <= limit) return;
    smaller = (char *)realloc(buffer->data, capacity);
    if (smaller) {
        buffer->data = smaller;
        buffer->capacity = capacity;
    }
}

#endif /* CPPCORN_BYTE_BUFFER_H */
