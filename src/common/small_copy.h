/* Copies of a few dozen bytes (header names and values) without a call into libc: memcpy with a
 * length known only at run time is a call and a size dispatch, more than the copy itself costs
 * for the short strings of a request. Overlapping fixed-size moves cover every length up to 32;
 * longer ones go to memcpy. */
#ifndef RILL_COMMON_SMALL_COPY_H
#define RILL_COMMON_SMALL_COPY_H

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

/* Copies n bytes, ASCII uppercase letters made lowercase (no locale), eight bytes a step: header
 * names from HTTP/1.1 peers come capitalised. */
static inline void lower_copy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    for (; n >= 8; n -= 8, s += 8, d += 8) {
        uint64_t x;
        memcpy(&x, s, 8);
        uint64_t low7 = x & ~high;                 /* each byte below 0x80 */
        uint64_t from_a = low7 + ones * (0x80 - 'A'); /* top bit: byte >= 'A' */
        uint64_t past_z = low7 + ones * (0x80 - 'Z' - 1); /* top bit: byte > 'Z' */
        uint64_t upper = from_a & ~past_z & ~x & high;
        x |= upper >> 2; /* 0x80 >> 2 = 0x20 */
        memcpy(d, &x, 8);
    }
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(s[i] + ((unsigned)(s[i] - 'A') < 26u) * 32u);
}

#endif
