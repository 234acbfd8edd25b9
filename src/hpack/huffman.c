/* Huffman coding for HPACK strings.
 *
 * Decoding keeps up to 64 input bits in an accumulator (MSB first) and looks up 12 bits at a time
 * in a generated root table (16 KiB): one lookup yields one or two whole symbols for every code of
 * 12 bits or less (all of the printable ASCII people put in headers but a handful); two 6-bit
 * codes, the commonest case in lowercase text, come out together. Longer codes go through 8-bit
 * subtables, at most three more lookups. There is no per-bit loop. */
#include "hpack/huffman.h"

#include <stdbool.h>

#include "hpack/hpack_int.h"
#include "hpack/hpack_tables.h"

#define KIND_SUBTABLE 0u
#define KIND_ONE 1u
#define KIND_TWO 2u
#define KIND_EOS 3u

static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void store_be32(uint8_t *p, uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, 4);
}

/* Follows subtables for a code longer than the root width; returns the leaf entry. */
static inline uint32_t walk_subtables(uint32_t e, uint64_t acc)
{
    unsigned shift = HPACK_HUFF_ROOT_BITS;
    while ((e >> 30) == KIND_SUBTABLE) {
        e = hpack_huff_sub[(e & 0xffffu) + (uint32_t)((acc << shift) >> (64 - HPACK_HUFF_SUB_BITS))];
        shift += HPACK_HUFF_SUB_BITS;
    }
    return e;
}

static inline __attribute__((always_inline)) ptrdiff_t huff_decode(const uint8_t *src, size_t len,
                                                                   uint8_t *dst, bool store)
{
    const uint8_t *p = src, *end = src + len;
    uint64_t acc = 0;
    unsigned bits = 0; /* valid bits at the top of acc */
    size_t n = 0;
    for (;;) {
        if (end - p >= 8) {
            acc |= load_be64(p) >> bits;
            p += (63 - bits) >> 3;
            bits |= 56;
        } else {
            while (bits <= 56 && p < end) {
                acc |= (uint64_t)*p++ << (56 - bits);
                bits += 8;
            }
        }
        /* Fast path: with 30 bits or more in hand every code is complete. One- and two-symbol
         * entries share the branch-free path (kind is the symbol count; two bytes are stored and
         * the count decides how many are kept, hence the one byte of slack in dst). */
        while (bits >= 30) {
            uint32_t e = hpack_huff_root[acc >> (64 - HPACK_HUFF_ROOT_BITS)];
            unsigned kind = e >> 30, l;
            if (HPACK_LIKELY(kind != KIND_SUBTABLE)) { /* EOS never sits in the root table */
                if (store) {
                    dst[n] = (uint8_t)e;
                    dst[n + 1] = (uint8_t)(e >> 8);
                }
                n += kind;
                l = (e >> 21) & 31u;
            } else {
                e = walk_subtables(e, acc);
                if ((e >> 30) == KIND_EOS)
                    return -1; /* RFC 7541 5.2: EOS inside a string is a decoding error */
                if (store)
                    dst[n] = (uint8_t)e;
                n++;
                l = (e >> 16) & 31u;
            }
            acc <<= l;
            bits -= l;
        }
        if (p < end)
            continue;
        /* The input is exhausted and fewer than 30 bits remain: decode what is complete. */
        while (bits > 0) {
            uint32_t e = hpack_huff_root[acc >> (64 - HPACK_HUFF_ROOT_BITS)];
            unsigned kind = e >> 30;
            if (kind == KIND_SUBTABLE)
                e = walk_subtables(e, acc);
            else if (kind == KIND_TWO && ((e >> 21) & 31u) <= bits) {
                if (store) {
                    dst[n] = (uint8_t)e;
                    dst[n + 1] = (uint8_t)(e >> 8);
                }
                n += 2;
                acc <<= (e >> 21) & 31u;
                bits -= (e >> 21) & 31u;
                continue;
            }
            unsigned l = (e >> 16) & 31u; /* first (or only) code */
            if (l > bits) {
                /* Inside a code: legal only as at most 7 bits of EOS prefix (all ones); no complete
                 * code of 7 bits or less is all ones, so this is unambiguous. */
                if (bits <= 7 && (acc >> (64 - bits)) == (1u << bits) - 1u)
                    break;
                return -1;
            }
            if ((e >> 30) == KIND_EOS)
                return -1;
            if (store)
                dst[n] = (uint8_t)e;
            n++;
            acc <<= l;
            bits -= l;
        }
        break;
    }
    return (ptrdiff_t)n;
}

ptrdiff_t hpack_huff_decode(const uint8_t *src, size_t len, uint8_t *dst)
{
    return huff_decode(src, len, dst, true);
}

ptrdiff_t hpack_huff_validate(const uint8_t *src, size_t len)
{
    return huff_decode(src, len, NULL, false);
}

size_t hpack_huff_encoded_len(const uint8_t *src, size_t len)
{
    uint64_t bits = 0;
    size_t i = 0;
    /* Four independent sums let the loads overlap. */
    uint64_t b1 = 0, b2 = 0, b3 = 0;
    for (; i + 4 <= len; i += 4) {
        bits += hpack_huff_len[src[i]];
        b1 += hpack_huff_len[src[i + 1]];
        b2 += hpack_huff_len[src[i + 2]];
        b3 += hpack_huff_len[src[i + 3]];
    }
    for (; i < len; i++)
        bits += hpack_huff_len[src[i]];
    bits += b1 + b2 + b3;
    return (size_t)((bits + 7) >> 3);
}

void hpack_huff_encode(const uint8_t *src, size_t len, uint8_t *dst)
{
    uint64_t acc = 0;
    unsigned n = 0; /* pending bits in the low end of acc, < 32 between symbols */
    for (size_t i = 0; i < len; i++) {
        unsigned l = hpack_huff_len[src[i]];
        acc = (acc << l) | hpack_huff_code[src[i]];
        n += l;
        if (n >= 32) {
            n -= 32;
            store_be32(dst, (uint32_t)(acc >> n));
            dst += 4;
        }
    }
    if (n) {
        unsigned pad = (8 - (n & 7u)) & 7u; /* pad with the most significant bits of EOS */
        acc = (acc << pad) | ((1u << pad) - 1u);
        n += pad;
        while (n) {
            n -= 8;
            *dst++ = (uint8_t)(acc >> n);
        }
    }
}
