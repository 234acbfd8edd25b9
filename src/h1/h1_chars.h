/* Character classes and small text helpers shared by the HTTP/1.1 parser, serialiser and
 * upgrade helpers. One 256-entry table of bit flags keeps every class test a single load. */
#ifndef RILL_H1_CHARS_H
#define RILL_H1_CHARS_H

#include <stddef.h>
#include <stdint.h>

#include "common/http_chars.h"

#define H1_TCHAR 0x01u  /* token character (RFC 9110 §5.6.2) */
#define H1_VALUE 0x02u  /* allowed in a field value: VCHAR, obs-text, SP, HTAB */
#define H1_HEX 0x08u
#define H1_DIGIT 0x10u
#define H1_HOST 0x20u   /* allowed in a Host value: reg-name, IP-literal, ':' port */
#define H1_SCHEME 0x40u /* ALPHA / DIGIT / "+" / "-" / "." */

extern const uint8_t rill_h1_ctype[256];

static inline int h1_is(uint8_t c, unsigned cls)
{
    return (rill_h1_ctype[c] & cls) != 0;
}

static inline uint8_t h1_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c | 0x20) : c;
}

/* Index of the first byte in s[0..n) that is not in class cls, or n. */
static inline size_t h1_span(const char *s, size_t n, unsigned cls)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    /* Unrolled by four: header values are the bulk of a head. */
    while (i + 4 <= n && (rill_h1_ctype[u[i]] & rill_h1_ctype[u[i + 1]] & rill_h1_ctype[u[i + 2]] &
                          rill_h1_ctype[u[i + 3]] & cls))
        i += 4;
    while (i < n && (rill_h1_ctype[u[i]] & cls))
        i++;
    return i;
}

/* The hot scan of field values: the index of the first byte that may not appear in one (CTLs
 * but HTAB, DEL), the H1_VALUE class. That is common/http_chars.h's rule for every field value:
 * 16 bytes a step with SSE2, short values and the rest eight a step. */
static inline size_t h1_span_value(const char *s, size_t n)
{
    return http_value_ctl_span(s, n);
}

/* The index of the first byte that may not appear in a request target: the rule HTTP/2's :path
 * shares (common/http_chars.h). */
static inline size_t h1_span_target(const char *s, size_t n)
{
    return http_target_span(s, n);
}

/* Case-insensitive comparison of two equal-length byte strings. */
static inline int h1_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h1_lower((uint8_t)a[i]) != h1_lower((uint8_t)b[i]))
            return 0;
    return 1;
}

#endif
