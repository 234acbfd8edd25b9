/* The client's trace (rill get -v): connection events and, over HTTP/2, one line per frame sent
 * or received, read off the byte streams by their 9-byte frame headers (the engine is not asked). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client/client_internal.h"

void rill_client_set_trace(rill_client *c, rill_client_trace_fn fn, void *user)
{
    c->trace = fn;
    c->trace_user = user;
}

void client_trace(rill_client *c, const char *fmt, ...)
{
    if (!c->trace)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->trace(c, line, c->trace_user);
}

static const char *frame_name(uint8_t type)
{
    static const char *const names[] = {"DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS",
                                        "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE",
                                        "CONTINUATION"};
    if (type < sizeof names / sizeof names[0])
        return names[type];
    return type == RILL_H2_PRIORITY_UPDATE ? "PRIORITY_UPDATE" : "UNKNOWN";
}

void client_frame_tap(rill_client *c, struct frame_tap *t, const char *dir, const uint8_t *p,
                      size_t n)
{
    while (n > 0) {
        size_t k;
        if (t->skip) { /* the client preface, or a frame's payload */
            k = n < t->skip ? n : t->skip;
            t->skip -= (uint32_t)k;
        } else {
            k = sizeof t->hdr - t->have;
            if (k > n)
                k = n;
            memcpy(t->hdr + t->have, p, k);
            t->have += (uint8_t)k;
            if (t->have == sizeof t->hdr) {
                const uint8_t *h = t->hdr;
                uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
                uint32_t id = ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) &
                              0x7fffffffu;
                client_trace(c, "%s %s stream=%u length=%u flags=0x%02x", dir, frame_name(h[3]), id,
                             len, h[4]);
                t->skip = len;
                t->have = 0;
            }
        }
        p += k;
        n -= k;
    }
}
