#include "server/conditional.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "server/http_date.h"

size_t rill_etag_for_file(uint64_t size, int64_t mtime_sec, long mtime_nsec, char out[RILL_ETAG_MAX])
{
    /* Nanoseconds included so two writes within one second still change the tag. */
    int n = snprintf(out, RILL_ETAG_MAX, "\"%" PRIx64 "-%" PRIx64 "-%lx\"", (uint64_t)mtime_sec,
                     size, mtime_nsec);
    return (size_t)n;
}

/* Walks an entity-tag list ("*" or #entity-tag); true when one matches. Weak comparison ignores
 * the W/ prefix on both sides; strong comparison requires both to be strong. */
static bool etag_list_matches(struct rill_span list, const struct rill_validators *v, bool weak)
{
    const char *p = list.ptr, *end = list.ptr + list.len;
    const char *ours = v->etag;
    size_t ours_len = v->etag_len;
    bool ours_weak = ours_len > 2 && ours[0] == 'W' && ours[1] == '/';
    if (ours_weak) {
        ours += 2;
        ours_len -= 2;
    }
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p >= end)
            break;
        if (*p == '*')
            return ours != NULL;
        bool theirs_weak = false;
        if (end - p > 2 && p[0] == 'W' && p[1] == '/') {
            theirs_weak = true;
            p += 2;
        }
        if (*p != '"')
            return false; /* malformed list: treat as no match */
        const char *close = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!close)
            return false;
        size_t tag_len = (size_t)(close - p + 1);
        bool same = ours && tag_len == ours_len && memcmp(p, ours, tag_len) == 0;
        if (same && (weak || (!theirs_weak && !ours_weak)))
            return true;
        p = close + 1;
    }
    return false;
}

static bool parse_date(struct rill_span s, time_t *out)
{
    return s.ptr && rill_http_date_parse(s.ptr, s.len, out);
}

enum rill_precondition rill_evaluate_preconditions(const struct rill_conditions *c,
                                                   const struct rill_validators *v)
{
    time_t date;
    if (c->if_match.ptr) {
        if (!etag_list_matches(c->if_match, v, false))
            return RILL_PRECONDITION_FAILED;
    } else if (parse_date(c->if_unmodified_since, &date)) {
        if (v->last_modified > date)
            return RILL_PRECONDITION_FAILED;
    }
    if (c->if_none_match.ptr) {
        if (etag_list_matches(c->if_none_match, v, true))
            return c->get_or_head ? RILL_PRECONDITION_NOT_MODIFIED : RILL_PRECONDITION_FAILED;
    } else if (c->get_or_head && parse_date(c->if_modified_since, &date)) {
        if (v->last_modified <= date)
            return RILL_PRECONDITION_NOT_MODIFIED;
    }
    return RILL_PRECONDITION_PROCEED;
}

bool rill_if_range_allows(struct rill_span if_range, const struct rill_validators *v)
{
    if (!if_range.ptr)
        return true;
    if (if_range.len > 0 && (if_range.ptr[0] == '"' || if_range.ptr[0] == 'W'))
        return etag_list_matches(if_range, v, false);
    time_t date;
    /* A date validator must match exactly (it is only weak otherwise). */
    return rill_http_date_parse(if_range.ptr, if_range.len, &date) && date == v->last_modified;
}
