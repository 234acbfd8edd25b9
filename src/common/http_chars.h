/* Character classes of RFC 9110 shared by the HTTP/1.1, HTTP/2 and server layers. */
#ifndef RILL_COMMON_HTTP_CHARS_H
#define RILL_COMMON_HTTP_CHARS_H

#include <stdint.h>

/* Token characters (a field name's bytes): HTTP_TCHAR_LOWER for every token byte except the
 * uppercase letters, which are HTTP_TCHAR_UPPER (HTTP/2 forbids them in names); 0 otherwise. */
enum { HTTP_TCHAR_LOWER = 1, HTTP_TCHAR_UPPER = 2 };
extern const uint8_t http_tchar[256];

/* The value of a hexadecimal digit (either case), or -1. */
static inline int http_hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20; /* ASCII lowercase; non-letters stay outside a..f */
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

#endif
