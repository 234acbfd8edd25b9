/* HPACK integers (RFC 7541 section 5.1) and small byte helpers shared by encoder and decoder. */
#ifndef RILL_HPACK_INT_H
#define RILL_HPACK_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define HPACK_LIKELY(x) __builtin_expect(!!(x), 1)
#define HPACK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define HPACK_LIKELY(x) (x)
#define HPACK_UNLIKELY(x) (x)
#endif

static inline uint64_t hpack_load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t hpack_load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* memcmp(a, b, n) == 0 for the short strings of header fields, inline and without a length-driven
 * byte loop: word compares, the last word overlapping the previous one. */
static inline int hpack_bytes_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            if (hpack_load64(a + i) != hpack_load64(b + i))
                return 0;
        return hpack_load64(a + n - 8) == hpack_load64(b + n - 8);
    }
    if (n >= 4)
        return hpack_load32(a) == hpack_load32(b) && hpack_load32(a + n - 4) == hpack_load32(b + n - 4);
    if (n)
        return a[0] == b[0] && a[n >> 1] == b[n >> 1] && a[n - 1] == b[n - 1];
    return 1;
}

/* Decodes an integer whose prefix is the low prefix_bits of **pp (the caller guarantees
 * *pp < end). On success advances *pp and returns 0; returns -1 if the input ends inside the
 * integer or the value does not fit in 32 bits (at most 5 continuation bytes are accepted, so a
 * hostile run of 0x80 bytes is cut short). */
static inline int hpack_decode_int(const uint8_t **pp, const uint8_t *end, unsigned prefix_bits,
                                   uint32_t *out)
{
    const uint8_t *p = *pp;
    uint32_t max = (1u << prefix_bits) - 1u;
    uint32_t v = *p++ & max;
    if (HPACK_LIKELY(v < max)) {
        *out = v;
        *pp = p;
        return 0;
    }
    uint64_t acc = v;
    for (unsigned shift = 0;; shift += 7) {
        if (p == end || shift > 28)
            return -1;
        uint8_t b = *p++;
        acc += (uint64_t)(b & 0x7fu) << shift;
        if (!(b & 0x80u))
            break;
    }
    if (acc > UINT32_MAX)
        return -1;
    *out = (uint32_t)acc;
    *pp = p;
    return 0;
}

/* Bytes hpack_encode_int() writes for v with a prefix_bits prefix (1..6). */
static inline size_t hpack_int_len(uint32_t v, unsigned prefix_bits)
{
    uint32_t max = (1u << prefix_bits) - 1u;
    if (v < max)
        return 1;
    v -= max;
    size_t n = 2;
    while (v >= 128) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v with a prefix_bits prefix; first carries the representation's flag bits above the
 * prefix. Returns the bytes written (at most 6). */
static inline size_t hpack_encode_int(uint8_t *out, uint8_t first, unsigned prefix_bits, uint32_t v)
{
    uint32_t max = (1u << prefix_bits) - 1u;
    if (v < max) {
        out[0] = (uint8_t)(first | v);
        return 1;
    }
    out[0] = (uint8_t)(first | max);
    v -= max;
    size_t n = 1;
    while (v >= 128) {
        out[n++] = (uint8_t)(0x80u | (v & 0x7fu));
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

#endif
