/* Copies of a few dozen bytes (header names and values) without a call into libc: memcpy with a
 * length known only at run time is a call and a size dispatch, more than the copy itself costs
 * for the short strings of a request. Overlapping fixed-size moves cover every length up to 32;
 * longer ones go to memcpy. */
#ifndef RILL_COMMON_SMALL_COPY_H
#define RILL_COMMON_SMALL_COPY_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static inline void small_copy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (n > 32) {
        memcpy(d, s, n);
    } else if (n >= 16) {
        uint64_t a, b, c, e;
        memcpy(&a, s, 8);
        memcpy(&b, s + 8, 8);
        memcpy(&c, s + n - 16, 8);
        memcpy(&e, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + 8, &b, 8);
        memcpy(d + n - 16, &c, 8);
        memcpy(d + n - 8, &e, 8);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n > 0) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}

/* Eight bytes with their ASCII uppercase letters made lowercase (no locale), the others kept. */
static inline uint64_t lower8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t low7 = x & ~high;                        /* each byte below 0x80 */
    uint64_t from_a = low7 + ones * (0x80 - 'A');     /* top bit: byte >= 'A' */
    uint64_t past_z = low7 + ones * (0x80 - 'Z' - 1); /* top bit: byte > 'Z' */
    uint64_t upper = from_a & ~past_z & ~x & high;
    return x | upper >> 2; /* 0x80 >> 2 = 0x20 */
}

/* Copies n bytes, ASCII uppercase letters made lowercase (no locale), eight bytes a step: header
 * names from HTTP/1.1 peers come capitalised. */
static inline void lower_copy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    for (; n >= 8; n -= 8, s += 8, d += 8) {
        uint64_t x;
        memcpy(&x, s, 8);
        x = lower8(x);
        memcpy(d, &x, 8);
    }
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(s[i] + ((unsigned)(s[i] - 'A') < 26u) * 32u);
}

/* Whether s[0..n) equals lit[0..n) ignoring ASCII case, where lit is already lowercase (a
 * literal name): s is folded eight bytes a step (the last step overlapping), lit is not. */
static inline bool lower_eq_lit(const void *s, const char *lit, size_t n)
{
    const uint8_t *a = s;
    uint64_t x, y;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, lit + i, 8);
            if (lower8(x) != y)
                return false;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, lit + n - 8, 8);
        return lower8(x) == y;
    }
    if (n >= 4) { /* two overlapping four-byte pieces in one word */
        uint32_t a0, a1, l0, l1;
        memcpy(&a0, a, 4);
        memcpy(&a1, a + n - 4, 4);
        memcpy(&l0, lit, 4);
        memcpy(&l1, lit + n - 4, 4);
        return lower8(a0 | (uint64_t)a1 << 32) == (l0 | (uint64_t)l1 << 32);
    }
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)(a[i] + ((unsigned)(a[i] - 'A') < 26u) * 32u) != (uint8_t)lit[i])
            return false;
    return true;
}

#endif
