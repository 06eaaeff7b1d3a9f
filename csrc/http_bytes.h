/* Byte-level HTTP helpers for cppcorn's HTTP/1.1 core.
 *
 * Plain C over (pointer, length) pairs: lower-casing header names, validating
 * response header names and values, percent-decoding request paths, and
 * formatting the numbers that go on the wire. Nothing here knows about Python;
 * the Cython modules call these on buffers they own.
 */
#ifndef CPPCORN_HTTP_BYTES_H
#define CPPCORN_HTTP_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* RFC 9110 tchar: the characters allowed in a header name (a token). */
static const unsigned char cc_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
    ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
    ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

static inline unsigned char cc_lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* Copy n bytes from src to dst, ASCII-lower-cased. */
static inline void cc_lower_copy(char *dst, const char *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (char)cc_lower((unsigned char)src[i]);
}

/* 1 if s[0:n] equals the lower-case ASCII string lit (of length lit_n),
 * ignoring the case of s. */
static inline int cc_equals_lower(const char *s, size_t n, const char *lit, size_t lit_n) {
    if (n != lit_n) return 0;
    for (size_t i = 0; i < n; i++)
        if (cc_lower((unsigned char)s[i]) != (unsigned char)lit[i]) return 0;
    return 1;
}

/* 1 if s[0:n] is a non-empty token (a valid header name). */
static inline int cc_is_token(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!cc_tchar[(unsigned char)s[i]]) return 0;
    return 1;
}

/* 1 if s[0:n] may be sent as a header value: no control characters except
 * horizontal tab (so no CR, LF or NUL that would split or end the header). */
static inline int cc_is_field_value(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;
    }
    return 1;
}

/* Strip optional whitespace (SP, HTAB) from both ends of s[0:*n]. */
static inline const char *cc_strip_ows(const char *s, size_t *n) {
    size_t len = *n;
    while (len && (*s == ' ' || *s == '\t')) { s++; len--; }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    *n = len;
    return s;
}

static inline int cc_hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = cc_lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Percent-decode src[0:n] into dst (which has room for n bytes) and return
 * the decoded length. A '%' not followed by two hex digits is kept as is,
 * which is what urllib.parse.unquote does. */
static inline size_t cc_percent_decode(char *dst, const char *src, size_t n) {
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '%' && i + 2 < n) {
            int hi = cc_hex_value((unsigned char)src[i + 1]);
            int lo = cc_hex_value((unsigned char)src[i + 2]);
            if (hi >= 0 && lo >= 0) {
                dst[out++] = (char)(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        dst[out++] = src[i];
    }
    return out;
}

/* Parse a Content-Length value (digits only, after OWS stripping). Returns 0
 * on success, -1 if it is empty, not all digits, or does not fit. */
static inline int cc_parse_content_length(const char *s, size_t n, uint64_t *out) {
    s = cc_strip_ows(s, &n);
    if (n == 0 || n > 19) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Write v in lower-case hexadecimal (a chunk size) and return the number of
 * characters written; dst needs room for 16. */
static inline size_t cc_write_hex(char *dst, uint64_t v) {
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 0xf];
        v >>= 4;
    } while (v);
    for (size_t i = 0; i < n; i++) dst[i] = tmp[n - 1 - i];
    return n;
}

#endif /* CPPCORN_HTTP_BYTES_H */
