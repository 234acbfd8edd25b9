/* Helpers shared by the HPACK unit tests: hex, field collection, comparisons. */
#ifndef RILL_HPACK_TEST_UTIL_H
#define RILL_HPACK_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill/hpack.h"

#define MAX_FIELDS 64

typedef struct collected {
    size_t count;
    char name[MAX_FIELDS][512];
    char value[MAX_FIELDS][512];
    uint32_t flags[MAX_FIELDS];
} collected;

static inline int collect_cb(void *user, const rill_header *h)
{
    collected *c = user;
    if (c->count >= MAX_FIELDS || h->name_len >= 512 || h->value_len >= 512)
        return RILL_ERR_LIMIT;
    memcpy(c->name[c->count], h->name, h->name_len);
    c->name[c->count][h->name_len] = '\0';
    memcpy(c->value[c->count], h->value, h->value_len);
    c->value[c->count][h->value_len] = '\0';
    c->flags[c->count] = h->flags;
    c->count++;
    return 0;
}

/* Parses hex (whitespace ignored) into out; returns the byte count. */
static inline size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        int v;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            if (n >= cap)
                abort();
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return n;
}

static inline rill_header hdr(const char *name, const char *value, uint32_t flags)
{
    rill_header h = {(const uint8_t *)name, strlen(name), (const uint8_t *)value, strlen(value), flags};
    return h;
}

#endif
