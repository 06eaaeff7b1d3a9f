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

/* RFC 9110 tchar, the characters allowed in a header name (a token),
 * mapped to their lower case; 0 for every other byte. One lookup both
 * validates and lower-cases a byte of a response header name. */
static const unsigned char cc_token_lower[256] = {
    ['!'] = '!', ['#'] = '#', ['$'] = '$', ['%'] = '%', ['&'] = '&', ['\''] = '\'',
    ['*'] = '*', ['+'] = '+', ['-'] = '-', ['.'] = '.', ['^'] = '^', ['_'] = '_',
    ['`'] = '`', ['|'] = '|', ['~'] = '~',
    ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4', ['5'] = '5',
    ['6'] = '6', ['7'] = '7', ['8'] = '8', ['9'] = '9',
    ['A'] = 'a', ['B'] = 'b', ['C'] = 'c', ['D'] = 'd', ['E'] = 'e', ['F'] = 'f',
    ['G'] = 'g', ['H'] = 'h', ['I'] = 'i', ['J'] = 'j', ['K'] = 'k', ['L'] = 'l',
    ['M'] = 'm', ['N'] = 'n', ['O'] = 'o', ['P'] = 'p', ['Q'] = 'q', ['R'] = 'r',
    ['S'] = 's', ['T'] = 't', ['U'] = 'u', ['V'] = 'v', ['W'] = 'w', ['X'] = 'x',
    ['Y'] = 'y', ['Z'] = 'z',
    ['a'] = 'a', ['b'] = 'b', ['c'] = 'c', ['d'] = 'd', ['e'] = 'e', ['f'] = 'f',
    ['g'] = 'g', ['h'] = 'h', ['i'] = 'i', ['j'] = 'j', ['k'] = 'k', ['l'] = 'l',
    ['m'] = 'm', ['n'] = 'n', ['o'] = 'o', ['p'] = 'p', ['q'] = 'q', ['r'] = 'r',
    ['s'] = 's', ['t'] = 't', ['u'] = 'u', ['v'] = 'v', ['w'] = 'w', ['x'] = 'x',
    ['y'] = 'y', ['z'] = 'z',
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

/* Copy the header name src[0:n] to dst lower-cased, in one pass that also
 * validates it: 1 if it is a non-empty token, else 0 (dst then holds junk). */
static inline int cc_copy_token_lower(char *dst, const char *src, size_t n) {
    unsigned char valid = n != 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = cc_token_lower[(unsigned char)src[i]];
        dst[i] = (char)c;
        valid &= c != 0;
    }
    return valid;
}

/* Copy the header value src[0:n] to dst, in one pass that also validates
 * it: 1 if it may be sent (no control characters except horizontal tab, so
 * no CR, LF or NUL that would split or end the header), else 0. */
static inline int cc_copy_field_value(char *dst, const char *src, size_t n) {
    unsigned char valid = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (char)c;
        valid &= (c >= 0x20 || c == '\t') & (c != 0x7f);
    }
    return valid;
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
