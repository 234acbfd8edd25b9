/* Field helpers: case-insensitive names, comma-separated token lists, lookups over a head. */
#include <string.h>

#include "h1/h1_chars.h"
#include "h1/h1_internal.h"

bool rill_h1_name_eq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    return n == alen && h1_ieq(a, lit, n);
}

/* Whether the comma list value[0..len) has an element equal to token[0..tlen), ignoring case. */
static bool list_has(const char *value, size_t len, const char *token, size_t tlen)
{
    size_t i = 0;
    while (i <= len) {
        size_t start = i;
        while (i < len && value[i] != ',')
            i++;
        size_t end = i;
        while (start < end && (value[start] == ' ' || value[start] == '\t'))
            start++;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end - start == tlen && h1_ieq(value + start, token, tlen))
            return true;
        i++;
    }
    return false;
}

bool rill_h1_list_has_token(const char *value, size_t len, const char *token)
{
    return list_has(value, len, token, strlen(token));
}

const rill_header *rill_h1_find_field(const rill_header *fields, size_t n, const char *name,
                                      size_t *pos)
{
    size_t nlen = strlen(name);
    for (size_t i = pos ? *pos : 0; i < n; i++) {
        if (fields[i].name_len == nlen && h1_ieq((const char *)fields[i].name, name, nlen)) {
            if (pos)
                *pos = i + 1;
            return &fields[i];
        }
    }
    if (pos)
        *pos = n;
    return NULL;
}

bool rill_h1_head_has_token(const rill_h1_head *head, const char *name, const char *token)
{
    size_t pos = 0;
    const rill_header *f;
    while ((f = rill_h1_find_field(head->fields, head->nfields, name, &pos)))
        if (rill_h1_list_has_token((const char *)f->value, f->value_len, token))
            return true;
    return false;
}

bool rill_h1_is_connection_specific(const rill_h1_head *head, const rill_header *f)
{
    static const char *const always[] = {"connection", "keep-alive", "proxy-connection",
                                          "transfer-encoding", "upgrade", "http2-settings"};
    for (size_t i = 0; i < sizeof always / sizeof *always; i++)
        if (rill_h1_name_eq((const char *)f->name, f->name_len, always[i]))
            return true;
    if (rill_h1_name_eq((const char *)f->name, f->name_len, "te"))
        return !(f->value_len == 8 && h1_ieq((const char *)f->value, "trailers", 8));
    /* Fields the sender declared hop-by-hop by naming them in Connection. */
    size_t pos = 0;
    const rill_header *c;
    while ((c = rill_h1_find_field(head->fields, head->nfields, "connection", &pos)))
        if (list_has((const char *)c->value, c->value_len, (const char *)f->name, f->name_len))
            return true;
    return false;
}
