/* Character classes of RFC 9110 shared by the HTTP/1.1, HTTP/2 and server layers. */
#ifndef RILL_COMMON_HTTP_CHARS_H
#define RILL_COMMON_HTTP_CHARS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Token characters (a field name's bytes): HTTP_TCHAR_LOWER for every token byte except the
 * uppercase letters, which are HTTP_TCHAR_UPPER (HTTP/2 forbids them in names); 0 otherwise. */
enum { HTTP_TCHAR_LOWER = 1, HTTP_TCHAR_UPPER = 2 };
extern const uint8_t http_tchar[256];

/* A request target's bytes, one rule for the HTTP/1.1 request line and the HTTP/2 :path: visible
 * ASCII except '#' (a fragment is never sent, RFC 9112 §3.2 and RFC 9113 §8.3.1). Escapes such
 * as %20 stay escaped here; 1 for an allowed byte. */
extern const uint8_t http_target_char[256];

#if defined(__SSE2__)
/* A bit per byte of s[0..16) that may not appear in a request target. Signed compares: bytes
 * >= 0x80 are negative, so below 0x21. */
static inline unsigned http_target_bad16(const char *s)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x21)),
                               _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('#'))));
}
#endif

/* Index of the first byte of s[0..n) that may not appear in a request target, or n. Sixteen bytes
 * at a time where SSE2 exists (every x86-64): targets are scanned on every request. */
static inline size_t http_target_span(const char *s, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
        unsigned bad = http_target_bad16(s + i);
        if (bad)
            return i + (size_t)__builtin_ctz(bad);
    }
    if (i < n && n >= 16) { /* the last 16 bytes, overlapping some already known good */
        unsigned bad = http_target_bad16(s + n - 16);
        return bad ? n - 16 + (size_t)__builtin_ctz(bad) : n;
    }
#endif
    while (i < n && http_target_char[(uint8_t)s[i]])
        i++;
    return i;
}

/* The top bit of each byte of x that is a control character other than HTAB (below 0x20, or
 * DEL), the other bits clear: exact per byte (seven-bit sums carry into no neighbour). */
static inline uint64_t http_ctl8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull, low = ~high;
    uint64_t below_20 = ~((x & low) + ones * (0x80 - 0x20)) & ~x & high;
    uint64_t t = x ^ (ones * '\t'), d = x ^ (ones * 0x7f);
    uint64_t is_tab = ~((t & low) + low) & ~t & high; /* the byte is zero after the xor */
    uint64_t is_del = ~((d & low) + low) & ~d & high;
    return (below_20 & ~is_tab) | is_del;
}

/* Index of the first byte of a field value s[0..n) that is a control character other than HTAB
 * (a C0 byte or DEL: RFC 9110 §5.5 keeps them out, NUL, CR and LF included), or n. Sixteen bytes
 * at a time where SSE2 exists, the rest (most values are short) eight bytes a step, the last step
 * overlapping; bytes >= 0x80 (obs-text) pass. */
static inline size_t http_value_ctl_span(const char *s, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i c1f = _mm_set1_epi8(0x1f), tab = _mm_set1_epi8('\t'), del = _mm_set1_epi8(0x7f);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, c1f), c1f); /* v <= 0x1f, unsigned */
        ctl = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, tab), ctl), _mm_cmpeq_epi8(v, del));
        unsigned bad = (unsigned)_mm_movemask_epi8(ctl);
        if (bad)
            return i + (size_t)__builtin_ctz(bad);
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n >= 8) {
        for (;; i += 8) {
            if (i + 8 > n)
                i = n - 8; /* overlapping bytes already known good */
            uint64_t x;
            memcpy(&x, s + i, 8);
            uint64_t bad = http_ctl8(x);
            if (bad) /* little-endian: the lowest set bit is the first byte */
                return i + (size_t)__builtin_ctzll(bad) / 8;
            if (i + 8 == n)
                return n;
        }
    }
#endif
    for (; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return i;
    }
    return n;
}

/* A field as HTTP/2 allows it (RFC 9113 §8.2.1): a lowercase token name, or ':' and one; a value
 * without NUL, CR or LF and without leading or trailing SP/HTAB. The HTTP/2 engine checks every
 * field it sends or receives with it; the HPACK decoder checks table entries once with it. */
bool http2_field_valid(const uint8_t *name, size_t name_len, const uint8_t *value, size_t value_len);

/* The value of a hexadecimal digit (either case), or -1. */
static inline int http_hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20; /* ASCII lowercase; non-letters stay outside a..f */
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

#endif
