#include "server/range.h"

#include <stdbool.h>
#include <strings.h>

static bool parse_u64(const char **p, const char *end, uint64_t *out)
{
    const char *start = *p;
    uint64_t v = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        unsigned d = (unsigned)(**p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        (*p)++;
    }
    *out = v;
    return *p > start;
}

static void skip_ows(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
}

enum rill_range_result rill_range_parse(const char *value, size_t len, uint64_t size,
                                        struct rill_byte_range *out)
{
    const char *p = value, *end = value + len;
    if (!value || len < 6 || strncasecmp(value, "bytes=", 6) != 0)
        return RILL_RANGE_IGNORE;
    p += 6;
    uint64_t lo = UINT64_MAX, hi = 0; /* the merged span [lo, hi) */
    bool any_satisfiable = false;
    struct rill_byte_range spans[RILL_RANGE_MAX_SPECS];
    int nspans = 0, nspecs = 0;
    for (;;) {
        skip_ows(&p, end);
        if (p < end && *p == ',') { /* empty list elements are allowed */
            p++;
            continue;
        }
        if (p >= end)
            break;
        if (++nspecs > RILL_RANGE_MAX_SPECS)
            return RILL_RANGE_IGNORE;
        uint64_t first, last;
        bool satisfiable;
        if (*p == '-') { /* suffix-range: the last N bytes */
            p++;
            if (!parse_u64(&p, end, &last))
                return RILL_RANGE_IGNORE;
            satisfiable = last > 0 && size > 0;
            first = last >= size ? 0 : size - last;
            last = size ? size - 1 : 0;
        } else {
            if (!parse_u64(&p, end, &first) || p >= end || *p != '-')
                return RILL_RANGE_IGNORE;
            p++;
            if (p < end && *p >= '0' && *p <= '9') {
                if (!parse_u64(&p, end, &last) || last < first)
                    return RILL_RANGE_IGNORE;
            } else {
                last = UINT64_MAX;
            }
            satisfiable = first < size;
            if (satisfiable && last >= size)
                last = size - 1;
        }
        skip_ows(&p, end);
        if (p < end && *p != ',')
            return RILL_RANGE_IGNORE;
        if (satisfiable) {
            any_satisfiable = true;
            spans[nspans].first = first;
            spans[nspans].length = last - first + 1;
            nspans++;
            if (first < lo)
                lo = first;
            if (last + 1 > hi)
                hi = last + 1;
        }
    }
    if (nspecs == 0)
        return RILL_RANGE_IGNORE;
    if (!any_satisfiable)
        return RILL_RANGE_UNSATISFIABLE;
    /* Serve the union only if the spans leave no gap inside [lo, hi). */
    uint64_t covered_to = lo;
    for (bool grew = true; grew && covered_to < hi;) {
        grew = false;
        for (int i = 0; i < nspans; i++) {
            uint64_t s_end = spans[i].first + spans[i].length;
            if (spans[i].first <= covered_to && s_end > covered_to) {
                covered_to = s_end;
                grew = true;
            }
        }
    }
    if (covered_to < hi)
        return RILL_RANGE_IGNORE;
    out->first = lo;
    out->length = hi - lo;
    return RILL_RANGE_SATISFIABLE;
}
